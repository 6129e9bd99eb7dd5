"""Many-to-many travel matrices on a mode graph, with pluggable shortest-path engines.

Every snapped point becomes a source and a target node attached to its
edge's ends (:func:`augmented`); an *engine* runs one shortest-path search per
distinct point. The weights pack the time and the length of each edge into
one exactly representable float (time first, :func:`pack`), so a single run
gives both the fastest time and the length of that path; out of range (paths
over about a thousand kilometres) the batch falls back to csgraph on seconds
and sums lengths along the shortest-path trees by pointer doubling
(:func:`tree_lengths`).

Engines (:data:`ENGINES`), all exact on the same packed weights, so they give
identical matrices:

* ``"ch"`` — a contraction hierarchy per mode graph with bucket-based
  many-to-many queries (:mod:`solver.geo.network.ch`, compiled with numba;
  :mod:`solver.geo.network.chengine` builds, stores and queries it). The
  default when numba is installed.
* ``"csgraph"`` — :func:`scipy.sparse.csgraph.dijkstra`, always available;
  sources in batches sized to keep the result block under
  :data:`BATCH_BYTES`.
* ``"igraph"`` — ``igraph.Graph.distances`` (python-igraph, optional).
* ``"networkit"`` — ``networkit.distance.SPSP`` (optional; uses the cores
  that ``networkit.setNumberOfThreads`` allows).

:func:`resolve_engine` picks the configured engine, falling back to csgraph
when its library is missing (the default ``"auto"`` is ``"ch"``, else
csgraph). Measured side by side in ``bench/geo.py`` (see
``docs/geo.md``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from solver.geo.network.graph import MIN_EDGE_S, Floats, Ints, ModeGraph
from solver.geo.network.snapping import Attachments, same_piece_links

__all__ = [
    "BATCH_BYTES",
    "ENGINES",
    "Augmented",
    "augmented",
    "available_engines",
    "pack",
    "point_to_point",
    "resolve_engine",
    "tree_lengths",
    "unpack",
]

#: Packed weights (see :func:`pack`): time quantum, length quantum and the
#: bits reserved for the length.
_TIME_UNITS_PER_S = 1024.0
_LENGTH_UNITS_PER_M = 64.0
_LENGTH_BITS = 26
_TIME_BITS = 53 - _LENGTH_BITS

#: Largest block of one-to-all distances csgraph may return at once, bytes
#: (sources per batch = this / (8 × nodes), at most 256).
BATCH_BYTES = 48 * 2**20


def pack(seconds: Floats, metres: Floats) -> Floats:
    """Pack times and lengths into one float64 weight ordered by (time, length).

    Times are counted in 1/1024 s and lengths in 1/64 m, the time in the bits
    above the 26 length bits. The result is an integer below 2**53, exact in
    float64, so sums along a path stay exact and decode with :func:`unpack`
    while the path's length stays below 2**26 / 64 m (1,048 km) and its time
    below 2**27 / 1024 s (36 h). Never 0 (csgraph reads 0 as "no edge").
    """
    t = np.rint(np.asarray(seconds, dtype=float) * _TIME_UNITS_PER_S)
    length = np.rint(np.asarray(metres, dtype=float) * _LENGTH_UNITS_PER_M)
    packed: Floats = np.maximum(t * 2.0**_LENGTH_BITS + length, 1.0)
    return packed


def unpack(packed: Floats) -> tuple[Floats, Floats]:
    """Seconds and metres of packed path weights (inf stays inf)."""
    finite = np.isfinite(packed)
    safe = np.where(finite, packed, 0.0)
    t = np.floor(safe / 2.0**_LENGTH_BITS)
    length = safe - t * 2.0**_LENGTH_BITS
    seconds = np.where(finite, t / _TIME_UNITS_PER_S, np.inf)
    metres = np.where(finite, length / _LENGTH_UNITS_PER_M, np.inf)
    return seconds, metres


@dataclass(frozen=True)
class Augmented:
    """A mode graph with per-point source and target nodes, edges sorted by key."""

    keys: Ints  # (e,) tail * size + head, sorted
    tail: Ints
    head: Ints
    seconds: Floats
    length: Floats
    size: int

    def seconds_graph(self) -> csr_matrix:
        """Sparse matrix of edge travel times."""
        return csr_matrix((self.seconds, (self.tail, self.head)), shape=(self.size, self.size))

    def packed_weights(self) -> Floats:
        """Packed (time, length) weight of each edge, in key order."""
        return pack(self.seconds, self.length)

    def packed_graph(self) -> csr_matrix:
        """Sparse matrix of packed (time, length) weights."""
        return csr_matrix((self.packed_weights(), (self.tail, self.head)), shape=(self.size, self.size))

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


def augmented(g: ModeGraph, att: Attachments) -> Augmented:
    """The mode graph plus a source and a target node per point.

    Parameters
    ----------
    g : ModeGraph
        Mode graph.
    att : Attachments
        The snapped points.

    Returns
    -------
    Augmented
        The source of point ``i`` is node ``n + i``, its target ``n + k + i``
        (``n`` nodes in the mode graph, ``k`` points).
    """
    n, k = g.size, att.piece.size
    size = n + 2 * k
    base_tail, base_head = g.edge_ends()
    point = np.arange(k, dtype=np.int64)
    rows = [base_tail]
    cols = [base_head]
    secs = [np.asarray(g.edge_time_s)]
    lens = [np.asarray(g.edge_length_m)]
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
    si, sj, st, sl = same_piece_links(g, att)
    rows.append(n + si)
    cols.append(n + k + sj)
    secs.append(st)
    lens.append(sl)
    row, col = np.concatenate(rows), np.concatenate(cols)
    sec = np.maximum(np.concatenate(secs), MIN_EDGE_S)
    length = np.concatenate(lens)
    keys = row * size + col
    order = np.argsort(keys, kind="stable")
    return Augmented(keys[order], row[order], col[order], sec[order], length[order], size)


#: An engine: packed shortest-path weights from each source to each target
#: of the augmented graph of a mode graph.
Engine = Callable[[ModeGraph, Augmented, Ints, Ints], Floats]


def _batch(size: int) -> int:
    return int(max(1, min(256, BATCH_BYTES // (8 * max(size, 1)))))


def _csgraph(g: ModeGraph, aug: Augmented, sources: Ints, targets: Ints) -> Floats:
    graph = aug.packed_graph()
    out = np.empty((sources.size, targets.size), dtype=float)
    step = _batch(aug.size)
    for start in range(0, sources.size, step):
        batch = sources[start : start + step]
        out[start : start + batch.size] = np.atleast_2d(dijkstra(graph, directed=True, indices=batch))[:, targets]
    return out


def _igraph(g: ModeGraph, aug: Augmented, sources: Ints, targets: Ints) -> Floats:
    import igraph

    graph = igraph.Graph(n=aug.size, edges=np.column_stack([aug.tail, aug.head]), directed=True)
    weights = aug.packed_weights().tolist()
    out = np.empty((sources.size, targets.size), dtype=float)
    step = 128
    for start in range(0, sources.size, step):
        batch = sources[start : start + step]
        rows = graph.distances(source=batch.tolist(), target=targets.tolist(), weights=weights, mode="out")
        out[start : start + batch.size] = np.asarray(rows, dtype=float)
    return out


def _networkit(g: ModeGraph, aug: Augmented, sources: Ints, targets: Ints) -> Floats:
    import networkit

    graph = networkit.Graph(aug.size, weighted=True, directed=True)
    graph.addEdges((aug.packed_weights(), (aug.tail, aug.head)))
    search = networkit.distance.SPSP(graph, sources.tolist(), targets.tolist())
    search.run()
    out = np.asarray(search.getDistances(), dtype=float)
    out[out >= np.finfo(float).max / 2] = np.inf  # networkit's "unreachable"
    return out


def _ch(g: ModeGraph, aug: Augmented, sources: Ints, targets: Ints) -> Floats:
    """The contraction hierarchy of ``g`` (:mod:`solver.geo.network.chengine`; csgraph where it gave up)."""
    from solver.geo.network.chengine import ch_matrix

    return ch_matrix(g, aug, sources, targets)


#: Engine name → (module it needs or None, function).
ENGINES: dict[str, tuple[str | None, Engine]] = {
    "ch": ("numba", _ch),
    "csgraph": (None, _csgraph),
    "igraph": ("igraph", _igraph),
    "networkit": ("networkit", _networkit),
}


def _installed(module: str | None) -> bool:
    """Whether ``module`` imports (None: nothing needed)."""
    if module is None:
        return True
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def available_engines() -> list[str]:
    """Names of the engines whose library is installed, in :data:`ENGINES` order."""
    return [name for name, (module, _) in ENGINES.items() if _installed(module)]


def resolve_engine(name: str | None) -> str:
    """The engine to use for ``name``.

    Parameters
    ----------
    name : str or None
        An engine of :data:`ENGINES`; ``"auto"``/None/empty for the
        contraction hierarchy (``"ch"``) when numba is installed, else
        csgraph.

    Returns
    -------
    str
        ``name`` when its library is installed, else ``"csgraph"``.

    Raises
    ------
    ValueError
        For an unknown engine name.
    """
    if not name or name == "auto":
        name = "ch"
    if name not in ENGINES:
        raise ValueError(f"unknown matrix engine {name!r}; use one of {', '.join(ENGINES)}")
    return name if name in available_engines() else "csgraph"


def point_to_point(g: ModeGraph, att: Attachments, engine: str = "csgraph") -> tuple[Floats, Floats]:
    """Fastest seconds between projections along the streets, and their metres (inf if none).

    Parameters
    ----------
    g : ModeGraph
        Mode graph.
    att : Attachments
        The snapped points.
    engine : str, optional
        An installed engine of :data:`ENGINES`.

    Returns
    -------
    tuple of numpy.ndarray
        ``(k, k)`` seconds and metres.

    Notes
    -----
    One search per point on *packed* weights (:func:`pack`): whole 1/1024 s in
    the high bits and 1/64 m in the low bits of an exactly representable
    float, so one run yields the fastest time and the length of the shortest
    of the fastest paths, without predecessor arrays. When a result could
    exceed the packing's range (paths of more than about a thousand
    kilometres), those rows are recomputed on seconds with csgraph and the
    lengths summed along the shortest-path trees.
    """
    k = att.piece.size
    aug = augmented(g, att)
    sources = g.size + np.arange(k, dtype=np.int64)
    targets = g.size + k + np.arange(k, dtype=np.int64)
    packed = ENGINES[engine][1](g, aug, sources, targets)
    times, lengths = unpack(packed)
    limit_s = aug.packed_limit_s()
    over = np.flatnonzero((np.isfinite(times) & (times > limit_s)).any(axis=1))
    if over.size:
        seconds_graph = aug.seconds_graph()
        for start in range(0, over.size, _batch(aug.size)):
            rows = over[start : start + _batch(aug.size)]
            dist, pred = dijkstra(seconds_graph, directed=True, indices=sources[rows], return_predecessors=True)
            times[rows] = np.atleast_2d(dist)[:, targets]
            lengths[rows] = tree_lengths(aug.keys, aug.length, aug.size, np.atleast_2d(pred), targets)
    return times, lengths


def tree_lengths(keys: Ints, edge_length: Floats, size: int, pred: npt.NDArray[np.int32], targets: Ints) -> Floats:
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
    result: Floats = acc[:, targets]
    return result
