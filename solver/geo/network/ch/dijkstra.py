"""Exact many-to-many by one plain Dijkstra search per source (numba), for graphs without a hierarchy.

The ``"ch"`` engine's answer for the mode graphs contraction gives up on
(:class:`~solver.geo.network.ch.TooDense`: e-bike and walking graphs, one
speed everywhere, have no hierarchy to exploit). :func:`dijkstra_many_to_many`
runs one search per source on the graph's CSR arrays with the same packed
integer weights as the hierarchy (so the matrix is identical to csgraph's
and to the hierarchy's), each search:

* starts from a *set* of nodes with initial weights (a snapped point leaves
  by its street's ends);
* on settling a node, offers its distance plus each entry weight to the
  targets entered from that node (a snapped point is entered from its
  street's ends);
* stops as soon as the smallest distance left in the queue is no less than
  every target's best so far (no later node can improve any target): the
  largest target value is recomputed every ``max(64, targets)`` settled
  nodes, an upper bound in between since values only fall.

The queue is Dial's buckets (width: the lightest edge, so a bucket's nodes
are final when it is reached and are settled in any order; a ring of
buckets a little longer than the heaviest edge) when edge weights spread
little, as on one-speed grids (heaviest over lightest about 3.3 on the
synthetic city's e-bike and walking graphs), else a binary heap
(:func:`bucket_layout`, :attr:`CHParams.dial_buckets`).

Sources are split into chunks run on :meth:`CHParams.thread_count` numba
threads (``prange``), each with its own search arrays; numba's
``workqueue`` layer is not thread-safe, so a run holds
:data:`~solver.geo.network.ch.common.PARALLEL_LOCK`, as hierarchy queries do.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt
from numba import prange

from solver.geo.network.ch import kernelcache
from solver.geo.network.ch.common import INF, PARALLEL_LOCK, ZERO, CHParams, jit
from solver.geo.network.ch.heap import pop, push
from solver.geo.network.ch.state import reset, scratch, seed
from solver.geo.network.graph import Ints

Ints32 = npt.NDArray[np.int32]

__all__ = ["bucket_layout", "dijkstra_many_to_many"]


@jit()
def _offer(x: int, d: int, entry_start: Ints, entry_target: Ints, entry_w: Ints, row: Ints) -> None:
    """Node ``x`` settled at ``d``: lower the targets entered from it."""
    for e in range(entry_start[x], entry_start[x + 1]):
        via = d + entry_w[e]
        j = entry_target[e]
        if via < row[j]:
            row[j] = via


@jit()
def _enqueue(ring: Ints, ent_node: Ints32, ent_next: Ints32, used: int, x: int, key: int, width: int) -> int:
    """File node ``x`` as entry ``used`` in the bucket of ``key``; returns the entries used."""
    slot = (key // width) % ring.size
    ent_node[used] = x
    ent_next[used] = ring[slot]
    ring[slot] = used
    return used + 1


@jit()
def _search(
    init_node: Ints,
    init_w: Ints,
    start: Ints,
    head: Ints,
    weight: Ints,
    entry_start: Ints,
    entry_target: Ints,
    entry_w: Ints,
    row: Ints,
    dist: Ints,
    touched: Ints,
    hk: Ints,
    hv: Ints,
) -> tuple[int, Ints, Ints]:
    """One search from weighted start nodes, filling ``row`` (one value per target).

    Returns ``(touched count, heap keys, heap values)`` and leaves ``dist``
    set on ``touched[:touched count]`` for the caller to reset.
    """
    count, hk, hv, size = seed(init_node, init_w, dist, touched, hk, hv)
    every = max(64, row.size)
    bound = INF if row.size > 0 else 0  # no target value is above it
    settled = 0
    while size > 0:
        d, x, size = pop(hk, hv, size)
        if d > dist[x]:
            continue
        if d >= bound:
            break
        _offer(x, d, entry_start, entry_target, entry_w, row)
        settled += 1
        if settled % every == 0:
            bound = row.max()
        for e in range(start[x], start[x + 1]):
            y = head[e]
            nd = d + weight[e]
            if nd < dist[y]:
                if dist[y] == INF:
                    touched[count] = y
                    count += 1
                dist[y] = nd
                hk, hv, size = push(hk, hv, size, nd, y)
    return count, hk, hv


@jit()
def _search_buckets(
    init_node: Ints,
    init_w: Ints,
    start: Ints,
    head: Ints,
    weight: Ints,
    entry_start: Ints,
    entry_target: Ints,
    entry_w: Ints,
    row: Ints,
    dist: Ints,
    touched: Ints,
    width: int,
    ring: Ints,
    ent_node: Ints32,
    ent_next: Ints32,
) -> int:
    """One search from weighted start nodes with Dial's buckets, filling ``row``.

    Bucket ``b`` holds the nodes reached with a distance in ``[b * width,
    (b + 1) * width)``; ``width`` is at most the lightest edge, so settling a
    node never adds to its own bucket and a bucket's nodes are all final
    when it is reached: they are settled in any order (last in, first out).
    ``ring`` (``-1`` filled) holds the first entry of each bucket modulo its
    size, which exceeds the heaviest edge (and start weight) over
    ``width`` plus one. Entries are nodes linked by ``ent_next``, one per
    improvement, filed under the distance it gave; a node is settled at its
    distance when its first entry comes up (distances only fall, so that is
    the entry of its lowest bucket, and a later improvement in that same
    bucket is final too), and its other entries are skipped. Returns the
    touched count and leaves ``dist`` set on ``touched[:count]`` for the
    caller to reset.
    """
    size = ring.size
    ring[:] = -1
    count = 0
    used = ZERO
    lowest = INF
    for i in range(init_node.size):
        x = init_node[i]
        w = init_w[i]
        if w < dist[x]:
            if dist[x] == INF:
                touched[count] = x
                count += 1
            dist[x] = w
            lowest = min(lowest, w)
    for i in range(init_node.size):  # one entry per start node, at its best weight
        x = init_node[i]
        if init_w[i] == dist[x]:
            used = _enqueue(ring, ent_node, ent_next, used, x, dist[x], width)
    pending = used
    slot = (lowest // width) % size if pending > 0 else 0
    every = max(64, row.size)
    check = every  # settled nodes left before the bound is recomputed
    bound = INF if row.size > 0 else 0  # no target value is above it
    while pending > 0:
        first = ring[slot]
        if first < 0:
            slot += 1
            if slot == size:
                slot = 0
            continue
        ring[slot] = ent_next[first]
        pending -= 1
        x = ent_node[first]
        d = dist[x]
        if d < 0:
            continue  # settled from an earlier entry
        if d >= bound:
            break
        dist[x] = d - INF  # settled (negative)
        _offer(x, d, entry_start, entry_target, entry_w, row)
        check -= 1
        if check == 0:
            bound = row.max()
            check = every
        for e in range(start[x], start[x + 1]):
            y = head[e]
            nd = d + weight[e]
            if nd < dist[y]:
                if dist[y] == INF:
                    touched[count] = y
                    count += 1
                dist[y] = nd
                used = _enqueue(ring, ent_node, ent_next, used, y, nd, width)
                pending += 1
    return count


@jit(parallel=True)
def _rows(
    n: int,
    start: Ints,
    head: Ints,
    weight: Ints,
    s_start: Ints,
    s_node: Ints,
    s_w: Ints,
    entry_start: Ints,
    entry_target: Ints,
    entry_w: Ints,
    n_targets: int,
    chunks: int,
    width: int,
    ring_size: int,
) -> Ints:
    """One search per source, chunks of sources in parallel: the packed distance rows.

    Dial's buckets of ``width`` on a ring of ``ring_size`` when ``width`` >
    0, else a binary heap.
    """
    k = s_start.size - 1
    out = np.full((k, n_targets), INF, np.int64)
    per = (k + chunks - 1) // chunks
    spare = weight.size + 1
    for i in range(k):
        spare = max(spare, weight.size + s_start[i + 1] - s_start[i])
    for c in prange(chunks):
        dist, touched, hk, hv = scratch(n)
        buckets = width > 0
        ring = np.empty(ring_size if buckets else 0, np.int64)
        ent_node = np.empty(spare if buckets else 0, np.int32)
        ent_next = np.empty(spare if buckets else 0, np.int32)
        for i in range(c * per, min(k, (c + 1) * per)):
            a, b = s_start[i], s_start[i + 1]
            if buckets:
                count = _search_buckets(
                    s_node[a:b], s_w[a:b], start, head, weight, entry_start, entry_target, entry_w, out[i], dist,
                    touched, width, ring, ent_node, ent_next,
                )
            else:
                count, hk, hv = _search(
                    s_node[a:b], s_w[a:b], start, head, weight, entry_start, entry_target, entry_w, out[i], dist,
                    touched, hk, hv,
                )
            reset(dist, touched, count)
    return out


def dijkstra_many_to_many(
    graph: tuple[Ints, Ints, Ints],
    sources: tuple[Ints, Ints, Ints],
    entries: tuple[Ints, Ints, Ints],
    n_targets: int,
    params: CHParams | None = None,
) -> Ints:
    """Packed shortest-path weights from every source set to every target, by Dijkstra.

    Parameters
    ----------
    graph : tuple of numpy.ndarray
        ``(start, head, weight)``: the graph in CSR form (``n + 1`` offsets,
        int64 heads and positive int64 packed weights, every path sum below
        2**62).
    sources : tuple of numpy.ndarray
        ``(start, node, weight)`` in CSR form: source ``i`` starts at nodes
        ``node[start[i]:start[i + 1]]`` with those initial weights.
    entries : tuple of numpy.ndarray
        ``(start, target, weight)`` in CSR form *by graph node* (``n + 1``
        offsets): from node ``x`` target ``target[e]`` is reached with
        ``weight[e]`` more, for ``e`` in ``start[x]:start[x + 1]``.
    n_targets : int
        Number of targets (columns).
    params : CHParams, optional
        Threads (:meth:`CHParams.thread_count`) and the largest bucket ring
        (:attr:`CHParams.dial_buckets`, :func:`bucket_layout`).

    Returns
    -------
    numpy.ndarray
        ``(sources, n_targets)`` int64 packed weights, :data:`INF` where no
        path exists.
    """
    start, head, weight = (np.ascontiguousarray(a, dtype=np.int64) for a in graph)
    s_start, s_node, s_w = (np.ascontiguousarray(a, dtype=np.int64) for a in sources)
    e_start, e_target, e_w = (np.ascontiguousarray(a, dtype=np.int64) for a in entries)
    p = params or CHParams()
    threads = p.thread_count()
    n_sources = s_start.size - 1
    width, ring = bucket_layout(weight, s_w, p)
    with PARALLEL_LOCK:
        previous = numba.get_num_threads()
        numba.set_num_threads(threads)
        try:
            result: Ints = kernelcache.call(
                _rows, start.size - 1, start, head, weight, s_start, s_node, s_w, e_start, e_target, e_w, int(n_targets),
                max(1, min(threads * 8, n_sources)), width, ring,
            )
        finally:
            numba.set_num_threads(previous)
    return result


def bucket_layout(weight: Ints, start_weight: Ints, params: CHParams) -> tuple[int, int]:
    """Dial's bucket width and ring size for a graph, or ``(0, 0)`` for a binary heap.

    The width is the lightest edge; the ring must hold the heaviest edge (or
    start weight) over the width, plus two. A ring larger than
    :attr:`CHParams.dial_buckets` (edge weights spread too widely: empty
    buckets would cost more than a heap saves) or a graph without edges
    selects the heap, as does a zero-weight edge.

    Parameters
    ----------
    weight : numpy.ndarray
        The graph's packed edge weights.
    start_weight : numpy.ndarray
        The sources' initial weights.
    params : CHParams
        :attr:`CHParams.dial_buckets`.

    Returns
    -------
    tuple of int
        ``(width, ring size)``; ``(0, 0)`` for the heap.
    """
    if weight.size == 0 or params.dial_buckets <= 0:
        return 0, 0
    width = int(weight.min())
    if width <= 0:  # a zero-weight edge: buckets cannot order its ends
        return 0, 0
    top = max(int(weight.max()), int(start_weight.max()) if start_weight.size else 0)
    ring = top // width + 2
    return (width, ring) if ring <= params.dial_buckets else (0, 0)
