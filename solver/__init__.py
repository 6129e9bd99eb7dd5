"""Doorstep's planning core: usable on its own, without the web service.

>>> from solver import Problem, solve
>>> plan = solve(Problem.model_validate(payload))

The data flow is one way: validated :class:`Problem` → geocode → travel-time
matrix → OR-Tools search → :class:`Plan` (routes, stops, unassigned reasons).
"""

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
from solver.solve import solve
from solver.booking import SlotUnavailable, insert_visit, offer_slots
from solver.replan import reoptimize

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
    "Stop",
    "TimeWindow",
    "Unassigned",
    "Visit",
    "solve",
    "offer_slots",
    "insert_visit",
    "SlotUnavailable",
    "reoptimize",
]
