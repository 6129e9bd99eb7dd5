"""A search's scratch state, shared by the hierarchy's queries and the Dijkstra fallback (numba).

Every search keeps a distance per node (:data:`~solver.geo.network.ch.common.INF`
where not reached), the list of nodes it touched (so only those are reset
for the next search) and a binary heap. A parallel run gives each chunk of
sources its own state (:func:`scratch`); each search starts by
:func:`seed` and ends by :func:`reset`.
"""

from __future__ import annotations

import numpy as np

from solver.geo.network.ch.common import INF, ZERO, jit
from solver.geo.network.ch.heap import push
from solver.geo.network.graph import Ints

__all__ = ["reset", "scratch", "seed"]


@jit()
def scratch(n: int) -> tuple[Ints, Ints, Ints, Ints]:
    """Fresh ``(dist, touched, heap keys, heap values)`` for searches on ``n`` nodes."""
    return np.full(n, INF, np.int64), np.empty(n, np.int64), np.empty(1024, np.int64), np.empty(1024, np.int64)


@jit()
def seed(
    init_node: Ints, init_w: Ints, dist: Ints, touched: Ints, hk: Ints, hv: Ints
) -> tuple[int, Ints, Ints, int]:
    """Start a search at weighted nodes: each at its lightest weight, touched and pushed.

    Returns ``(touched count, heap keys, heap values, heap size)``.
    """
    count = 0
    size = ZERO
    for i in range(init_node.size):
        x = init_node[i]
        if init_w[i] < dist[x]:
            if dist[x] == INF:
                touched[count] = x
                count += 1
            dist[x] = init_w[i]
            hk, hv, size = push(hk, hv, size, init_w[i], x)
    return count, hk, hv, size


@jit()
def reset(dist: Ints, touched: Ints, count: int) -> None:
    """Set the ``count`` touched nodes' distances back to unreached."""
    for t in range(count):
        dist[touched[t]] = INF
