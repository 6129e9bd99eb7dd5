"""The :class:`RoadNetwork`: a road-network travel model over three mode graphs.

It ties the other modules of :mod:`solver.geo.network` together: the street
table and mode graphs (:mod:`~solver.geo.network.graph`), snapping
(:mod:`~solver.geo.network.snapping`), matrices
(:mod:`~solver.geo.network.matrix`), geometry
(:mod:`~solver.geo.network.geometry`); the store
(:mod:`~solver.geo.network.store`) saves and loads it as arrays.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from solver.config import defaults
from solver.geo.coords import to_wgs84
from solver.geo.loading import load_graph, load_osm_graph
from solver.geo.matrixcache import MatrixCache, matrix_key
from solver.geo.network.geometry import StreetEdge, fastest_path, street_edges
from solver.geo.network.graph import EdgeTable, Floats, ModeGraph, Projection, build_mode
from solver.geo.network.matrix import point_to_point, resolve_engine
from solver.geo.network.snapping import Snap, attach, haversine_block_m, snap_arrays
from solver.geo.network.speeds import access_speeds_kmh
from solver.model import TRAVEL_MODES, Location, TravelMode
from solver.travel import DEFAULT_SPEEDS_KMH, UNREACHABLE_S, StraightLineTravel, TravelMatrix

__all__ = ["RoadNetwork"]

#: Cached matrices per network in memory (least recently used are dropped first).
_MATRIX_CACHE_SIZE = 16

#: Bumped whenever the way matrices are computed changes, so that matrices
#: cached on disk by an older version are not reused.
_ALGORITHM_VERSION = "edge-snap-1"


class RoadNetwork:
    """Travel times and distances on an OSM street network, per travel mode.

    Parameters
    ----------
    graph : networkx.MultiDiGraph
        An osmnx graph in WGS-84 (node attributes ``x`` = lon, ``y`` = lat;
        edge attributes ``length``, ``highway``, optional ``maxspeed``,
        ``name``, ``geometry``, ``access``, ``tunnel``). Edges reflect
        one-way streets as osmnx builds them. The network keeps no reference
        to it.
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
    engine : str, optional
        Shortest-path engine for matrices (see
        :data:`solver.geo.network.matrix.ENGINES`); default ``[map]
        matrix_engine`` of the configuration, else csgraph. An engine whose
        library is missing falls back to csgraph; :attr:`engine` tells which
        one runs.

    Notes
    -----
    Read-only after construction and safe to share between threads.
    Implements the :class:`~solver.travel.TravelModel` protocol.
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
        engine: str | None = None,
    ) -> None:
        if len(graph) == 0:
            raise ValueError("the road network has no nodes")
        settings = self._settings(speeds, snap_max_m, access_speeds_kmh)
        edges, mode_speeds = EdgeTable.from_graph(graph, settings["speeds"])
        projection = Projection(float(edges.lats.mean()), float(edges.lons.mean()))
        modes: dict[str, ModeGraph] = {
            mode: build_mode(
                mode,
                edges,
                mode_speeds[mode],
                projection,
                access_mps=settings["access_kmh"][mode] / 3.6,
                fallback_kmh=settings["fallback_kmh"][mode],
            )
            for mode in TRAVEL_MODES
        }
        self._init(edges, modes, settings, None, matrix_cache_dir, matrix_cache_size, engine)

    @staticmethod
    def _settings(
        speeds: Mapping[str, Any] | None, snap_max_m: float | None, access: Mapping[str, float] | None
    ) -> dict[str, Any]:
        """Every setting that shapes the network, resolved against the configuration."""
        config = defaults()
        merged: dict[str, Any] = {**config.get("speeds_kmh", {}), **(speeds or {})}
        snap = config.get("map", {}).get("snap_max_m", 500.0) if snap_max_m is None else snap_max_m
        return {
            "speeds": merged,
            "snap_max_m": float(snap),
            "detour_factor": float(merged.get("detour_factor", 1.35)),
            "access_kmh": access_speeds_kmh(merged, access),
            "fallback_kmh": {m: float(merged.get(m, DEFAULT_SPEEDS_KMH[m])) for m in TRAVEL_MODES},
        }

    def _init(
        self,
        edges: EdgeTable,
        modes: dict[str, ModeGraph],
        settings: Mapping[str, Any],
        network_id: str | None,
        matrix_cache_dir: str | Path | None,
        matrix_cache_size: int,
        engine: str | None,
    ) -> None:
        map_settings = defaults().get("map", {})
        self.edges = edges
        self.settings: dict[str, Any] = dict(settings)
        self.speeds: dict[str, Any] = dict(settings["speeds"])
        self.snap_max_m = float(settings["snap_max_m"])
        self.detour_factor = float(settings["detour_factor"])
        self.node_ids, self.lats, self.lons = edges.node_ids, edges.lats, edges.lons
        self.projection = Projection(float(self.lats.mean()), float(self.lons.mean()))
        self._modes = modes
        if matrix_cache_dir is None:
            matrix_cache_dir = map_settings.get("matrix_cache_dir") or None
        self.matrix_cache = MatrixCache(matrix_cache_size, matrix_cache_dir)
        self.engine = resolve_engine(engine if engine is not None else map_settings.get("matrix_engine"))
        self.network_id = network_id or self._fingerprint()

    @classmethod
    def from_parts(
        cls,
        edges: EdgeTable,
        modes: Mapping[str, ModeGraph],
        settings: Mapping[str, Any],
        *,
        network_id: str | None = None,
        matrix_cache_dir: str | Path | None = None,
        matrix_cache_size: int = _MATRIX_CACHE_SIZE,
        engine: str | None = None,
    ) -> RoadNetwork:
        """A network from its arrays, as :mod:`solver.geo.network.store` loads them.

        Parameters
        ----------
        edges : EdgeTable
            Street table.
        modes : Mapping
            Mode graph per travel mode.
        settings : Mapping
            The resolved settings (:attr:`settings` of the network saved).
        network_id : str, optional
            Its fingerprint, when known (saves hashing the arrays).
        matrix_cache_dir, matrix_cache_size, engine
            As for :class:`RoadNetwork`.

        Returns
        -------
        RoadNetwork
        """
        net = cls.__new__(cls)
        net._init(edges, dict(modes), settings, network_id, matrix_cache_dir, matrix_cache_size, engine)
        return net

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

    def _fingerprint(self) -> str:
        """Hash of everything a matrix depends on: mode graphs, geometry, settings."""
        digest = hashlib.sha256(_ALGORITHM_VERSION.encode())
        settings = {
            "snap_max_m": self.snap_max_m,
            "detour_factor": self.detour_factor,
            "modes": {m: [g.access_mps, g.fallback_kmh] for m, g in self._modes.items()},
        }
        digest.update(json.dumps(settings, sort_keys=True).encode())
        digest.update(np.ascontiguousarray(self.lats).tobytes() + np.ascontiguousarray(self.lons).tobytes())
        for mode in sorted(self._modes):
            g = self._modes[mode]
            for array in (g.nodes, g.edge_keys, g.edge_time_s, g.edge_length_m, g.vert_start, g.vert_latlon):
                digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()

    # ------------------------------------------------------------------ #
    # Introspection
    # ------------------------------------------------------------------ #
    def mode_graph(self, mode: str) -> ModeGraph:
        """The routable graph of ``mode`` (read-only arrays).

        Raises
        ------
        ValueError
            For an unknown mode.
        """
        try:
            return self._modes[mode]
        except KeyError:
            raise ValueError(f"unknown travel mode {mode!r}; use one of {', '.join(TRAVEL_MODES)}") from None

    def engine_label(self) -> str:
        """What priced this network's matrices (:attr:`engine`, with the modes priced by csgraph instead)."""
        if self.engine != "ch":
            return self.engine
        from solver.geo.network.chengine import engine_label

        return engine_label(self)

    def node_count(self, mode: TravelMode) -> int:
        """Number of nodes in the routable component of ``mode``."""
        return self.mode_graph(mode).size

    def edge_count(self, mode: TravelMode) -> int:
        """Number of directed edges in the routable component of ``mode``."""
        return int(self.mode_graph(mode).edge_keys.size)

    def access_speed_kmh(self, mode: TravelMode) -> float:
        """Speed of the access leg between a point and its projection for ``mode``, km/h."""
        return self.mode_graph(mode).access_mps * 3.6

    def fallback_speed_kmh(self, mode: TravelMode) -> float:
        """Straight-line speed for points too far from the network, km/h."""
        return self.mode_graph(mode).fallback_kmh

    def node_location(self, node: int) -> Location:
        """The WGS-84 point of network node ``node`` (an index, as in :class:`Snap`)."""
        return Location(lat=float(self.lats[node]), lon=float(self.lons[node]), crs="wgs84")

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(south, west, north, east)`` of the network's nodes, degrees."""
        return (float(self.lats.min()), float(self.lons.min()), float(self.lats.max()), float(self.lons.max()))

    def street_names(self) -> list[str]:
        """Sorted distinct street names (``name`` tags) of the network's edges."""
        return list(self.edges.names)

    def street_edges(self) -> Iterator[StreetEdge]:
        """Every street edge of the source graph: ends, length, class, name and shape.

        Yields
        ------
        solver.geo.network.geometry.StreetEdge
            In the source graph's edge order (both directions of a two-way
            street appear).
        """
        return street_edges(self.edges)

    def to_networkx(self, mode: TravelMode) -> nx.DiGraph:
        """The routable graph of ``mode`` as a networkx ``DiGraph``.

        Nodes are OSM ids with ``x``/``y``; edges carry ``travel_time``
        (seconds) and ``length`` (metres) of the edge the model uses. Handy
        for checking results against networkx.
        """
        g = self.mode_graph(mode)
        out = nx.DiGraph()
        for node in g.nodes:
            out.add_node(int(self.node_ids[node]), x=float(self.lons[node]), y=float(self.lats[node]))
        tails, heads = g.edge_ends()
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
        g = self.mode_graph(mode)
        if not points:
            return []
        wgs = [to_wgs84(p) for p in points]
        lats = np.array([p.lat for p in wgs], dtype=float)
        lons = np.array([p.lon for p in wgs], dtype=float)
        s = snap_arrays(g, self.projection, lats, lons)
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
            :data:`solver.travel.UNREACHABLE_S`. The distance is the length
            of the fastest path (the shortest of them on a tie).

        Notes
        -----
        Results are cached by content (network, mode, points); each call
        returns fresh arrays.
        """
        g = self.mode_graph(mode)
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

    def _compute_matrix(self, g: ModeGraph, lats: Floats, lons: Floats) -> TravelMatrix:
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
        s = snap_arrays(g, self.projection, lat, lon)
        on = s["gap"] <= self.snap_max_m
        idx = np.flatnonzero(on)
        if idx.size:
            att = attach(g, s["piece"][idx], s["fraction"][idx])
            times, lengths = point_to_point(g, att, self.engine)
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
            metres = haversine_block_m(lat[off], lon[off], lat, lon) * line.detour_factor
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
        return fastest_path(self, a, b, mode)
