"""Small hand-checkable problems on the plane (1 unit of distance = 1 minute).

``PlanarTravel`` reads ``lon`` as x and ``lat`` as y; with
``seconds_per_unit=60`` a point 10 units away is 10 minutes away, so the right
answer of each small instance can be worked out by hand.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from solver.model import Problem
from solver.travel import PlanarTravel

DATE = dt.date(2026, 12, 1)
PLANE = PlanarTravel(seconds_per_unit=60, metres_per_unit=1000, precision=10)
#: Iterations a test's search makes (PyVRP's, ruin-and-recreate's) unless the test says otherwise.
MAX_ITERATIONS = 10


def at(x: float, y: float = 0.0) -> dict[str, Any]:
    return {"location": {"lat": y, "lon": x}}


def visit(vid: str, x: float, y: float = 0.0, windows=(), **extra) -> dict[str, Any]:
    address = {**at(x, y), "time_windows": [{"start": s, "end": e} for s, e in windows]}
    return {"id": vid, "duration_min": extra.pop("duration_min", 10), "addresses": [address], **extra}


def crew(cid: str, x: float = 0.0, y: float = 0.0, shift=("08:00", "18:00"), **extra) -> dict[str, Any]:
    return {"id": cid, "shift": {"start": shift[0], "end": shift[1]}, "start": at(x, y), **extra}


def problem(visits, agents, **options) -> Problem:
    """A day on the plane. Rules are on by default in Doorstep; these tests are
    about planning mechanics, so they name no rules (``rule_set="none"``)
    unless they pass a rule set (``rule_set=None``: the configured default).
    Their searches stop after :data:`MAX_ITERATIONS` iterations (or at the
    time limit): the small days here need few, and a test waits for none it
    does not need (``max_iterations=None``: search until the time limit)."""
    options.setdefault("time_limit_s", 1)
    options.setdefault("max_iterations", MAX_ITERATIONS)
    options.setdefault("rule_set", "none")
    return Problem.model_validate(
        {"date": DATE.isoformat(), "timezone": "Asia/Shanghai", "visits": visits, "agents": agents,
         "options": options}
    )


def minutes(t: dt.datetime) -> float:
    """Minutes after local midnight of the plan date."""
    return (t - dt.datetime.combine(DATE, dt.time(0), tzinfo=t.tzinfo)).total_seconds() / 60
