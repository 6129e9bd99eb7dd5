"""The ``"ch"`` matrix engine: one contraction hierarchy per mode graph, built once and stored.

:func:`hierarchy` gives a mode graph's :class:`~solver.geo.network.ch.Hierarchy`:
from memory, else from the network store folder the graph was loaded from
(``<mode>.ch1.<name>.npy`` files beside the network's own; read into
memory, not memory-mapped: numba compiles its functions once per array type,
and read-only maps would be a second type to compile in every new process),
else built (:func:`solver.geo.network.ch.build`) and written there for every
later process. :func:`ch_matrix` answers the many-to-many query between the
source and target nodes of an :class:`~solver.geo.network.matrix.Augmented`
graph: each snapped point starts from (ends at) its street's ends with the
weights of the augmented edges, and the direct links between two points on
one street piece are added on top. Weights are the same packed integers as
the other engines', so the matrix is identical to csgraph's. A mode graph
contraction gives up on (:data:`UNFIT`: one speed everywhere, no hierarchy)
is priced the same way by one plain Dijkstra search per source on its own
edges (:func:`~solver.geo.network.ch.dijkstra_many_to_many`, numba, Dial's
buckets), and :func:`engine_label` says so.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from solver.config import defaults
from solver.geo.network.ch import (
    INF,
    CHParams,
    Hierarchy,
    TooDense,
    build,
    csr_rows,
    dijkstra_many_to_many,
    many_to_many,
)
from solver.geo.network.graph import MIN_EDGE_S, Floats, Ints, ModeGraph
from solver.geo.network.matrix import Augmented, pack

if TYPE_CHECKING:
    from solver.geo.network.core import RoadNetwork

__all__ = [
    "MAX_DEGREE",
    "MAX_SHORTCUT_RATIO",
    "STORE_DIR_KEY",
    "UNFIT",
    "ch_matrix",
    "ch_params",
    "engine_label",
    "graph_csr",
    "hierarchy",
    "load_hierarchy",
    "prepare_hierarchies",
    "save_hierarchy",
    "warm",
]

logger = logging.getLogger(__name__)

#: ``ModeGraph.lazy`` key under which the network store records the folder a
#: graph was loaded from (where its hierarchy is stored too).
STORE_DIR_KEY = "store_dir"

#: Bumped whenever the stored hierarchy's layout or meaning changes.
_FILE_TAG = "ch1"
_ARRAYS = ("up_start", "up_head", "up_weight", "down_start", "down_tail", "down_weight")

_LOCKS_GUARD = threading.Lock()


#: ``ModeGraph.lazy["ch"]`` when contraction gave up (:class:`~solver.geo.network.ch.TooDense`):
#: that mode's matrices are priced by plain Dijkstra searches
#: (:func:`~solver.geo.network.ch.dijkstra_many_to_many`).
UNFIT = "too dense"

#: Largest node degree contraction may meet before giving up (the synthetic
#: city's drive graph stays under 30 at every size measured; its e-bike graph,
#: one speed everywhere, passes 100 at size 125 and took many minutes at 400).
MAX_DEGREE = 64

#: Shortcuts contraction may add, times the graph's edges, before giving up
#: (:attr:`~solver.geo.network.ch.CHParams.max_shortcut_ratio`). The synthetic
#: city's drive graph needs 0.9 at sizes 125 and 400; its e-bike graph passes
#: 1.5 with a quarter of its nodes left, after 40 % of the time it would take
#: to reach :data:`MAX_DEGREE` (size 400: 22 s instead of 95 s on a loaded
#: machine, 51 s on a quiet one), so map import gives up on it sooner.
MAX_SHORTCUT_RATIO = 1.5


def ch_params() -> CHParams:
    """Hierarchy and query settings.

    Threads: ``DOORSTEP_MATRIX_THREADS`` when set, else ``[map]
    matrix_threads`` of the configuration (0: every core the process may use).
    """
    configured = os.environ.get("DOORSTEP_MATRIX_THREADS") or defaults().get("map", {}).get("matrix_threads", 0)
    return CHParams(threads=int(configured or 0), max_degree=MAX_DEGREE, max_shortcut_ratio=MAX_SHORTCUT_RATIO)


def base_weights(g: ModeGraph) -> Ints:
    """Packed integer weight of each edge of ``g``, as the augmented graph packs it."""
    packed = pack(np.maximum(np.asarray(g.edge_time_s), MIN_EDGE_S), np.asarray(g.edge_length_m))
    weights: Ints = packed.astype(np.int64)
    return weights


def graph_csr(g: ModeGraph) -> tuple[Ints, Ints, Ints]:
    """``g``'s edges in CSR form ``(start, head, packed weight)`` (kept in ``g.lazy``)."""
    found = g.lazy.get("csr")
    if found is None:
        tail, head = g.edge_ends()
        found = g.lazy["csr"] = csr_rows(g.size, tail, head, base_weights(g))
    csr: tuple[Ints, Ints, Ints] = found
    return csr


def _marker(folder: Path, mode: str) -> Path:
    """The file that says a mode's hierarchy is complete (or that contraction gave up)."""
    return folder / f"{mode}.{_FILE_TAG}.json"


def load_hierarchy(folder: str | Path, g: ModeGraph) -> Hierarchy | str | None:
    """The hierarchy of ``g`` stored in ``folder`` (read into memory), :data:`UNFIT`, or None when absent or stale."""
    folder = Path(folder)
    marker = _marker(folder, g.mode)
    try:
        meta = json.loads(marker.read_text())
        if meta.get("size") != g.size or meta.get("edges") != int(g.edge_keys.size):
            return None
        if meta.get("unfit"):
            return UNFIT
        arrays = {name: np.load(folder / f"{g.mode}.{_FILE_TAG}.{name}.npy") for name in _ARRAYS}
    except (OSError, ValueError):
        return None
    return Hierarchy(size=g.size, **arrays)


def save_hierarchy(folder: str | Path, g: ModeGraph, h: Hierarchy | str) -> None:
    """Write ``h`` (or that it is :data:`UNFIT`) beside the stored network in ``folder``.

    Each file is written atomically, the marker last.

    Raises
    ------
    OSError
        When the folder cannot be written.
    """
    folder = Path(folder)
    marker = _marker(folder, g.mode)
    meta: dict[str, Any] = {"size": g.size, "edges": int(g.edge_keys.size)}
    if not isinstance(h, Hierarchy):
        tmp = folder / f".{marker.name}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps({**meta, "unfit": True}))
        os.replace(tmp, marker)
        return
    for name in _ARRAYS:
        final = folder / f"{g.mode}.{_FILE_TAG}.{name}.npy"
        tmp = folder / f".{final.name}.{os.getpid()}.tmp.npy"
        np.save(tmp, np.ascontiguousarray(getattr(h, name)))
        os.replace(tmp, final)
    tmp = folder / f".{marker.name}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({**meta, "shortcut_edges": h.edge_count, "top_degree": h.top_degree}))
    os.replace(tmp, marker)


def _lock(g: ModeGraph) -> threading.Lock:
    """The lock that lets one thread at a time load or build ``g``'s hierarchy."""
    with _LOCKS_GUARD:
        lock = g.lazy.get("ch_lock")
        if lock is None:
            lock = g.lazy["ch_lock"] = threading.Lock()
        return lock


def hierarchy(g: ModeGraph, params: CHParams | None = None) -> Hierarchy | None:
    """The contraction hierarchy of ``g``: from memory, the store, or built (and stored).

    Parameters
    ----------
    g : ModeGraph
        A mode graph; when the network store loaded it, ``g.lazy`` names its
        folder (:data:`STORE_DIR_KEY`) and the hierarchy is read from and
        written to it.
    params : CHParams, optional
        Build limits (default :func:`ch_params`).

    Returns
    -------
    Hierarchy or None
        None when contraction gave up on ``g`` (:class:`~solver.geo.network.ch.TooDense`):
        price it with plain Dijkstra searches.
    """
    with _lock(g):
        found: Any = g.lazy.get("ch")
        if isinstance(found, Hierarchy):
            return found
        if found == UNFIT:
            return None
        folder = g.lazy.get(STORE_DIR_KEY)
        h = load_hierarchy(folder, g) if folder else None
        if h is None:
            start = time.perf_counter()
            tail, head = g.edge_ends()
            try:
                h = build(g.size, tail, head, base_weights(g), params or ch_params())
                logger.info("contraction hierarchy of the %s graph built in %.1f s", g.mode, time.perf_counter() - start)
            except TooDense:
                h = UNFIT
                logger.info("no contraction hierarchy for the %s graph (too dense a core): Dijkstra prices it", g.mode)
            if folder:
                try:
                    save_hierarchy(folder, g, h)
                except OSError as exc:  # a read-only or full store: keep it in memory only
                    logger.warning("could not store the contraction hierarchy in %s: %s", folder, exc)
        g.lazy["ch"] = h
        return h if isinstance(h, Hierarchy) else None


def prepare_hierarchies(net: RoadNetwork) -> list[str]:
    """Build (or load) the hierarchy of every mode of ``net`` when it prices with ``"ch"``.

    Map import calls it, so that a service loading the stored network never
    contracts a graph itself.

    Returns
    -------
    list of str
        The modes that have a hierarchy (none for another engine; a mode
        contraction gave up on is left out and priced by plain Dijkstra searches).
    """
    if net.engine != "ch":
        return []
    modes = sorted(net._modes)
    return [mode for mode in modes if hierarchy(net.mode_graph(mode)) is not None]


def warm(net: RoadNetwork) -> list[str]:
    """Load what a process's first matrix per mode loads, by pricing one between two nodes of each mode graph.

    numba's compiled kernels (from its disk cache), each mode's hierarchy
    (from the store, or built and stored when missing, as
    :func:`prepare_hierarchies` does) and each mode's segment index are then
    held by this process: a process that forks workers (``doorstep worker``
    and its work horses) calls it first, so that every child inherits them
    instead of loading them again for its first job. The matrices are not
    cached (:meth:`~solver.geo.network.RoadNetwork.matrix`'s cache is left
    alone).

    Returns
    -------
    list of str
        The modes warmed (those with at least two nodes).
    """
    warmed = []
    for mode in sorted(net._modes):
        g = net.mode_graph(mode)
        if g.size < 2:
            continue
        ends = [int(g.nodes[0]), int(g.nodes[g.size // 2])]
        net._compute_matrix(g, np.asarray(net.lats)[ends].astype(float), np.asarray(net.lons)[ends].astype(float))
        warmed.append(mode)
    return warmed


def ch_matrix(
    g: ModeGraph, aug: Augmented, sources: Ints, targets: Ints, params: CHParams | None = None
) -> Floats:
    """Packed shortest-path weights between the point nodes of ``aug`` via ``g``'s hierarchy.

    When ``g`` has none (:func:`hierarchy` gave up), one Dijkstra search per
    source on ``g``'s own edges answers instead
    (:func:`~solver.geo.network.ch.dijkstra_many_to_many`), stopped once no
    target can improve; same packed weights, same matrix.

    Parameters
    ----------
    g : ModeGraph
        The mode graph ``aug`` was made from (its nodes are ``aug``'s first
        ``g.size`` nodes).
    aug : Augmented
        The augmented graph: source nodes with edges only out of them,
        target nodes with edges only into them.
    sources, targets : numpy.ndarray
        Source and target nodes of ``aug``.
    params : CHParams, optional
        Threads (default :func:`ch_params`).

    Returns
    -------
    numpy.ndarray
        ``(len(sources), len(targets))`` packed weights, inf where no path.
    """
    p = params or ch_params()
    h = hierarchy(g, p)
    n = g.size
    src_pos = np.full(aug.size, -1, dtype=np.int64)
    src_pos[sources] = np.arange(sources.size)
    dst_pos = np.full(aug.size, -1, dtype=np.int64)
    dst_pos[targets] = np.arange(targets.size)
    weights = aug.packed_weights().astype(np.int64)
    tail_s, head_t = src_pos[aug.tail], dst_pos[aug.head]
    leave = (tail_s >= 0) & (aug.head < n)
    enter = (aug.tail < n) & (head_t >= 0)
    direct = (tail_s >= 0) & (head_t >= 0)
    leaving = csr_rows(sources.size, tail_s[leave], aug.head[leave], weights[leave])
    if h is None:
        entries = csr_rows(n, aug.tail[enter], head_t[enter], weights[enter])
        packed = dijkstra_many_to_many(graph_csr(g), leaving, entries, targets.size, p)
    else:
        entering = csr_rows(targets.size, head_t[enter], aug.tail[enter], weights[enter])
        packed = many_to_many(h, leaving, entering, p)
    out: Floats = packed.astype(float)
    out[packed >= INF] = np.inf
    np.minimum.at(out, (tail_s[direct], head_t[direct]), weights[direct].astype(float))
    return out


def engine_label(net: RoadNetwork) -> str:
    """What prices ``net``'s matrices: its engine, and Dijkstra for the modes ``"ch"`` gave up on.

    Returns
    -------
    str
        ``"ch"``, or e.g. ``"ch (dijkstra for ebike, walk)"`` (modes whose
        hierarchy was looked for and found unfit: their matrices come from
        :func:`~solver.geo.network.ch.dijkstra_many_to_many`); the engine's
        name for every other engine.
    """
    if net.engine != "ch":
        return net.engine
    unfit = sorted(mode for mode in net._modes if net.mode_graph(mode).lazy.get("ch") == UNFIT)
    return f"ch (dijkstra for {', '.join(unfit)})" if unfit else "ch"
