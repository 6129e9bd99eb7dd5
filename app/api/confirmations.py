"""POST /v1/visits/<id>/contact (a contact attempt about a stop's slot: the
borrower's answer), GET /v1/visits/<id>/contacts?date= (its history) and
GET /v1/confirmations?date= (every stop's appointment state, for the pages).
The lifecycle is described in :mod:`app.confirmations`."""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from typing import Any

from flask import Blueprint, jsonify, request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from app.api.agents import check_own_agent
from app.api.common import current_day, dump, parse_body, parse_date, services
from app.api.idempotency import earlier_answer, idempotency_key, replay, request_hash
from app.api.openapi import doc
from app.api.schemas import DateQuery, ErrorBody, IdempotencyHeaders
from app.api.visits import locate_visit
from app.auth import principal, roles
from app.confirmations import (
    TRANSITIONS,
    Channel,
    SlotState,
    attempts,
    find_stop,
    slot_event,
    slot_json,
    slot_state,
    state_key,
)
from app.errors import conflict, not_found
from app.store.base import Idempotency, OutcomeWrite, TransitionRefused, utcnow
from solver.model import check_sane_date, check_sane_datetime

bp = Blueprint("confirmations", __name__)
log = logging.getLogger("doorstep.confirmations")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ContactRequest(_In):
    """One contact attempt about a planned stop's slot, and the borrower's answer.

    result: proposed (the slot was told, the answer awaited), confirmed,
    declined (frees the stop for re-planning) or no_answer. A result that
    cannot follow the current state is a 409 with the reason."""

    date: dt.date = Field(description="The plan date of the visit")
    channel: Channel = Field(description="phone, sms, wechat, visit or other")
    result: SlotState
    at: AwareDatetime | None = Field(None, description="When the attempt was made (default: when received)")
    note: str | None = Field(None, max_length=1000, description="Free text (kept; never logged)")

    @field_validator("date")
    @classmethod
    def _sane_date(cls, value: dt.date) -> dt.date:
        return check_sane_date(value)

    @field_validator("at")
    @classmethod
    def _sane_at(cls, value: dt.datetime | None) -> dt.datetime | None:
        return None if value is None else check_sane_datetime(value)


class SlotView(_Out):
    start: dt.datetime
    end: dt.datetime


class ContactActor(_Out):
    role: str
    token_id: str | None = None


class ContactView(_Out):
    attempt_id: str
    date: str
    visit_id: str
    agent_id: str
    channel: Channel
    result: SlotState
    state: SlotState = Field(description="The appointment's state after this attempt")
    slot: SlotView | None = Field(description="The slot the attempt was about")
    at: dt.datetime
    recorded_at: str
    actor: ContactActor


class ContactHistory(_Out):
    date: str
    visit_id: str
    agent_id: str
    state: SlotState | None = Field(description="None: no attempt recorded yet")
    slot: SlotView | None
    attempts: list[ContactView]


class Confirmation(_Out):
    visit_id: str
    agent_id: str
    state: SlotState | None
    slot: SlotView | None
    attempts: int


class ConfirmationList(_Out):
    date: str
    version: int
    confirmations: list[Confirmation]


_CONFLICT = {"HTTP_409": (ErrorBody, "The result cannot follow the slot's state (the reason says why) "
                                     "or Idempotency-Key reused")}


@bp.post("/visits/<visit_id>/contact")
@roles("dispatcher", "agent", "system")
@doc(tags=("confirmations",), json=ContactRequest, headers=IdempotencyHeaders,
     ok={"HTTP_201": (ContactView, "Recorded (or replayed for the same Idempotency-Key and body)")},
     errors={**_CONFLICT, "HTTP_422": (ErrorBody, "Invalid attempt: names the field")})
def record_contact(visit_id: str):  # type: ignore[no-untyped-def]
    """Record a contact attempt about a stop's slot and the borrower's answer.

    proposed → confirmed / declined / no_answer (no_answer may be followed by
    any; confirmed may turn declined; declined by proposed, after a re-plan).
    Emits slot.<result> (no borrower contact in it: the gateway has the case
    id). A declined slot is no longer kept by POST /v1/plans/{date}/reoptimize.
    An agent token may record its own crew's stops only."""
    who = principal()
    key = idempotency_key()
    attempt = parse_body(ContactRequest)
    date = attempt.date.isoformat()
    hashed = request_hash({"visit_id": visit_id, **attempt.model_dump(mode="json")})
    scope = f"contact:{who.role}:{who.agent_id or ''}"
    store = services().store
    stored = earlier_answer(scope, key, hashed)
    if stored is not None:
        return replay(stored)

    _version, plan, problem = current_day(date)
    found = find_stop(plan, visit_id)
    if found is None:
        locate_visit(date, visit_id)  # 404 unless a re-plan closed it
        raise conflict("not_planned", f"visit {visit_id!r} has no stop in the current plan for {date}: "
                                      "no slot to confirm")
    agent_id, stop = found
    check_own_agent(who, agent_id, "visits")

    attempt_id = uuid.uuid4().hex
    at = attempt.at or dt.datetime.now(dt.UTC)
    actor = {"role": who.role, "token_id": who.token_id}
    body = dump(ContactView, {
        "attempt_id": attempt_id, "date": date, "visit_id": visit_id, "agent_id": agent_id,
        "channel": attempt.channel, "result": attempt.result, "state": attempt.result, "slot": slot_json(stop),
        "at": at, "recorded_at": utcnow(), "actor": actor,
    })
    event = slot_event(attempt.result, date=date, problem=problem, visit_id=visit_id, agent_id=agent_id, stop=stop,
                       channel=attempt.channel, attempt_id=attempt_id, actor=actor)
    write = OutcomeWrite(
        date=date, visit_id=state_key(visit_id), agent_id=agent_id, status=attempt.result, result=attempt.channel,
        allowed_from=TRANSITIONS[attempt.result],
        outcome_json=json.dumps({**body, "note": attempt.note}, ensure_ascii=False),
        events=[event],
        idempotency=None if key is None else Idempotency(scope, key, hashed, 201, json.dumps(body)),
    )
    try:
        replayed, events = store.record_outcome(write)
    except TransitionRefused as refused:
        now_is = refused.current.status or "not contacted yet"
        allowed = ", ".join(sorted(s or "nothing" for s in TRANSITIONS[attempt.result]))
        raise conflict("invalid_transition", f"the slot of visit {visit_id!r} is {now_is}: cannot record "
                                             f"{attempt.result}; {attempt.result} may follow only {allowed}") from None
    if replayed is not None:
        return replay(replayed)
    log.info("contact %s about the slot of visit %s on %s by %s: %s via %s", attempt_id, visit_id, date,
             who.token_id or who.role, attempt.result, attempt.channel)
    services().webhook.send(events)
    return jsonify(body), 201


@bp.get("/visits/<visit_id>/contacts")
@roles("dispatcher", "agent", "system")
@doc(tags=("confirmations",), query=DateQuery, ok={"HTTP_200": ContactHistory})
def list_contacts(visit_id: str):  # type: ignore[no-untyped-def]
    """The contact attempts about a stop's slot, oldest first, and its state."""
    date = parse_date(request.args.get("date"))
    _version, plan, _problem = current_day(date)
    found = find_stop(plan, visit_id)
    if found is None:
        raise not_found(f"visit {visit_id!r} has no stop in the current plan for {date}")
    agent_id, stop = found
    check_own_agent(principal(), agent_id, "visits")
    store = services().store
    records = [{k: v for k, v in r.items() if k != "note"} for r in attempts(store, date, visit_id)]
    return jsonify(dump(ContactHistory, {
        "date": date, "visit_id": visit_id, "agent_id": agent_id, "state": slot_state(store, date, visit_id),
        "slot": slot_json(stop), "attempts": records,
    }))


@bp.get("/confirmations")
@roles("dispatcher", "agent", "system")
@doc(tags=("confirmations",), query=DateQuery, ok={"HTTP_200": ConfirmationList})
def list_confirmations():  # type: ignore[no-untyped-def]
    """Every stop of the date's current plan with its appointment state (an
    agent token: its own crew's stops)."""
    date = parse_date(request.args.get("date"))
    version, plan, _problem = current_day(date)
    who = principal()
    store = services().store
    rows: list[dict[str, Any]] = []
    for route in plan.routes:
        if who.is_agent() and who.agent_id != route.agent_id:
            continue
        for stop in route.stops:
            history = store.list_outcomes(date, state_key(stop.visit_id))
            rows.append({"visit_id": stop.visit_id, "agent_id": route.agent_id,
                         "state": slot_state(store, date, stop.visit_id) if history else None,
                         "slot": slot_json(stop), "attempts": len(history)})
    return jsonify(dump(ConfirmationList, {"date": date, "version": version, "confirmations": rows}))
