"""Contraction hierarchy with bucket-based many-to-many queries, compiled with numba.

The ``"ch"`` matrix engine (:mod:`solver.geo.network.matrix`). A contraction
hierarchy (Geisberger et al., 2008) is built once per mode graph on the
*packed* integer weights of :func:`solver.geo.network.matrix.pack` (time in
the high bits, length in the low bits), so a query returns the fastest time
and the length of that path exactly as Dijkstra on the same weights does:
contraction keeps every shortest-path weight, and the packed weight of the
best path is one integer whatever path carries it.

* :func:`build` — contract nodes in the order of a lazily updated priority
  (edge difference + contracted neighbours + depth), adding a shortcut
  ``u → x`` for a contracted ``v`` unless a bounded witness search finds a
  path ``u → x`` avoiding ``v`` no heavier. A witness search cut off by its
  limit only adds shortcuts that are not needed: the hierarchy is exact
  either way.
* :func:`many_to_many` — Knopp et al.'s bucket algorithm: an upward search
  from every target leaves ``(target, distance)`` in a bucket at each node it
  settles; an upward search from every source scans the buckets of the
  nodes it settles. Both searches stall on demand. Sources and targets are
  *sets* of graph nodes with initial weights (a snapped point leaves by its
  street's ends), and direct point-to-point links are added on top.

The searches run on :class:`CHParams.threads` numba threads (sources split
into chunks, each with its own search arrays). numba's ``workqueue``
threading layer is chosen (unless ``NUMBA_THREADING_LAYER`` says otherwise)
because it survives ``fork`` (RQ work horses, job child processes), which
GNU OpenMP does not; it is not thread-safe, so queries take a lock.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import numba
import numpy as np
from numba import prange

from solver.geo.network.graph import Ints

__all__ = ["INF", "CHParams", "Hierarchy", "TooDense", "build", "many_to_many"]

F = TypeVar("F", bound=Callable[..., Any])

#: Unreachable. Far above any packed weight (< 2**53) and safe to add one to.
INF = np.int64(2**62)

if "NUMBA_THREADING_LAYER" not in os.environ:
    setattr(numba.config, "THREADING_LAYER", "workqueue")  # noqa: B010 (numba.config has no stubs)

#: One parallel query at a time per process (the workqueue layer is not thread-safe).
_QUERY_LOCK = threading.Lock()


def _jit(parallel: bool = False) -> Callable[[F], F]:
    """numba's ``njit`` (cached on disk), typed for mypy."""
    return cast(Callable[[F], F], numba.njit(cache=True, nogil=True, parallel=parallel))


class TooDense(RuntimeError):
    """The graph's core grew denser than :attr:`CHParams.max_degree` while contracting."""


@dataclass(frozen=True)
class CHParams:
    """Tuning of the hierarchy and its queries.

    Attributes
    ----------
    witness_settled : int
        Nodes a witness search may settle while contracting (more: fewer
        shortcuts, slower build).
    priority_settled : int
        Nodes a witness search may settle while estimating a node's priority.
    update_neighbours : bool
        Re-estimate the neighbours' priorities after each contraction (else
        only when a node comes to the front of the queue).
    edge_difference_weight, deleted_weight, depth_weight : int
        A node's priority (lowest contracted first): these times its edge
        difference (shortcuts added less edges removed), its contracted
        neighbours and its depth in the hierarchy so far.
    max_degree : int
        Give up (:class:`TooDense`) when a node to contract has more edges
        than this (0: never): on graphs without a speed hierarchy (e-bike and
        walking, one speed everywhere) the uncontracted core of a large grid
        becomes dense and contraction time explodes.
    threads : int
        numba threads for the queries; 0 for every core this process may use.
    """

    witness_settled: int = 100
    priority_settled: int = 20
    update_neighbours: bool = False
    edge_difference_weight: int = 2
    deleted_weight: int = 1
    depth_weight: int = 1
    max_degree: int = 0
    threads: int = 0

    def thread_count(self) -> int:
        """Threads to run: :attr:`threads`, or the cores this process may use."""
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        wanted = self.threads if self.threads > 0 else cores
        return int(max(1, min(wanted, getattr(numba.config, "NUMBA_NUM_THREADS", wanted))))


@dataclass(frozen=True)
class Hierarchy:
    """A contraction hierarchy as two upward graphs in CSR form.

    ``up_*``: edges ``v → x`` with ``x`` contracted after ``v`` (forward
    searches); ``down_*``: edges ``u → v`` with ``u`` contracted after ``v``,
    stored at ``v`` as ``(u, weight)`` (backward searches). Weights are packed
    integers.
    """

    size: int
    up_start: Ints
    up_head: Ints
    up_weight: Ints
    down_start: Ints
    down_tail: Ints
    down_weight: Ints
    top_degree: int = 0

    @property
    def edge_count(self) -> int:
        """Edges of both upward graphs (original edges and shortcuts)."""
        return int(self.up_head.size + self.down_tail.size)


# ---------------------------------------------------------------------- #
# Binary heap of (int64 key, int64 value) with lazy deletion
# ---------------------------------------------------------------------- #
@_jit()
def _push(keys: Ints, vals: Ints, size: int, key: int, val: int) -> tuple[Ints, Ints, int]:
    """Push ``(key, val)`` on the heap of ``size`` entries (arrays doubled when full); returns arrays and size."""
    if size == keys.size:
        grown_k = np.empty(2 * keys.size, np.int64)
        grown_v = np.empty(2 * keys.size, np.int64)
        grown_k[:size] = keys[:size]
        grown_v[:size] = vals[:size]
        keys, vals = grown_k, grown_v
    i = size
    while i > 0:
        parent = (i - 1) >> 1
        if keys[parent] <= key:
            break
        keys[i] = keys[parent]
        vals[i] = vals[parent]
        i = parent
    keys[i] = key
    vals[i] = val
    return keys, vals, size + 1


@_jit()
def _pop(keys: Ints, vals: Ints, size: int) -> tuple[int, int, int]:
    """Pop the smallest key: returns ``(key, val, new size)``."""
    key, val = keys[0], vals[0]
    size -= 1
    if size > 0:
        last_k, last_v = keys[size], vals[size]
        i = 0
        while True:
            child = 2 * i + 1
            if child >= size:
                break
            if child + 1 < size and keys[child + 1] < keys[child]:
                child += 1
            if keys[child] >= last_k:
                break
            keys[i] = keys[child]
            vals[i] = vals[child]
            i = child
        keys[i] = last_k
        vals[i] = last_v
    return key, val, size


# ---------------------------------------------------------------------- #
# Dynamic adjacency lists during contraction
# ---------------------------------------------------------------------- #
@_jit()
def _append(
    nbr: Ints, wt: Ints, start: Ints, length: Ints, cap: Ints, used: int, node: int, other: int, w: int
) -> tuple[Ints, Ints, int]:
    """Append ``(other, w)`` to ``node``'s list, moving the list to the pool's end when full."""
    if length[node] == cap[node]:
        new_cap = max(4, 2 * cap[node])
        if used + new_cap > nbr.size:
            grow = max(2 * nbr.size, used + new_cap)
            nbr2 = np.empty(grow, np.int64)
            wt2 = np.empty(grow, np.int64)
            nbr2[:used] = nbr[:used]
            wt2[:used] = wt[:used]
            nbr, wt = nbr2, wt2
        s, n = start[node], length[node]
        nbr[used : used + n] = nbr[s : s + n]
        wt[used : used + n] = wt[s : s + n]
        start[node] = used
        cap[node] = new_cap
        used += new_cap
    i = start[node] + length[node]
    nbr[i] = other
    wt[i] = w
    length[node] += 1
    return nbr, wt, used


@_jit()
def _upsert(
    nbr: Ints, wt: Ints, start: Ints, length: Ints, cap: Ints, used: int, node: int, other: int, w: int
) -> tuple[Ints, Ints, int]:
    """Set ``node → other`` to ``w`` unless a lighter entry exists."""
    for e in range(start[node], start[node] + length[node]):
        if nbr[e] == other:
            if w < wt[e]:
                wt[e] = w
            return nbr, wt, used
    return _append(nbr, wt, start, length, cap, used, node, other, w)


@_jit()
def _remove(nbr: Ints, wt: Ints, start: Ints, length: Ints, node: int, other: int) -> None:
    """Drop ``other`` from ``node``'s list (swap with the last entry)."""
    s = start[node]
    n = length[node]
    for e in range(s, s + n):
        if nbr[e] == other:
            nbr[e] = nbr[s + n - 1]
            wt[e] = wt[s + n - 1]
            length[node] = n - 1
            return


@_jit()
def _witness(
    source: int,
    skip: int,
    bound: int,
    limit: int,
    start: Ints,
    length: Ints,
    nbr: Ints,
    wt: Ints,
    dist: Ints,
    touched: Ints,
    hk: Ints,
    hv: Ints,
) -> tuple[int, Ints, Ints]:
    """Dijkstra from ``source`` avoiding ``skip``, up to ``bound`` or ``limit`` settled nodes.

    Leaves distances in ``dist`` (INF elsewhere) and the touched nodes in
    ``touched[:count]``; returns ``(count, heap keys, heap values)``.
    """
    count = 0
    dist[source] = 0
    touched[count] = source
    count += 1
    hk, hv, size = _push(hk, hv, 0, 0, source)
    settled = 0
    while size > 0:
        d, x, size = _pop(hk, hv, size)
        if d > dist[x]:
            continue
        if d > bound:
            break
        settled += 1
        if settled > limit:
            break
        for e in range(start[x], start[x] + length[x]):
            y = nbr[e]
            if y == skip:
                continue
            nd = d + wt[e]
            if nd < dist[y]:
                if dist[y] == INF:
                    touched[count] = y
                    count += 1
                dist[y] = nd
                hk, hv, size = _push(hk, hv, size, nd, y)
    return count, hk, hv


@_jit()
def _shortcuts(
    v: int,
    limit: int,
    o_start: Ints,
    o_len: Ints,
    o_nbr: Ints,
    o_wt: Ints,
    i_start: Ints,
    i_len: Ints,
    i_nbr: Ints,
    i_wt: Ints,
    dist: Ints,
    touched: Ints,
    hk: Ints,
    hv: Ints,
    out: Ints,
) -> tuple[int, Ints, Ints, Ints]:
    """Shortcuts needed to contract ``v``: rows ``(u, x, weight)`` in ``out``; returns their count."""
    count = 0
    top_out = 0
    for e in range(o_start[v], o_start[v] + o_len[v]):
        top_out = max(top_out, o_wt[e])
    for a in range(i_start[v], i_start[v] + i_len[v]):
        u = i_nbr[a]
        w_uv = i_wt[a]
        n_touched, hk, hv = _witness(u, v, w_uv + top_out, limit, o_start, o_len, o_nbr, o_wt, dist, touched, hk, hv)
        for b in range(o_start[v], o_start[v] + o_len[v]):
            x = o_nbr[b]
            if x == u:
                continue
            via = w_uv + o_wt[b]
            if dist[x] > via:
                if count == out.shape[0]:
                    grown = np.empty((2 * out.shape[0], 3), np.int64)
                    grown[:count] = out[:count]
                    out = grown
                out[count, 0] = u
                out[count, 1] = x
                out[count, 2] = via
                count += 1
        for t in range(n_touched):
            dist[touched[t]] = INF
    return count, out, hk, hv


@_jit()
def _contract_all(
    n: int,
    tail: Ints,
    head: Ints,
    weight: Ints,
    witness_limit: int,
    priority_limit: int,
    update_neighbours: bool,
    weights: Ints,
    max_degree: int,
) -> tuple[int, Ints, Ints, Ints, Ints, Ints, Ints]:
    """Contract every node; returns the largest degree met (-1: over ``max_degree``, stopped) and the edge lists."""
    o_start = np.zeros(n, np.int64)
    o_len = np.zeros(n, np.int64)
    o_cap = np.zeros(n, np.int64)
    i_start = np.zeros(n, np.int64)
    i_len = np.zeros(n, np.int64)
    i_cap = np.zeros(n, np.int64)
    pool = 2 * tail.size + 8 * n
    o_nbr = np.empty(pool, np.int64)
    o_wt = np.empty(pool, np.int64)
    i_nbr = np.empty(pool, np.int64)
    i_wt = np.empty(pool, np.int64)
    o_used = 0
    i_used = 0
    for e in range(tail.size):
        o_nbr, o_wt, o_used = _upsert(o_nbr, o_wt, o_start, o_len, o_cap, o_used, tail[e], head[e], weight[e])
        i_nbr, i_wt, i_used = _upsert(i_nbr, i_wt, i_start, i_len, i_cap, i_used, head[e], tail[e], weight[e])
    dist = np.full(n, INF, np.int64)
    touched = np.empty(n, np.int64)
    hk = np.empty(1024, np.int64)
    hv = np.empty(1024, np.int64)
    sc = np.empty((256, 3), np.int64)
    deleted = np.zeros(n, np.int64)
    depth = np.zeros(n, np.int64)
    contracted = np.zeros(n, np.bool_)
    prio = np.empty(n, np.int64)
    qk = np.empty(n + 16, np.int64)
    qv = np.empty(n + 16, np.int64)
    qsize = 0
    for v in range(n):
        m, sc, hk, hv = _shortcuts(
            v, priority_limit, o_start, o_len, o_nbr, o_wt, i_start, i_len, i_nbr, i_wt, dist, touched, hk, hv, sc
        )
        prio[v] = weights[0] * (m - o_len[v] - i_len[v])
        qk, qv, qsize = _push(qk, qv, qsize, prio[v], v)
    up_t = np.empty(2 * tail.size + 16, np.int64)
    up_h = np.empty(2 * tail.size + 16, np.int64)
    up_w = np.empty(2 * tail.size + 16, np.int64)
    n_up = 0
    dn_v = np.empty(2 * tail.size + 16, np.int64)
    dn_u = np.empty(2 * tail.size + 16, np.int64)
    dn_w = np.empty(2 * tail.size + 16, np.int64)
    n_dn = 0
    order = 0
    top_degree = 0
    while qsize > 0:
        key, v, qsize = _pop(qk, qv, qsize)
        if contracted[v] or key != prio[v]:
            continue
        m, sc, hk, hv = _shortcuts(
            v, priority_limit, o_start, o_len, o_nbr, o_wt, i_start, i_len, i_nbr, i_wt, dist, touched, hk, hv, sc
        )
        fresh = weights[0] * (m - o_len[v] - i_len[v]) + weights[1] * deleted[v] + weights[2] * depth[v]
        if qsize > 0 and fresh > qk[0]:
            prio[v] = fresh
            qk, qv, qsize = _push(qk, qv, qsize, fresh, v)
            continue
        top_degree = max(top_degree, o_len[v] + i_len[v])
        if max_degree > 0 and top_degree > max_degree:
            return -1, up_t[:0], up_h[:0], up_w[:0], dn_v[:0], dn_u[:0], dn_w[:0]
        m, sc, hk, hv = _shortcuts(
            v, witness_limit, o_start, o_len, o_nbr, o_wt, i_start, i_len, i_nbr, i_wt, dist, touched, hk, hv, sc
        )
        contracted[v] = True
        order += 1
        # The edges left at v all lead to nodes contracted later: v's upward edges.
        need = n_up + o_len[v]
        if need > up_t.size:
            grow = max(2 * up_t.size, need)
            up_t2, up_h2, up_w2 = np.empty(grow, np.int64), np.empty(grow, np.int64), np.empty(grow, np.int64)
            up_t2[:n_up], up_h2[:n_up], up_w2[:n_up] = up_t[:n_up], up_h[:n_up], up_w[:n_up]
            up_t, up_h, up_w = up_t2, up_h2, up_w2
        for e in range(o_start[v], o_start[v] + o_len[v]):
            up_t[n_up], up_h[n_up], up_w[n_up] = v, o_nbr[e], o_wt[e]
            n_up += 1
        need = n_dn + i_len[v]
        if need > dn_v.size:
            grow = max(2 * dn_v.size, need)
            dn_v2, dn_u2, dn_w2 = np.empty(grow, np.int64), np.empty(grow, np.int64), np.empty(grow, np.int64)
            dn_v2[:n_dn], dn_u2[:n_dn], dn_w2[:n_dn] = dn_v[:n_dn], dn_u[:n_dn], dn_w[:n_dn]
            dn_v, dn_u, dn_w = dn_v2, dn_u2, dn_w2
        for e in range(i_start[v], i_start[v] + i_len[v]):
            dn_v[n_dn], dn_u[n_dn], dn_w[n_dn] = v, i_nbr[e], i_wt[e]
            n_dn += 1
        # Detach v from its neighbours, then add the shortcuts.
        for e in range(o_start[v], o_start[v] + o_len[v]):
            x = o_nbr[e]
            _remove(i_nbr, i_wt, i_start, i_len, x, v)
        for e in range(i_start[v], i_start[v] + i_len[v]):
            u = i_nbr[e]
            _remove(o_nbr, o_wt, o_start, o_len, u, v)
        for s in range(m):
            u, x, w = sc[s, 0], sc[s, 1], sc[s, 2]
            o_nbr, o_wt, o_used = _upsert(o_nbr, o_wt, o_start, o_len, o_cap, o_used, u, x, w)
            i_nbr, i_wt, i_used = _upsert(i_nbr, i_wt, i_start, i_len, i_cap, i_used, x, u, w)
        # Neighbours: one more contracted neighbour, one level deeper, a fresh priority.
        for side in range(2):
            s0 = o_start[v] if side == 0 else i_start[v]
            cnt = o_len[v] if side == 0 else i_len[v]
            for e in range(s0, s0 + cnt):
                x = o_nbr[e] if side == 0 else i_nbr[e]
                if contracted[x]:
                    continue
                deleted[x] += 1
                depth[x] = max(depth[x], depth[v] + 1)
                if not update_neighbours:
                    continue
                mx, sc, hk, hv = _shortcuts(
                    x, priority_limit, o_start, o_len, o_nbr, o_wt, i_start, i_len, i_nbr, i_wt, dist, touched, hk,
                    hv, sc
                )
                fresh = weights[0] * (mx - o_len[x] - i_len[x]) + weights[1] * deleted[x] + weights[2] * depth[x]
                if fresh != prio[x]:
                    prio[x] = fresh
                    qk, qv, qsize = _push(qk, qv, qsize, fresh, x)
        o_len[v] = 0
        i_len[v] = 0
    return top_degree, up_t[:n_up], up_h[:n_up], up_w[:n_up], dn_v[:n_dn], dn_u[:n_dn], dn_w[:n_dn]


def _csr(n: int, owner: Ints, other: Ints, weight: Ints) -> tuple[Ints, Ints, Ints]:
    """Group ``(other, weight)`` rows by ``owner`` node into CSR ``(start, other, weight)``."""
    order = np.argsort(owner, kind="stable")
    start = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(owner, minlength=n), out=start[1:])
    return start, np.ascontiguousarray(other[order]), np.ascontiguousarray(weight[order])


def build(n: int, tail: Ints, head: Ints, weight: Ints, params: CHParams | None = None) -> Hierarchy:
    """Contract a directed graph with integer weights.

    Parameters
    ----------
    n : int
        Number of nodes.
    tail, head : numpy.ndarray
        Edge ends (one edge per ordered pair, no self-loops).
    weight : numpy.ndarray
        Positive int64 weights, each below 2**53 and their path sums too.
    params : CHParams, optional
        Witness search limits.

    Returns
    -------
    Hierarchy
    """
    p = params or CHParams()
    top_degree, up_t, up_h, up_w, dn_v, dn_u, dn_w = _contract_all(
        int(n),
        np.ascontiguousarray(tail, dtype=np.int64),
        np.ascontiguousarray(head, dtype=np.int64),
        np.ascontiguousarray(weight, dtype=np.int64),
        int(p.witness_settled),
        int(p.priority_settled),
        bool(p.update_neighbours),
        np.array([p.edge_difference_weight, p.deleted_weight, p.depth_weight], dtype=np.int64),
        int(p.max_degree),
    )
    if top_degree < 0:
        raise TooDense(f"a node to contract has more than {p.max_degree} edges: the hierarchy would not pay")
    up_start, up_head, up_weight = _csr(n, up_t, up_h, up_w)
    down_start, down_tail, down_weight = _csr(n, dn_v, dn_u, dn_w)
    return Hierarchy(int(n), up_start, up_head, up_weight, down_start, down_tail, down_weight, int(top_degree))


# ---------------------------------------------------------------------- #
# Queries
# ---------------------------------------------------------------------- #
@_jit()
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
    count = 0
    size = 0
    for i in range(init_node.size):
        x = init_node[i]
        if init_w[i] < dist[x]:
            if dist[x] == INF:
                touched[count] = x
                count += 1
            dist[x] = init_w[i]
            hk, hv, size = _push(hk, hv, size, init_w[i], x)
    settled = 0
    while size > 0:
        d, x, size = _pop(hk, hv, size)
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
                hk, hv, size = _push(hk, hv, size, nd, y)
    return settled, count, hk, hv


@_jit(parallel=True)
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
        dist = np.full(n, INF, np.int64)
        touched = np.empty(n, np.int64)
        hk = np.empty(1024, np.int64)
        hv = np.empty(1024, np.int64)
        space_node = np.empty(n, np.int64)
        space_dist = np.empty(n, np.int64)
        for j in range(c * per, min(k, (c + 1) * per)):
            a, b = t_start[j], t_start[j + 1]
            settled, count, hk, hv = _upward(
                t_node[a:b], t_w[a:b], down_start, down_tail, down_weight, up_start, up_head, up_weight,
                dist, touched, hk, hv, space_node, space_dist,
            )
            for t in range(count):
                dist[touched[t]] = INF
            counts[j] = settled
            m = min(settled, cap)
            nodes[j, :m] = space_node[:m]
            dists[j, :m] = space_dist[:m]
    return nodes, dists, counts


@_jit(parallel=True)
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
        dist = np.full(n, INF, np.int64)
        touched = np.empty(n, np.int64)
        hk = np.empty(1024, np.int64)
        hv = np.empty(1024, np.int64)
        space_node = np.empty(n, np.int64)
        space_dist = np.empty(n, np.int64)
        for i in range(c * per, min(k, (c + 1) * per)):
            a, b = s_start[i], s_start[i + 1]
            settled, count, hk, hv = _upward(
                s_node[a:b], s_w[a:b], up_start, up_head, up_weight, down_start, down_tail, down_weight,
                dist, touched, hk, hv, space_node, space_dist,
            )
            for t in range(count):
                dist[touched[t]] = INF
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
    with _QUERY_LOCK:
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
            nodes, dists, counts = _target_spaces(
                ch.size, *targets, ch.down_start, ch.down_tail, ch.down_weight, ch.up_start, ch.up_head,
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
        result: Ints = _source_rows(
            ch.size, *sources, ch.up_start, ch.up_head, ch.up_weight, ch.down_start, ch.down_tail, ch.down_weight,
            bucket_start, np.ascontiguousarray(target[order]), np.ascontiguousarray(dist[order]), n_targets,
            max(1, min(threads * 8, n_sources)),
        )
        return result
    finally:
        numba.set_num_threads(previous)
