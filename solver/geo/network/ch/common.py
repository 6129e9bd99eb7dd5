"""Shared parts of the contraction hierarchy: parameters, the hierarchy itself, numba setup.

numba's ``workqueue`` threading layer is chosen (unless
``NUMBA_THREADING_LAYER`` says otherwise) because it survives ``fork`` (RQ
work horses, job child processes), which GNU OpenMP does not.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import numba
import numpy as np

from solver.geo.network.ch import kernelcache
from solver.geo.network.graph import Ints

__all__ = ["INF", "PARALLEL_LOCK", "ZERO", "CHParams", "Hierarchy", "TooDense", "grown", "jit"]

F = TypeVar("F", bound=Callable[..., Any])

#: Unreachable. Far above any packed weight (< 2**53) and safe to add one to.
INF = np.int64(2**62)

#: One parallel numba run at a time per process (the workqueue layer is not
#: thread-safe): hierarchy queries and plain Dijkstra searches both hold it.
PARALLEL_LOCK = threading.Lock()

if "NUMBA_THREADING_LAYER" not in os.environ:
    setattr(numba.config, "THREADING_LAYER", "workqueue")  # noqa: B010 (numba.config has no stubs)
kernelcache.install()  # before any kernel is defined: one cache per user, not per checkout


def jit(parallel: bool = False) -> Callable[[F], F]:
    """numba's ``njit`` (cached on disk), typed for mypy."""
    return cast(Callable[[F], F], numba.njit(cache=True, nogil=True, parallel=parallel))


#: A zero typed ``int64`` for the kernels' counters and sizes. A plain ``0`` passed to another kernel (or
#: starting a counter that is passed on) types as ``Literal[int](0)`` in numba's first inference pass, so
#: each callee was compiled twice, once for the literal: 3 s of the 23 s a fresh install compiled.
ZERO = cast(int, np.int64(0))  # an int to mypy, numpy's int64 to numba


@jit()
def grown(values: Ints, used: int, size: int) -> Ints:
    """A new int64 array of ``size`` holding ``values[:used]``.

    Copied in a loop: a slice assignment (``new[:used] = values[:used]``) makes numba compile its
    broadcast checks and their error messages (string formatting) into every kernel that has one, about
    4.5 s of the fresh install's kernel compilation.
    """
    out = np.empty(size, np.int64)
    for i in range(used):
        out[i] = values[i]
    return out


def csr_rows(count: int, owner: Ints, other: Ints, weight: Ints) -> tuple[Ints, Ints, Ints]:
    """Group ``(other, weight)`` rows by ``owner`` (0 … count - 1) into CSR ``(start, other, weight)``.

    Rows keep their order within an owner; ``start`` has ``count + 1`` offsets.
    """
    order = np.argsort(owner, kind="stable")
    start = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(np.bincount(owner, minlength=count), out=start[1:])
    return start, np.ascontiguousarray(other[order], dtype=np.int64), np.ascontiguousarray(weight[order])


class TooDense(RuntimeError):
    """Contraction gave up: the graph's core grew denser than :attr:`CHParams.max_degree`, or the
    shortcuts outgrew :attr:`CHParams.max_shortcut_ratio` times its edges."""


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
    max_shortcut_ratio : float
        Give up (:class:`TooDense`) as soon as the shortcuts added pass this
        times the graph's edges (0: never; a shortcut that lowers an existing
        edge counts too). A graph with a speed hierarchy needs fewer
        shortcuts than edges in all (the synthetic city's drive graph: 0.9 at
        sizes 125 and 400); a one-speed grid passes one shortcut per edge
        with 40 % of its nodes left and would reach the degree limit only
        after most of its contraction time.
    threads : int
        numba threads for the queries; 0 for every core this process may use.
    dial_buckets : int
        Largest ring of Dial's buckets for plain Dijkstra searches on graphs
        without a hierarchy (:mod:`~solver.geo.network.ch.dijkstra`): the
        heaviest edge over the lightest, plus two (a one-speed grid needs
        about five); a graph needing more is searched with a binary heap
        (0: always).
    """

    witness_settled: int = 100
    priority_settled: int = 20
    update_neighbours: bool = False
    edge_difference_weight: int = 2
    deleted_weight: int = 1
    depth_weight: int = 1
    max_degree: int = 0
    max_shortcut_ratio: float = 0.0
    threads: int = 0
    dial_buckets: int = 4096

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
