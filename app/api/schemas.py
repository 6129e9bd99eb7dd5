"""The pydantic models of the v1 API beyond :mod:`solver.model`.

They are the contract: the OpenAPI document (``GET /v1/openapi.json``) is
generated from them and from the solver's models by spectree, and the views
build their answers through them (``model_validate(...).model_dump(mode="json")``)
so the document cannot drift from what is served.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from solver.model import (
    CaseInfo,
    Location,
    Plan,
    PlanSummary,
    SlotOffer,
    Stop,
    Visit,
    check_sane_date,
    check_sane_datetime,
)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- #
# Errors
# --------------------------------------------------------------------------- #
class FieldError(_Out):
    field: str = Field(description="Dotted path of the field at fault, e.g. visits.3.addresses.0.time_windows.0")
    message: str


class ErrorBody(_Out):
    """Every error answer (4xx/5xx)."""

    error: str = Field(description="Machine-readable code: validation_error, bad_request, not_found, conflict codes …")
    message: str
    errors: list[FieldError] | None = None


class SizeLimit(_Out):
    field: str = Field(description="visits, agents, locations or options.time_limit_s")
    max: float = Field(description="The largest value accepted")
    got: float = Field(description="The request's value")


class TooLargeBody(_Out):
    """413: the request is bigger than a limit of the service."""

    error: Literal["too_large"]
    message: str
    limit: SizeLimit


# --------------------------------------------------------------------------- #
# Query strings and headers
# --------------------------------------------------------------------------- #
class WaitQuery(_In):
    wait: float | None = Field(None, gt=0, le=300, description="Wait up to this many seconds for the job to finish")


class VersionQuery(_In):
    version: int | None = Field(None, ge=1, description="A given version instead of the current one")


class DateQuery(_In):
    date: dt.date = Field(description="YYYY-MM-DD")


class ItineraryQuery(_In):
    date: dt.date = Field(description="YYYY-MM-DD")
    format: Literal["json", "geojson", "ics"] | None = Field(
        None, description="geojson: the route as GeoJSON; ics: iCalendar (same as Accept: text/calendar)"
    )


class EventsQuery(_In):
    after: str | None = Field(None, description="Cursor: the id of the last event already seen")
    limit: int = Field(100, ge=1, le=1000)


class IdempotencyHeaders(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    idempotency_key: str | None = Field(
        None, alias="Idempotency-Key", max_length=200,
        description="Same key and body: the first answer is replayed; same key, other body: 409",
    )


# --------------------------------------------------------------------------- #
# Jobs and plans
# --------------------------------------------------------------------------- #
class JobProgress(_Out):
    stage: str | None = Field(description="validating, geocoding, matrix, solving, checking, publishing, done")
    fraction: float = Field(description="0..1 within the stage (solving: share of the time limit used)")
    best_cost: float | None = Field(None, description="The solver's objective, when known")
    stage_started_at: str | None = None


class JobView(_Out):
    job_id: str
    kind: Literal["plan", "reoptimize", "days"] = Field(description="days: several dates or a draft (a plan set)")
    status: Literal["queued", "running", "succeeded", "failed"]
    date: str
    progress: JobProgress
    error: str | None
    error_code: str | None = Field(
        None, description="Why a failed job failed: solver_crashed, memory_limit, time_limit, worker_lost, "
        "shutdown or job_error")
    version: int | None = Field(description="The plan version published on success")
    visits: int
    agents: int
    runner: Literal["process", "thread", "rq"]
    created_at: str
    updated_at: str
    heartbeat_at: str | None = None
    links: dict[str, str]


class JobAccepted(_Out):
    job_id: str
    status: str
    date: str
    links: dict[str, str]


class PlanCreated(_Out):
    job_id: str
    status: Literal["succeeded"]
    date: str
    version: int
    plan: Plan
    links: dict[str, str]


class PlanVersionView(_Out):
    date: str
    version: int
    current_version: int | None
    current: bool
    created_at: str
    job_id: str | None
    reason: str | None = Field(None, description="plan, reoptimize or booking")
    plan: Plan


class VersionItem(_Out):
    version: int
    created_at: str
    job_id: str | None
    reason: str | None = None
    summary: PlanSummary | None
    links: dict[str, str]


class VersionList(_Out):
    date: str
    current_version: int
    versions: list[VersionItem]


# --------------------------------------------------------------------------- #
# Itinerary
# --------------------------------------------------------------------------- #
class SlotView(_Out):
    start: dt.datetime
    end: dt.datetime


class AddressView(_Out):
    text: str | None
    kind: str
    index: int
    location: Location


class BorrowerView(_Out):
    name: str | None
    phone: str | None


class Navigation(_Out):
    amap: str = Field(description="AMap (高德) navigation link, GCJ-02")
    geo: str = Field(description="geo: URI, WGS-84")


class ItineraryStop(_Out):
    sequence: int
    visit_id: str
    case_id: str | None
    purpose: str | None
    priority: int
    required: bool
    arrival: dt.datetime
    start: dt.datetime
    end: dt.datetime
    earliest_start: dt.datetime
    latest_start: dt.datetime
    slot: SlotView | None
    appointment: SlotView | None
    duration_min: int
    wait_min: float
    travel_min_from_previous: float
    distance_km_from_previous: float
    address: AddressView
    navigation: Navigation
    borrower: BorrowerView | None = Field(description="Borrower contact, as the caller's role allows")
    status: str | None = Field(None, description="Recorded status: departed, arrived, completed (null: planned)")
    result: str | None = None
    case: CaseInfo | None = Field(None, description="The visit's case data (overdue_amount null for roles "
                                                    "config/cases.toml does not let see amounts)")


class PlaceView(_Out):
    text: str | None
    location: Location


class BreakView(_Out):
    start: dt.datetime
    end: dt.datetime
    duration_min: float


class ItineraryTotals(_Out):
    visits: int
    travel_min: float
    distance_km: float
    wait_min: float
    return_travel_min: float


class Itinerary(_Out):
    agent_id: str
    date: str
    timezone: str
    version: int | None
    members: list[str]
    travel_mode: str
    shift: SlotView
    start: PlaceView
    end: PlaceView | None
    leaves_at: dt.datetime
    returns_at: dt.datetime
    stops: list[ItineraryStop]
    breaks: list[BreakView]
    totals: ItineraryTotals


class GeoPoint(_Out):
    """A GeoJSON Point: ``[lon, lat]`` in WGS-84 (RFC 7946)."""

    type: Literal["Point"]
    coordinates: list[float] = Field(min_length=2, max_length=2, description="[longitude, latitude]")


class GeoLineString(_Out):
    """A GeoJSON LineString: the route's legs, ``[lon, lat]`` positions."""

    type: Literal["LineString"]
    coordinates: list[list[float]] = Field(min_length=2)


class GeoFeature(_Out):
    """A route (LineString), a stop or an unassigned visit (Point; null when not geocoded)."""

    type: Literal["Feature"]
    geometry: GeoPoint | GeoLineString | None
    properties: dict[str, Any] = Field(
        description="kind (route, stop, unassigned), agent_id, colour, sequence, visit_id, times, reason …"
    )


class GeoJSON(_Out):
    """A GeoJSON FeatureCollection (RFC 7946): the route LineString and a Point per stop."""

    type: Literal["FeatureCollection"]
    features: list[GeoFeature]


# --------------------------------------------------------------------------- #
# Outcomes and follow-ups
# --------------------------------------------------------------------------- #
OutcomeStatus = Literal["departed", "arrived", "completed"]
OutcomeResult = Literal["paid", "promise_to_pay", "plan_agreed", "refused", "not_at_home", "wrong_address",
                        "dispute", "moved", "third_party", "incident"]
_AMOUNT_RESULTS = ("paid", "promise_to_pay", "plan_agreed")

# The visit record (issue 15): who was met, attitude, willingness and ability, hardship, proof of visit.
MetWith = Literal["borrower", "family", "colleague", "nobody"]
Attitude = Literal["cooperative", "neutral", "evasive", "hostile"]
Hardship = Literal["unemployment", "illness", "business_failure", "family", "disaster", "other"]
#: Fields of the visit record that only a completed visit carries.
_RECORD_FIELDS = ("met", "attitude", "willingness", "ability", "hardship", "hardship_note", "income_note",
                  "expense_note", "new_address", "new_phone")


class Instalment(_In):
    """One instalment of an agreed repayment plan: each becomes a promise whose due date is checked."""

    date: dt.date = Field(description="Due date")
    amount: float = Field(gt=0, le=1e12)

    @field_validator("date")
    @classmethod
    def _sane_date(cls, value: dt.date) -> dt.date:
        return check_sane_date(value)


class GeoFix(_In):
    """Where the phone was (proof of visit): a point and its accuracy."""

    lat: float = Field(ge=-90.0, le=90.0)
    lon: float = Field(ge=-180.0, le=180.0)
    crs: Literal["wgs84", "gcj02", "bd09"] = Field("wgs84", description="Datum of lat/lon")
    accuracy_m: float | None = Field(None, ge=0, le=100_000, description="The fix's accuracy radius, metres")


class OutcomeRequest(_In):
    """What happened at a visit.

    Transitions: planned → departed → arrived → completed (departed and
    arrived may be skipped: an agent who forgot to report them can still close
    the visit); anything else is a 409. departed (the crew left for the stop)
    sends the borrower a slot.on_the_way event with the updated slot, inside
    the legal contact hours.
    """

    date: dt.date = Field(description="The plan date of the visit")
    status: OutcomeStatus
    result: OutcomeResult | None = Field(None, description="Required with completed, not allowed with arrived")
    amount: float | None = Field(None, gt=0, le=1e12, description="paid, promise_to_pay (required), plan_agreed")
    currency: str | None = Field(None, min_length=3, max_length=3)
    promised_date: dt.date | None = Field(None, description="promise_to_pay: when the borrower will pay")
    note: str | None = Field(None, max_length=1000, description="Free text (kept; never logged)")
    at: AwareDatetime | None = Field(None, description="When it happened (default: when received)")
    met: MetWith | None = Field(None, description="completed: who the crew met")
    attitude: Attitude | None = Field(None, description="completed: the borrower's (or contact's) attitude")
    willingness: int | None = Field(None, ge=1, le=5, description="completed: willingness to pay, 1 (none) to 5")
    ability: int | None = Field(None, ge=1, le=5, description="completed: ability to pay, 1 (none) to 5")
    hardship: Hardship | None = Field(None, description="completed: the reason for hardship, if any")
    hardship_note: str | None = Field(None, max_length=500, description="Kept; never logged nor in events")
    income_note: str | None = Field(None, max_length=500, description="Income as told (kept; never logged)")
    expense_note: str | None = Field(None, max_length=500, description="Expenses and debts as told (kept)")
    new_address: str | None = Field(None, min_length=1, max_length=500, description="A new address learnt")
    new_phone: str | None = Field(None, min_length=1, max_length=50, description="A new phone number learnt")
    position: GeoFix | None = Field(None, description="Proof of visit: the phone's position on arrival or "
                                                      "completion; farther than the configured distance from the "
                                                      "stop (default 200 m) flags geo_mismatch")
    instalments: list[Instalment] | None = Field(
        None, min_length=1, max_length=120,
        description="plan_agreed: the instalments (date, amount), in date order; each due date becomes a check",
    )

    @model_validator(mode="after")
    def _instalments_with_a_plan(self) -> Self:
        if self.instalments is None:
            return self
        if self.result != "plan_agreed":
            raise ValueError("instalments: only with result plan_agreed")
        dates = [i.date for i in self.instalments]
        if dates[0] < self.date:
            raise ValueError("instalments: the first is due before the visit date")
        if sorted(set(dates)) != dates:
            raise ValueError("instalments: dates must increase")
        return self

    @model_validator(mode="after")
    def _record_only_when_completed(self) -> Self:
        if self.status == "arrived":
            given = [name for name in _RECORD_FIELDS if getattr(self, name) is not None]
            if given:
                raise ValueError("; ".join(f"{name}: not allowed when status is arrived" for name in given))
        if self.met == "nobody" and self.result in ("paid", "promise_to_pay", "plan_agreed", "refused"):
            raise ValueError(f"met: nobody was met, so the result cannot be {self.result}")
        return self

    @field_validator("date", "promised_date")
    @classmethod
    def _sane_dates(cls, value: dt.date | None) -> dt.date | None:
        return None if value is None else check_sane_date(value)

    @field_validator("at")
    @classmethod
    def _sane_at(cls, value: dt.datetime | None) -> dt.datetime | None:
        return None if value is None else check_sane_datetime(value)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        errors = []
        if self.status == "completed" and self.result is None:
            errors.append("result: required when status is completed")
        if self.status in ("departed", "arrived"):
            for name in ("result", "amount", "promised_date"):
                if getattr(self, name) is not None:
                    errors.append(f"{name}: not allowed when status is {self.status}")
        if self.result == "promise_to_pay":
            if self.amount is None:
                errors.append("amount: required for promise_to_pay")
            if self.promised_date is None:
                errors.append("promised_date: required for promise_to_pay")
            elif self.promised_date < self.date:
                errors.append("promised_date: before the visit date")
        elif self.promised_date is not None:
            errors.append("promised_date: only for promise_to_pay")
        if self.amount is not None and self.result is not None and self.result not in _AMOUNT_RESULTS:
            errors.append(f"amount: not allowed with result {self.result}")
        if errors:
            raise ValueError("; ".join(errors))
        return self


class FollowupSource(_Out):
    date: str
    visit_id: str
    case_id: str | None
    agent_id: str | None
    outcome_id: str
    result: str


class Followup(_Out):
    id: str
    kind: Literal["visit", "flag"]
    date: str = Field(description="When the follow-up is due (flags: the visit date)")
    rule: str = Field(description="The result whose rule made it")
    flag: str | None = None
    priority: int | None = None
    purpose: str | None = None
    source: FollowupSource
    visit: Visit | None = Field(None, description="The visit to plan on that date (borrower as the role allows)")
    created_at: str


class FollowupList(_Out):
    date: str
    followups: list[Followup]


class Actor(_Out):
    role: str
    token_id: str | None = Field(description="Public id of the token used (None with auth off)")
    member: str | None = Field(description="The crew member named on an agent token")


class InstalmentView(_Out):
    """An instalment in an outcome's answer (the amount null for a role that may not see amounts)."""

    date: dt.date
    amount: float | None


class OutcomeView(_Out):
    outcome_id: str
    date: str
    visit_id: str
    agent_id: str | None
    status: OutcomeStatus
    result: OutcomeResult | None
    amount: float | None
    currency: str | None
    promised_date: dt.date | None
    at: dt.datetime
    recorded_at: str
    followups: list[Followup]
    actor: Actor = Field(description="Who recorded it: role, token id and (agent tokens) the crew member")
    met: MetWith | None = None
    attitude: Attitude | None = None
    willingness: int | None = None
    ability: int | None = None
    hardship: Hardship | None = None
    contact_updated: bool = Field(False, description="A new address or phone was reported (kept with the outcome)")
    position: GeoFix | None = None
    distance_m: float | None = Field(None, description="From the position to the stop's point, metres")
    geo_mismatch: bool | None = Field(None, description="The position is farther from the stop than allowed "
                                                        "(null: no position, or the stop has no point)")
    instalments: list[InstalmentView] | None = None


# --------------------------------------------------------------------------- #
# Events
# --------------------------------------------------------------------------- #
class EventView(_Out):
    id: str = Field(description="Cursor for ?after= (SQLite row id or Redis stream id)")
    event_id: str = Field(description="Unique id (also sent to the webhook)")
    type: str = Field(description="plan.published, itinerary.changed, outcome.recorded, slot.booked")
    at: str
    data: dict[str, Any]


class EventList(_Out):
    events: list[EventView]
    next_after: str | None = Field(description="Pass as ?after= to read on")


# --------------------------------------------------------------------------- #
# Slots
# --------------------------------------------------------------------------- #
class OfferRequest(_In):
    date: dt.date
    visit: Visit
    max_offers: int = Field(5, ge=1, le=50)


class OfferList(_Out):
    date: str
    version: int = Field(description="The plan version the offers were computed from; send it with the booking")
    visit_id: str
    offers: list[SlotOffer] = Field(description="Best first")


class BookingRequest(_In):
    date: dt.date
    visit: Visit
    offer: SlotOffer
    version: int | None = Field(None, ge=1, description="The version the offer came from: 409 if the plan changed")


class Booking(_Out):
    date: str
    version: int
    previous_version: int
    visit_id: str
    agent_id: str
    slot: SlotView | None
    stop: Stop
    links: dict[str, str]


# --------------------------------------------------------------------------- #
# Tokens
# --------------------------------------------------------------------------- #
class TokenCreate(_In):
    role: Literal["dispatcher", "agent", "system"]
    agent_id: str | None = Field(None, max_length=100, description="The crew an agent token is bound to")
    member: str | None = Field(None, max_length=100,
                               description="The crew member holding an agent token (recorded with their writes)")
    label: str | None = Field(None, max_length=200, description="A note to tell tokens apart")
    expires_in: str | None = Field(None, description="Lifetime such as 30d, 12h, 90m, 2w (default: no expiry)")


class TokenView(_Out):
    id: str = Field(description="Public id (tok_…): names the token in lists and revocations; not the secret")
    role: str
    agent_id: str | None
    member: str | None
    label: str | None
    created_at: str
    expires_at: str | None
    last_used_at: str | None = Field(description="Updated at most once a minute")
    expired: bool


class TokenCreated(TokenView):
    token: str = Field(description="The bearer token: shown only in this answer")


class TokenList(_Out):
    tokens: list[TokenView]


# --------------------------------------------------------------------------- #
# Webhook deliveries
# --------------------------------------------------------------------------- #
class DeliveryAttempt(_Out):
    at: str
    status: int | None = Field(description="HTTP status the receiver answered (None: no answer)")
    error: str | None = Field(description="Why the attempt failed without an HTTP answer (error class)")
    ms: int


class DeliveryView(_Out):
    id: str
    endpoint: str
    event_id: str
    event_type: str
    status: Literal["pending", "delivered", "dead"]
    attempts: int = Field(description="Attempts since created (or since the last manual retry)")
    next_attempt_at: str | None = Field(description="When a pending delivery is tried next (UTC)")
    last_status: int | None
    last_error: str | None
    created_at: str
    delivered_at: str | None
    history: list[DeliveryAttempt]


class DeliveryList(_Out):
    deliveries: list[DeliveryView]


class DeliveriesQuery(_In):
    status: Literal["pending", "delivered", "dead"] | None = None
    limit: int = Field(100, ge=1, le=1000)
