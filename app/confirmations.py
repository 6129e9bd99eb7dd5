"""The borrower's answer to an appointment slot: the confirmation lifecycle.

A planned stop's slot is told to the borrower and the answer recorded, one
*contact attempt* at a time (time, channel, result), by the crew, a dispatcher
or another system (the bank's SMS or WeChat gateway, role ``system``). The
appointment's state is the result of the latest attempt::

    (none) ─► proposed ─► confirmed
                 │    └─► declined ─► proposed (a new slot, after re-planning)
                 └──────► no_answer ─► proposed / confirmed / declined / no_answer

``confirmed`` may still turn ``declined`` (the borrower calls back to cancel).
A declined slot is no longer a promise: a re-plan of the day
(``POST /v1/plans/{date}/reoptimize``) plans the visit again without it.

Storage: the state and the attempts are kept with the store's atomic
"state + record + events + idempotency" write (:meth:`Store.record_outcome`),
under the key ``<visit_id>/slot`` (a visit id cannot contain ``/``, so the key
never meets a visit's own outcome state); both backends hold it unchanged.

Events (their ``data`` never holds the borrower's name, phone or address: a
gateway finds the borrower's contact in the bank's own system by ``case_id``):
``slot.proposed``, ``slot.confirmed``, ``slot.declined``, ``slot.no_answer``
with the slot, the crew size and the channel; and ``slot.on_the_way`` when the
crew departs for the stop (outcome status ``departed``) with the updated slot
(expected arrival), emitted only inside the legal contact hours of the rule set
in the borrower's time zone.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Literal
from zoneinfo import ZoneInfo

from app.events import new_event
from app.store.base import NewEvent, Store
from solver.model import Plan, Problem, Stop
from solver.rules import active_rule_set

Channel = Literal["phone", "sms", "wechat", "visit", "other"]
CHANNELS: tuple[str, ...] = ("phone", "sms", "wechat", "visit", "other")
SlotState = Literal["proposed", "confirmed", "declined", "no_answer"]
STATES: tuple[str, ...] = ("proposed", "confirmed", "declined", "no_answer")

#: States each result may follow (None: nothing recorded yet).
TRANSITIONS: dict[str, frozenset[str | None]] = {
    "proposed": frozenset({None, "proposed", "no_answer", "declined"}),
    "confirmed": frozenset({None, "proposed", "no_answer", "confirmed"}),
    "declined": frozenset({None, "proposed", "no_answer", "confirmed"}),
    "no_answer": frozenset({None, "proposed", "no_answer"}),
}

#: Width of the updated slot sent when the crew departs, seconds after the expected arrival.
ON_THE_WAY_MARGIN_S = 15 * 60


def state_key(visit_id: str) -> str:
    """The store key of a visit's appointment state (see the module docstring)."""
    return f"{visit_id}/slot"


def slot_state(store: Store, date: str, visit_id: str) -> str | None:
    """The appointment's state (None: nothing recorded)."""
    return store.get_visit_state(date, state_key(visit_id)).status


def attempts(store: Store, date: str, visit_id: str) -> list[dict[str, Any]]:
    """The contact attempts recorded for a visit's slot, oldest first."""
    return [json.loads(record) for record in store.list_outcomes(date, state_key(visit_id))]


def declined_visits(store: Store, date: str, plan: Plan) -> list[str]:
    """The planned visits whose borrower declined the slot."""
    return [s.visit_id for r in plan.routes for s in r.stops if slot_state(store, date, s.visit_id) == "declined"]


def find_stop(plan: Plan, visit_id: str) -> tuple[str, Stop] | None:
    """The crew and the stop of ``visit_id`` in ``plan``."""
    for route in plan.routes:
        for stop in route.stops:
            if stop.visit_id == visit_id:
                return route.agent_id, stop
    return None


def slot_json(stop: Stop | None) -> dict[str, str] | None:
    if stop is None or stop.slot is None:
        return None
    return {"start": stop.slot.start.isoformat(), "end": stop.slot.end.isoformat()}


def slot_event(
    result: str, *, date: str, problem: Problem, visit_id: str, agent_id: str, stop: Stop | None,
    channel: str, attempt_id: str, actor: dict[str, Any],
) -> NewEvent:
    """``slot.<result>``: what a gateway needs to tell the borrower, without the borrower's contact."""
    visit = problem.visit(visit_id)
    crew = next((a for a in problem.agents if a.id == agent_id), None)
    return new_event(f"slot.{result}", {
        "date": date, "visit_id": visit_id, "case_id": visit.case_id, "agent_id": agent_id,
        "crew_size": crew.crew_size if crew is not None else None,
        "slot": slot_json(stop), "timezone": visit.timezone or problem.timezone,
        "address_kind": stop.address_kind if stop is not None else None,
        "channel": channel, "state": result, "attempt_id": attempt_id, "actor": actor,
    })


def legal_now(problem: Problem, visit_id: str, at: dt.datetime) -> bool:
    """Whether ``at`` lies inside the legal contact hours of the problem's rule
    set in the borrower's time zone (always, without rules or hours)."""
    rules = active_rule_set(problem.options.rule_set)
    if rules is None or rules.visiting_hours is None:
        return True
    visit = problem.visit(visit_id)
    local = at.astimezone(ZoneInfo(visit.timezone or problem.timezone)).time()
    return rules.visiting_hours.start <= local < rules.visiting_hours.end


def on_the_way_event(
    *, date: str, problem: Problem, plan: Plan, visit_id: str, at: dt.datetime, actor: dict[str, Any],
) -> NewEvent | None:
    """``slot.on_the_way`` for a crew departing at ``at`` for ``visit_id``: the
    updated slot runs from the expected arrival (departure plus the planned
    travel) for :data:`ON_THE_WAY_MARGIN_S`; ``late`` when that is after the
    promised slot. None outside the legal contact hours (no message may go out)."""
    found = find_stop(plan, visit_id)
    if found is None or not legal_now(problem, visit_id, at):
        return None
    agent_id, stop = found
    eta = at + dt.timedelta(seconds=stop.travel_s)
    zone = ZoneInfo(problem.timezone)
    updated = {"start": eta.astimezone(zone).isoformat(timespec="seconds"),
               "end": (eta + dt.timedelta(seconds=ON_THE_WAY_MARGIN_S)).astimezone(zone).isoformat(timespec="seconds")}
    visit = problem.visit(visit_id)
    return new_event("slot.on_the_way", {
        "date": date, "visit_id": visit_id, "case_id": visit.case_id, "agent_id": agent_id,
        "slot": slot_json(stop), "updated_slot": updated,
        "late": stop.slot is not None and eta > stop.slot.end,
        "timezone": visit.timezone or problem.timezone, "actor": actor,
    })
