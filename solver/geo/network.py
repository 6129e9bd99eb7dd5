"""Road network travel model: OSM streets → snapped points → travel matrices.

:class:`RoadNetwork` loads an OpenStreetMap extract with osmnx, derives one
routable graph per travel mode and prices travel between arbitrary points:

1. **Mode graphs.** Each mode keeps the edges it may use (see
   :data:`EXCLUDED_HIGHWAYS`) with a travel time in seconds per edge:
   driving at the tagged ``maxspeed`` or the per-highway-class table of
   ``config/defaults.toml``, scaled by the urban traffic factor; e-bikes and
   walkers at constant speeds. Driving and e-biking respect one-way streets;
   walking uses every street in both directions. Parallel edges keep the
   fastest one.
2. **Components.** Driving and e-biking keep only the largest strongly
   connected component, walking the largest (weakly) connected one, so that no
   point snaps onto a cut-off one-way stub at the edge of the extract and
   comes back unreachable.
3. **Snapping.** Every point goes to the nearest node of the mode's
   component (a :class:`scipy.spatial.cKDTree` on locally projected metres).
   The gap is travelled as an *access leg* at the mode's access speed.
   Points farther than ``snap_max_m`` from any node are priced with the
   straight-line model for every pair involving them.
4. **Matrices.** Travel times come from :func:`scipy.sparse.csgraph.dijkstra`
   run once per distinct source node; distances are the lengths along the
   same fastest paths, summed over the shortest-path trees by vectorised
   pointer doubling.

A :class:`RoadNetwork` implements the :class:`~solver.travel.TravelModel`
protocol. It is read-only after construction and safe to share between
threads.
"""

from __future__ import annotations

import functools
import math
import re
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import networkx as nx
import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import cKDTree

from solver.config import bundled_map_path, defaults
from solver.geo.coords import to_wgs84
from solver.model import TRAVEL_MODES, Location, TravelMode
from solver.travel import (
    DEFAULT_SPEEDS_KMH,
    EARTH_RADIUS_M,
    UNREACHABLE_S,
    StraightLineTravel,
    TravelMatrix,
    haversine_m,
)

__all__ = [
    "EXCLUDED_HIGHWAYS",
    "RoadNetwork",
    "Snap",
    "load_bundled_graph",
    "load_bundled_network",
    "load_osm_graph",
    "parse_maxspeed_kmh",
]

#: Highway values no travel mode routes on (not built, closed, or not a way).
_NOT_ROUTABLE = frozenset(
    {
        "abandoned",
        "construction",
        "disused",
        "planned",
        "platform",
        "proposed",
        "raceway",
        "razed",
        "rest_area",
        "services",
        "via_ferrata",
    }
)

#: Highway classes each mode may not use. Urban expressways (``trunk`` in
#: Chinese cities is typically an elevated road such as 延安高架路) and
#: motorways are closed to e-bikes and pedestrians.
EXCLUDED_HIGHWAYS: dict[str, frozenset[str]] = {
    "drive": _NOT_ROUTABLE
    | {
        "bridleway",
        "bus_guideway",
        "busway",
        "corridor",
        "cycleway",
        "elevator",
        "escalator",
        "footway",
        "path",
        "pedestrian",
        "steps",
    },
    "ebike": _NOT_ROUTABLE
    | {
        "bridleway",
        "bus_guideway",
        "busway",
        "corridor",
        "elevator",
        "escalator",
        "footway",
        "motorway",
        "motorway_link",
        "pedestrian",
        "steps",
        "trunk",
        "trunk_link",
    },
    "walk": _NOT_ROUTABLE | {"bus_guideway", "busway", "motorway", "motorway_link", "trunk", "trunk_link"},
}

#: ``access`` values that close a way to vehicles (walkers may still pass).
_CLOSED_ACCESS = frozenset({"no", "private"})

#: Drive speed, km/h, for highway classes missing from the configured table.
_UNKNOWN_CLASS_DRIVE_KMH = 25.0

#: Access-leg speed for driving when the table has no ``service`` class, km/h.
_DRIVE_ACCESS_KMH = 15.0

#: Cached matrices per network (least recently used are dropped first).
_MATRIX_CACHE_SIZE = 16

#: Sources per Dijkstra batch: bounds memory at (batch × nodes) floats.
_SOURCE_BATCH = 256

#: Lower bound on an edge's travel time, seconds. csgraph reads an explicit 0
#: in a sparse matrix as "no edge", so zero-length edges get this instead.
_MIN_EDGE_S = 1e-6

_MPH_KMH = 1.609344
_KNOTS_KMH = 1.852


@dataclass(frozen=True)
class Snap:
    """Where a point joins the road network of one travel mode.

    Attributes
    ----------
    node : int
        Index of the nearest node of the mode's component in the network's
        node table (``RoadNetwork.node_ids[node]`` is its OSM id).
    distance_m : float
        Great-circle distance from the point to that node, metres.
    snapped : bool
        False when ``distance_m`` exceeds the network's ``snap_max_m``; the
        point is then priced with the straight-line model.
    """

    node: int
    distance_m: float
    snapped: bool


@dataclass(frozen=True)
class _ModeGraph:
    """The routable graph of one travel mode, over its component's nodes.

    ``nodes[k]`` is the network node index of local node ``k``. Edges are
    stored once per ordered pair (the fastest parallel edge) in arrays sorted
    by ``key = tail * n + head``.
    """

    mode: str
    nodes: np.ndarray  # (n,) int64, network node indices
    local: np.ndarray  # (N,) int64, network index -> local index or -1
    times: csr_matrix  # (n, n) seconds
    edge_keys: np.ndarray  # (m,) int64 sorted tail * n + head
    edge_length_m: np.ndarray  # (m,) float64
    edge_time_s: np.ndarray  # (m,) float64
    edge_source: np.ndarray  # (m,) int64, index into the network's raw edge list
    tree: cKDTree
    access_mps: float
    fallback_kmh: float

    @property
    def size(self) -> int:
        return int(self.nodes.shape[0])

    def edge_index(self, tails: np.ndarray, heads: np.ndarray) -> np.ndarray:
        """Positions of edges ``tails[i] → heads[i]`` (local indices) in the edge arrays."""
        keys = tails.astype(np.int64) * self.size + heads.astype(np.int64)
        return np.searchsorted(self.edge_keys, keys)


def parse_maxspeed_kmh(value: Any) -> float | None:
    """Read an OSM ``maxspeed`` tag as km/h.

    Parameters
    ----------
    value : Any
        The tag value as osmnx stores it: a string such as ``"40"``,
        ``"30 mph"``, ``"40;50"``, a list of such strings (merged edges), or
        None.

    Returns
    -------
    float or None
        The lowest speed found, in km/h; None when nothing numeric is tagged
        (``"none"``, ``"signals"``, ``"CN:urban"``, missing).
    """
    if value is None:
        return None
    values = value if isinstance(value, (list, tuple)) else [value]
    speeds: list[float] = []
    for item in values:
        for part in re.split(r"[;,|]", str(item)):
            match = re.match(r"\s*(\d+(?:\.\d+)?)\s*(mph|knots)?", part.strip().lower())
            if not match:
                continue
            speed = float(match.group(1))
            if match.group(2) == "mph":
                speed *= _MPH_KMH
            elif match.group(2) == "knots":
                speed *= _KNOTS_KMH
            if speed > 0:
                speeds.append(speed)
    return min(speeds) if speeds else None


def _highway_class(value: Any) -> str | None:
    """The highway class of an edge; the first of a list (merged edges)."""
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    return None if value is None else str(value)


def _base_class(highway: str) -> str:
    """``primary_link`` → ``primary``; other classes unchanged."""
    return highway[: -len("_link")] if highway.endswith("_link") else highway


def _first_text(value: Any) -> str | None:
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    return None if value is None else str(value)


def _is_tunnel(value: Any) -> bool:
    values = value if isinstance(value, (list, tuple)) else [value]
    return any(v not in (None, "no", "false", "0") for v in values)


def _names(value: Any) -> list[str]:
    """Street names of an edge (merged edges may carry several)."""
    if value is None:
        return []
    values = value if isinstance(value, (list, tuple)) else [value]
    return [str(v).strip() for v in values if v is not None and str(v).strip()]


class RoadNetwork:
    """Travel times and distances on an OSM street network, per travel mode.

    Parameters
    ----------
    graph : networkx.MultiDiGraph
        An osmnx graph in WGS-84 (node attributes ``x`` = lon, ``y`` = lat;
        edge attributes ``length``, ``highway``, optional ``maxspeed``,
        ``name``, ``geometry``, ``access``, ``tunnel``). Edges reflect
        one-way streets as osmnx builds them.
    speeds : Mapping, optional
        Speed settings shaped like the ``[speeds_kmh]`` table of
        ``config/defaults.toml`` (``walk``, ``ebike``, ``drive_traffic_factor``,
        ``detour_factor``, ``drive_by_highway``); the keys given replace the
        configured ones. The straight-line fallback for driving uses a
        ``drive`` key when present, else 25 km/h.
    snap_max_m : float, optional
        Points farther than this from the mode's network are priced with the
        straight-line model. Default: ``[map] snap_max_m`` of the configuration.
    access_speeds_kmh : Mapping, optional
        Speed of the access leg between a point and its snapped node, per mode.
        Default: walking speed for ``walk``, the e-bike speed for ``ebike``
        and the ``service`` road speed (15 km/h) for ``drive``.

    Notes
    -----
    Non-motorised modes avoid motorways, urban expressways (``trunk``) and
    road tunnels, which in Chinese city centres are closed to them; ways with
    ``access=no|private`` are closed to drive and e-bike but open to walkers.
    """

    def __init__(
        self,
        graph: nx.MultiDiGraph,
        *,
        speeds: Mapping[str, Any] | None = None,
        snap_max_m: float | None = None,
        access_speeds_kmh: Mapping[str, float] | None = None,
    ) -> None:
        config = defaults()
        self.speeds: dict[str, Any] = {**config.get("speeds_kmh", {}), **(speeds or {})}
        self.snap_max_m = float(config.get("map", {}).get("snap_max_m", 500.0) if snap_max_m is None else snap_max_m)
        self.detour_factor = float(self.speeds.get("detour_factor", 1.35))
        if len(graph) == 0:
            raise ValueError("the road network has no nodes")

        self.node_ids = np.fromiter(graph.nodes, dtype=np.int64, count=len(graph))
        self.lats = np.array([float(graph.nodes[n]["y"]) for n in graph.nodes], dtype=float)
        self.lons = np.array([float(graph.nodes[n]["x"]) for n in graph.nodes], dtype=float)
        self._centre = (float(self.lats.mean()), float(self.lons.mean()))
        self._xy = self._project(self.lats, self.lons)
        position = {node: i for i, node in enumerate(graph.nodes)}

        tails, heads, lengths, edge_data = [], [], [], []
        for u, v, data in graph.edges(data=True):
            tails.append(position[u])
            heads.append(position[v])
            lengths.append(float(data.get("length", 0.0)))
            edge_data.append(data)
        self._edge_tail = np.asarray(tails, dtype=np.int64)
        self._edge_head = np.asarray(heads, dtype=np.int64)
        self._edge_length = np.asarray(lengths, dtype=float)
        self._edge_data: list[dict[str, Any]] = edge_data

        access = dict(access_speeds_kmh or {})
        drive_table = self.speeds.get("drive_by_highway", {})
        access.setdefault("walk", float(self.speeds.get("walk", DEFAULT_SPEEDS_KMH["walk"])))
        access.setdefault("ebike", float(self.speeds.get("ebike", DEFAULT_SPEEDS_KMH["ebike"])))
        access.setdefault("drive", float(drive_table.get("service", _DRIVE_ACCESS_KMH)))
        self._modes: dict[str, _ModeGraph] = {
            mode: self._build_mode(mode, access[mode] / 3.6) for mode in TRAVEL_MODES
        }
        self._cache: OrderedDict[tuple, TravelMatrix] = OrderedDict()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ #
    # Construction
    # ------------------------------------------------------------------ #
    @classmethod
    def from_osm(
        cls,
        path: str | Path,
        *,
        speeds: Mapping[str, Any] | None = None,
        snap_max_m: float | None = None,
        access_speeds_kmh: Mapping[str, float] | None = None,
    ) -> RoadNetwork:
        """Load an OSM XML extract into a road network.

        Parameters
        ----------
        path : str or pathlib.Path
            OSM XML file (``.osm``), for example one written by osmnx.
        speeds : Mapping, optional
            Speed settings; see :class:`RoadNetwork`.
        snap_max_m : float, optional
            Snapping limit; see :class:`RoadNetwork`.
        access_speeds_kmh : Mapping, optional
            Access-leg speeds; see :class:`RoadNetwork`.

        Returns
        -------
        RoadNetwork
        """
        return cls(
            load_osm_graph(path), speeds=speeds, snap_max_m=snap_max_m, access_speeds_kmh=access_speeds_kmh
        )

    def _project(self, lats: np.ndarray, lons: np.ndarray) -> np.ndarray:
        """Equirectangular projection around the graph centre, metres, shape (k, 2)."""
        lat0, lon0 = self._centre
        x = np.radians(np.asarray(lons, dtype=float) - lon0) * EARTH_RADIUS_M * math.cos(math.radians(lat0))
        y = np.radians(np.asarray(lats, dtype=float) - lat0) * EARTH_RADIUS_M
        return np.column_stack([x, y])

    def _edge_speed_kmh(self, mode: str, data: Mapping[str, Any]) -> float | None:
        """Speed of one edge for ``mode``, km/h; None when the mode may not use it."""
        highway = _highway_class(data.get("highway"))
        if highway is None or highway in EXCLUDED_HIGHWAYS[mode]:
            return None
        if mode != "walk" and _first_text(data.get("access")) in _CLOSED_ACCESS:
            return None
        if mode != "drive" and _is_tunnel(data.get("tunnel")):
            return None
        if mode != "drive":
            return float(self.speeds.get(mode, DEFAULT_SPEEDS_KMH[mode]))
        speed = parse_maxspeed_kmh(data.get("maxspeed"))
        if speed is None:
            table = self.speeds.get("drive_by_highway", {})
            speed = float(table.get(highway, table.get(_base_class(highway), _UNKNOWN_CLASS_DRIVE_KMH)))
        return speed * float(self.speeds.get("drive_traffic_factor", 1.0))

    def _build_mode(self, mode: str, access_mps: float) -> _ModeGraph:
        """Derive the routable graph of ``mode`` (edge times, component, k-d tree)."""
        n_all = len(self.node_ids)
        speeds = np.array(
            [np.nan if (s := self._edge_speed_kmh(mode, d)) is None else s for d in self._edge_data],
            dtype=float,
        )
        usable = np.flatnonzero(np.isfinite(speeds) & (speeds > 0))
        tail, head = self._edge_tail[usable], self._edge_head[usable]
        length = self._edge_length[usable]
        time_s = np.maximum(length / (speeds[usable] / 3.6), _MIN_EDGE_S)
        source = usable.astype(np.int64)
        if mode == "walk":  # walkers ignore one-way rules
            tail, head = np.concatenate([tail, head]), np.concatenate([head, tail])
            length = np.concatenate([length, length])
            time_s = np.concatenate([time_s, time_s])
            source = np.concatenate([source, source])
        keep = tail != head  # self-loops never lie on a fastest path
        tail, head, length, time_s, source = (a[keep] for a in (tail, head, length, time_s, source))
        if tail.size == 0:
            raise ValueError(f"the road network has no streets usable for {mode}")

        # Largest component over the full node table.
        graph = csr_matrix((np.ones(tail.size), (tail, head)), shape=(n_all, n_all))
        _, labels = connected_components(graph, directed=True, connection="strong" if mode != "walk" else "weak")
        touched = np.zeros(n_all, dtype=bool)
        touched[tail] = touched[head] = True
        counts = np.bincount(labels[touched], minlength=labels.max() + 1)
        biggest = int(np.argmax(counts))
        in_comp = labels == biggest
        nodes = np.flatnonzero(in_comp).astype(np.int64)
        local = np.full(n_all, -1, dtype=np.int64)
        local[nodes] = np.arange(nodes.size)
        keep = in_comp[tail] & in_comp[head]
        tail, head, length, time_s, source = (a[keep] for a in (tail, head, length, time_s, source))
        lt, lh = local[tail], local[head]
        n = nodes.size

        # One edge per ordered pair: the fastest (then shortest) parallel edge.
        keys = lt * n + lh
        order = np.lexsort((length, time_s, keys))
        keys, first = np.unique(keys[order], return_index=True)
        pick = order[first]
        lt, lh = lt[pick], lh[pick]
        times = csr_matrix((time_s[pick], (lt, lh)), shape=(n, n))

        return _ModeGraph(
            mode=mode,
            nodes=nodes,
            local=local,
            times=times,
            edge_keys=keys,
            edge_length_m=length[pick],
            edge_time_s=time_s[pick],
            edge_source=source[pick],
            tree=cKDTree(self._xy[nodes]),
            access_mps=access_mps,
            fallback_kmh=float(self.speeds.get(mode, DEFAULT_SPEEDS_KMH[mode])),
        )

    # ------------------------------------------------------------------ #
    # Introspection
    # ------------------------------------------------------------------ #
    def _mode(self, mode: str) -> _ModeGraph:
        try:
            return self._modes[mode]
        except KeyError:
            raise ValueError(f"unknown travel mode {mode!r}; use one of {', '.join(TRAVEL_MODES)}") from None

    def node_count(self, mode: TravelMode) -> int:
        """Number of nodes in the routable component of ``mode``."""
        return self._mode(mode).size

    def access_speed_kmh(self, mode: TravelMode) -> float:
        """Speed of the access leg between a point and its snapped node for ``mode``, km/h."""
        return self._mode(mode).access_mps * 3.6

    def fallback_speed_kmh(self, mode: TravelMode) -> float:
        """Straight-line speed for points too far from the network, km/h."""
        return self._mode(mode).fallback_kmh

    def node_location(self, node: int) -> Location:
        """The WGS-84 point of network node ``node`` (an index, as in :class:`Snap`)."""
        return Location(lat=float(self.lats[node]), lon=float(self.lons[node]))

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(south, west, north, east)`` of the network's nodes, degrees."""
        return (float(self.lats.min()), float(self.lons.min()), float(self.lats.max()), float(self.lons.max()))

    def street_names(self) -> list[str]:
        """Sorted distinct street names (``name`` tags) of the network's edges."""
        names: set[str] = set()
        for data in self._edge_data:
            names.update(_names(data.get("name")))
        return sorted(names)

    def to_networkx(self, mode: TravelMode) -> nx.DiGraph:
        """The routable graph of ``mode`` as a networkx ``DiGraph``.

        Nodes are OSM ids with ``x``/``y``; edges carry ``travel_time``
        (seconds) and ``length`` (metres) of the edge the model uses. Handy
        for checking results against networkx.
        """
        g = self._mode(mode)
        out = nx.DiGraph()
        for k, node in enumerate(g.nodes):
            out.add_node(int(self.node_ids[node]), x=float(self.lons[node]), y=float(self.lats[node]))
        tails, heads = np.divmod(g.edge_keys, g.size)
        for t, h, length, time_s in zip(tails, heads, g.edge_length_m, g.edge_time_s):
            out.add_edge(
                int(self.node_ids[g.nodes[t]]),
                int(self.node_ids[g.nodes[h]]),
                travel_time=float(time_s),
                length=float(length),
            )
        return out

    # ------------------------------------------------------------------ #
    # Snapping
    # ------------------------------------------------------------------ #
    def snap(self, points: Sequence[Location], mode: TravelMode) -> list[Snap]:
        """Snap points to the nearest node of the mode's routable component.

        Parameters
        ----------
        points : sequence of solver.model.Location
            Points in any supported datum (converted to WGS-84 first).
        mode : {"drive", "ebike", "walk"}
            Travel mode.

        Returns
        -------
        list of Snap
            One per point, in order.
        """
        g = self._mode(mode)
        if not points:
            return []
        wgs = [to_wgs84(p) for p in points]
        lats = np.array([p.lat for p in wgs], dtype=float)
        lons = np.array([p.lon for p in wgs], dtype=float)
        _, nearest = g.tree.query(self._project(lats, lons))
        snaps = []
        for p, k in zip(wgs, np.atleast_1d(nearest)):
            node = int(g.nodes[int(k)])
            dist = haversine_m(p, Location(lat=float(self.lats[node]), lon=float(self.lons[node])))
            snaps.append(Snap(node=node, distance_m=dist, snapped=dist <= self.snap_max_m))
        return snaps

    # ------------------------------------------------------------------ #
    # Matrices
    # ------------------------------------------------------------------ #
    def matrix(self, points: Sequence[Location], mode: TravelMode) -> TravelMatrix:
        """Travel times and distances between every ordered pair of points.

        Parameters
        ----------
        points : sequence of solver.model.Location
            Points in any supported datum (converted to WGS-84 first).
        mode : {"drive", "ebike", "walk"}
            Travel mode.

        Returns
        -------
        solver.travel.TravelMatrix
            ``durations[i, j]`` whole seconds and ``distances[i, j]`` whole
            metres from point ``i`` to point ``j``: access leg at ``i``, the
            fastest network path between the snapped nodes, access leg at
            ``j``. Identical points give 0. Pairs involving a point farther
            than ``snap_max_m`` from the network use the straight-line model.
            Where no path exists ``reachable`` is False and both duration and
            distance hold :data:`solver.travel.UNREACHABLE_S`.

        Notes
        -----
        The last 16 results are cached by mode and rounded coordinates; each
        call returns fresh arrays.
        """
        g = self._mode(mode)
        wgs = [to_wgs84(p) for p in points]
        key = (mode, tuple((round(p.lat, 7), round(p.lon, 7)) for p in wgs))
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
        if cached is None:
            cached = self._compute_matrix(g, wgs)
            with self._lock:
                self._cache[key] = cached
                self._cache.move_to_end(key)
                while len(self._cache) > _MATRIX_CACHE_SIZE:
                    self._cache.popitem(last=False)
        return TravelMatrix(
            durations=cached.durations.copy(),
            distances=cached.distances.copy(),
            reachable=None if cached.reachable is None else cached.reachable.copy(),
        )

    def _compute_matrix(self, g: _ModeGraph, points: list[Location]) -> TravelMatrix:
        n = len(points)
        durations = np.zeros((n, n), dtype=float)
        distances = np.zeros((n, n), dtype=float)
        reachable = np.ones((n, n), dtype=bool)
        if n == 0:
            return TravelMatrix(
                durations=durations.astype(np.int64), distances=distances.astype(np.int64), reachable=reachable
            )
        snaps = self.snap(points, g.mode)  # type: ignore[arg-type]
        on = np.array([s.snapped for s in snaps], dtype=bool)
        idx = np.flatnonzero(on)
        if idx.size:
            nodes = g.local[np.array([snaps[i].node for i in idx], dtype=np.int64)]
            gap = np.array([snaps[i].distance_m for i in idx], dtype=float)
            times, lengths = self._node_to_node(g, nodes)
            access_s = gap / g.access_mps
            block_t = access_s[:, None] + times + access_s[None, :]
            block_d = gap[:, None] + lengths + gap[None, :]
            ok = np.isfinite(times)
            block_t[~ok] = UNREACHABLE_S
            block_d[~ok] = UNREACHABLE_S
            durations[np.ix_(idx, idx)] = block_t
            distances[np.ix_(idx, idx)] = block_d
            reachable[np.ix_(idx, idx)] = ok
        if not on.all():
            # Straight-line pricing for every pair that involves an unsnapped point.
            lat = np.array([p.lat for p in points])
            lon = np.array([p.lon for p in points])
            off = np.flatnonzero(~on)
            line = StraightLineTravel(speeds_kmh={g.mode: g.fallback_kmh}, detour_factor=self.detour_factor)
            metres = _haversine_block_m(lat[off], lon[off], lat, lon) * line.detour_factor
            seconds = metres / line.speed_mps(g.mode)  # type: ignore[arg-type]
            durations[off, :], durations[:, off] = seconds, seconds.T
            distances[off, :], distances[:, off] = metres, metres.T
            reachable[off, :] = reachable[:, off] = True
        # Identical points cost nothing, whatever their snap.
        lat = np.array([p.lat for p in points])
        lon = np.array([p.lon for p in points])
        same = (lat[:, None] == lat[None, :]) & (lon[:, None] == lon[None, :])
        durations[same] = 0.0
        distances[same] = 0.0
        reachable[same] = True
        return TravelMatrix(
            durations=np.rint(durations).astype(np.int64),
            distances=np.rint(distances).astype(np.int64),
            reachable=reachable,
        )

    def _node_to_node(self, g: _ModeGraph, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fastest-path seconds and their lengths between local ``nodes`` (float, inf if none)."""
        sources, inverse = np.unique(nodes, return_inverse=True)
        times = np.empty((sources.size, nodes.size), dtype=float)
        lengths = np.empty((sources.size, nodes.size), dtype=float)
        for start in range(0, sources.size, _SOURCE_BATCH):
            batch = sources[start : start + _SOURCE_BATCH]
            dist, pred = dijkstra(g.times, directed=True, indices=batch, return_predecessors=True)
            dist = np.atleast_2d(dist)
            pred = np.atleast_2d(pred)
            along = self._tree_lengths(g, pred)
            times[start : start + batch.size] = dist[:, nodes]
            lengths[start : start + batch.size] = along[:, nodes]
        return times[inverse], lengths[inverse]

    @staticmethod
    def _tree_lengths(g: _ModeGraph, pred: np.ndarray) -> np.ndarray:
        """Length from each tree's root to every node along shortest-path trees.

        Parameters
        ----------
        g : _ModeGraph
            The mode graph the trees were computed on.
        pred : numpy.ndarray
            ``(k, n)`` predecessor arrays from ``dijkstra`` (negative for roots
            and unreached nodes).

        Returns
        -------
        numpy.ndarray
            ``(k, n)`` metres; 0 for roots and unreached nodes (their times
            are 0 or inf and tell them apart).

        Notes
        -----
        Pointer doubling: each node holds the length up to an ancestor and a
        pointer to it; every round adds the ancestor's own partial length and
        jumps to the ancestor's ancestor, so ``log2(depth)`` vectorised rounds
        sum whole paths.
        """
        k, n = pred.shape
        self_index = np.broadcast_to(np.arange(n), (k, n))
        has_parent = pred >= 0
        parent = np.where(has_parent, pred, self_index).astype(np.int64)
        acc = np.zeros((k, n), dtype=float)
        if has_parent.any():
            pos = g.edge_index(parent[has_parent], self_index[has_parent])
            acc[has_parent] = g.edge_length_m[pos]
        for _ in range(max(1, int(n).bit_length() + 1)):
            grand = np.take_along_axis(parent, parent, axis=1)
            if np.array_equal(grand, parent):
                break
            acc = acc + np.take_along_axis(acc, parent, axis=1)
            parent = grand
        return acc

    # ------------------------------------------------------------------ #
    # Geometry
    # ------------------------------------------------------------------ #
    def path(self, a: Location, b: Location, mode: TravelMode) -> list[tuple[float, float]]:
        """Street geometry of the fastest path from ``a`` to ``b``.

        Parameters
        ----------
        a, b : solver.model.Location
            End points in any supported datum.
        mode : {"drive", "ebike", "walk"}
            Travel mode.

        Returns
        -------
        list of tuple of float
            ``(lat, lon)`` vertices in WGS-84 starting at ``a`` and ending at
            ``b``: the access legs, then every traversed edge's geometry (its
            OSM shape when present, else its end nodes). When either point is
            too far from the network, or no path exists, just ``[a, b]``.
        """
        g = self._mode(mode)
        wa, wb = to_wgs84(a), to_wgs84(b)
        straight = [(wa.lat, wa.lon), (wb.lat, wb.lon)]
        snap_a, snap_b = self.snap([wa, wb], mode)
        if not (snap_a.snapped and snap_b.snapped):
            return straight
        src, dst = int(g.local[snap_a.node]), int(g.local[snap_b.node])
        _, pred = dijkstra(g.times, directed=True, indices=src, return_predecessors=True)
        chain = [dst]
        while chain[-1] != src:
            parent = int(pred[chain[-1]])
            if parent < 0:
                return straight
            chain.append(parent)
        chain.reverse()
        coords: list[tuple[float, float]] = [(wa.lat, wa.lon)]
        first = int(g.nodes[src])
        coords.append((float(self.lats[first]), float(self.lons[first])))
        for tail, head in zip(chain[:-1], chain[1:]):
            coords.extend(self._edge_coords(g, tail, head))
        coords.append((wb.lat, wb.lon))
        return [c for i, c in enumerate(coords) if i == 0 or c != coords[i - 1]]

    def _edge_coords(self, g: _ModeGraph, tail: int, head: int) -> list[tuple[float, float]]:
        """Vertices of the mode edge ``tail → head`` (local indices), head included, tail excluded."""
        pos = int(g.edge_index(np.array([tail]), np.array([head]))[0])
        data = self._edge_data[int(g.edge_source[pos])]
        u, v = int(g.nodes[tail]), int(g.nodes[head])
        end = (float(self.lats[v]), float(self.lons[v]))
        geometry = data.get("geometry")
        if geometry is None:
            return [end]
        shape = [(float(lat), float(lon)) for lon, lat in geometry.coords]
        start = (float(self.lats[u]), float(self.lons[u]))
        # Orient the shape from tail to head whichever way it was stored.
        if _sq(shape[0], start) + _sq(shape[-1], end) > _sq(shape[-1], start) + _sq(shape[0], end):
            shape.reverse()
        return shape[1:] + [end] if shape[-1] != end else shape[1:]


def _haversine_block_m(lat_a: np.ndarray, lon_a: np.ndarray, lat_b: np.ndarray, lon_b: np.ndarray) -> np.ndarray:
    """Great-circle metres from each point ``a`` (rows) to each point ``b`` (columns)."""
    pa, la = np.radians(lat_a)[:, None], np.radians(lon_a)[:, None]
    pb, lb = np.radians(lat_b)[None, :], np.radians(lon_b)[None, :]
    h = np.sin((pb - pa) / 2) ** 2 + np.cos(pa) * np.cos(pb) * np.sin((lb - la) / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(h)))


def _sq(p: tuple[float, float], q: tuple[float, float]) -> float:
    return (p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2


def load_osm_graph(path: str | Path) -> nx.MultiDiGraph:
    """Read an OSM XML file into a simplified osmnx graph.

    Parameters
    ----------
    path : str or pathlib.Path
        OSM XML file.

    Returns
    -------
    networkx.MultiDiGraph
        ``osmnx.graph_from_xml(path, simplify=True, retain_all=False)``, with
        osmnx's warning about loading OSMnx-written XML silenced (the bundled
        extract is one).

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    """
    import osmnx as ox

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"OSM file not found: {path}")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*generated by OSMnx.*", category=UserWarning)
        return ox.graph_from_xml(path, simplify=True, retain_all=False)


@functools.cache
def load_bundled_graph() -> nx.MultiDiGraph:
    """The osmnx graph of the bundled demo map (read once per process; treat as read-only)."""
    return load_osm_graph(bundled_map_path())


@functools.cache
def load_bundled_network() -> RoadNetwork:
    """The road network of the bundled demo map (built once per process)."""
    return RoadNetwork(load_bundled_graph())
