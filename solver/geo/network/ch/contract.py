"""Contracting a graph: witness searches, shortcuts, the node order (:func:`build`)."""

from __future__ import annotations

import numpy as np

from solver.geo.network.ch import kernelcache
from solver.geo.network.ch.common import INF, ZERO, CHParams, Hierarchy, TooDense, csr_rows, grown, jit
from solver.geo.network.ch.heap import pop, push
from solver.geo.network.ch.state import reset
from solver.geo.network.graph import Ints

__all__ = ["build"]


@jit()
def _append(
    nbr: Ints, wt: Ints, start: Ints, length: Ints, cap: Ints, used: int, node: int, other: int, w: int
) -> tuple[Ints, Ints, int]:
    """Append ``(other, w)`` to ``node``'s list, moving the list to the pool's end when full."""
    if length[node] == cap[node]:
        new_cap = max(4, 2 * cap[node])
        if used + new_cap > nbr.size:
            grow = max(2 * nbr.size, used + new_cap)
            nbr, wt = grown(nbr, used, grow), grown(wt, used, grow)
        s, n = start[node], length[node]
        for k in range(n):  # loops, not slice copies: see common.grown
            nbr[used + k] = nbr[s + k]
            wt[used + k] = wt[s + k]
        start[node] = used
        cap[node] = new_cap
        used += new_cap
    i = start[node] + length[node]
    nbr[i] = other
    wt[i] = w
    length[node] += 1
    return nbr, wt, used


@jit()
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


@jit()
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


@jit()
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
    hk, hv, size = push(hk, hv, ZERO, ZERO, source)
    settled = 0
    while size > 0:
        d, x, size = pop(hk, hv, size)
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
                hk, hv, size = push(hk, hv, size, nd, y)
    return count, hk, hv


@jit()
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
                    doubled = np.empty((2 * out.shape[0], 3), np.int64)
                    for r in range(count):  # loops, not slice copies: see common.grown
                        doubled[r, 0], doubled[r, 1], doubled[r, 2] = out[r, 0], out[r, 1], out[r, 2]
                    out = doubled
                out[count, 0] = u
                out[count, 1] = x
                out[count, 2] = via
                count += 1
        reset(dist, touched, n_touched)
    return count, out, hk, hv


@jit()
def _keep(
    own: Ints, other: Ints, weight: Ints, used: int, v: int, s: int, count: int, nbr: Ints, wt: Ints
) -> tuple[Ints, Ints, Ints, int]:
    """Append ``v``'s ``count`` list entries from ``s`` as rows ``(v, nbr, wt)``, the arrays doubled when full."""
    if used + count > own.size:
        grow = max(2 * own.size, used + count)
        own, other, weight = grown(own, used, grow), grown(other, used, grow), grown(weight, used, grow)
    for e in range(s, s + count):
        own[used], other[used], weight[used] = v, nbr[e], wt[e]
        used += 1
    return own, other, weight, used


@jit()
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
    max_shortcuts: int,
) -> tuple[int, Ints, Ints, Ints, Ints, Ints, Ints]:
    """Contract every node; returns the largest degree met and the edge lists.

    The degree is negative when contraction stopped: -1 when a node to
    contract had more than ``max_degree`` edges, -2 when more than
    ``max_shortcuts`` shortcuts were added (either 0: no limit).
    """
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
    o_used = ZERO
    i_used = ZERO
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
    qsize = ZERO
    for v in range(n):
        m, sc, hk, hv = _shortcuts(
            v, priority_limit, o_start, o_len, o_nbr, o_wt, i_start, i_len, i_nbr, i_wt, dist, touched, hk, hv, sc
        )
        prio[v] = weights[0] * (m - o_len[v] - i_len[v])
        qk, qv, qsize = push(qk, qv, qsize, prio[v], v)
    up_t = np.empty(2 * tail.size + 16, np.int64)
    up_h = np.empty(2 * tail.size + 16, np.int64)
    up_w = np.empty(2 * tail.size + 16, np.int64)
    n_up = ZERO
    dn_v = np.empty(2 * tail.size + 16, np.int64)
    dn_u = np.empty(2 * tail.size + 16, np.int64)
    dn_w = np.empty(2 * tail.size + 16, np.int64)
    n_dn = ZERO
    order = 0
    top_degree = 0
    added = 0
    while qsize > 0:
        key, v, qsize = pop(qk, qv, qsize)
        if contracted[v] or key != prio[v]:
            continue
        m, sc, hk, hv = _shortcuts(
            v, priority_limit, o_start, o_len, o_nbr, o_wt, i_start, i_len, i_nbr, i_wt, dist, touched, hk, hv, sc
        )
        fresh = weights[0] * (m - o_len[v] - i_len[v]) + weights[1] * deleted[v] + weights[2] * depth[v]
        if qsize > 0 and fresh > qk[0]:
            prio[v] = fresh
            qk, qv, qsize = push(qk, qv, qsize, fresh, v)
            continue
        top_degree = max(top_degree, o_len[v] + i_len[v])
        if max_degree > 0 and top_degree > max_degree:
            return -1, up_t[:0], up_h[:0], up_w[:0], dn_v[:0], dn_u[:0], dn_w[:0]
        m, sc, hk, hv = _shortcuts(
            v, witness_limit, o_start, o_len, o_nbr, o_wt, i_start, i_len, i_nbr, i_wt, dist, touched, hk, hv, sc
        )
        added += m
        if max_shortcuts > 0 and added > max_shortcuts:
            return -2, up_t[:0], up_h[:0], up_w[:0], dn_v[:0], dn_u[:0], dn_w[:0]
        contracted[v] = True
        order += 1
        # The edges left at v all lead to nodes contracted later: v's upward edges.
        up_t, up_h, up_w, n_up = _keep(up_t, up_h, up_w, n_up, v, o_start[v], o_len[v], o_nbr, o_wt)
        dn_v, dn_u, dn_w, n_dn = _keep(dn_v, dn_u, dn_w, n_dn, v, i_start[v], i_len[v], i_nbr, i_wt)
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
                    qk, qv, qsize = push(qk, qv, qsize, fresh, x)
        o_len[v] = 0
        i_len[v] = 0
    return top_degree, up_t[:n_up], up_h[:n_up], up_w[:n_up], dn_v[:n_dn], dn_u[:n_dn], dn_w[:n_dn]


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
        Witness search limits and when to give up
        (:attr:`~CHParams.max_degree`, :attr:`~CHParams.max_shortcut_ratio`).

    Returns
    -------
    Hierarchy

    Raises
    ------
    TooDense
        When contraction gave up: the graph has no hierarchy worth building.
    """
    p = params or CHParams()
    top_degree, up_t, up_h, up_w, dn_v, dn_u, dn_w = kernelcache.call(
        _contract_all,
        int(n),
        np.ascontiguousarray(tail, dtype=np.int64),
        np.ascontiguousarray(head, dtype=np.int64),
        np.ascontiguousarray(weight, dtype=np.int64),
        int(p.witness_settled),
        int(p.priority_settled),
        bool(p.update_neighbours),
        np.array([p.edge_difference_weight, p.deleted_weight, p.depth_weight], dtype=np.int64),
        int(p.max_degree),
        int(p.max_shortcut_ratio * tail.size),
    )
    if top_degree == -1:
        raise TooDense(f"a node to contract has more than {p.max_degree} edges: the hierarchy would not pay")
    if top_degree == -2:
        raise TooDense(
            f"the shortcuts passed {p.max_shortcut_ratio:g} times the {tail.size:,} edges: the hierarchy would not pay"
        )
    up_start, up_head, up_weight = csr_rows(n, up_t, up_h, up_w)
    down_start, down_tail, down_weight = csr_rows(n, dn_v, dn_u, dn_w)
    return Hierarchy(int(n), up_start, up_head, up_weight, down_start, down_tail, down_weight, int(top_degree))
