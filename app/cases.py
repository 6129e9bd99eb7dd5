"""The collection case around the visits: its ledger of outcomes, promises,
payments and escalations (``config/cases.toml``).

A case (keyed by :attr:`solver.model.Visit.case_key`: the visit's
``case_id``, or its id) keeps a :class:`CaseState` — its status, what was
counted (results of visits, broken promises), its promises to pay, what was
paid, the crews that visited — and an append-only list of history entries.
The functions here are pure: they take a state and something that happened
and return a :class:`Change` (the new state, the history entries, the events,
the follow-up visits to store); :mod:`app.api.cases` stores a change
atomically with a compare-and-set on the state.

* :func:`on_outcome`: a visit's outcome (``POST /v1/visits/{id}/outcome``) is
  entered; ``promise_to_pay`` opens a promise (amount, promised date);
* :func:`on_payment`: a payment reported by the bank (``POST /v1/payments``)
  judges the promises due before it, then pays open promises oldest first:
  one paid in full (less the tolerance) is **kept**;
* :func:`check_promises`: an open promise unpaid past its date plus the grace
  days is **broken** (on a payment, or by ``POST /v1/promises/check``): the
  case counts a broken promise (screening weighs it) and gets a revisit;
* :func:`escalate`: the first escalation rule whose count is reached moves
  the case to its status (``legal_review``), event ``case.escalated``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from solver.config import load_settings
from solver.model import Visit
from solver.screening import ScreeningConfig, score_case

FILENAME = "cases.toml"
#: Status of a case nothing escalated yet.
OPEN = "open"
#: Results of a visit that become risk flags of the case (screening reads them with the case's own).
FLAG_RESULTS = ("dispute", "incident")
#: Fields of the visit record entered in the case's history (the last five are personal data:
#: hidden from roles that see no borrower data).
RECORD_KEYS = ("met", "attitude", "willingness", "ability", "hardship", "contact_updated", "position",
               "distance_m", "geo_mismatch", "hardship_note", "income_note", "expense_note", "new_address", "new_phone")
PRIVATE_KEYS = ("note", "hardship_note", "income_note", "expense_note", "new_address", "new_phone")


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


Role = Literal["dispatcher", "agent", "system"]


def _door_roles() -> list[Role]:
    return ["dispatcher", "agent"]


class Visibility(_Config):
    """Roles that see amounts (overdue, promised, paid)."""

    amounts: list[Role] = Field(default_factory=_door_roles)


class PromiseRules(_Config):
    grace_days: int = Field(0, ge=0, le=366)
    tolerance: float = Field(0.0, ge=0, lt=1)
    revisit_days: int = Field(1, ge=1, le=366)
    revisit_priority_delta: int = Field(15, ge=-100, le=100)
    revisit_purpose: str | None = Field("revisit: broken promise to pay", max_length=200)


class EscalationRule(_Config):
    on: str = Field(min_length=1, max_length=40, description="An outcome result, or broken_promise")
    count: int = Field(ge=1, le=1000)
    status: str = Field(min_length=1, max_length=40, pattern=r"^[a-z0-9_]+$")


class ProofRules(_Config):
    """Proof of visit: a position farther than ``geo_mismatch_m`` from the stop is flagged."""

    geo_mismatch_m: float = Field(200.0, gt=0, le=100_000)


def _attachment_types() -> list[str]:
    return ["image/jpeg", "image/png", "image/webp", "audio/mpeg", "audio/mp4", "audio/ogg", "audio/wav"]


class AttachmentRules(_Config):
    """Photos and audio of a visit (``POST /v1/visits/{id}/attachments``):
    the media types accepted (found from the bytes, not the Content-Type),
    the largest size, where the bytes go (the store, or ``folder`` when set)
    and the roles that may read them back (an agent only its crew's)."""

    types: list[str] = Field(default_factory=_attachment_types, min_length=1, max_length=20)
    max_bytes: int = Field(10 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    folder: str = Field("", max_length=1000, description="A folder for the bytes; empty: in the store")
    readers: list[Role] = Field(default_factory=_door_roles)


class SafetyRules(_Config):
    """A crew ``arrived`` without ``completed`` past the stop's duration plus
    ``overdue_margin_min`` raises ``safety.overdue`` (once per visit)."""

    overdue_margin_min: int = Field(30, ge=0, le=24 * 60)
    sweep_every_s: float = Field(60.0, ge=1, le=86400, description="How often a deliverer sweeps")


class CasesConfig(_Config):
    """``config/cases.toml``."""

    visibility: Visibility = Field(default_factory=Visibility)
    promises: PromiseRules = Field(default_factory=PromiseRules)
    escalation: list[EscalationRule] = Field(default_factory=list, max_length=50)
    proof: ProofRules = Field(default_factory=ProofRules)
    attachments: AttachmentRules = Field(default_factory=AttachmentRules)
    safety: SafetyRules = Field(default_factory=SafetyRules)


def load_config(path: str | Path | None = None) -> CasesConfig:
    """The configuration in ``path`` (default: ``cases.toml`` of the
    configuration folder; built-in defaults without escalation rules when that
    file does not exist). A bad file raises ValueError naming the key."""
    return load_settings(CasesConfig, FILENAME, path)


# --------------------------------------------------------------------------- #
# State
# --------------------------------------------------------------------------- #
PromiseStatus = Literal["open", "kept", "broken"]


class Promise(BaseModel):
    """A promise to pay made at a visit."""

    model_config = ConfigDict(extra="forbid")

    promise_id: str
    outcome_id: str | None
    visit_id: str
    date: dt.date = Field(description="The date of the visit where it was made")
    due: dt.date = Field(description="The promised date")
    amount: float | None
    currency: str | None
    paid: float = 0.0
    status: PromiseStatus = "open"
    kind: Literal["promise", "instalment"] = Field("promise", description="promise_to_pay, or a plan's instalment")
    settled_at: str | None = Field(None, description="When it was found kept or broken (UTC)")


class CaseState(BaseModel):
    """What Doorstep knows of a case (stored as JSON; never served whole: it
    holds the last visit, with the borrower's contact, to copy for revisits)."""

    model_config = ConfigDict(extra="forbid")

    case_id: str
    status: str = OPEN
    counts: dict[str, int] = Field(default_factory=dict, description="Results of visits, broken_promise")
    promises: list[Promise] = Field(default_factory=list)
    payments: int = 0
    payment_ids: list[str] = Field(default_factory=list, description="Payment ids counted (never twice)")
    paid_total: float = 0.0
    currency: str | None = None
    agents: list[str] = Field(default_factory=list, description="Crews that recorded outcomes of the case")
    risk_flags: list[str] = Field(default_factory=list, description="Flags visits raised (dispute, incident)")
    visit: dict[str, Any] | None = Field(None, description="The last visit of the case (for revisits)")
    visit_date: str | None = None
    updated_at: str | None = None

    @property
    def open_promises(self) -> list[Promise]:
        return sorted((p for p in self.promises if p.status == "open"), key=lambda p: (p.due, p.promise_id))

    @property
    def broken_promises(self) -> int:
        return self.counts.get("broken_promise", 0)


@dataclass
class Change:
    """What something that happened does to a case."""

    state: CaseState
    entries: list[dict[str, Any]] = field(default_factory=list)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    followups: list[dict[str, Any]] = field(default_factory=list)


def _utc(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _event_base(state: CaseState) -> dict[str, Any]:
    return {"case_id": state.case_id, "status": state.status}


# --------------------------------------------------------------------------- #
# Escalation
# --------------------------------------------------------------------------- #
def escalate(change: Change, config: CasesConfig, now: str) -> None:
    """Apply the first escalation rule the case's counts reach (once: a case
    escalated stays so)."""
    state = change.state
    if state.status != OPEN:
        return
    at = change.entries[-1]["at"] if change.entries else now  # when what triggered it happened
    for rule in config.escalation:
        counted = state.counts.get(rule.on, 0)
        if counted >= rule.count:
            state.status = rule.status
            entry = {"type": "escalation", "at": at, "status": rule.status, "on": rule.on, "count": counted}
            change.entries.append(entry)
            change.events.append(("case.escalated", {"case_id": state.case_id, "status": rule.status,
                                                     "on": rule.on, "count": counted}))
            return


# --------------------------------------------------------------------------- #
# Outcomes
# --------------------------------------------------------------------------- #
def on_outcome(state: CaseState, record: dict[str, Any], visit: Visit, config: CasesConfig, now: str) -> Change:
    """Enter a recorded outcome (the :class:`app.api.schemas.OutcomeView`
    body plus its ``note``): count its result, open a promise for
    ``promise_to_pay``, keep the visit for revisits, and escalate."""
    state = state.model_copy(deep=True)
    change = Change(state)
    at = _utc(dt.datetime.fromisoformat(record["at"]))  # UTC, so that the history sorts by time
    entry = {"type": "outcome", "at": at, "recorded_at": record["recorded_at"],
             "outcome_id": record["outcome_id"], "date": record["date"], "visit_id": record["visit_id"],
             "agent_id": record["agent_id"], "status": record["status"], "result": record["result"],
             "amount": record.get("amount"), "currency": record.get("currency"),
             "promised_date": record.get("promised_date"), "note": record.get("note"),
             "actor": record.get("actor"), **{key: record.get(key) for key in RECORD_KEYS if key in record}}
    change.entries.append(entry)
    if record["agent_id"] and record["agent_id"] not in state.agents:
        state.agents.append(record["agent_id"])
    state.visit = visit.model_dump(mode="json")
    state.visit_date = record["date"]
    result = record["result"]
    if record["status"] == "completed" and result:
        state.counts[result] = state.counts.get(result, 0) + 1
        if result in FLAG_RESULTS and result not in state.risk_flags:
            state.risk_flags.append(result)  # screening weighs it (a dispute excludes; an incident needs two)
    if record["status"] == "completed" and result == "promise_to_pay" and record.get("promised_date"):
        promise = Promise(promise_id=f"pr-{uuid.uuid4().hex[:12]}", outcome_id=record["outcome_id"],
                          visit_id=record["visit_id"], date=dt.date.fromisoformat(record["date"]),
                          due=dt.date.fromisoformat(record["promised_date"]), amount=record.get("amount"),
                          currency=record.get("currency"))
        state.promises.append(promise)
        change.entries.append({"type": "promise", "at": at, **_promise_entry(promise)})
        change.events.append(("promise.made", {**_event_base(state), "promise_id": promise.promise_id,
                                               "due": promise.due.isoformat(), "amount": promise.amount,
                                               "currency": promise.currency}))
    if record["status"] == "completed" and result == "plan_agreed":
        for instalment in record.get("instalments") or []:
            promise = Promise(promise_id=f"pr-{uuid.uuid4().hex[:12]}", outcome_id=record["outcome_id"],
                              visit_id=record["visit_id"], date=dt.date.fromisoformat(record["date"]),
                              due=dt.date.fromisoformat(instalment["date"]), amount=instalment["amount"],
                              currency=record.get("currency"), kind="instalment")
            state.promises.append(promise)
            change.entries.append({"type": "promise", "at": at, **_promise_entry(promise)})
            change.events.append(("promise.made", {**_event_base(state), "promise_id": promise.promise_id,
                                                   "kind": "instalment", "due": promise.due.isoformat(),
                                                   "amount": promise.amount, "currency": promise.currency}))
    escalate(change, config, now)
    state.updated_at = now
    return change


def _promise_entry(promise: Promise) -> dict[str, Any]:
    return {"promise_id": promise.promise_id, "outcome_id": promise.outcome_id, "visit_id": promise.visit_id,
            "due": promise.due.isoformat(), "amount": promise.amount, "currency": promise.currency,
            "paid": round(promise.paid, 2), "promise_status": promise.status, "kind": promise.kind}


# --------------------------------------------------------------------------- #
# Promises and payments
# --------------------------------------------------------------------------- #
def _revisit(state: CaseState, promise: Promise, found_on: dt.date, config: CasesConfig,
             screening: ScreeningConfig, now: str) -> dict[str, Any] | None:
    """The revisit follow-up a broken promise creates (None without a stored visit)."""
    if state.visit is None:
        return None
    visit = Visit.model_validate(state.visit)
    rules = config.promises
    due = found_on + dt.timedelta(days=rules.revisit_days)
    case = visit.case
    if case is not None:
        case = case.model_copy(update={"broken_promises": max(case.broken_promises, min(1000, state.broken_promises))})
        priority = score_case(case, due, screening).priority
    else:
        priority = max(0, min(100, visit.priority + rules.revisit_priority_delta))
    purpose = rules.revisit_purpose or visit.purpose
    # a case an incident (or another flag of [safety] two_collectors) marked at risk is revisited by two
    at_risk = any(flag in screening.safety.two_collectors for flag in state.risk_flags)
    new_visit = visit.model_copy(update={
        "id": f"{visit.id[:80]}-bp-{due.strftime('%Y%m%d')}", "priority": priority, "required": False,
        "appointment": None, "pinned_agent": None, "purpose": purpose, "case": case,
        "crew_size": max(2, visit.crew_size) if at_risk else visit.crew_size,
    })
    agent_id = state.agents[-1] if state.agents else None
    return {"id": f"fu-{uuid.uuid4().hex[:12]}", "kind": "visit", "date": due.isoformat(), "flag": None,
            "priority": priority, "purpose": purpose, "visit": new_visit.model_dump(mode="json"),
            "rule": "broken_promise",
            "source": {"date": promise.date.isoformat(), "visit_id": promise.visit_id, "case_id": visit.case_id,
                       "agent_id": agent_id, "outcome_id": promise.outcome_id or promise.promise_id,
                       "result": "broken_promise"},
            "created_at": now}


def check_promises(change: Change, as_of: dt.date, config: CasesConfig, screening: ScreeningConfig,
                   now: str) -> None:
    """Break the open promises unpaid after their date plus the grace days
    (that is, before ``as_of``); each counts a broken promise, then the case
    may escalate; while it stays open, each breaks into a revisit."""
    state = change.state
    broken = []
    for promise in state.open_promises:
        last_day = promise.due + dt.timedelta(days=config.promises.grace_days)
        if last_day < as_of:
            promise.status = "broken"
            promise.settled_at = now
            state.counts["broken_promise"] = state.counts.get("broken_promise", 0) + 1
            broken.append(promise)
            # broken when its last day ended (UTC midnight after it), whenever that was found
            ended = _utc(dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(0), tzinfo=dt.UTC))
            change.entries.append({"type": "promise_broken", "at": ended, **_promise_entry(promise)})
            change.events.append(("promise.broken", {**_event_base(state), "promise_id": promise.promise_id,
                                                     "due": promise.due.isoformat(), "amount": promise.amount,
                                                     "paid": round(promise.paid, 2), "currency": promise.currency,
                                                     "broken_promises": state.broken_promises}))
    if not broken:
        return
    escalate(change, config, now)
    if state.status == OPEN:
        for promise in broken:
            revisit = _revisit(state, promise, as_of, config, screening, now)
            if revisit is not None:
                change.followups.append(revisit)
                change.entries.append({"type": "followup", "at": change.entries[-1]["at"], "followup_id": revisit["id"],
                                       "date": revisit["date"], "visit_id": revisit["visit"]["id"],
                                       "rule": "broken_promise"})
    state.updated_at = now


def check(state: CaseState, as_of: dt.date, config: CasesConfig, screening: ScreeningConfig, now: str) -> Change:
    """:func:`check_promises` on a copy of ``state``."""
    change = Change(state.model_copy(deep=True))
    check_promises(change, as_of, config, screening, now)
    return change


@dataclass(frozen=True)
class Payment:
    """Money received on a case, as the bank reports it."""

    payment_id: str
    amount: float
    currency: str | None
    received_on: dt.date
    at: str  # when received (UTC ISO), for the history's order
    reference: str | None = None


def on_payment(state: CaseState, payment: Payment, config: CasesConfig, screening: ScreeningConfig,
               now: str) -> Change:
    """Enter a payment: promises due before it and unpaid are broken first;
    then the amount pays the open promises in the payment's currency, oldest
    due date first; a promise paid in full (less the tolerance) is kept."""
    change = Change(state.model_copy(deep=True))
    state = change.state
    check_promises(change, payment.received_on, config, screening, now)
    state.payments += 1
    state.payment_ids.append(payment.payment_id)
    state.paid_total = round(state.paid_total + payment.amount, 2)
    state.currency = state.currency or payment.currency
    change.entries.append({"type": "payment", "at": payment.at, "payment_id": payment.payment_id,
                           "amount": payment.amount, "currency": payment.currency,
                           "received_on": payment.received_on.isoformat(), "reference": payment.reference})
    change.events.append(("payment.received", {**_event_base(state), "payment_id": payment.payment_id,
                                               "amount": payment.amount, "currency": payment.currency,
                                               "received_on": payment.received_on.isoformat()}))
    left = payment.amount
    for promise in state.open_promises:
        if left <= 0:
            break
        if promise.currency and payment.currency and promise.currency != payment.currency:
            continue
        target = promise.amount or 0.0
        take = min(left, max(0.0, target - promise.paid))
        promise.paid = round(promise.paid + take, 2)
        left = round(left - take, 2)
        if promise.paid >= target * (1 - config.promises.tolerance) - 1e-9:
            promise.status = "kept"
            promise.settled_at = now
            change.entries.append({"type": "promise_kept", "at": payment.at, **_promise_entry(promise)})
            change.events.append(("promise.kept", {**_event_base(state), "promise_id": promise.promise_id,
                                                   "due": promise.due.isoformat(), "amount": promise.amount,
                                                   "currency": promise.currency}))
    state.updated_at = now
    return change


# --------------------------------------------------------------------------- #
# Attachments
# --------------------------------------------------------------------------- #
def on_attachment(state: CaseState, record: dict[str, Any], now: str) -> Change:
    """Enter a photo or recording of a visit (:func:`app.attachments.new_record`)
    in the case's history, with the event ``attachment.added`` (no bytes)."""
    change = Change(state.model_copy(deep=True))
    change.entries.append({"type": "attachment", "at": record["uploaded_at"], **record})
    change.events.append(("attachment.added", {
        **_event_base(change.state), **{key: record[key] for key in (
            "attachment_id", "date", "visit_id", "agent_id", "kind", "content_type", "size", "sha256",
            "uploaded_by", "uploaded_at")}}))
    change.state.updated_at = now
    return change
