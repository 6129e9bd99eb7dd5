"""The pydantic models of the case endpoints (screening, payments, promise
checks, case histories): the contract of :mod:`app.api.cases`, in the
OpenAPI document like those of :mod:`app.api.schemas`."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from app.api.schemas import Actor, Followup
from solver.model import Id, Visit, check_sane_date, check_sane_datetime
from solver.screening import Screened

#: Most visits one screening request takes (as many as a plan).
MAX_SCREENING_VISITS = 20000


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- #
# Screening
# --------------------------------------------------------------------------- #
class ScreeningRequest(_In):
    """Cases to screen: visits carrying their case data (``Visit.case``)."""

    date: dt.date = Field(description="The screening day (days since the last contact count to it)")
    visits: list[Visit] = Field(min_length=1, max_length=MAX_SCREENING_VISITS)

    @field_validator("date")
    @classmethod
    def _sane_date(cls, value: dt.date) -> dt.date:
        return check_sane_date(value)


class ScreeningView(_Out):
    date: str
    threshold: float = Field(description="The lowest score sent for a field visit (config/screening.toml)")
    sent: int
    excluded: int
    visits: list[Visit] = Field(description="The visits to send, highest priority first, with their priority set: "
                                            "the visits of POST /v1/plans")
    results: list[Screened] = Field(description="One per visit, in request order: sent with the score and its "
                                                "breakdown, or the code and reason it was not")


# --------------------------------------------------------------------------- #
# Payments and promises
# --------------------------------------------------------------------------- #
class PaymentRequest(_In):
    """Money received on a case, reported by the bank's systems."""

    payment_id: Id = Field(description="The bank's id of the payment: a payment id is never counted twice per case")
    case_id: Id
    amount: float = Field(gt=0, le=1e12)
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$", description="ISO 4217; only promises in this "
                                                                        "currency (or none) are paid by it")
    received_on: dt.date = Field(description="The day the money was received")
    at: AwareDatetime | None = Field(None, description="When it was received (default: received_on's start, UTC)")
    reference: str | None = Field(None, max_length=200, description="The bank's reference (kept, never logged)")

    @field_validator("received_on")
    @classmethod
    def _sane_day(cls, value: dt.date) -> dt.date:
        return check_sane_date(value)

    @field_validator("at")
    @classmethod
    def _sane_at(cls, value: dt.datetime | None) -> dt.datetime | None:
        return None if value is None else check_sane_datetime(value)


class PromiseView(_Out):
    promise_id: str
    outcome_id: str | None
    visit_id: str
    date: dt.date = Field(description="The visit date where it was made")
    due: dt.date = Field(description="The promised date")
    amount: float | None = Field(description="Promised amount (null: hidden from this role)")
    currency: str | None
    paid: float | None = Field(description="Paid towards it so far (null: hidden from this role)")
    status: Literal["open", "kept", "broken"]
    settled_at: str | None
    kind: Literal["promise", "instalment"] = Field("promise", description="promise_to_pay, or a plan's instalment")


class PaymentView(_Out):
    payment_id: str
    case_id: str
    amount: float | None
    currency: str | None
    received_on: dt.date
    recorded_at: str
    case_status: str = Field(description="open, or the status an escalation set (legal_review …)")
    broken_promises: int = Field(description="Promises the case has seen broken")
    promises: list[PromiseView] = Field(description="The case's promises after this payment")
    followups: list[Followup] = Field(description="Revisits created by promises found broken")
    actor: Actor


class PromiseCheckRequest(_In):
    date: dt.date = Field(description="Promises unpaid after their date plus the grace days, before this day, break")

    @field_validator("date")
    @classmethod
    def _sane_date(cls, value: dt.date) -> dt.date:
        return check_sane_date(value)


class BrokenPromise(_Out):
    case_id: str
    promise_id: str
    due: dt.date
    case_status: str


class PromiseCheckView(_Out):
    date: str
    cases_checked: int = Field(description="Cases with open promises looked at")
    broken: list[BrokenPromise]
    escalated: list[str] = Field(description="Case ids escalated by this check")
    followups: int = Field(description="Revisits created")


# --------------------------------------------------------------------------- #
# History
# --------------------------------------------------------------------------- #
EntryType = Literal["outcome", "promise", "promise_kept", "promise_broken", "payment", "escalation", "followup",
                    "attachment"]


class HistoryQuery(_In):
    date: dt.date | None = Field(None, description="Agents: a plan date on which the crew has a stop of the case "
                                                   "(default: today, UTC)")


class HistoryEntry(_Out):
    seq: int = Field(description="Order in which Doorstep learnt it")
    type: EntryType
    at: str = Field(description="When it happened (UTC; an outcome's own time, a payment's receipt)")
    details: dict[str, Any] = Field(description="The fields of the entry (amounts null when hidden from the role)")


class CaseSummary(_Out):
    case_id: str
    status: str
    counts: dict[str, int] = Field(description="Results of visits (refused, not_at_home …) and broken_promise")
    broken_promises: int
    open_promises: int
    payments: int
    paid_total: float | None = Field(description="Sum received (null: hidden from this role)")
    currency: str | None
    agents: list[str] = Field(description="Crews that recorded outcomes of the case")


class CaseHistory(_Out):
    case: CaseSummary
    promises: list[PromiseView]
    entries: list[HistoryEntry] = Field(description="Every visit outcome, promise, payment, escalation and "
                                                    "revisit, in time order")


# --------------------------------------------------------------------------- #
# Attachments (photos and audio of a visit)
# --------------------------------------------------------------------------- #
class AttachmentQuery(_In):
    date: dt.date = Field(description="The plan date of the visit")
    label: str | None = Field(None, max_length=100, description="What it shows (front door, receipt …); no names")

    @field_validator("date")
    @classmethod
    def _sane_date(cls, value: dt.date) -> dt.date:
        return check_sane_date(value)


class Uploader(_Out):
    role: str
    token_id: str | None = Field(description="The token that uploaded it (names the person; no names here)")


class AttachmentView(_Out):
    attachment_id: str
    date: str
    visit_id: str
    case_id: str
    agent_id: str | None = Field(description="The crew of the visit's stop")
    kind: Literal["photo", "audio"]
    content_type: str = Field(description="Found from the bytes, not from the Content-Type sent")
    size: int = Field(description="Bytes")
    sha256: str = Field(description="Hex SHA-256 of the bytes (GET /v1/attachments/{id} sends the same)")
    label: str | None
    uploaded_by: Uploader
    uploaded_at: str
    links: dict[str, str] = Field(description="content: where to download it")
