"""POST /v1/visits/<id>/outcome (what happened at a visit) and
GET /v1/followups?date= (the follow-up visits and flags outcomes created)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid

from flask import Blueprint, jsonify, request

from app.api.agents import check_own_agent, may_see_borrower
from app.api.common import current_day, dump, json_object_body, parse_date, services
from app.api.idempotency import earlier_answer, idempotency_key, replay, request_hash
from app.api.openapi import doc
from app.api.schemas import (
    DateQuery,
    ErrorBody,
    FollowupList,
    IdempotencyHeaders,
    OutcomeRequest,
    OutcomeView,
)
from app.auth import principal, roles
from app.confirmations import on_the_way_event
from app.errors import conflict, not_found
from app.events import new_event
from app.followups import followups_for
from app.store.base import Idempotency, OutcomeWrite, TransitionRefused, utcnow
from solver.model import Problem, Visit

bp = Blueprint("visits", __name__)
log = logging.getLogger("doorstep.outcomes")

#: Statuses each new status may follow (None: planned, nothing recorded yet).
#: completed may follow planned directly: an agent who forgot to report the
#: arrival can still close the visit.
TRANSITIONS: dict[str, frozenset[str | None]] = {
    "departed": frozenset({None}),
    "arrived": frozenset({None, "departed"}),
    "completed": frozenset({None, "departed", "arrived"}),
}


def locate_visit(date: str, visit_id: str) -> tuple[str, Visit]:
    """The crew and the visit of a stop of the date's current plan, or of a
    visit a re-plan took out of the day as done or under way; 404 otherwise."""
    store = services().store
    version, plan, problem = current_day(date)
    for route in plan.routes:
        if any(s.visit_id == visit_id for s in route.stops):
            return route.agent_id, problem.visit(visit_id)
    stored = store.get_plan(date, version)
    closed = (stored.meta.get("closed") or {}) if stored is not None else {}
    if closed.get(visit_id):
        for older in range(version - 1, 0, -1):
            problem_json = store.get_problem(date, older)
            if problem_json is None:
                continue
            earlier = Problem.model_validate_json(problem_json)
            if any(v.id == visit_id for v in earlier.visits):
                return closed[visit_id], earlier.visit(visit_id)
    raise not_found(f"visit {visit_id!r} is not in the current plan for {date}")



@bp.post("/visits/<visit_id>/outcome")
@roles("dispatcher", "agent")
@doc(tags=("outcomes",), json=OutcomeRequest, headers=IdempotencyHeaders,
     ok={"HTTP_201": (OutcomeView, "Recorded (or replayed for the same Idempotency-Key and body)")},
     errors={"HTTP_409": (ErrorBody, "Invalid transition (the reason says why) or Idempotency-Key reused"),
             "HTTP_422": (ErrorBody, "Invalid outcome: names the field")})
def record_outcome(visit_id: str):  # type: ignore[no-untyped-def]
    """Record that the crew departed for the visit, arrived, or completed it with its result.

    Transitions: planned → departed → arrived → completed (steps may be
    skipped); a second departure, arrival or completion is a 409 with the
    reason. departed emits slot.on_the_way with the updated slot (expected
    arrival) when it is inside the legal contact hours of the borrower's time
    zone (the rule set of the plan). A result with a
    follow-up rule (config/followups.toml) creates a follow-up visit for a
    later date (or a flag). An agent token may record its own crew's visits only."""
    who = principal()
    key = idempotency_key()
    outcome = OutcomeRequest.model_validate(json_object_body())
    date = outcome.date.isoformat()
    hashed = request_hash({"visit_id": visit_id, **outcome.model_dump(mode="json")})
    scope = f"outcome:{who.role}:{who.agent_id or ''}"
    store = services().store
    stored = earlier_answer(scope, key, hashed)
    if stored is not None:
        from app.api.cases import enter_replayed_outcome

        enter_replayed_outcome(stored.body_json)  # in its case, if a failure kept it out the first time
        return replay(stored)

    agent_id, visit = locate_visit(date, visit_id)
    check_own_agent(who, agent_id, "visits")

    outcome_id = uuid.uuid4().hex
    now = utcnow()
    at = outcome.at or dt.datetime.now(dt.UTC)
    followups = []
    if outcome.status == "completed":
        followups = followups_for(
            services().followup_rules, visit=visit, date=outcome.date, result=outcome.result,
            promised_date=outcome.promised_date,
            source={"date": date, "visit_id": visit_id, "case_id": visit.case_id, "agent_id": agent_id,
                    "outcome_id": outcome_id, "result": outcome.result},
            created_at=now,
        )
    from app.api.visit_record import record_fields

    shown, private, shared = record_fields(outcome, date, visit)  # who was met, attitude …, proof of visit
    body = dump(OutcomeView, {
        "outcome_id": outcome_id, "date": date, "visit_id": visit_id, "agent_id": agent_id,
        "status": outcome.status, "result": outcome.result, "amount": outcome.amount, "currency": outcome.currency,
        "promised_date": outcome.promised_date, "at": at, "recorded_at": now, "followups": followups,
        "actor": who.actor(), **shown,
    })
    record = {**body, "note": outcome.note, "recorded_by": who.role, **private}
    from app.api.amounts import event_data, outcome_for

    answer = outcome_for(body, who)  # amounts hidden from a recorder whose role may not see them

    event = new_event("outcome.recorded", event_data({
        "date": date, "visit_id": visit_id, "case_id": visit.case_id, "agent_id": agent_id,
        "status": outcome.status, "result": outcome.result, "amount": outcome.amount, "currency": outcome.currency,
        "promised_date": body["promised_date"], "outcome_id": outcome_id,
        "actor": {"role": who.role, "token_id": who.token_id},  # the token id names the person; no names in events
        "followups": [{"id": f["id"], "kind": f["kind"], "date": f["date"]} for f in followups],
        **shared,
    }))  # the amount only when config/cases.toml lets systems see amounts
    events_out = [event]
    if outcome.status == "departed":
        _version, plan, problem = current_day(date)
        on_the_way = on_the_way_event(date=date, problem=problem, plan=plan, visit_id=visit_id, at=at,
                                      actor={"role": who.role, "token_id": who.token_id})
        if on_the_way is not None:  # outside the legal contact hours nothing goes to the borrower
            events_out.append(on_the_way)
    write = OutcomeWrite(
        date=date, visit_id=visit_id, agent_id=agent_id, status=outcome.status, result=outcome.result,
        allowed_from=TRANSITIONS[outcome.status],
        outcome_json=json.dumps(record, ensure_ascii=False),
        followups=[(f["id"], f["date"], json.dumps(f, ensure_ascii=False)) for f in followups],
        events=events_out,
        idempotency=None if key is None else Idempotency(scope, key, hashed, 201, json.dumps(answer)),
    )
    try:
        replayed, events = store.record_outcome(write)
    except TransitionRefused as refused:
        state = refused.current
        now_is = state.status or "planned"
        detail = f" (result {state.result})" if state.result else ""
        raise conflict(
            "invalid_transition",
            f"visit {visit_id!r} is {now_is}{detail}: cannot record {outcome.status}; "
            f"{outcome.status} may follow only {', '.join(sorted(s or 'planned' for s in TRANSITIONS[outcome.status]))}",
        ) from None
    if replayed is not None:
        return replay(replayed)
    log.info("outcome %s recorded for visit %s on %s by %s: %s %s, %d follow-up(s)", outcome_id, visit_id, date,
             who.token_id or who.role, outcome.status, outcome.result or "", len(followups))
    services().webhook.send(events)
    from app.api.cases import enter_outcome

    enter_outcome(record, visit)  # the case's history, promises and escalations (app.api.cases)
    return jsonify(answer), 201


@bp.get("/followups")
@roles("dispatcher", "system")
@doc(tags=("outcomes",), query=DateQuery, ok={"HTTP_200": FollowupList})
def list_followups():  # type: ignore[no-untyped-def]
    """Follow-up visits due on a date (and flags raised on it), in creation order."""
    date = parse_date(request.args.get("date"))
    records = [json.loads(r) for r in services().store.list_followups(date)]
    if not may_see_borrower(principal()):
        for record in records:
            if record.get("visit"):
                record["visit"]["borrower"] = None
    from app.api.amounts import redact_visits

    redact_visits([record["visit"] for record in records if record.get("visit")])  # amounts as the role allows
    return jsonify(dump(FollowupList, {"date": date, "followups": records}))
