"""Travel models that fail on purpose, named by import path
(``TRAVEL="tests.faults:aborting"``) so that a job process builds them itself:
real faults (a native abort, a segmentation fault, memory past the cap, a
search that never ends) in a real job process.

Some also change the solver *in the job process only* (each job runs in a
fresh process, so nothing leaks to the next job or to the web process).
"""

from __future__ import annotations

import ctypes
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

from solver.model import Location
from solver.travel import StraightLineTravel, TravelMatrix, TravelMode

#: Seconds :func:`pausing` waits before it builds its travel model.
PAUSE_S = 3.0
#: What :func:`exploding_solver` raises: it quotes visit v1's borrower (the conftest payload).
EXPLOSION = "engine exploded for Borrower 1 at 13800000001"


@dataclass(frozen=True)
class _Faulty:
    """Straight-line travel whose matrix fails as ``fault`` says."""

    fault: str

    def matrix(self, points: Sequence[Location], mode: TravelMode) -> TravelMatrix:
        if self.fault == "abort":
            os.abort()  # as OR-Tools does on a failed CHECK
        elif self.fault == "segfault":
            ctypes.string_at(0)  # reads address 0: SIGSEGV
        elif self.fault == "memory":
            hoard = []
            for _ in range(64):  # 64 MB at a time, touched, until the cap stops it (4 GB: the cap did not)
                hoard.append(b"x" * (64 << 20))
            raise AssertionError("4 GB allocated: no memory cap in this job process")
        elif self.fault == "sleep":
            time.sleep(600)
        return StraightLineTravel().matrix(points, mode)


def aborting() -> _Faulty:
    return _Faulty("abort")


def segfaulting() -> _Faulty:
    return _Faulty("segfault")


def memory_hog() -> _Faulty:
    return _Faulty("memory")


def sleeping() -> _Faulty:
    return _Faulty("sleep")


def pausing() -> StraightLineTravel:
    """Straight-line travel, built after a pause of :data:`PAUSE_S` seconds: a job that stays
    running that long without searching (a job beside a faulty one, costing no CPU meanwhile)."""
    time.sleep(PAUSE_S)
    return StraightLineTravel()


def exploding_solver() -> StraightLineTravel:
    """Straight-line travel; in this job process, ``solver.solve`` raises an
    error whose message quotes a borrower (it must reach the job, never a log)."""
    import solver

    def broken(problem, travel=None, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError(EXPLOSION)

    solver.solve = broken  # type: ignore[assignment]
    return StraightLineTravel()


def reversing_solver() -> StraightLineTravel:
    """Straight-line travel; in this job process, ``solver.solve`` reverses a
    route's stops (times no longer follow the order: the checker must refuse it)."""
    import solver

    real_solve = solver.solve

    def wrong_order(problem, travel=None, **kwargs):  # type: ignore[no-untyped-def]
        plan = real_solve(problem, travel, **kwargs)
        route = next(r for r in plan.routes if len(r.stops) >= 2)
        route.stops.reverse()
        return plan

    solver.solve = wrong_order  # type: ignore[assignment]
    return StraightLineTravel()
