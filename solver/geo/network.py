"""Road network travel model: OSM streets → points snapped to edges → travel matrices.

:class:`RoadNetwork` takes an osmnx street graph, derives one routable graph
per travel mode and prices travel between arbitrary points:

1. **Mode graphs.** Each mode keeps the edges it may use (see
   :data:`EXCLUDED_HIGHWAYS`) with a travel time in seconds per edge:
   driving at the tagged ``maxspeed`` or the per-highway-class table of
   ``config/defaults.toml``, scaled by the urban traffic factor; e-bikes at
   their configured speed but never above a lower ``maxspeed`` (a 10 km/h
   living street); walkers at a constant speed. Driving and e-biking respect one-way streets;
   walking uses every street in both directions. Parallel edges keep the
   fastest one.
2. **Components.** Driving and e-biking keep only the largest strongly
   connected component, walking the largest (weakly) connected one, so that no
   point snaps onto a cut-off one-way stub at the edge of the extract and
   comes back unreachable.
3. **Snapping to edges.** Every point is projected onto the nearest street
   *segment* of the mode's component (a :class:`shapely.STRtree` over the
   edges' geometry in locally projected metres), not merely the nearest
   node: a visit in the middle of a 400 m block joins the street where it
   stands. The gap from the point to its projection is travelled as an
   *access leg* at the mode's access speed and reported as
   :attr:`Snap.distance_m`. Points farther than ``snap_max_m`` from every
   street are flagged (:attr:`Snap.snapped` is False) and priced with the
   straight-line model for every pair involving them.
4. **Entering the graph mid-edge.** From its projection a point reaches the
   edge's ends along the edge: the far end in the direction of travel and,
   when the street is two-way for the mode, the near end too; the cost is
   the fraction of the edge's travel time and length. Two points on the same
   street piece also get the direct way between them (downstream only on a
   one-way street).
5. **Matrices.** Every snapped point becomes a source and a target node
   attached to its edge's ends; :func:`scipy.sparse.csgraph.dijkstra` runs
   once per distinct point. Its weights pack the time and the length of
   each edge into one exactly representable number (time first), so a single
   run gives both the fastest time and the length of that path (see
   :func:`_pack`; out of range it falls back to summing lengths along the
   shortest-path trees by pointer doubling).
   Results are cached by content — (network, mode, point set) — in memory
   and optionally as ``.npz`` files (:mod:`solver.geo.matrixcache`).

A :class:`RoadNetwork` implements the :class:`~solver.travel.TravelModel`
protocol. It is read-only after construction and safe to share between
threads.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import networkx as nx
import numpy as np
import numpy.typing as npt
import shapely
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra

from solver.config import defaults
from solver.geo.coords import to_wgs84
from solver.geo.loading import load_bundled_graph, load_graph, load_osm_graph
from solver.geo.matrixcache import MatrixCache, matrix_key
from solver.model import TRAVEL_MODES, Location, TravelMode
from solver.travel import (
    DEFAULT_SPEEDS_KMH,
    EARTH_RADIUS_M,
    UNREACHABLE_S,
    StraightLineTravel,
    TravelMatrix,
)

__all__ = [
    "EXCLUDED_HIGHWAYS",
    "RoadNetwork",
    "Snap",
    "load_bundled_graph",
    "load_bundled_network",
    "load_graph",
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

#: Cached matrices per network in memory (least recently used are dropped first).
_MATRIX_CACHE_SIZE = 16

#: Bumped whenever the way matrices are computed changes, so that matrices
#: cached on disk by an older version are not reused.
_ALGORITHM_VERSION = "edge-snap-1"

#: Sources per Dijkstra batch: bounds memory at (batch × nodes) floats.
_SOURCE_BATCH = 256

#: Lower bound on an edge's travel time, seconds. csgraph reads an explicit 0
#: in a sparse matrix as "no edge", so zero-length edges get this instead.
_MIN_EDGE_S = 1e-6

#: Array types (element dtypes as the arrays are built).
_Ints = npt.NDArray[np.int64]
_Floats = npt.NDArray[np.float64]


class _Pieces(TypedDict):
    """The street-piece fields of a :class:`_ModeGraph` (see there)."""

    piece_a: _Ints
    piece_b: _Ints
    piece_fwd: _Ints
    piece_bwd: _Ints
    vert_start: _Ints
    vert_xy: _Floats
    vert_latlon: _Floats
    vert_cum: _Floats
    seg_vertex: _Ints
    seg_piece: _Ints
    seg_tree: shapely.STRtree


class _Snapped(TypedDict):
    """Points projected onto their nearest street piece: the piece, the
    fraction along it, the projection's WGS-84 coordinates and its distance
    from the point (metres)."""

    piece: _Ints
    fraction: _Floats
    lat: _Floats
    lon: _Floats
    gap: _Floats

_MPH_KMH = 1.609344
_KNOTS_KMH = 1.852


@dataclass(frozen=True)
class Snap:
    """Where a point joins the road network of one travel mode.

    Attributes
    ----------
    node : int
        Index, in the network's node table, of the end of the snapped edge
        nearer to the projection (``RoadNetwork.node_ids[node]`` is its OSM id).
    distance_m : float
        Great-circle distance from the point to its projection on the
        nearest street segment, metres.
    snapped : bool
        False when ``distance_m`` exceeds the network's ``snap_max_m``: the
        point is flagged and priced with the straight-line model.
    edge : tuple of (int, int)
        Network node indices ``(a, b)`` of the street piece the point snapped
        to, ``fraction`` measured from ``a``.
    fraction : float
        Position of the projection along the piece's geometry, 0 at ``a`` and
        1 at ``b``.
    lat, lon : float
        The projection, WGS-84.
    two_way : bool
        Whether the mode may travel the piece in both directions (False on a
        one-way street for driving and e-biking).
    """

    node: int
    distance_m: float
    snapped: bool
    edge: tuple[int, int] = (-1, -1)
    fraction: float = 0.0
    lat: float = math.nan
    lon: float = math.nan
    two_way: bool = True

    @property
    def flagged(self) -> bool:
        """True when the point is too far from every street (``not snapped``)."""
        return not self.snapped

    @property
    def projection(self) -> Location:
        """The point on the street where the access leg ends."""
        return Location(lat=self.lat, lon=self.lon, crs="wgs84")


@dataclass(frozen=True)
class _ModeGraph:
    """The routable graph of one travel mode, over its component's nodes.

    ``nodes[k]`` is the network node index of local node ``k``. Edges are
    stored once per ordered pair (the fastest parallel edge) in arrays sorted
    by ``key = tail * n + head``. *Pieces* are the undirected street pieces
    (one per unordered node pair) that points snap to; ``piece_fwd`` is the
    edge ``a → b`` (``a < b``, local indices) and ``piece_bwd`` the edge
    ``b → a``, -1 where the mode may not travel that way. Each piece's
    geometry is a polyline from ``a`` to ``b``: vertices
    ``vert_start[p]:vert_start[p + 1]`` of ``vert_xy`` (projected metres) and
    ``vert_latlon``, with cumulative lengths ``vert_cum`` from ``a``.
    """

    mode: TravelMode
    nodes: _Ints  # (n,) int64, network node indices
    local: _Ints  # (N,) int64, network index -> local index or -1
    times: csr_matrix  # (n, n) seconds
    edge_keys: _Ints  # (m,) int64 sorted tail * n + head
    edge_length_m: _Floats  # (m,) float64
    edge_time_s: _Floats  # (m,) float64
    edge_source: _Ints  # (m,) int64, index into the network's raw edge list
    piece_a: _Ints  # (p,) int64 local
    piece_b: _Ints  # (p,) int64 local
    piece_fwd: _Ints  # (p,) int64 edge position or -1
    piece_bwd: _Ints  # (p,) int64 edge position or -1
    vert_start: _Ints  # (p + 1,) int64
    vert_xy: _Floats  # (V, 2) float64 metres
    vert_latlon: _Floats  # (V, 2) float64 degrees
    vert_cum: _Floats  # (V,) float64 metres from the piece's start
    seg_vertex: _Ints  # (s,) int64: segment k runs from vertex seg_vertex[k] to seg_vertex[k] + 1
    seg_piece: _Ints  # (s,) int64
    seg_tree: shapely.STRtree
    access_mps: float
    fallback_kmh: float

    @property
    def size(self) -> int:
        return int(self.nodes.shape[0])

    def edge_index(self, tails: _Ints, heads: _Ints) -> _Ints:
        """Positions of edges ``tails[i] → heads[i]`` (local indices) in the edge arrays."""
        keys = tails.astype(np.int64) * self.size + heads.astype(np.int64)
        return np.searchsorted(self.edge_keys, keys)

    def piece_length(self, piece: _Ints) -> _Floats:
        """Geometric length of pieces, metres."""
        lengths: _Floats = self.vert_cum[self.vert_start[piece + 1] - 1]
        return lengths


@dataclass(frozen=True)
class _Attachments:
    """How snapped points join a mode graph: up to two exits and two entries each.

    For point ``i``: ``exit_node[i, k]`` (local index, -1 if none) is reached
    from the point's projection after ``exit_time[i, k]`` seconds and
    ``exit_len[i, k]`` metres along its edge; ``entry_node[i, k]`` leads to
    the projection in ``entry_time[i, k]`` / ``entry_len[i, k]``.
    """

    piece: _Ints  # (k,)
    fraction: _Floats  # (k,)
    exit_node: _Ints  # (k, 2)
    exit_time: _Floats
    exit_len: _Floats
    entry_node: _Ints  # (k, 2)
    entry_time: _Floats
    entry_len: _Floats


#: Packed Dijkstra weights (see :func:`_pack`): time quantum, length quantum
#: and the bits reserved for the length.
_TIME_UNITS_PER_S = 1024.0
_LENGTH_UNITS_PER_M = 64.0
_LENGTH_BITS = 26
_TIME_BITS = 53 - _LENGTH_BITS


def _pack(seconds: _Floats, metres: _Floats) -> _Floats:
    """Pack times and lengths into one float64 weight ordered by (time, length).

    Times are counted in 1/1024 s and lengths in 1/64 m, the time in the bits
    above :data:`_LENGTH_BITS`. The result is an integer below 2**53, exact in
    float64, so sums along a path stay exact and decode with :func:`_unpack`
    while the path's length stays below 2**26 / 64 m (1,048 km) and its time
    below 2**27 / 1024 s (36 h). Never 0 (csgraph reads 0 as "no edge").
    """
    t = np.rint(np.asarray(seconds, dtype=float) * _TIME_UNITS_PER_S)
    length = np.rint(np.asarray(metres, dtype=float) * _LENGTH_UNITS_PER_M)
    return np.maximum(t * 2.0**_LENGTH_BITS + length, 1.0)


def _unpack(packed: _Floats) -> tuple[_Floats, _Floats]:
    """Seconds and metres of packed path weights (inf stays inf)."""
    finite = np.isfinite(packed)
    safe = np.where(finite, packed, 0.0)
    t = np.floor(safe / 2.0**_LENGTH_BITS)
    length = safe - t * 2.0**_LENGTH_BITS
    seconds = np.where(finite, t / _TIME_UNITS_PER_S, np.inf)
    metres = np.where(finite, length / _LENGTH_UNITS_PER_M, np.inf)
    return seconds, metres


@dataclass(frozen=True)
class _Augmented:
    """A mode graph with per-point source and target nodes, edges sorted by key."""

    keys: _Ints  # (e,) int64 tail * size + head, sorted
    tail: _Ints
    head: _Ints
    seconds: _Floats
    length: _Floats
    size: int

    def seconds_graph(self) -> csr_matrix:
        """Sparse matrix of edge travel times."""
        return csr_matrix((self.seconds, (self.tail, self.head)), shape=(self.size, self.size))

    def packed_graph(self) -> csr_matrix:
        """Sparse matrix of packed (time, length) weights."""
        return csr_matrix((_pack(self.seconds, self.length), (self.tail, self.head)), shape=(self.size, self.size))

    def packed_limit_s(self) -> float:
        """Longest path time, seconds, for which packed weights are certainly exact.

        A path's length is at most its time times the fastest edge speed, so
        below this time the length field cannot overflow into the time field
        (with a factor two to spare for rounding).
        """
        moving = self.seconds > 0
        top_mps = float((self.length[moving] / self.seconds[moving]).max()) if moving.any() else 1.0
        length_cap_m = 2.0**_LENGTH_BITS / _LENGTH_UNITS_PER_M
        time_cap_s = 2.0**_TIME_BITS / _TIME_UNITS_PER_S
        return 0.5 * min(time_cap_s, length_cap_m / max(top_mps, 1e-9))


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
        Points farther than this from the mode's streets are flagged and
        priced with the straight-line model. Default: ``[map] snap_max_m`` of
        the configuration.
    access_speeds_kmh : Mapping, optional
        Speed of the access leg between a point and its projection on the
        street, per mode. Default: walking speed for ``walk``, the e-bike
        speed for ``ebike`` and the ``service`` road speed (15 km/h) for
        ``drive``.
    matrix_cache_dir : str or pathlib.Path, optional
        Folder where computed matrices are also stored as ``.npz`` files and
        found again by any network with the same content. Default: ``[map]
        matrix_cache_dir`` of the configuration (empty: memory only).
    matrix_cache_size : int, optional
        Matrices kept in memory.

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
        matrix_cache_dir: str | Path | None = None,
        matrix_cache_size: int = _MATRIX_CACHE_SIZE,
    ) -> None:
        config = defaults()
        map_settings = config.get("map", {})
        self.speeds: dict[str, Any] = {**config.get("speeds_kmh", {}), **(speeds or {})}
        self.snap_max_m = float(map_settings.get("snap_max_m", 500.0) if snap_max_m is None else snap_max_m)
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
        if matrix_cache_dir is None:
            matrix_cache_dir = map_settings.get("matrix_cache_dir") or None
        self.matrix_cache = MatrixCache(matrix_cache_size, matrix_cache_dir)
        self.network_id = self._fingerprint()

    # ------------------------------------------------------------------ #
    # Construction
    # ------------------------------------------------------------------ #
    @classmethod
    def from_file(cls, path: str | Path, **options: Any) -> RoadNetwork:
        """Load a street network from an OSM extract or a graphml file.

        Parameters
        ----------
        path : str or pathlib.Path
            OSM XML (``.osm``, optionally compressed), PBF (with pyosmium) or
            osmnx graphml; see :func:`solver.geo.loading.load_graph`.
        **options
            Keyword arguments of :class:`RoadNetwork`.

        Returns
        -------
        RoadNetwork
        """
        return cls(load_graph(path), **options)

    @classmethod
    def from_osm(cls, path: str | Path, **options: Any) -> RoadNetwork:
        """Load an OSM extract into a road network (same as :meth:`from_file`).

        Parameters
        ----------
        path : str or pathlib.Path
            OSM XML or PBF file.
        **options
            Keyword arguments of :class:`RoadNetwork`.

        Returns
        -------
        RoadNetwork
        """
        return cls(load_osm_graph(path), **options)

    def _project(self, lats: _Floats, lons: _Floats) -> _Floats:
        """Equirectangular projection around the graph centre, metres, shape (k, 2)."""
        lat0, lon0 = self._centre
        x = np.radians(np.asarray(lons, dtype=float) - lon0) * EARTH_RADIUS_M * math.cos(math.radians(lat0))
        y = np.radians(np.asarray(lats, dtype=float) - lat0) * EARTH_RADIUS_M
        return np.column_stack([x, y])

    def _fingerprint(self) -> str:
        """Hash of everything a matrix depends on: mode graphs, geometry, settings."""
        digest = hashlib.sha256(_ALGORITHM_VERSION.encode())
        settings = {
            "snap_max_m": self.snap_max_m,
            "detour_factor": self.detour_factor,
            "modes": {m: [g.access_mps, g.fallback_kmh] for m, g in self._modes.items()},
        }
        digest.update(json.dumps(settings, sort_keys=True).encode())
        digest.update(self.lats.tobytes() + self.lons.tobytes())
        for mode in sorted(self._modes):
            g = self._modes[mode]
            for array in (g.nodes, g.edge_keys, g.edge_time_s, g.edge_length_m, g.vert_start, g.vert_latlon):
                digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()

    def _edge_speed_kmh(self, mode: str, data: Mapping[str, Any]) -> float | None:
        """Speed of one edge for ``mode``, km/h; None when the mode may not use it."""
        highway = _highway_class(data.get("highway"))
        if highway is None or highway in EXCLUDED_HIGHWAYS[mode]:
            return None
        if mode != "walk" and _first_text(data.get("access")) in _CLOSED_ACCESS:
            return None
        if mode != "drive" and _is_tunnel(data.get("tunnel")):
            return None
        if mode == "walk":
            return float(self.speeds.get(mode, DEFAULT_SPEEDS_KMH[mode]))
        speed = parse_maxspeed_kmh(data.get("maxspeed"))
        if mode == "ebike":  # the e-bike's own speed, but never above a lower limit (living streets)
            own = float(self.speeds.get(mode, DEFAULT_SPEEDS_KMH[mode]))
            return own if speed is None else min(own, speed)
        if speed is None:
            table = self.speeds.get("drive_by_highway", {})
            speed = float(table.get(highway, table.get(_base_class(highway), _UNKNOWN_CLASS_DRIVE_KMH)))
        return speed * float(self.speeds.get("drive_traffic_factor", 1.0))

    def _build_mode(self, mode: TravelMode, access_mps: float) -> _ModeGraph:
        """Derive the routable graph of ``mode`` (edge times, component, snapping index)."""
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
        edge_time, edge_length, edge_source = time_s[pick], length[pick], source[pick]
        times = csr_matrix((edge_time, (lt, lh)), shape=(n, n))

        pieces = self._build_pieces(n, nodes, lt, lh, edge_source)
        return _ModeGraph(
            mode=mode,
            nodes=nodes,
            local=local,
            times=times,
            edge_keys=keys,
            edge_length_m=edge_length,
            edge_time_s=edge_time,
            edge_source=edge_source,
            **pieces,
            access_mps=access_mps,
            fallback_kmh=float(self.speeds.get(mode, DEFAULT_SPEEDS_KMH[mode])),
        )

    def _build_pieces(
        self, n: int, nodes: _Ints, lt: _Ints, lh: _Ints, edge_source: _Ints
    ) -> _Pieces:
        """Street pieces (unordered node pairs), their polylines and the segment index."""
        position = np.arange(lt.size, dtype=np.int64)
        a, b = np.minimum(lt, lh), np.maximum(lt, lh)
        piece_keys, piece_of = np.unique(a * n + b, return_inverse=True)
        p = piece_keys.size
        piece_a, piece_b = np.divmod(piece_keys, n)
        fwd = np.full(p, -1, dtype=np.int64)
        bwd = np.full(p, -1, dtype=np.int64)
        forward = lt < lh
        fwd[piece_of[forward]] = position[forward]
        bwd[piece_of[~forward]] = position[~forward]

        # Geometry: the forward edge's when it exists, else the backward edge's.
        shape_edge = np.where(fwd >= 0, fwd, bwd)
        shapes: dict[int, _Floats] = {}
        for q in range(p):
            geometry = self._edge_data[int(edge_source[shape_edge[q]])].get("geometry")
            if geometry is None:
                continue
            coords = np.asarray(geometry.coords, dtype=float)[:, ::-1]  # (lat, lon)
            if len(coords) < 2:
                continue
            na, nb = nodes[piece_a[q]], nodes[piece_b[q]]
            start = np.array([self.lats[na], self.lons[na]])
            end = np.array([self.lats[nb], self.lons[nb]])
            if ((coords[0] - start) ** 2).sum() + ((coords[-1] - end) ** 2).sum() > (
                (coords[-1] - start) ** 2
            ).sum() + ((coords[0] - end) ** 2).sum():
                coords = coords[::-1]
            coords[0], coords[-1] = start, end
            shapes[q] = coords
        counts = np.full(p, 2, dtype=np.int64)
        for q, coords in shapes.items():
            counts[q] = len(coords)
        vert_start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        latlon = np.empty((int(vert_start[-1]), 2), dtype=float)
        na, nb = nodes[piece_a], nodes[piece_b]
        latlon[vert_start[:-1]] = np.column_stack([self.lats[na], self.lons[na]])
        latlon[vert_start[1:] - 1] = np.column_stack([self.lats[nb], self.lons[nb]])
        for q, coords in shapes.items():
            latlon[vert_start[q] : vert_start[q + 1]] = coords
        xy = self._project(latlon[:, 0], latlon[:, 1])

        last = np.zeros(len(xy), dtype=bool)
        last[vert_start[1:] - 1] = True
        seg_vertex = np.flatnonzero(~last)
        seg_len = np.hypot(*(xy[seg_vertex + 1] - xy[seg_vertex]).T)
        step = np.zeros(len(xy))
        step[seg_vertex + 1] = seg_len
        cum = np.cumsum(step)
        vertex_piece = np.repeat(np.arange(p), counts)
        cum -= cum[vert_start[vertex_piece]]
        seg_piece = vertex_piece[seg_vertex]
        # Zero-length segments cannot be nearest to anything a longer one is not.
        seg_vertex, seg_piece = seg_vertex[seg_len > 0], seg_piece[seg_len > 0]
        lines = shapely.linestrings(np.stack([xy[seg_vertex], xy[seg_vertex + 1]], axis=1))
        return {
            "piece_a": piece_a,
            "piece_b": piece_b,
            "piece_fwd": fwd,
            "piece_bwd": bwd,
            "vert_start": vert_start,
            "vert_xy": xy,
            "vert_latlon": latlon,
            "vert_cum": cum,
            "seg_vertex": seg_vertex,
            "seg_piece": seg_piece,
            "seg_tree": shapely.STRtree(lines),
        }

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

    def edge_count(self, mode: TravelMode) -> int:
        """Number of directed edges in the routable component of ``mode``."""
        return int(self._mode(mode).edge_keys.size)

    def access_speed_kmh(self, mode: TravelMode) -> float:
        """Speed of the access leg between a point and its projection for ``mode``, km/h."""
        return self._mode(mode).access_mps * 3.6

    def fallback_speed_kmh(self, mode: TravelMode) -> float:
        """Straight-line speed for points too far from the network, km/h."""
        return self._mode(mode).fallback_kmh

    def node_location(self, node: int) -> Location:
        """The WGS-84 point of network node ``node`` (an index, as in :class:`Snap`)."""
        return Location(lat=float(self.lats[node]), lon=float(self.lons[node]), crs="wgs84")

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
        for _k, node in enumerate(g.nodes):
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
    def _snap_arrays(self, g: _ModeGraph, lats: _Floats, lons: _Floats) -> _Snapped:
        """Project WGS-84 points onto the nearest street segment of ``g``."""
        xy = self._project(lats, lons)
        found = g.seg_tree.query_nearest(shapely.points(xy), all_matches=False)
        segment = np.empty(len(xy), dtype=np.int64)
        segment[found[0]] = found[1]
        v0 = g.seg_vertex[segment]
        piece = g.seg_piece[segment]
        start, end = g.vert_xy[v0], g.vert_xy[v0 + 1]
        span = end - start
        span2 = np.maximum((span * span).sum(axis=1), 1e-12)
        t = np.clip(((xy - start) * span).sum(axis=1) / span2, 0.0, 1.0)
        along = g.vert_cum[v0] + t * np.sqrt(span2)
        total = g.piece_length(piece)
        fraction = np.where(total > 0, np.clip(along / np.where(total > 0, total, 1.0), 0.0, 1.0), 0.0)
        proj = g.vert_latlon[v0] + t[:, None] * (g.vert_latlon[v0 + 1] - g.vert_latlon[v0])
        gap = _haversine_pairs_m(lats, lons, proj[:, 0], proj[:, 1])
        return {"piece": piece, "fraction": fraction, "lat": proj[:, 0], "lon": proj[:, 1], "gap": gap}

    def snap(self, points: Sequence[Location], mode: TravelMode) -> list[Snap]:
        """Snap points to the nearest street segment of the mode's routable component.

        Parameters
        ----------
        points : sequence of solver.model.Location
            Points in any supported datum (converted to WGS-84 first).
        mode : {"drive", "ebike", "walk"}
            Travel mode.

        Returns
        -------
        list of Snap
            One per point, in order: the projection, its distance, the edge
            and the position along it, and whether the point is within
            ``snap_max_m`` of a street.
        """
        g = self._mode(mode)
        if not points:
            return []
        wgs = [to_wgs84(p) for p in points]
        lats = np.array([p.lat for p in wgs], dtype=float)
        lons = np.array([p.lon for p in wgs], dtype=float)
        s = self._snap_arrays(g, lats, lons)
        snaps = []
        for k in range(len(wgs)):
            q = int(s["piece"][k])
            a, b = int(g.nodes[g.piece_a[q]]), int(g.nodes[g.piece_b[q]])
            f = float(s["fraction"][k])
            gap = float(s["gap"][k])
            snaps.append(
                Snap(
                    node=a if f <= 0.5 else b,
                    distance_m=gap,
                    snapped=gap <= self.snap_max_m,
                    edge=(a, b),
                    fraction=f,
                    lat=float(s["lat"][k]),
                    lon=float(s["lon"][k]),
                    two_way=bool(g.piece_fwd[q] >= 0 and g.piece_bwd[q] >= 0),
                )
            )
        return snaps

    @staticmethod
    def _attach(g: _ModeGraph, piece: _Ints, fraction: _Floats) -> _Attachments:
        """Exits from and entries to each projection along its piece's edges."""
        fwd, bwd = g.piece_fwd[piece], g.piece_bwd[piece]
        has_f, has_b = fwd >= 0, bwd >= 0
        tf = np.where(has_f, g.edge_time_s[fwd], np.nan)
        lf = np.where(has_f, g.edge_length_m[fwd], np.nan)
        tb = np.where(has_b, g.edge_time_s[bwd], np.nan)
        lb = np.where(has_b, g.edge_length_m[bwd], np.nan)
        a, b, f = g.piece_a[piece], g.piece_b[piece], fraction
        none = np.int64(-1)
        return _Attachments(
            piece=piece,
            fraction=f,
            exit_node=np.column_stack([np.where(has_f, b, none), np.where(has_b, a, none)]),
            exit_time=np.column_stack([(1 - f) * tf, f * tb]),
            exit_len=np.column_stack([(1 - f) * lf, f * lb]),
            entry_node=np.column_stack([np.where(has_f, a, none), np.where(has_b, b, none)]),
            entry_time=np.column_stack([f * tf, (1 - f) * tb]),
            entry_len=np.column_stack([f * lf, (1 - f) * lb]),
        )

    @staticmethod
    def _same_piece_links(g: _ModeGraph, att: _Attachments) -> tuple[_Ints, _Ints, _Floats, _Floats]:
        """Direct ways between points on the same piece: (from, to, seconds, metres)."""
        order = np.argsort(att.piece, kind="stable")
        sorted_piece = att.piece[order]
        bounds = np.flatnonzero(np.diff(sorted_piece)) + 1
        groups = [grp for grp in np.split(order, bounds) if grp.size > 1]
        rows, cols, secs, lens = [], [], [], []
        for grp in groups:
            q = int(att.piece[grp[0]])
            i, j = (x.ravel() for x in np.meshgrid(grp, grp, indexing="ij"))
            off = i != j
            i, j = i[off], j[off]
            fi, fj = att.fraction[i], att.fraction[j]
            best_t = np.full(i.size, np.inf)
            best_l = np.full(i.size, np.inf)
            for edge, ahead in ((g.piece_fwd[q], fj >= fi), (g.piece_bwd[q], fi >= fj)):
                if edge < 0:
                    continue
                t = np.abs(fj - fi) * g.edge_time_s[edge]
                length = np.abs(fj - fi) * g.edge_length_m[edge]
                better = ahead & (t < best_t)
                best_t[better], best_l[better] = t[better], length[better]
            ok = np.isfinite(best_t)
            rows.append(i[ok])
            cols.append(j[ok])
            secs.append(best_t[ok])
            lens.append(best_l[ok])
        if not rows:
            empty_i, empty_f = np.empty(0, dtype=np.int64), np.empty(0)
            return empty_i, empty_i, empty_f, empty_f
        return np.concatenate(rows), np.concatenate(cols), np.concatenate(secs), np.concatenate(lens)

    def _augmented(self, g: _ModeGraph, att: _Attachments) -> _Augmented:
        """The mode graph plus a source and a target node per point.

        The source of point ``i`` is node ``n + i``, its target ``n + k + i``
        (``n`` nodes in the mode graph, ``k`` points).
        """
        n, k = g.size, att.piece.size
        size = n + 2 * k
        base_tail, base_head = np.divmod(g.edge_keys, n)
        point = np.arange(k, dtype=np.int64)
        rows = [base_tail]
        cols = [base_head]
        secs = [g.edge_time_s]
        lens = [g.edge_length_m]
        for c in range(2):
            ok = att.exit_node[:, c] >= 0
            rows.append(n + point[ok])
            cols.append(att.exit_node[ok, c])
            secs.append(att.exit_time[ok, c])
            lens.append(att.exit_len[ok, c])
            ok = att.entry_node[:, c] >= 0
            rows.append(att.entry_node[ok, c])
            cols.append(n + k + point[ok])
            secs.append(att.entry_time[ok, c])
            lens.append(att.entry_len[ok, c])
        si, sj, st, sl = self._same_piece_links(g, att)
        rows.append(n + si)
        cols.append(n + k + sj)
        secs.append(st)
        lens.append(sl)
        row, col = np.concatenate(rows), np.concatenate(cols)
        sec = np.maximum(np.concatenate(secs), _MIN_EDGE_S)
        length = np.concatenate(lens)
        keys = row * size + col
        order = np.argsort(keys, kind="stable")
        return _Augmented(keys[order], row[order], col[order], sec[order], length[order], size)

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
            metres from point ``i`` to point ``j``: the access leg to ``i``'s
            projection on its street, along the street to the network, the
            fastest network path, along ``j``'s street to its projection, and
            the access leg to ``j``. Identical points give 0. Pairs involving
            a point farther than ``snap_max_m`` from every street use the
            straight-line model. Where no path exists ``reachable`` is False
            and both duration and distance hold
            :data:`solver.travel.UNREACHABLE_S`.

        Notes
        -----
        Results are cached by content (network, mode, points); each call
        returns fresh arrays.
        """
        g = self._mode(mode)
        wgs = [to_wgs84(p) for p in points]
        lats = np.array([p.lat for p in wgs], dtype=float)
        lons = np.array([p.lon for p in wgs], dtype=float)
        key = matrix_key(self.network_id, mode, lats, lons)
        cached = self.matrix_cache.get(key)
        if cached is not None:
            return cached
        result = self._compute_matrix(g, lats, lons)
        self.matrix_cache.put(key, result)
        return result

    def _compute_matrix(self, g: _ModeGraph, lats: _Floats, lons: _Floats) -> TravelMatrix:
        n_points = lats.size
        if n_points == 0:
            empty = np.zeros((0, 0), dtype=np.int64)
            return TravelMatrix(durations=empty, distances=empty.copy(), reachable=np.ones((0, 0), dtype=bool))
        # Identical points share one row and column.
        unique, inverse = np.unique(np.column_stack([lats, lons]), axis=0, return_inverse=True)
        inverse = inverse.ravel()
        lat, lon = unique[:, 0], unique[:, 1]
        n = lat.size
        durations = np.zeros((n, n), dtype=float)
        distances = np.zeros((n, n), dtype=float)
        reachable = np.ones((n, n), dtype=bool)
        s = self._snap_arrays(g, lat, lon)
        on = s["gap"] <= self.snap_max_m
        idx = np.flatnonzero(on)
        if idx.size:
            att = self._attach(g, s["piece"][idx], s["fraction"][idx])
            times, lengths = self._point_to_point(g, att)
            gap = s["gap"][idx]
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
            off = np.flatnonzero(~on)
            line = StraightLineTravel(speeds_kmh={g.mode: g.fallback_kmh}, detour_factor=self.detour_factor)
            metres = _haversine_block_m(lat[off], lon[off], lat, lon) * line.detour_factor
            seconds = metres / line.speed_mps(g.mode)
            durations[off, :], durations[:, off] = seconds, seconds.T
            distances[off, :], distances[:, off] = metres, metres.T
            reachable[off, :] = reachable[:, off] = True
        np.fill_diagonal(durations, 0.0)
        np.fill_diagonal(distances, 0.0)
        np.fill_diagonal(reachable, True)
        full = np.ix_(inverse, inverse)
        return TravelMatrix(
            durations=np.rint(durations[full]).astype(np.int64),
            distances=np.rint(distances[full]).astype(np.int64),
            reachable=reachable[full],
        )

    def _point_to_point(self, g: _ModeGraph, att: _Attachments) -> tuple[_Floats, _Floats]:
        """Fastest seconds between projections along the streets, and their metres (inf if none).

        Each Dijkstra runs on *packed* weights (:func:`_pack`): whole
        1/1024 s in the high bits and 1/64 m in the low bits of an exactly
        representable float, so one run yields the fastest time and the
        length of the shortest of the fastest paths, without predecessor
        arrays. When a result could exceed the packing's range (paths of more
        than about a thousand kilometres), that batch is recomputed on
        seconds and the lengths summed along the shortest-path trees.
        """
        k = att.piece.size
        aug = self._augmented(g, att)
        packed_graph = aug.packed_graph()
        limit_s = aug.packed_limit_s()
        sources = g.size + np.arange(k)
        targets = g.size + k + np.arange(k)
        times = np.empty((k, k), dtype=float)
        lengths = np.empty((k, k), dtype=float)
        seconds_graph = None
        for start in range(0, k, _SOURCE_BATCH):
            batch = sources[start : start + _SOURCE_BATCH]
            rows = slice(start, start + batch.size)
            packed = np.atleast_2d(dijkstra(packed_graph, directed=True, indices=batch))[:, targets]
            t, length = _unpack(packed)
            if not (t[np.isfinite(t)] <= limit_s).all():
                seconds_graph = aug.seconds_graph() if seconds_graph is None else seconds_graph
                dist, pred = dijkstra(seconds_graph, directed=True, indices=batch, return_predecessors=True)
                t = np.atleast_2d(dist)[:, targets]
                length = _tree_lengths(aug.keys, aug.length, aug.size, np.atleast_2d(pred), targets)
            times[rows], lengths[rows] = t, length
        return times, lengths

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
            ``b``: the access leg to ``a``'s projection, the rest of its street
            piece, every traversed edge's geometry (its OSM shape when present,
            else its end nodes), the start of ``b``'s street piece up to its
            projection, and the access leg to ``b``. When either point is too
            far from the network, or no path exists, just ``[a, b]``.
        """
        g = self._mode(mode)
        wa, wb = to_wgs84(a), to_wgs84(b)
        straight = [(wa.lat, wa.lon), (wb.lat, wb.lon)]
        if (wa.lat, wa.lon) == (wb.lat, wb.lon):
            return straight
        s = self._snap_arrays(g, np.array([wa.lat, wb.lat]), np.array([wa.lon, wb.lon]))
        if not (s["gap"] <= self.snap_max_m).all():
            return straight
        att = self._attach(g, s["piece"], s["fraction"])
        times_graph = self._augmented(g, att).seconds_graph()
        src, dst = g.size, g.size + 3
        dist, pred = dijkstra(times_graph, directed=True, indices=src, return_predecessors=True)
        if not np.isfinite(dist[dst]):
            return straight
        chain = [dst]
        while chain[-1] != src:
            chain.append(int(pred[chain[-1]]))
        chain.reverse()
        inner = chain[1:-1]  # mode-graph nodes (local indices)
        fa, fb = float(s["fraction"][0]), float(s["fraction"][1])
        pa, pb = int(s["piece"][0]), int(s["piece"][1])
        coords: list[tuple[float, float]] = [(wa.lat, wa.lon), (float(s["lat"][0]), float(s["lon"][0]))]
        if not inner:  # along one street piece
            coords.extend(self._piece_between(g, pa, fa, fb))
        else:
            exit_at = 1.0 if inner[0] == g.piece_b[pa] else 0.0
            coords.extend(self._piece_between(g, pa, fa, exit_at))
            for tail, head in itertools.pairwise(inner):
                coords.extend(self._edge_coords(g, tail, head))
            entry_at = 1.0 if inner[-1] == g.piece_b[pb] else 0.0
            coords.extend(self._piece_between(g, pb, entry_at, fb))
        coords.append((float(s["lat"][1]), float(s["lon"][1])))
        coords.append((wb.lat, wb.lon))
        return [c for i, c in enumerate(coords) if i == 0 or c != coords[i - 1]]

    @staticmethod
    def _piece_between(g: _ModeGraph, piece: int, f_from: float, f_to: float) -> list[tuple[float, float]]:
        """Vertices of a piece's polyline from fraction ``f_from`` to ``f_to``, both ends included."""
        lo, hi = int(g.vert_start[piece]), int(g.vert_start[piece + 1])
        cum = g.vert_cum[lo:hi]
        latlon = g.vert_latlon[lo:hi]
        total = float(cum[-1])

        def at(fraction: float) -> tuple[float, float]:
            d = fraction * total
            k = int(np.clip(np.searchsorted(cum, d, side="right") - 1, 0, len(cum) - 2))
            span = cum[k + 1] - cum[k]
            t = 0.0 if span <= 0 else (d - cum[k]) / span
            lat, lon = latlon[k] + t * (latlon[k + 1] - latlon[k])
            return float(lat), float(lon)

        d_from, d_to = f_from * total, f_to * total
        if d_from <= d_to:
            middle = [k for k in range(len(cum)) if d_from < cum[k] < d_to]
        else:
            middle = [k for k in range(len(cum) - 1, -1, -1) if d_to < cum[k] < d_from]
        inner = [(float(latlon[k, 0]), float(latlon[k, 1])) for k in middle]
        return [at(f_from), *inner, at(f_to)]

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
        return [*shape[1:], end] if shape[-1] != end else shape[1:]


def _tree_lengths(
    keys: _Ints, edge_length: _Floats, size: int, pred: npt.NDArray[np.int32], targets: _Ints
) -> _Floats:
    """Length from each tree's root to the ``targets`` along shortest-path trees.

    Parameters
    ----------
    keys : numpy.ndarray
        Sorted edge keys ``tail * size + head`` of the graph the trees were
        computed on.
    edge_length : numpy.ndarray
        Metres of each edge, in key order.
    size : int
        Number of nodes of that graph.
    pred : numpy.ndarray
        ``(k, size)`` predecessor arrays from ``dijkstra`` (negative for roots
        and unreached nodes).
    targets : numpy.ndarray
        Node indices wanted.

    Returns
    -------
    numpy.ndarray
        ``(k, len(targets))`` metres; 0 for roots and unreached nodes (their
        times are 0 or inf and tell them apart).

    Notes
    -----
    Pointer doubling: each node holds the length up to an ancestor and a
    pointer to it; every round adds the ancestor's own partial length and
    jumps to the ancestor's ancestor, so ``log2(depth)`` vectorised rounds
    sum whole paths.
    """
    k, n = pred.shape
    self_index = np.broadcast_to(np.arange(n, dtype=np.int32), (k, n))
    has_parent = pred >= 0
    parent = np.where(has_parent, pred, self_index).astype(np.int32)
    acc = np.zeros((k, n), dtype=float)
    if has_parent.any():
        pos = np.searchsorted(keys, parent[has_parent].astype(np.int64) * size + self_index[has_parent])
        acc[has_parent] = edge_length[pos]
    for _ in range(max(1, int(n).bit_length() + 1)):
        grand = np.take_along_axis(parent, parent, axis=1)
        if np.array_equal(grand, parent):
            break
        acc += np.take_along_axis(acc, parent, axis=1)
        parent = grand
    return acc[:, targets]


def _haversine_pairs_m(lat_a: _Floats, lon_a: _Floats, lat_b: _Floats, lon_b: _Floats) -> _Floats:
    """Great-circle metres between ``a[i]`` and ``b[i]``."""
    pa, la, pb, lb = (np.radians(np.asarray(v, dtype=float)) for v in (lat_a, lon_a, lat_b, lon_b))
    h = np.sin((pb - pa) / 2) ** 2 + np.cos(pa) * np.cos(pb) * np.sin((lb - la) / 2) ** 2
    metres: _Floats = 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(h)))
    return metres


def _haversine_block_m(lat_a: _Floats, lon_a: _Floats, lat_b: _Floats, lon_b: _Floats) -> _Floats:
    """Great-circle metres from each point ``a`` (rows) to each point ``b`` (columns)."""
    pa, la = np.radians(lat_a)[:, None], np.radians(lon_a)[:, None]
    pb, lb = np.radians(lat_b)[None, :], np.radians(lon_b)[None, :]
    h = np.sin((pb - pa) / 2) ** 2 + np.cos(pa) * np.cos(pb) * np.sin((lb - la) / 2) ** 2
    metres: _Floats = 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(h)))
    return metres


def _sq(p: tuple[float, float], q: tuple[float, float]) -> float:
    return (p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2


@functools.cache
def load_bundled_network() -> RoadNetwork:
    """The road network of the configured map (built once per process)."""
    return RoadNetwork(load_bundled_graph())
