"""Doorstep's planning core: usable on its own, without the web service.

>>> from solver import Problem, solve
>>> plan = solve(Problem.model_validate(payload))

The data flow is one way: validated :class:`Problem` → geocode → travel-time
matrix → OR-Tools search → :class:`Plan` (routes, stops, unassigned reasons).
"""

from solver.booking import SlotUnavailable, insert_visit, offer_slots
from solver.model import (
    Address,
    Agent,
    Break,
    CrewState,
    DayState,
    Location,
    Options,
    Place,
    Plan,
    Problem,
    Route,
    Stop,
    TimeWindow,
    Unassigned,
    Visit,
)
from solver.replan import reoptimize
from solver.solve import solve

__all__ = [
    "Address",
    "Agent",
    "Break",
    "CrewState",
    "DayState",
    "Location",
    "Options",
    "Place",
    "Plan",
    "Problem",
    "Route",
    "SlotUnavailable",
    "Stop",
    "TimeWindow",
    "Unassigned",
    "Visit",
    "insert_visit",
    "offer_slots",
    "reoptimize",
    "solve",
]
