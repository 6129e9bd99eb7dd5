"""Safety of crews in the field: a crew that reported ``arrived`` at a visit
and has not reported ``completed`` by the stop's planned duration plus a
margin (``config/cases.toml`` ``[safety] overdue_margin_min``) raises the event
``safety.overdue``, once per visit, for a dispatcher to call them.

:func:`sweep` looks at the visits of the plans around a moment; it needs only
the store (no Flask), so every process can run it: the webhook deliverers
(every ``sweep_every_s``: :meth:`app.webhooks.Deliverer.add_periodic`), ``GET
/v1/events`` (throttled, :func:`sweep_on_read`) and ``doorstep safety check``.
"Once" is the store's: :meth:`~app.store.base.Store.emit_once` sets a marker
per date and visit in the same atomic step as the event, so several sweepers
at once emit it once.

The event holds ids and times only: ``{date, visit_id, case_id, agent_id,
arrived_at, due_by, overdue_min, reported_by}`` (``reported_by``: the role and
token id that reported the arrival; no names).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, TypeVar

from app.cases import CaseState, SafetyRules
from app.events import new_event
from app.store.base import Event, Store
from solver.model import Problem
from solver.multiday import Horizon

#: A day (Problem) or several (Horizon): what POST /v1/plans queues.
Planned = TypeVar("Planned", Problem, Horizon)

log = logging.getLogger("doorstep.safety")

EVENT = "safety.overdue"


@dataclass(frozen=True)
class Arrival:
    """A visit the crew arrived at and has not completed."""

    date: str
    visit_id: str
    agent_id: str | None
    arrived_at: dt.datetime
    duration: dt.timedelta
    reported_by: dict[str, Any] | None


def _arrived_at(store: Store, date: str, visit_id: str) -> tuple[dt.datetime, dict[str, Any] | None] | None:
    """When the crew said it arrived (the last ``arrived`` outcome), and who said so."""
    for raw in reversed(store.list_outcomes(date, visit_id)):
        record = json.loads(raw)
        if record.get("status") == "arrived" and record.get("at"):
            at = dt.datetime.fromisoformat(str(record["at"]).replace("Z", "+00:00"))
            return at if at.tzinfo else at.replace(tzinfo=dt.UTC), record.get("actor")
    return None


def _duration(planned: dt.timedelta | tuple[str, str]) -> dt.timedelta:
    """A stop's planned service time (``Stop.start`` to ``Stop.end``, ISO 8601)."""
    if isinstance(planned, dt.timedelta):
        return planned
    return dt.datetime.fromisoformat(planned[1]) - dt.datetime.fromisoformat(planned[0])


def _durations(store: Store, date: str) -> tuple[dict[str, tuple[str | None, dt.timedelta | tuple[str, str]]], int] | None:
    """Crew and planned duration of each visit of the date's current plan, and
    of the visits a re-plan closed as under way (from the version that had
    them); with the version. None without a plan."""
    stored = store.get_plan(date)
    if stored is None:
        return None
    # plain JSON, not the Plan model: a 20,000-stop plan reads in a tenth of the time (bench/safety_sweep.py)
    plan = json.loads(stored.plan_json)
    found: dict[str, tuple[str | None, dt.timedelta | tuple[str, str]]] = {
        stop["visit_id"]: (route["agent_id"], (stop["start"], stop["end"]))  # read when the crew is there
        for route in plan.get("routes", []) for stop in route.get("stops", [])
    }
    closed = {k: v for k, v in (stored.meta.get("closed") or {}).items() if k not in found}
    for older in range(stored.version - 1, 0, -1):
        if not closed:
            break
        problem_json = store.get_problem(date, older)
        if problem_json is None:
            continue
        for visit in Problem.model_validate_json(problem_json).visits:
            if visit.id in closed:
                found[visit.id] = (closed.pop(visit.id), dt.timedelta(minutes=visit.duration_min))
    return found, stored.version


def arrivals(store: Store, date: str) -> list[Arrival]:
    """The visits of ``date`` whose crew arrived and did not complete them."""
    day = _durations(store, date)
    if day is None:
        return []
    stops, _version = day
    ids = list(stops)
    out = []
    for state in store.get_visit_states(date, ids):
        if state.status != "arrived":
            continue
        arrived = _arrived_at(store, date, state.visit_id)
        if arrived is None:
            continue
        agent_id, service = stops[state.visit_id]
        out.append(Arrival(date, state.visit_id, state.agent_id or agent_id, arrived[0], _duration(service),
                           arrived[1]))
    return out


class _Cases:
    """The case of each visit of a date, read (once per sweep) only when an
    event is to be emitted: the newest version's problem that has the visit."""

    def __init__(self, store: Store, date: str) -> None:
        self.store = store
        self.date = date
        self.problems: dict[int, dict[str, str]] = {}

    def of(self, visit_id: str) -> str:
        stored = self.store.get_plan(self.date)
        for version in range(stored.version if stored is not None else 0, 0, -1):
            if version not in self.problems:
                problem_json = self.store.get_problem(self.date, version)
                # plain JSON: a visit's case is its case_id, else its id (Visit.case_key)
                visits = [] if problem_json is None else json.loads(problem_json).get("visits", [])
                self.problems[version] = {v["id"]: v.get("case_id") or v["id"] for v in visits}
            if visit_id in self.problems[version]:
                return self.problems[version][visit_id]
        return visit_id


def sweep(store: Store, rules: SafetyRules, now: dt.datetime, dates: list[str] | None = None) -> list[Event]:
    """Emit ``safety.overdue`` for each visit arrived and not completed past
    its planned duration plus the margin, at ``now`` (aware), once per visit.
    ``dates`` defaults to the day before, of and after ``now`` (UTC: plans are
    dated in their own time zone). Returns the events emitted by this call."""
    if dates is None:
        today = now.astimezone(dt.UTC).date()
        dates = [(today + dt.timedelta(days=d)).isoformat() for d in (-1, 0, 1)]
    margin = dt.timedelta(minutes=rules.overdue_margin_min)
    emitted: list[Event] = []
    for date in dates:
        cases = _Cases(store, date)
        for arrival in arrivals(store, date):
            due_by = arrival.arrived_at + arrival.duration + margin
            marker = f"{EVENT}:{date}:{arrival.visit_id}"
            if now <= due_by or store.emitted(marker):  # the marker is checked again atomically below
                continue
            data = {
                "date": date, "visit_id": arrival.visit_id, "case_id": cases.of(arrival.visit_id),
                "agent_id": arrival.agent_id,
                "arrived_at": arrival.arrived_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
                "due_by": due_by.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
                "overdue_min": int((now - due_by).total_seconds() // 60),
                "reported_by": arrival.reported_by,
            }
            events = store.emit_once(marker, [new_event(EVENT, data)])
            if events:
                log.warning("safety: crew %s arrived at visit %s on %s at %s and has not completed it (due by %s)",
                            arrival.agent_id, arrival.visit_id, date, data["arrived_at"], data["due_by"])
            emitted.extend(events)
    return emitted


class Throttle:
    """Runs a task at most once per ``every_s`` (monotonic clock), across threads."""

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self._last = -float("inf")
        self._lock = threading.Lock()

    def due(self) -> bool:
        """Whether the task should run now (and, if so, it counts as run)."""
        with self._lock:
            now = time.monotonic()
            if now - self._last < self.every_s:
                return False
            self._last = now
            return True


def periodic_sweep(store: Store, rules: SafetyRules) -> tuple[float, Any]:
    """(interval, task) for :meth:`app.webhooks.Deliverer.add_periodic`."""
    return rules.sweep_every_s, lambda: sweep(store, rules, dt.datetime.now(dt.UTC))


def sweep_on_read(store: Store, rules: SafetyRules, throttle: Throttle) -> None:
    """:func:`sweep` now, unless this process swept less than
    ``sweep_every_s`` ago (``GET /v1/events`` calls it, so a reader of events
    gets overdue visits without a deliverer running); a failure is logged."""
    if not throttle.due():
        return
    try:
        sweep(store, rules, dt.datetime.now(dt.UTC))
    except Exception as exc:  # noqa: BLE001 - the read goes on; the next one sweeps again
        log.warning("safety sweep on read failed (%s)", type(exc).__name__)


def with_case_safety(store: Store, problem: Planned, two_collectors: list[str]) -> Planned:
    """``problem`` with the visits of cases marked at risk — a visit of the
    case recorded a result among ``two_collectors`` (``config/screening.toml``
    ``[safety]``: incident …) — needing a crew of two at least. ``POST
    /v1/plans`` applies it, so a case's next visits go to two collectors even
    when the caller did not screen them."""
    flags = set(two_collectors)
    states = store.get_cases([visit.case_key for visit in problem.visits]) if flags else {}
    at_risk = {key for key, raw in states.items() if flags & set(CaseState.model_validate_json(raw).risk_flags)}
    if not at_risk:
        return problem
    visits = [visit.model_copy(update={"crew_size": max(2, visit.crew_size)}) if visit.case_key in at_risk else visit
              for visit in problem.visits]
    log.info("%d visit(s) of %d case(s) at risk need two collectors", sum(v.case_key in at_risk for v in visits),
             len(at_risk))
    return problem.model_copy(update={"visits": visits})
