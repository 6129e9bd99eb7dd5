"""One deadline for a whole search: :class:`Deadline`.

A plan's time limit covers the search and its stages (PyVRP, repairs,
insertion, OR-Tools models and their polish) and building the plan after it.
Each stage used to get a time limit in seconds of its own and added its
set-up (model building, re-timing routes) on top, and every territory of a
large day got at least a second. Now :func:`solver.solve` fixes one
:class:`Deadline` on a monotonic clock and passes it down; a stage takes a
share of what remains (:meth:`Deadline.share`), caps a step
(:meth:`Deadline.cap`), and checks :meth:`Deadline.expired` before starting
work it need not do.

Building the plan takes CPU time that the load of the machine stretches (on
two cores shared with ten other processes, 0.8 s of CPU took 3.8 s): a
deadline can keep back ``reserve_cpu_s`` CPU seconds, turned into wall
seconds at the share of a core this process has had since ``origin``
(:meth:`Deadline.end`; measured from the start of the search, beginning
with a prior: :meth:`Deadline.reserving`), so the search ends that much
earlier under load.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Deadline:
    """A moment on a monotonic clock by which a search must be done.

    Parameters
    ----------
    at
        The moment the plan is due, in the seconds of ``clock``.
    clock
        The monotonic clock (default :func:`time.perf_counter`, which the
        searches' own timers use); tests pass a fake one.
    reserve_cpu_s
        CPU seconds of work that follows the search (building the plan),
        kept back from ``at`` (:meth:`end`).
    origin
        ``(clock, cpu_clock)`` readings from which this process's share of
        a core is measured.
    cpu_clock
        This process's CPU time (default :func:`time.process_time`).
    min_share
        The share of a core assumed at least, however little was measured.
    prior_share
        The share of a core expected before any was measured ...
    prior_weight_s
        ... counted as if measured over this many seconds.
    """

    at: float
    clock: Callable[[], float] = field(default=time.perf_counter, compare=False, repr=False)
    reserve_cpu_s: float = 0.0
    origin: tuple[float, float] = (0.0, 0.0)
    cpu_clock: Callable[[], float] = field(default=time.process_time, compare=False, repr=False)
    min_share: float = 0.05
    prior_share: float = 1.0
    prior_weight_s: float = 0.0

    @classmethod
    def after(cls, seconds: float, clock: Callable[[], float] = time.perf_counter) -> Deadline:
        """The deadline ``seconds`` from now on ``clock``."""
        return cls(clock() + seconds, clock)

    @classmethod
    def for_plan(cls, started: float, limit_s: float, min_search_share: float,
                 clock: Callable[[], float] = time.perf_counter) -> Deadline:
        """A plan's search deadline, fixed once its matrix is ready: ``limit_s``
        after ``started`` (the plan's whole time, geocoding and matrix in it),
        but at least ``min_search_share`` of ``limit_s`` from now."""
        return cls(max(started + limit_s, clock() + min_search_share * limit_s), clock)

    @classmethod
    def of(cls, budget: float | Deadline) -> Deadline:
        """``budget`` itself when it is a deadline, else the deadline that many seconds from now."""
        return budget if isinstance(budget, Deadline) else cls.after(budget)

    def reserving(self, cpu_s: float, prior_share: float = 1.0, prior_weight_s: float = 0.0) -> Deadline:
        """This deadline keeping back ``cpu_s`` CPU seconds for the work after
        the search, at the share of a core this process gets from now on:
        ``prior_share`` (a whole core by default), as if measured over
        ``prior_weight_s`` seconds, then what the search itself gets."""
        return Deadline(self.at, self.clock, cpu_s, (self.clock(), self.cpu_clock()), self.cpu_clock,
                        self.min_share, prior_share, prior_weight_s)

    def core_share(self) -> float:
        """The share of a core this process has had since ``origin``, the
        prior counted in (between :attr:`min_share` and 1; the prior before
        any time has passed)."""
        wall = self.clock() - self.origin[0] + self.prior_weight_s
        if wall <= 0:
            return min(1.0, max(self.min_share, self.prior_share))
        cpu = self.cpu_clock() - self.origin[1] + self.prior_share * self.prior_weight_s
        return min(1.0, max(self.min_share, cpu / wall))

    def end(self) -> float:
        """When the search must end: :attr:`at` less the reserve, in wall
        seconds at this process's :meth:`core_share`."""
        if self.reserve_cpu_s <= 0:
            return self.at
        return self.at - self.reserve_cpu_s / self.core_share()

    def remaining(self) -> float:
        """Seconds left until :meth:`end`, never below zero."""
        return max(0.0, self.end() - self.clock())

    def expired(self, margin_s: float = 0.0) -> bool:
        """Whether less than ``margin_s`` seconds are left (none at all, by default)."""
        return self.end() - self.clock() <= margin_s

    def share(self, fraction: float, reserve_s: float = 0.0) -> Deadline:
        """The deadline after ``fraction`` of what remains once ``reserve_s``
        is kept back: a stage's part of the time, the rest for the stages
        after it. Never later than :meth:`end`."""
        now, end = self.clock(), self.end()
        left = max(0.0, end - now - reserve_s)
        return Deadline(min(end, now + max(0.0, fraction) * left), self.clock)

    def cap(self, seconds: float) -> Deadline:
        """The earlier of :meth:`end` and ``seconds`` from now."""
        return Deadline(min(self.end(), self.clock() + max(0.0, seconds)), self.clock)

    def until(self, moment: float) -> Deadline:
        """The earlier of :meth:`end` and ``moment`` (on this clock)."""
        return Deadline(min(self.end(), moment), self.clock)
