"""The street table of a network and the routable graph of each travel mode.

* :class:`EdgeTable` — every edge of the source osmnx graph as parallel
  arrays: ends, length, highway class, first street name and OSM shape. It
  replaces the graph's attribute dicts once a network is built, so a stored
  network needs neither networkx nor pickles.
* :class:`Projection` — the local equirectangular projection (metres) used
  for snapping.
* :class:`ModeGraph` — the routable graph of one mode over its largest
  component, with its street pieces and segment index
  (:mod:`solver.geo.network.snapping`).
* :func:`build_mode` — derive a :class:`ModeGraph` from the edge table and
  per-edge speeds.

Driving and e-biking keep only the largest strongly connected component,
walking the largest (weakly) connected one, so that no point snaps onto a
cut-off one-way stub at the edge of the extract and comes back unreachable.
Driving and e-biking respect one-way streets; walking uses every street in
both directions. Parallel edges keep the fastest one.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from solver.geo.network.speeds import edge_speed_kmh, first_text, highway_class, street_names_of
from solver.model import TRAVEL_MODES, TravelMode
from solver.travel import EARTH_RADIUS_M

__all__ = ["MIN_EDGE_S", "EdgeTable", "Floats", "Ints", "ModeGraph", "Projection", "build_mode"]

#: Array types (element dtypes as the arrays are built).
Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]

#: Lower bound on an edge's travel time, seconds. csgraph reads an explicit 0
#: in a sparse matrix as "no edge", so zero-length edges get this instead.
MIN_EDGE_S = 1e-6


@dataclass(frozen=True)
class Projection:
    """Equirectangular projection around a centre, metres.

    Attributes
    ----------
    lat0, lon0 : float
        The centre, degrees WGS-84.
    """

    lat0: float
    lon0: float

    def xy(self, lats: Floats, lons: Floats) -> Floats:
        """Projected ``(x, y)`` metres of WGS-84 points, shape ``(k, 2)``."""
        x = np.radians(np.asarray(lons, dtype=float) - self.lon0) * EARTH_RADIUS_M * math.cos(math.radians(self.lat0))
        y = np.radians(np.asarray(lats, dtype=float) - self.lat0) * EARTH_RADIUS_M
        return np.column_stack([x, y])


@dataclass(frozen=True)
class EdgeTable:
    """The source graph's nodes and edges as arrays.

    Attributes
    ----------
    node_ids : numpy.ndarray
        ``(N,)`` OSM node ids; node *indices* elsewhere index this table.
    lats, lons : numpy.ndarray
        ``(N,)`` node coordinates, WGS-84.
    tail, head : numpy.ndarray
        ``(E,)`` node indices of each edge.
    length : numpy.ndarray
        ``(E,)`` metres (the ``length`` attribute).
    highway : numpy.ndarray
        ``(E,)`` index into ``classes`` (-1: none).
    name : numpy.ndarray
        ``(E,)`` index of the edge's first name into ``names`` (-1: none).
    geom_start : numpy.ndarray
        ``(E + 1,)``: edge ``e``'s OSM shape is ``geom_lonlat[geom_start[e]:
        geom_start[e + 1]]`` (empty when the edge has no ``geometry``).
    geom_lonlat : numpy.ndarray
        ``(G, 2)`` shape vertices ``(lon, lat)`` as stored in the graph.
    classes : list of str
        Highway classes.
    names : list of str
        Every distinct street name of the edges, sorted.
    """

    node_ids: Ints
    lats: Floats
    lons: Floats
    tail: Ints
    head: Ints
    length: Floats
    highway: Ints
    name: Ints
    geom_start: Ints
    geom_lonlat: Floats
    classes: list[str]
    names: list[str]

    @property
    def size(self) -> int:
        """Number of edges."""
        return int(self.tail.shape[0])

    def shape(self, edge: int) -> Floats | None:
        """The OSM shape of ``edge`` as ``(lon, lat)`` rows, or None when it has none."""
        lo, hi = int(self.geom_start[edge]), int(self.geom_start[edge + 1])
        return None if hi - lo < 2 else self.geom_lonlat[lo:hi]

    @classmethod
    def from_graph(
        cls, graph: nx.MultiDiGraph, speeds: Mapping[str, Any]
    ) -> tuple[EdgeTable, dict[str, Floats]]:
        """Read an osmnx graph into arrays, with every edge's speed per mode.

        Parameters
        ----------
        graph : networkx.MultiDiGraph
            osmnx graph in WGS-84.
        speeds : Mapping
            ``[speeds_kmh]``-shaped settings.

        Returns
        -------
        tuple
            The table and, per mode, an ``(E,)`` array of km/h (NaN where the
            mode may not use the edge).
        """
        node_ids = np.fromiter(graph.nodes, dtype=np.int64, count=len(graph))
        lats = np.array([float(graph.nodes[n]["y"]) for n in graph.nodes], dtype=float)
        lons = np.array([float(graph.nodes[n]["x"]) for n in graph.nodes], dtype=float)
        position = {node: i for i, node in enumerate(graph.nodes)}
        tails: list[int] = []
        heads: list[int] = []
        lengths: list[float] = []
        highways: list[int] = []
        first_names: list[int] = []
        counts: list[int] = []
        shapes: list[Any] = []
        class_code: dict[str, int] = {}
        name_code: dict[str, int] = {}
        all_names: set[str] = set()
        mode_speeds: dict[str, list[float]] = {mode: [] for mode in TRAVEL_MODES}
        for u, v, data in graph.edges(data=True):
            tails.append(position[u])
            heads.append(position[v])
            lengths.append(float(data.get("length", 0.0)))
            highway = highway_class(data.get("highway"))
            highways.append(-1 if highway is None else class_code.setdefault(highway, len(class_code)))
            names = street_names_of(data.get("name"))
            all_names.update(names)
            first = first_text(names) if names else None
            first_names.append(-1 if first is None else name_code.setdefault(first, len(name_code)))
            geometry = data.get("geometry")
            coords = None if geometry is None else np.asarray(geometry.coords, dtype=float)
            if coords is not None and len(coords) >= 2:
                shapes.append(coords[:, :2])
                counts.append(len(coords))
            else:
                counts.append(0)
            for mode in TRAVEL_MODES:
                speed = edge_speed_kmh(speeds, mode, data)
                mode_speeds[mode].append(math.nan if speed is None else speed)
        # First-name codes in the order met; re-map them onto the sorted name list.
        names_sorted = sorted(all_names)
        rank = {name: i for i, name in enumerate(names_sorted)}
        by_code = np.array([rank[name] for name in name_code] or [0], dtype=np.int64)
        first_idx = np.asarray(first_names, dtype=np.int64)
        first_idx = np.where(first_idx >= 0, by_code[np.maximum(first_idx, 0)], -1)
        geom_start = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int64)
        geom = np.concatenate(shapes) if shapes else np.empty((0, 2), dtype=float)
        table = cls(
            node_ids=node_ids,
            lats=lats,
            lons=lons,
            tail=np.asarray(tails, dtype=np.int64),
            head=np.asarray(heads, dtype=np.int64),
            length=np.asarray(lengths, dtype=float),
            highway=np.asarray(highways, dtype=np.int64),
            name=first_idx,
            geom_start=geom_start,
            geom_lonlat=np.ascontiguousarray(geom, dtype=float),
            classes=list(class_code),
            names=names_sorted,
        )
        return table, {mode: np.asarray(values, dtype=float) for mode, values in mode_speeds.items()}


@dataclass(frozen=True)
class ModeGraph:
    """The routable graph of one travel mode, over its component's nodes.

    ``nodes[k]`` is the network node index of local node ``k``. Edges are
    stored once per ordered pair (the fastest parallel edge) in arrays sorted
    by ``key = tail * n + head``. *Pieces* are the undirected street pieces
    (one per unordered node pair) that points snap to; ``piece_fwd`` is the
    edge ``a → b`` (``a < b``, local indices) and ``piece_bwd`` the edge
    ``b → a``, -1 where the mode may not travel that way. Each piece's
    geometry is a polyline from ``a`` to ``b``: vertices
    ``vert_start[p]:vert_start[p + 1]`` of ``vert_xy`` (projected metres) and
    ``vert_latlon``, with cumulative lengths ``vert_cum`` from ``a``. The
    segment index over the pieces (a :class:`shapely.STRtree`) is built on
    first use (:func:`solver.geo.network.snapping.segment_tree`), so that a
    network loaded from the store is ready at once.
    """

    mode: TravelMode
    nodes: Ints  # (n,) network node indices
    edge_keys: Ints  # (m,) sorted tail * n + head
    edge_length_m: Floats  # (m,)
    edge_time_s: Floats  # (m,)
    edge_source: Ints  # (m,) index into the network's edge table
    piece_a: Ints  # (p,) local
    piece_b: Ints  # (p,) local
    piece_fwd: Ints  # (p,) edge position or -1
    piece_bwd: Ints  # (p,) edge position or -1
    vert_start: Ints  # (p + 1,)
    vert_xy: Floats  # (V, 2) metres
    vert_latlon: Floats  # (V, 2) degrees
    vert_cum: Floats  # (V,) metres from the piece's start
    seg_vertex: Ints  # (s,) segment k runs from vertex seg_vertex[k] to seg_vertex[k] + 1
    seg_piece: Ints  # (s,)
    access_mps: float
    fallback_kmh: float
    lazy: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    #: The array fields, as stored (:mod:`solver.geo.network.store`).
    ARRAYS = (
        "nodes",
        "edge_keys",
        "edge_length_m",
        "edge_time_s",
        "edge_source",
        "piece_a",
        "piece_b",
        "piece_fwd",
        "piece_bwd",
        "vert_start",
        "vert_xy",
        "vert_latlon",
        "vert_cum",
        "seg_vertex",
        "seg_piece",
    )

    @property
    def size(self) -> int:
        """Number of nodes."""
        return int(self.nodes.shape[0])

    def edge_index(self, tails: Ints, heads: Ints) -> Ints:
        """Positions of edges ``tails[i] → heads[i]`` (local indices) in the edge arrays."""
        keys = tails.astype(np.int64) * self.size + heads.astype(np.int64)
        found: Ints = np.searchsorted(self.edge_keys, keys)
        return found

    def edge_ends(self) -> tuple[Ints, Ints]:
        """Tail and head (local indices) of every edge, in the order of the edge arrays."""
        tails, heads = np.divmod(np.asarray(self.edge_keys), self.size)
        return tails, heads

    def piece_length(self, piece: Ints) -> Floats:
        """Geometric length of pieces, metres."""
        lengths: Floats = self.vert_cum[self.vert_start[piece + 1] - 1]
        return lengths


def build_mode(
    mode: TravelMode,
    edges: EdgeTable,
    speeds_kmh: Floats,
    projection: Projection,
    *,
    access_mps: float,
    fallback_kmh: float,
) -> ModeGraph:
    """Derive the routable graph of ``mode``: edge times, component, pieces.

    Parameters
    ----------
    mode : {"drive", "ebike", "walk"}
        Travel mode.
    edges : EdgeTable
        The network's edges.
    speeds_kmh : numpy.ndarray
        ``(E,)`` speed of each edge for the mode (NaN or 0: not usable).
    projection : Projection
        Local projection for the snapping geometry.
    access_mps : float
        Speed of the access leg, m/s.
    fallback_kmh : float
        Straight-line speed for points too far from the network.

    Returns
    -------
    ModeGraph

    Raises
    ------
    ValueError
        If no edge is usable for the mode.
    """
    from solver.geo.network.snapping import build_pieces

    n_all = int(edges.node_ids.shape[0])
    usable = np.flatnonzero(np.isfinite(speeds_kmh) & (speeds_kmh > 0))
    tail, head = edges.tail[usable], edges.head[usable]
    length = edges.length[usable]
    time_s = np.maximum(length / (speeds_kmh[usable] / 3.6), MIN_EDGE_S)
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
    in_comp = labels == int(np.argmax(counts))
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
    pieces = build_pieces(edges, projection, n, nodes, lt, lh, edge_source)
    return ModeGraph(
        mode=mode,
        nodes=nodes,
        edge_keys=keys.astype(np.int64),
        edge_length_m=edge_length,
        edge_time_s=edge_time,
        edge_source=edge_source,
        **pieces,
        access_mps=access_mps,
        fallback_kmh=fallback_kmh,
    )
