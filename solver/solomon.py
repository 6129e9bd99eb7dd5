"""Read Solomon and Gehring–Homberger VRPTW instances as Doorstep problems.

The text format: a name line, a ``VEHICLE`` block with the fleet size K and
capacity Q, and a ``CUSTOMER`` table (id, x, y, demand, ready, due, service);
row 0 is the depot and its due date is the horizon.

Each customer becomes a required :class:`~solver.model.Visit` with one
address at ``(lat=y/10, lon=x/10)``, its demand as ``load`` and one time window;
each of the K vehicles becomes an :class:`~solver.model.Agent` with the
depot as start and end and capacity Q. Time unit = one minute from midnight of
an arbitrary date in UTC. Use :func:`dimacs_travel` to price travel with the
DIMACS convention (Euclidean distance truncated to one decimal; travel time =
distance), so that plan distances in metres are ten times the benchmark's
distances.

A plan covers at most two days, and the Gehring–Homberger C2 instances run
over 3,598 minutes: such an instance is read with a coarser clock (one
instance unit = 30 s, :func:`seconds_per_unit`): every time, duration and
travel time scales alike, so feasibility and distances are unchanged; pass
the same unit to :func:`dimacs_travel`. GH 1000's R2 and RC2 instances (up to
7,697 units) pass two days even then, and a finer clock would make their
10-unit services fractions of a minute: they are read at 30 s a unit past the
day-span rule, which bounds what clients send, not what the solver can time.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from solver.model import Address, Agent, Location, Objective, Options, Place, Problem, TimeWindow, Visit
from solver.travel import PlanarTravel

# Typing note: solver/model.py gives defaults positionally (``Field(None, ...)``), which
# mypy's dataclass_transform support does not read, so it takes those fields for required.

#: Coordinates are stored divided by this, to stay inside latitude bounds.
COORDINATE_SCALE = 10.0
_DATE = dt.date(2026, 1, 5)
_UTC = dt.UTC


#: The longest horizon read at one minute per unit (a plan's shifts end within two days).
MAX_MINUTES = 2 * 24 * 60 - 60


def dimacs_travel(seconds_per_unit: int = 60) -> PlanarTravel:
    """Travel under the DIMACS convention for instances read here, on the
    clock :func:`seconds_per_unit` gives the instance."""
    return PlanarTravel(seconds_per_unit=seconds_per_unit, metres_per_unit=10, precision=10, scale=COORDINATE_SCALE)


def _table(path: str | Path) -> tuple[int, int, list[list[str]]]:
    lines = [line.split() for line in Path(path).read_text().splitlines()]
    rows = [r for r in lines if r]
    k_idx = next(i for i, r in enumerate(rows) if r[0].upper() == "NUMBER")
    fleet, capacity = int(rows[k_idx + 1][0]), int(rows[k_idx + 1][1])
    return fleet, capacity, [r for r in rows if r[0].isdigit() and len(r) == 7]


def seconds_per_unit(path: str | Path) -> int:
    """Seconds one time unit of the instance stands for: 60, or 30 when its
    horizon would not fit a plan's two days at 60."""
    _, _, table = _table(path)
    return 60 if float(table[0][5]) <= MAX_MINUTES else 30


def _at(units: float, unit_s: int) -> dt.datetime:
    return dt.datetime.combine(_DATE, dt.time(0, 0), tzinfo=_UTC) + dt.timedelta(seconds=units * unit_s)


def _loc(x: float, y: float) -> Location:
    return Location(lat=y / COORDINATE_SCALE, lon=x / COORDINATE_SCALE, crs="wgs84")


def read_solomon(path: str | Path, *, time_limit_s: float = 10.0, objective: Objective = "distance") -> Problem:
    """Read an instance file into a :class:`Problem` with every customer
    required, on the clock of :func:`seconds_per_unit`."""
    fleet, capacity, table = _table(path)
    unit_s = seconds_per_unit(path)
    depot = table[0]
    horizon = float(depot[5])
    depot_place = Place(location=_loc(float(depot[1]), float(depot[2])))
    visits = []
    for r in table[1:]:
        cid, x, y, demand, ready, due, service = r
        if (float(service) * unit_s) % 60:
            raise ValueError(f"{path}: customer {cid}'s service time is not whole minutes at {unit_s} s per unit")
        visits.append(
            Visit(
                id=cid,
                priority=100,
                required=True,
                duration_min=int(float(service) * unit_s // 60),
                load=int(float(demand)),
                addresses=[Address(location=_loc(float(x), float(y)),
                                   time_windows=[TimeWindow(start=_at(float(ready), unit_s),
                                                             end=_at(max(float(due), float(ready) + 1e-3), unit_s))])],
            )
        )
    agents = [
        Agent(
            id=f"v{k + 1}", shift=TimeWindow(start=_at(0, unit_s), end=_at(horizon, unit_s)), start=depot_place,
            capacity=capacity,
        )
        for k in range(fleet)
    ]
    fields: dict[str, Any] = {
        "date": _DATE,
        "timezone": "UTC",
        "visits": visits,
        "agents": agents,
        "options": Options(time_limit_s=time_limit_s, objective=objective, slot_minutes=0, rule_set="none"),
    }
    if horizon * unit_s <= MAX_MINUTES * 60:
        return Problem(**fields)
    # Past a plan's two days even at 30 s a unit (GH 1000 R2/RC2: 7,697 units; a finer clock would
    # make their 10-unit service times fractions of a minute): the day-span rule bounds what clients
    # send, not what the solver can time, so the instance is taken as read (ids are unique by
    # construction and there are no skills or pins for the other checks to refuse)
    return Problem.model_construct(**fields)  # defaults filled in as validation would
