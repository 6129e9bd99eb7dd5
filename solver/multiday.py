"""Planning several dates: :func:`plan_days`.

A :class:`Horizon` is a :class:`~solver.model.Problem` with ``dates`` (1 to
:data:`MAX_DATES` distinct dates, ascending, within :data:`MAX_SPAN_DAYS`)
instead of one ``date``: the same crews work every date (shifts and breaks
as times of day), and each visit is to be made once on one of the dates.

The dates are planned in order, each with :func:`solver.solve.solve`, so
every day's plan is an ordinary :class:`~solver.model.Plan` that passes
:func:`solver.check.check_plan`. On each date the candidates are the visits

* not planned on an earlier date of the horizon;
* available: on or after their date in ``Horizon.available_from`` (follow-ups
  join from their date), and with every absolute datetime (windows,
  appointment) on that date;
* not past due: ``Visit.due_by`` on or after the date.

A visit's priority rises as its ``due_by`` nears (:class:`MultiDayParams`,
the rule of :func:`due_priority`); on its due date it is required unless
``MultiDayParams.required_on_due_date`` is off, so it is planned or the day's
plan says why not. Visits planned on a date count as contacts of their case
on the later dates (frequency limits of the rule set). What is left at the
end is listed in :attr:`MultiDayPlan.unplanned` with a reason: ``past_due``
for a visit whose ``due_by`` passed, else its last day's reason.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Self
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from solver.compile import Geocoder, Progress
from solver.model import (
    DAY_SPAN_DAYS,
    MAX_ID_LENGTH,
    Agent,
    Contact,
    Id,
    Options,
    Plan,
    Problem,
    TimeWindow,
    Unassigned,
    Visit,
    check_sane_date,
)
from solver.travel import TravelModel

__all__ = [
    "MAX_DATES",
    "MAX_SPAN_DAYS",
    "DayPlan",
    "Horizon",
    "MultiDayParams",
    "MultiDayPlan",
    "due_priority",
    "plan_days",
]

#: Most dates one request plans.
MAX_DATES = 7
#: The last date lies at most this many days after the first.
MAX_SPAN_DAYS = 31


@dataclass(frozen=True)
class MultiDayParams:
    """How :func:`plan_days` weighs due dates.

    Parameters
    ----------
    due_boost_days
        The priority of a visit with ``due_by`` rises over this many days
        before its due date (see :func:`due_priority`).
    due_boost_per_day
        Priority points added per day closer to the due date within
        ``due_boost_days`` (the result is kept within 0..100).
    required_on_due_date
        On its due date a visit is required: planned, or the day's plan says
        why it could not be (``required_infeasible``).
    """

    due_boost_days: int = 3
    due_boost_per_day: int = 10
    required_on_due_date: bool = True


def due_priority(visit: Visit, date: dt.date, params: MultiDayParams) -> int:
    """``visit``'s priority on ``date``: its own, plus
    ``due_boost_per_day × (due_boost_days − days left)`` while fewer than
    ``due_boost_days`` days are left before ``due_by`` (the due date itself:
    0 days left), at most 100. Without ``due_by`` the priority is unchanged."""
    if visit.due_by is None:
        return visit.priority
    left = (visit.due_by - date).days
    boost = params.due_boost_per_day * max(0, params.due_boost_days - left)
    return max(0, min(100, visit.priority + boost))


def _absolute_windows(visit: Visit) -> Iterator[TimeWindow]:
    windows = [*visit.time_windows, *(w for a in visit.addresses for w in a.time_windows)]
    if visit.appointment is not None:
        windows.append(visit.appointment)
    for window in windows:
        if isinstance(window.start, dt.datetime):
            yield window


def fits_date(visit: Visit, date: dt.date, timezone: str) -> bool:
    """Whether every absolute datetime of ``visit`` lies within ``date``'s
    day as a :class:`~solver.model.Problem` counts it (the date and the next,
    for night shifts); a visit given in times of day fits every date."""
    first = dt.datetime.combine(date, dt.time(0), tzinfo=ZoneInfo(timezone))
    last = first + dt.timedelta(days=DAY_SPAN_DAYS)
    for window in _absolute_windows(visit):
        for value in (window.start, window.end):
            assert isinstance(value, dt.datetime)
            if not first <= value <= last:
                return False
    return True


class Horizon(BaseModel):
    """Several dates to plan with the same crews: a Problem with ``dates``."""

    model_config = ConfigDict(extra="forbid")

    dates: list[dt.date] = Field(
        min_length=1, max_length=MAX_DATES,
        description=f"1 to {MAX_DATES} distinct plan dates, ascending, the last at most {MAX_SPAN_DAYS} days after "
                    "the first",
    )
    timezone: str = Field("Asia/Shanghai", max_length=64, description="IANA time zone of the visits")
    visits: list[Visit] = Field(default_factory=list, max_length=20000)
    agents: list[Agent] = Field(min_length=1, max_length=2000, description="The crews, working every date")
    options: Options = Field(default_factory=Options)
    skills: list[Id] | None = Field(None, max_length=1000)
    history: list[Contact] = Field(default_factory=list, description="Past contacts, for frequency limits")
    available_from: dict[str, dt.date] = Field(
        default_factory=dict, max_length=20000,
        description="Visit id -> the first date it may be planned (e.g. a follow-up's date); default: any date",
    )

    @field_validator("dates")
    @classmethod
    def _dates(cls, value: list[dt.date]) -> list[dt.date]:
        for day in value:
            check_sane_date(day)
        if len(set(value)) < len(value):
            raise ValueError("dates must be distinct")
        if value != sorted(value):
            raise ValueError("dates must be in ascending order")
        if (value[-1] - value[0]).days > MAX_SPAN_DAYS:
            raise ValueError(f"the last date is at most {MAX_SPAN_DAYS} days after the first")
        return value

    @field_validator("available_from")
    @classmethod
    def _available_ids(cls, value: dict[str, dt.date]) -> dict[str, dt.date]:
        for key in value:
            if not 1 <= len(key) <= MAX_ID_LENGTH:
                raise ValueError(f"visit id {key[:40]!r}: 1 to {MAX_ID_LENGTH} characters")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        errors: list[str] = []
        for i, agent in enumerate(self.agents):
            if isinstance(agent.shift.start, dt.datetime):
                errors.append(f"agents.{i}.shift: give times of day (\"HH:MM\") when planning several dates")
            for j, brk in enumerate(agent.breaks):
                if isinstance(brk.window.start, dt.datetime):
                    errors.append(f"agents.{i}.breaks.{j}.window: give times of day (\"HH:MM\") when planning "
                                  "several dates")
        for i, visit in enumerate(self.visits):
            if not any(fits_date(visit, day, self.timezone) for day in self.dates):
                errors.append(f"visits.{i}: its datetimes (windows, appointment) lie on none of the dates")
        known = {v.id for v in self.visits}
        for visit_id in self.available_from:
            if visit_id not in known:
                errors.append(f"available_from: no visit {visit_id[:40]!r}")
        if errors:
            raise ValueError("; ".join(errors))
        # everything else a day checks (ids, skills, pinned crews), on the first date without absolute datetimes
        try:
            self.day_problem(self.dates[0], [_without_datetimes(v) for v in self.visits], self.history)
        except ValidationError as exc:
            raise ValueError("; ".join(_messages(exc))) from None
        return self

    def day_problem(self, date: dt.date, visits: list[Visit], history: list[Contact]) -> Problem:
        """The :class:`Problem` of ``date`` with these visits (validated)."""
        return Problem.model_validate({
            "date": date, "timezone": self.timezone, "visits": visits, "agents": self.agents,
            "options": self.options, "skills": self.skills, "history": history,
        })


def _without_datetimes(visit: Visit) -> Visit:
    def clock(windows: list[TimeWindow]) -> list[TimeWindow]:
        return [w for w in windows if isinstance(w.start, dt.time)]

    addresses = [a.model_copy(update={"time_windows": clock(a.time_windows)}) for a in visit.addresses]
    appointment = visit.appointment if visit.appointment is None or isinstance(visit.appointment.start, dt.time) \
        else None
    return visit.model_copy(update={"time_windows": clock(visit.time_windows), "addresses": addresses,
                                    "appointment": appointment})


def _messages(exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        message = str(err["msg"]).removeprefix("Value error, ")
        loc = ".".join(str(p) for p in err["loc"])
        out.append(f"{loc}: {message}" if loc else message)
    return out


@dataclass
class DayPlan:
    """One date of a :class:`MultiDayPlan`: the day's problem and its plan."""

    date: dt.date
    problem: Problem
    plan: Plan


@dataclass
class MultiDayPlan:
    """The plans of a horizon's dates, and the visits planned on none."""

    days: list[DayPlan]
    unplanned: list[Unassigned] = field(default_factory=list)

    def date_of(self, visit_id: str) -> dt.date | None:
        """The date ``visit_id`` is planned on (None: on none)."""
        for day in self.days:
            if any(s.visit_id == visit_id for r in day.plan.routes for s in r.stops):
                return day.date
        return None

    def agent_of(self, visit_id: str) -> str | None:
        """The crew making ``visit_id`` (None: planned on no date)."""
        for day in self.days:
            for route in day.plan.routes:
                if any(s.visit_id == visit_id for s in route.stops):
                    return route.agent_id
        return None


def _day_progress(progress: Progress | None, k: int, n: int) -> Progress | None:
    if progress is None:
        return None

    def report(stage: str, fraction: float) -> None:
        progress(stage, (k + fraction) / n)

    return report


def plan_days(
    horizon: Horizon,
    travel: TravelModel | None = None,
    *,
    params: MultiDayParams | None = None,
    geocoder: Geocoder | None = None,
    progress: Progress | None = None,
    solve_day: Callable[..., Plan] | None = None,
) -> MultiDayPlan:
    """Plan ``horizon``'s dates in order (see the module's docstring).

    ``solve_day`` plans one day (default :func:`solver.solve.solve`, called
    as ``solve_day(problem, travel, geocoder=..., progress=...)``);
    ``progress`` gets each day's stages with the fraction of the whole
    horizon done.
    """
    from solver.solve import solve

    params = params or MultiDayParams()
    solve_day = solve_day or solve
    served: set[str] = set()
    history = list(horizon.history)
    last_reason: dict[str, Unassigned] = {}
    days: list[DayPlan] = []
    for k, date in enumerate(horizon.dates):
        candidates: list[Visit] = []
        for visit in horizon.visits:
            if visit.id in served or (visit.due_by is not None and visit.due_by < date):
                continue
            start = horizon.available_from.get(visit.id)
            if (start is not None and start > date) or not fits_date(visit, date, horizon.timezone):
                continue
            update: dict[str, Any] = {"priority": due_priority(visit, date, params)}
            if params.required_on_due_date and visit.due_by == date:
                update["required"] = True
            candidates.append(visit.model_copy(update=update))
        problem = horizon.day_problem(date, candidates, history)
        plan = solve_day(problem, travel, geocoder=geocoder, progress=_day_progress(progress, k, len(horizon.dates)))
        days.append(DayPlan(date, problem, plan))
        by_id = {v.id: v for v in candidates}
        for route in plan.routes:
            for stop in route.stops:
                served.add(stop.visit_id)
                case = by_id[stop.visit_id].case_key
                history.append(Contact(case_id=case, at=stop.start, kind="visit"))
        for entry in plan.unassigned:
            last_reason[entry.visit_id] = entry.model_copy(update={"details": {**entry.details, "date": str(date)}})
    return MultiDayPlan(days, _unplanned(horizon, served, last_reason))


def _unplanned(horizon: Horizon, served: set[str], last_reason: dict[str, Unassigned]) -> list[Unassigned]:
    out: list[Unassigned] = []
    first, last = horizon.dates[0], horizon.dates[-1]
    for visit in horizon.visits:
        if visit.id in served:
            continue
        earlier = last_reason.get(visit.id)
        if visit.due_by is not None and visit.due_by < last:
            why = f"; on {earlier.details['date']}: {earlier.reason}" if earlier is not None else ""
            out.append(Unassigned(
                visit_id=visit.id, code="past_due",
                reason=f"due by {visit.due_by} and not planned on any date up to it"
                       f"{' (it was due before the first date)' if visit.due_by < first else ''}{why}",
                details={"due_by": str(visit.due_by), **({"last_code": earlier.code} if earlier else {})},
            ))
        elif earlier is not None:
            out.append(earlier)
        else:
            out.append(Unassigned(
                visit_id=visit.id, code="outside_hours",
                reason="not available on any of the dates (available_from, or its datetimes, fall outside them)",
                details={"available_from": str(horizon.available_from.get(visit.id))},
            ))
    return out
