"""Bucket-based many-to-many queries on a hierarchy (:func:`many_to_many`).

numba's ``workqueue`` layer (:mod:`~solver.geo.network.ch.common`) is not
thread-safe, so queries take :data:`~solver.geo.network.ch.common.PARALLEL_LOCK`.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from solver.geo.network.ch import kernelcache
from solver.geo.network.ch.common import INF, PARALLEL_LOCK, CHParams, Hierarchy, jit
from solver.geo.network.ch.heap import pop, push
from solver.geo.network.ch.state import reset, scratch, seed
from solver.geo.network.graph import Ints

__all__ = ["many_to_many"]


@jit()
def _upward(
    init_node: Ints,
    init_w: Ints,
    start: Ints,
    other: Ints,
    weight: Ints,
    stall_start: Ints,
    stall_other: Ints,
    stall_weight: Ints,
    dist: Ints,
    touched: Ints,
    hk: Ints,
    hv: Ints,
    out_node: Ints,
    out_dist: Ints,
) -> tuple[int, int, Ints, Ints]:
    """Upward search with stall-on-demand from weighted start nodes.

    Settled, unstalled nodes go to ``out_node``/``out_dist``; returns
    ``(settled count, touched count, heap keys, heap values)`` and leaves
    ``dist`` set on ``touched[:touched count]`` for the caller to reset.
    """
    count, hk, hv, size = seed(init_node, init_w, dist, touched, hk, hv)
    settled = 0
    while size > 0:
        d, x, size = pop(hk, hv, size)
        if d > dist[x]:
            continue
        stalled = False
        for e in range(stall_start[x], stall_start[x + 1]):
            if dist[stall_other[e]] + stall_weight[e] < d:
                stalled = True
                break
        if stalled:
            continue
        out_node[settled] = x
        out_dist[settled] = d
        settled += 1
        for e in range(start[x], start[x + 1]):
            y = other[e]
            nd = d + weight[e]
            if nd < dist[y]:
                if dist[y] == INF:
                    touched[count] = y
                    count += 1
                dist[y] = nd
                hk, hv, size = push(hk, hv, size, nd, y)
    return settled, count, hk, hv


@jit(parallel=True)
def _target_spaces(
    n: int,
    t_start: Ints,
    t_node: Ints,
    t_w: Ints,
    down_start: Ints,
    down_tail: Ints,
    down_weight: Ints,
    up_start: Ints,
    up_head: Ints,
    up_weight: Ints,
    chunks: int,
    cap: int,
) -> tuple[Ints, Ints, Ints]:
    """Backward upward search from every target: its settled nodes and distances (first ``cap``) and count."""
    k = t_start.size - 1
    per = (k + chunks - 1) // chunks
    nodes = np.empty((k, cap), np.int64)
    dists = np.empty((k, cap), np.int64)
    counts = np.zeros(k, np.int64)
    for c in prange(chunks):
        dist, touched, hk, hv = scratch(n)
        space_node = np.empty(n, np.int64)
        space_dist = np.empty(n, np.int64)
        for j in range(c * per, min(k, (c + 1) * per)):
            a, b = t_start[j], t_start[j + 1]
            settled, count, hk, hv = _upward(
                t_node[a:b], t_w[a:b], down_start, down_tail, down_weight, up_start, up_head, up_weight,
                dist, touched, hk, hv, space_node, space_dist,
            )
            reset(dist, touched, count)
            counts[j] = settled
            m = min(settled, cap)
            for q in range(m):  # loops, not slice copies: see common.grown
                nodes[j, q] = space_node[q]
                dists[j, q] = space_dist[q]
    return nodes, dists, counts


@jit(parallel=True)
def _source_rows(
    n: int,
    s_start: Ints,
    s_node: Ints,
    s_w: Ints,
    up_start: Ints,
    up_head: Ints,
    up_weight: Ints,
    down_start: Ints,
    down_tail: Ints,
    down_weight: Ints,
    bucket_start: Ints,
    bucket_target: Ints,
    bucket_dist: Ints,
    n_targets: int,
    chunks: int,
) -> Ints:
    """Forward upward search from every source, scanning the buckets: the packed distance rows."""
    k = s_start.size - 1
    out = np.full((k, n_targets), INF, np.int64)
    per = (k + chunks - 1) // chunks
    for c in prange(chunks):
        dist, touched, hk, hv = scratch(n)
        space_node = np.empty(n, np.int64)
        space_dist = np.empty(n, np.int64)
        for i in range(c * per, min(k, (c + 1) * per)):
            a, b = s_start[i], s_start[i + 1]
            settled, count, hk, hv = _upward(
                s_node[a:b], s_w[a:b], up_start, up_head, up_weight, down_start, down_tail, down_weight,
                dist, touched, hk, hv, space_node, space_dist,
            )
            reset(dist, touched, count)
            row = out[i]
            for q in range(settled):
                x = space_node[q]
                d = space_dist[q]
                for e in range(bucket_start[x], bucket_start[x + 1]):
                    via = d + bucket_dist[e]
                    j = bucket_target[e]
                    if via < row[j]:
                        row[j] = via
    return out


def many_to_many(
    ch: Hierarchy,
    sources: tuple[Ints, Ints, Ints],
    targets: tuple[Ints, Ints, Ints],
    params: CHParams | None = None,
) -> Ints:
    """Packed shortest-path weights from every source set to every target set.

    Parameters
    ----------
    ch : Hierarchy
        The contracted graph.
    sources, targets : tuple of numpy.ndarray
        ``(start, node, weight)`` in CSR form: source ``i`` starts at nodes
        ``node[start[i]:start[i + 1]]`` with those initial weights (target
        ``j`` is reached from its nodes with theirs).
    params : CHParams, optional
        Threads.

    Returns
    -------
    numpy.ndarray
        ``(sources, targets)`` int64 packed weights, :data:`INF` where no
        path exists.
    """
    p = params or CHParams()
    threads = p.thread_count()
    with PARALLEL_LOCK:
        return _many_to_many(ch, sources, targets, threads)


def _many_to_many(ch: Hierarchy, sources: tuple[Ints, Ints, Ints], targets: tuple[Ints, Ints, Ints], threads: int) -> Ints:
    """:func:`many_to_many` on ``threads`` numba threads (the caller holds the query lock)."""
    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        n_targets = targets[0].size - 1
        chunks = max(1, min(threads * 8, n_targets))
        cap = 2048
        while True:
            nodes, dists, counts = kernelcache.call(
                _target_spaces, ch.size, *targets, ch.down_start, ch.down_tail, ch.down_weight, ch.up_start, ch.up_head,
                ch.up_weight, chunks, cap,
            )
            if counts.size == 0 or counts.max() <= cap:
                break
            cap = int(counts.max())
        kept = np.arange(cap)[None, :] < counts[:, None]
        node, dist = nodes[kept], dists[kept]
        target = np.repeat(np.arange(n_targets, dtype=np.int64), counts)
        order = np.argsort(node, kind="stable")
        bucket_start = np.zeros(ch.size + 1, dtype=np.int64)
        np.cumsum(np.bincount(node, minlength=ch.size), out=bucket_start[1:])
        n_sources = sources[0].size - 1
        result: Ints = kernelcache.call(
            _source_rows, ch.size, *sources, ch.up_start, ch.up_head, ch.up_weight, ch.down_start, ch.down_tail, ch.down_weight,
            bucket_start, np.ascontiguousarray(target[order]), np.ascontiguousarray(dist[order]), n_targets,
            max(1, min(threads * 8, n_sources)),
        )
        return result
    finally:
        numba.set_num_threads(previous)
