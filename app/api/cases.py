"""The collection case around the visits:

* ``POST /v1/screening``: which cases need a field visit, with the priority
  and its breakdown, or the reason a case is not sent (:mod:`solver.screening`);
* ``POST /v1/payments``: a bank system reports money received; open promises
  are paid (kept) or found broken (:mod:`app.cases`);
* ``POST /v1/promises/check``: promises unpaid past their date break (a
  daily run), with revisits and escalations;
* ``GET /v1/cases/{case_id}/history``: every visit outcome, promise, payment,
  escalation and revisit of a case in time order.

Outcomes enter their case from ``POST /v1/visits/{id}/outcome``
(:func:`enter_outcome`). Every change of a case is one atomic write with a
compare-and-set on the case's version (retried on a conflict), so two payments
of one case at once both count. Amounts are shown as ``config/cases.toml``
allows the role (:mod:`app.api.amounts`); borrower contact never appears in a
history; logs carry ids and counts only.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from typing import Any

from flask import Blueprint, jsonify, request

from app.api.amounts import case_settings, event_data, hide_amounts, may_see_amounts
from app.api.case_schemas import (
    CaseHistory,
    HistoryQuery,
    PaymentRequest,
    PaymentView,
    PromiseCheckRequest,
    PromiseCheckView,
    ScreeningRequest,
    ScreeningView,
)
from app.api.common import current_day, dump, json_object_body, parse_date, services
from app.api.idempotency import earlier_answer, idempotency_key, replay, request_hash
from app.api.openapi import doc
from app.api.schemas import ErrorBody, IdempotencyHeaders
from app.auth import Principal, forbidden, principal, roles
from app.cases import PRIVATE_KEYS, CaseState, Change, Payment, check, on_outcome, on_payment
from app.errors import ApiError, conflict, not_found
from app.events import new_event
from app.store.base import CaseConflict, CaseWrite, Event, Idempotency, utcnow
from solver.model import Visit
from solver.screening import screen

bp = Blueprint("cases", __name__)
log = logging.getLogger("doorstep.cases")

#: Attempts of a case write that meets concurrent writers.
WRITE_ATTEMPTS = 20


class DuplicatePayment(Exception):
    """The case has counted this payment id already."""


# --------------------------------------------------------------------------- #
# Writing a case
# --------------------------------------------------------------------------- #
def _load(case_id: str) -> tuple[int, CaseState]:
    version, state_json = services().store.get_case(case_id)
    if state_json is None:
        return 0, CaseState(case_id=case_id)
    return version, CaseState.model_validate_json(state_json)


def _open(state: CaseState) -> bool:
    return bool(state.open_promises)


def apply(case_id: str, change_of: Callable[[CaseState], Change | None],
          idempotency: Callable[[Change], Idempotency | None] | None = None,
          ) -> tuple[Change | None, Idempotency | None, list[Event]]:
    """Read the case, compute the change, write it with a compare-and-set on
    the version; again on a conflict. Returns (the change written or None
    when ``change_of`` had nothing to do, a replayed answer, the stored events)."""
    store = services().store
    for _ in range(WRITE_ATTEMPTS):
        version, state = _load(case_id)
        change = change_of(state)
        if change is None:
            return None, None, []
        write = CaseWrite(
            case_id=case_id, expect_version=version, state_json=change.state.model_dump_json(),
            has_open_promises=_open(change.state),
            entries=[json.dumps(e, ensure_ascii=False) for e in change.entries],
            followups=[(f["id"], f["date"], json.dumps(f, ensure_ascii=False)) for f in change.followups],
            events=[new_event(kind, event_data(data)) for kind, data in change.events],  # amounts as configured
            idempotency=None if idempotency is None else idempotency(change),
        )
        try:
            replayed, events = store.write_case(write)
        except CaseConflict:
            continue
        if replayed is None:
            services().webhook.send(events)
        return change, replayed, events
    busy = ApiError(503, "busy", f"case {case_id!r} is being changed by many requests at once; retry")
    busy.headers = {"Retry-After": "1"}
    raise busy


def enter_outcome(record: dict[str, Any], visit: Visit) -> None:
    """Enter a recorded outcome in its case (once per outcome id: a retry is
    a no-op). Called by ``POST /v1/visits/{id}/outcome``."""
    config = case_settings().cases
    now = utcnow()
    outcome_id = record["outcome_id"]
    apply(visit.case_key, lambda state: on_outcome(state, record, visit, config, now),
          lambda _change: Idempotency("case-outcome", outcome_id, outcome_id, 200, "{}"))


def enter_replayed_outcome(body_json: str) -> None:
    """On a replayed outcome (same Idempotency-Key), enter the first answer's
    outcome in its case if an error kept it out then (a no-op otherwise)."""
    from app.api.visits import locate_visit

    body = json.loads(body_json)
    if not isinstance(body, dict) or "outcome_id" not in body:
        return
    records = [json.loads(r) for r in services().store.list_outcomes(body["date"], body["visit_id"])]
    record = next((r for r in records if r.get("outcome_id") == body["outcome_id"]), None)
    if record is None:
        return
    try:
        _agent, visit = locate_visit(body["date"], body["visit_id"])
    except ApiError:  # the plan changed since: the visit is known no more
        return
    enter_outcome(record, visit)


# --------------------------------------------------------------------------- #
# Screening
# --------------------------------------------------------------------------- #
@bp.post("/screening")
@roles("dispatcher", "system")
@doc(tags=("cases",), json=ScreeningRequest, ok={"HTTP_200": ScreeningView})
def screening():  # type: ignore[no-untyped-def]
    """Screen cases for field visits (config/screening.toml).

    Each visit carries its case (``Visit.case``: days past due, overdue
    amount, broken promises, last contact, risk flags, recent visits). A case
    whose score reaches the threshold is sent, with the score (capped at 100)
    as the visit's priority and the breakdown; the others are listed with the
    reason (no_case_data, not_overdue, risk_flag, escalated, visited_too_often,
    below_threshold). Broken promises Doorstep saw (POST /v1/payments,
    /v1/promises/check) count when more than the case says, and a case
    Doorstep escalated is not sent. The answer's ``visits`` are ready for
    POST /v1/plans. Nothing is stored."""
    body = ScreeningRequest.model_validate(json_object_body())
    store = services().store
    statuses: dict[str, str] = {}
    broken: dict[str, int] = {}
    flags: dict[str, list[str]] = {}
    for key, state_json in store.get_cases([visit.case_key for visit in body.visits]).items():
        state = CaseState.model_validate_json(state_json)
        statuses[key] = state.status
        broken[key] = state.broken_promises
        flags[key] = state.risk_flags
    config = case_settings().screening
    sent, results = screen(body.visits, body.date, config, statuses=statuses, broken_promises=broken,
                           risk_flags=flags)
    log.info("screened %d case(s) for %s: %d sent", len(results), body.date, len(sent))
    return jsonify(dump(ScreeningView, {
        "date": body.date.isoformat(), "threshold": config.threshold, "sent": len(sent),
        "excluded": len(results) - len(sent), "visits": [v.model_dump(mode="json") for v in sent],
        "results": [r.model_dump(mode="json") for r in results],
    }))


# --------------------------------------------------------------------------- #
# Payments and promise checks
# --------------------------------------------------------------------------- #
def _promise_views(state: CaseState, amounts: bool) -> list[dict[str, Any]]:
    views = []
    for promise in sorted(state.promises, key=lambda p: (p.due, p.promise_id)):
        view = promise.model_dump(mode="json")
        views.append(view if amounts else hide_amounts(view))
    return views


def _followups_for(who: Principal, followups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from app.api.agents import may_see_borrower
    from app.api.amounts import redact_visits

    out: list[dict[str, Any]] = json.loads(json.dumps(followups))
    for record in out:
        if record.get("visit"):
            if not may_see_borrower(who):
                record["visit"]["borrower"] = None
            redact_visits([record["visit"]], who)
    return out


@bp.post("/payments")
@roles("dispatcher", "system")
@doc(tags=("cases",), json=PaymentRequest, headers=IdempotencyHeaders,
     ok={"HTTP_201": (PaymentView, "Recorded (or replayed for the same Idempotency-Key and body)")},
     errors={"HTTP_409": (ErrorBody, "The payment id was counted already on the case (duplicate_payment), or "
                                     "the Idempotency-Key was used with another body")})
def record_payment():  # type: ignore[no-untyped-def]
    """Report money received on a case.

    Open promises due before ``received_on`` (plus the grace days) and unpaid
    are broken first (a revisit each, escalation rules applied); then the
    amount pays the case's open promises in its currency, oldest promised date
    first, and a promise paid in full (less the tolerance) is kept. Events:
    payment.received, promise.kept, promise.broken, case.escalated. Send an
    Idempotency-Key to have a retry answered with the first answer; a payment
    id the case counted already is a 409 ``duplicate_payment`` either way."""
    who = principal()
    key = idempotency_key()
    body = PaymentRequest.model_validate(json_object_body())
    hashed = request_hash(body.model_dump(mode="json"))
    scope = f"payment:{who.role}:{who.token_id or ''}"
    store = services().store
    stored = earlier_answer(scope, key, hashed)
    if stored is not None:
        return replay(stored)
    settings = case_settings()
    now = utcnow()
    at = body.at or dt.datetime.combine(body.received_on, dt.time(0), tzinfo=dt.UTC)
    payment = Payment(payment_id=body.payment_id, amount=body.amount, currency=body.currency,
                      received_on=body.received_on,
                      at=at.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                      reference=body.reference)
    amounts = may_see_amounts(who)
    answers: dict[str, Any] = {}

    def change_of(state: CaseState) -> Change:
        if body.payment_id in _payment_ids(state):
            raise DuplicatePayment(body.payment_id)
        change = on_payment(state, payment, settings.cases, settings.screening, now)
        answers["body"] = dump(PaymentView, {
            "payment_id": body.payment_id, "case_id": body.case_id,
            "amount": body.amount if amounts else None, "currency": body.currency,
            "received_on": body.received_on, "recorded_at": now, "case_status": change.state.status,
            "broken_promises": change.state.broken_promises,
            "promises": _promise_views(change.state, amounts),
            "followups": _followups_for(who, change.followups), "actor": who.actor(),
        })
        return change

    def idempotency(_change: Change) -> Idempotency | None:
        if key is None:
            return None
        return Idempotency(scope, key, hashed, 201, json.dumps(answers["body"]))

    try:
        change, replayed, _events = apply(body.case_id, change_of, idempotency)
    except DuplicatePayment:
        stored = None if key is None else store.get_idempotency(scope, key)
        if stored is not None and stored.request_hash == hashed:  # the same request, sent twice at once
            return replay(stored)
        raise conflict("duplicate_payment",
                       f"payment {body.payment_id!r} was counted already on case {body.case_id!r}") from None
    if replayed is not None:
        return replay(replayed)
    assert change is not None
    log.info("payment %s on case %s: %d promise(s) kept, %d broken; case %s",
             body.payment_id, body.case_id, sum(e["type"] == "promise_kept" for e in change.entries),
             sum(e["type"] == "promise_broken" for e in change.entries), change.state.status)
    return jsonify(answers["body"]), 201


def _crew_has_case(date: str, agent_id: str | None, case_id: str) -> bool:
    """Whether the crew has a stop of the case in the date's current plan."""
    try:
        _version, plan, problem = current_day(date)
    except ApiError:  # no plan that day
        return False
    visits = {v.id: v for v in problem.visits}
    return any(route.agent_id == agent_id and stop.visit_id in visits and visits[stop.visit_id].case_key == case_id
               for route in plan.routes for stop in route.stops)


def _payment_ids(state: CaseState) -> set[str]:
    return set(state.payment_ids)


@bp.post("/promises/check")
@roles("dispatcher", "system")
@doc(tags=("cases",), json=PromiseCheckRequest, ok={"HTTP_200": PromiseCheckView})
def check_promises():  # type: ignore[no-untyped-def]
    """Break the promises unpaid after their date plus the grace days, before
    ``date`` (run it daily, e.g. each morning before screening): each broken
    promise counts on its case, creates a revisit (GET /v1/followups) and may
    escalate the case (event case.escalated). Safe to repeat: a promise breaks once."""
    body = PromiseCheckRequest.model_validate(json_object_body())
    return jsonify(dump(PromiseCheckView, run_promise_check(body.date)))


def run_promise_check(date: dt.date) -> dict[str, Any]:
    """Break the promises of every case with open ones that are unpaid past
    their date plus the grace days, before ``date`` (a revisit each,
    escalation rules applied; events promise.broken, case.escalated). A
    promise breaks once: running it again changes nothing. In an app context
    (``POST /v1/promises/check`` and ``doorstep promises check``); returns
    the :class:`PromiseCheckView` fields."""
    settings = case_settings()
    now = utcnow()
    cases = services().store.open_cases()
    broken: list[dict[str, Any]] = []
    escalated: list[str] = []
    followups = 0
    for case_id in cases:
        def change_of(state: CaseState) -> Change | None:
            change = check(state, date, settings.cases, settings.screening, now)
            return change if change.entries else None

        change, _replayed, _events = apply(case_id, change_of)
        if change is None:
            continue
        for entry in change.entries:
            if entry["type"] == "promise_broken":
                broken.append({"case_id": case_id, "promise_id": entry["promise_id"], "due": entry["due"],
                               "case_status": change.state.status})
            elif entry["type"] == "escalation":
                escalated.append(case_id)
        followups += len(change.followups)
    log.info("promise check for %s: %d case(s), %d promise(s) broken, %d escalated", date, len(cases),
             len(broken), len(escalated))
    return {"date": date.isoformat(), "cases_checked": len(cases), "broken": broken, "escalated": escalated,
            "followups": followups}


# --------------------------------------------------------------------------- #
# History
# --------------------------------------------------------------------------- #
@bp.get("/cases/<case_id>/history")
@roles("dispatcher", "agent", "system")
@doc(tags=("cases",), query=HistoryQuery, ok={"HTTP_200": CaseHistory})
def case_history(case_id: str):  # type: ignore[no-untyped-def]
    """A case's history: every visit outcome (arrived, completed with its
    result), promise made, kept or broken, payment, escalation and revisit, in
    time order, with the case's status, counts and promises. An agent token
    reads only its crew's cases: cases it recorded outcomes for, or with a
    stop of its in the plan of ``?date=`` (default: today, UTC); amounts as
    config/cases.toml allows the role; notes, new addresses and phones only for
    roles that see borrower data."""
    from app.api.agents import may_see_borrower

    who = principal()
    store = services().store
    day = parse_date(request.args["date"]) if "date" in request.args else dt.datetime.now(dt.UTC).date().isoformat()
    _version, state_json = store.get_case(case_id)
    if state_json is None:
        raise not_found(f"no case {case_id[:128]!r}")
    state = CaseState.model_validate_json(state_json)
    if who.is_agent() and who.agent_id not in state.agents and not _crew_has_case(day, who.agent_id, case_id):
        raise forbidden("an agent token may only read its own crew's cases")
    amounts = may_see_amounts(who)
    notes = may_see_borrower(who)
    entries = []
    for seq, raw in enumerate(store.list_case_entries(case_id), start=1):
        data = json.loads(raw)
        kind, at = data.pop("type"), data.pop("at")
        if not amounts:
            hide_amounts(data)
        if not notes:
            for private in PRIVATE_KEYS:
                if private in data:
                    data[private] = None
        entries.append({"seq": seq, "type": kind, "at": at, "details": data})
    entries.sort(key=lambda e: (e["at"], e["seq"]))
    summary = {
        "case_id": state.case_id, "status": state.status, "counts": state.counts,
        "broken_promises": state.broken_promises, "open_promises": len(state.open_promises),
        "payments": state.payments, "paid_total": state.paid_total if amounts else None,
        "currency": state.currency, "agents": state.agents,
    }
    return jsonify(dump(CaseHistory, {"case": summary, "promises": _promise_views(state, amounts),
                                      "entries": entries}))


def crew_has_case(date: str, agent_id: str | None, case_id: str) -> bool:
    """Whether the crew has a stop of the case in the date's current plan
    (attachments check an agent's reads with it)."""
    return _crew_has_case(date, agent_id, case_id)
