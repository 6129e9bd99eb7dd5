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
* :func:`dijkstra_many_to_many` — for the graphs contraction gives up on
  (:class:`TooDense`): one plain Dijkstra search per source on the graph
  itself (Dial's buckets when edge weights spread little, else a binary
  heap), stopped once no target can improve; the same packed weights, so
  the same matrix.

The searches run on :class:`CHParams.threads` numba threads (sources split
into chunks, each with its own search arrays). numba's ``workqueue``
threading layer is chosen (unless ``NUMBA_THREADING_LAYER`` says otherwise)
because it survives ``fork`` (RQ work horses, job child processes), which
GNU OpenMP does not; it is not thread-safe, so queries take a lock.

Modules: :mod:`~solver.geo.network.ch.common` (parameters, the hierarchy,
numba setup), :mod:`~solver.geo.network.ch.heap` (binary heap),
:mod:`~solver.geo.network.ch.contract` (:func:`build`),
:mod:`~solver.geo.network.ch.query` (:func:`many_to_many`) and
:mod:`~solver.geo.network.ch.dijkstra` (:func:`dijkstra_many_to_many`). numba caches each
compiled function on disk, in one folder per user shared by every checkout
(:mod:`~solver.geo.network.ch.kernelcache`), stamped with a digest of all the
package's files: a change to any of them compiles every kernel again.
"""

from __future__ import annotations

from solver.geo.network.ch.common import INF, CHParams, Hierarchy, TooDense, csr_rows
from solver.geo.network.ch.contract import build
from solver.geo.network.ch.dijkstra import dijkstra_many_to_many
from solver.geo.network.ch.query import many_to_many

__all__ = ["INF", "CHParams", "Hierarchy", "TooDense", "build", "csr_rows", "dijkstra_many_to_many", "many_to_many"]
