"""One deadline for a whole search: :class:`Deadline`.

A plan's time limit covers everything after the request arrives: compiling,
the search and its stages (PyVRP, repairs, insertion, OR-Tools models and
their polish), and building the plan. Each stage used to get a time limit in
seconds of its own and added its set-up (model building, re-timing routes) on
top, so a 10 s plan of 1,000 visits took 21-36 s. Now :func:`solver.solve`
fixes one :class:`Deadline` on a monotonic clock and passes it down; a stage
takes a share of what remains (:meth:`Deadline.share`), caps a step
(:meth:`Deadline.cap`), and checks :meth:`Deadline.expired` before starting
work it need not do.
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
        The moment, in the seconds of ``clock``.
    clock
        The monotonic clock (default :func:`time.perf_counter`, which the
        searches' own timers use); tests pass a fake one.
    """

    at: float
    clock: Callable[[], float] = field(default=time.perf_counter, compare=False, repr=False)

    @classmethod
    def after(cls, seconds: float, clock: Callable[[], float] = time.perf_counter) -> Deadline:
        """The deadline ``seconds`` from now on ``clock``."""
        return cls(clock() + seconds, clock)

    @classmethod
    def of(cls, budget: float | Deadline) -> Deadline:
        """``budget`` itself when it is a deadline, else the deadline that many seconds from now."""
        return budget if isinstance(budget, Deadline) else cls.after(budget)

    def remaining(self) -> float:
        """Seconds left, never below zero."""
        return max(0.0, self.at - self.clock())

    def expired(self, margin_s: float = 0.0) -> bool:
        """Whether less than ``margin_s`` seconds are left (none at all, by default)."""
        return self.at - self.clock() <= margin_s

    def share(self, fraction: float, reserve_s: float = 0.0) -> Deadline:
        """The deadline after ``fraction`` of what remains once ``reserve_s``
        is kept back: a stage's part of the time, the rest for the stages
        after it. Never later than this deadline."""
        now = self.clock()
        left = max(0.0, self.at - now - reserve_s)
        return Deadline(min(self.at, now + max(0.0, fraction) * left), self.clock)

    def cap(self, seconds: float) -> Deadline:
        """The earlier of this deadline and ``seconds`` from now."""
        return Deadline(min(self.at, self.clock() + max(0.0, seconds)), self.clock)

    def earlier(self, other: Deadline) -> Deadline:
        """The earlier of this deadline and ``other`` (on this clock)."""
        return self if self.at <= other.at else Deadline(other.at, self.clock)
