"""The typed planning problem and the plan Doorstep returns.

A :class:`Problem` is one working day: the visits to make (each with one or
more candidate addresses and their time windows), the crews (agents) who can
make them, and the solve options. A :class:`Plan` is the answer: one
:class:`Route` per crew with timed :class:`Stop` objects, and the visits left
:class:`Unassigned` with a reason a dispatcher can act on.

Times of day are given either as ``"HH:MM"`` (local time in the problem's IANA
time zone on the problem's date) or as ISO-8601 datetimes *with* an offset.
Naive datetimes are rejected. Internally the solver counts whole seconds from
local midnight of the plan date (:meth:`Problem.seconds`); plans carry
time-zone-aware datetimes.

Validation errors name the field (pydantic's ``loc``) and the reason, for
example ``visits.3.addresses.0.time_windows.0: end (08:00) is before start
(09:00)``.

Validation also keeps out what the solver cannot hold: ids (:data:`Id`: no
``/``, no control characters, no surrounding whitespace, at most
:data:`MAX_ID_LENGTH` characters), plan dates outside :data:`MIN_DATE` …
:data:`MAX_DATE`, datetimes off the plan's day (a shift starts on the plan
date and may run into the next day; see :meth:`Problem._datetime_errors`),
and counts beyond what OR-Tools takes as 64-bit integers.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections import Counter
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

TravelMode = Literal["drive", "ebike", "walk"]
AddressKind = Literal["home", "work", "other"]
CRS = Literal["wgs84", "gcj02", "bd09"]
Objective = Literal["time", "distance"]

#: A time of day in the problem's zone ("09:30") or an aware datetime.
Clock = dt.time | AwareDatetime

TRAVEL_MODES: tuple[TravelMode, ...] = ("drive", "ebike", "walk")

#: Longest id (visit, crew, case, skill) accepted.
MAX_ID_LENGTH = 128
#: Plan dates accepted: a sane range, so that date arithmetic never overflows.
MIN_DATE = dt.date(2000, 1, 1)
MAX_DATE = dt.date(2100, 12, 31)
#: Absolute datetimes of a day lie within this many days from the plan date's
#: local midnight: the plan date itself and the next day (night shifts).
DAY_SPAN_DAYS = 2


def check_id(value: str) -> str:
    """An id as the API accepts it (visit, crew, case and skill ids).

    Ids appear in URL paths, file names and calendar UIDs, so: 1 to
    :data:`MAX_ID_LENGTH` characters, no ``/``, no control or separator
    characters (newlines, NUL, U+2028 …), no leading or trailing whitespace.
    Unicode letters are fine (``外访一组``).
    """
    if not value:
        raise ValueError("must not be empty")
    if len(value) > MAX_ID_LENGTH:
        raise ValueError(f"at most {MAX_ID_LENGTH} characters (got {len(value)})")
    if value != value.strip():
        raise ValueError("no leading or trailing whitespace")
    if "/" in value:
        raise ValueError("must not contain '/'")
    for ch in value:
        if unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp") or ch in "\ufeff\u200e\u200f":
            raise ValueError(f"must not contain control characters (U+{ord(ch):04X})")
    return value


def check_sane_date(value: dt.date) -> dt.date:
    """A date between :data:`MIN_DATE` and :data:`MAX_DATE`."""
    if not MIN_DATE <= value <= MAX_DATE:
        raise ValueError(f"must be between {MIN_DATE} and {MAX_DATE}")
    return value


def check_sane_datetime(value: dt.datetime) -> dt.datetime:
    """An aware datetime whose date lies between :data:`MIN_DATE` and
    :data:`MAX_DATE` (so converting it to any zone cannot overflow)."""
    check_sane_date(value.date())
    return value


def check_name(value: str) -> str:
    """A display name (crew member): no control characters, not blank."""
    if not value.strip():
        raise ValueError("must not be blank")
    for ch in value:
        if unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp"):
            raise ValueError(f"must not contain control characters (U+{ord(ch):04X})")
    return value


#: A visit, crew, case or skill id (see :func:`check_id`).
Id = Annotated[
    str,
    Field(min_length=1, max_length=MAX_ID_LENGTH,
          description="1 to 128 characters; no '/', no control characters, no leading or trailing whitespace"),
    AfterValidator(check_id),
]
#: A person's name in a crew.
Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(check_name)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


# --------------------------------------------------------------------------- #
# Input
# --------------------------------------------------------------------------- #
class Location(_Model):
    """A point. ``crs`` says in which datum the caller gave it; the solver
    works in WGS-84 and converts GCJ-02 / BD-09 at the edge."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lat: float = Field(ge=-90.0, le=90.0, description="Latitude in degrees")
    lon: float = Field(ge=-180.0, le=180.0, description="Longitude in degrees")
    crs: CRS = Field("wgs84", description="Datum of lat/lon: wgs84, gcj02 or bd09")


def _clock_key(value: Clock) -> tuple[int, Any]:
    return (0, value) if isinstance(value, dt.time) else (1, value)


def _fmt(value: Clock) -> str:
    return value.strftime("%H:%M") if isinstance(value, dt.time) else value.isoformat()


class TimeWindow(_Model):
    """A closed interval ``[start, end]`` of local times or aware datetimes."""

    start: Clock = Field(description='"HH:MM" local time or ISO datetime with offset')
    end: Clock = Field(description='"HH:MM" local time or ISO datetime with offset')

    @field_validator("start", "end")
    @classmethod
    def _no_tz_on_time_of_day(cls, value: Clock) -> Clock:
        if isinstance(value, dt.time) and value.tzinfo is not None:
            raise ValueError("a time of day is read in the problem's timezone; give it without an offset")
        return value

    @model_validator(mode="after")
    def _end_after_start(self) -> Self:
        if isinstance(self.start, dt.time) != isinstance(self.end, dt.time):
            raise ValueError("start and end must both be times of day or both be datetimes")
        if self.end <= self.start:  # type: ignore[operator]
            raise ValueError(f"end ({_fmt(self.end)}) is before or equal to start ({_fmt(self.start)})")
        return self


class Place(_Model):
    """Somewhere a crew starts, ends or visits: a text address, a point, or both.

    When both are given the point is used and the text is kept for display.
    """

    text: str | None = Field(None, max_length=500, description="Postal address as written")
    location: Location | None = None

    @field_validator("text")
    @classmethod
    def _strip(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value:
            raise ValueError("address text is empty")
        return value

    @model_validator(mode="after")
    def _text_or_location(self) -> Self:
        if self.text is None and self.location is None:
            raise ValueError("give the address text, a location, or both")
        return self


class Address(Place):
    """A candidate address of a visit, with its own availability."""

    kind: AddressKind = "home"
    time_windows: list[TimeWindow] = Field(
        default_factory=list,
        description="When the borrower can be met here; empty means any time in the shift",
    )
    usable: bool = Field(True, description="False when contact here is not allowed (e.g. employer forbids it)")


class Borrower(_Model):
    """Personal data: shown only to roles that may see it, never logged."""

    name: str | None = Field(None, max_length=200)
    phone: str | None = Field(None, max_length=50)


#: A risk flag of a case: lower-case letters, digits, ``_``, ``-``, ``:`` (``dispute``, ``legal_hold`` …).
RiskFlag = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z0-9_:-]+$")]
#: Overdue buckets by days past due: M0 (not overdue), M1 (1–30), M2 (31–60), M3+ (61 and more).
Bucket = Literal["M0", "M1", "M2", "M3+"]


def overdue_bucket(days_past_due: int) -> Bucket:
    """The bucket of ``days_past_due``: M0 (0), M1 (1–30), M2 (31–60), M3+ (61+)."""
    if days_past_due <= 0:
        return "M0"
    if days_past_due <= 30:
        return "M1"
    if days_past_due <= 60:
        return "M2"
    return "M3+"


class CaseInfo(_Model):
    """The collection case (account) a visit serves, as the bank's collections
    system knows it on the day: what screening weighs and what the crew needs
    at the door. Amounts are personal financial data: itineraries, plans and
    follow-ups omit ``overdue_amount`` for roles the configuration does not
    allow (``config/cases.toml``, ``[visibility] amounts``)."""

    days_past_due: int = Field(0, ge=0, le=36500, description="Days the oldest instalment is overdue")
    overdue_amount: float | None = Field(None, ge=0, le=1e12, description="Amount overdue (null: unknown or hidden)")
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$", description="ISO 4217 code of overdue_amount")
    broken_promises: int = Field(0, ge=0, le=1000, description="Promises to pay not kept so far")
    last_contact: dt.date | None = Field(None, description="Last contact with the borrower (call, message or visit)")
    risk_flags: list[RiskFlag] = Field(
        default_factory=list, max_length=20,
        description="dispute, complaint, deceased, legal_hold, agitated … (screening excludes some: "
                    "config/screening.toml)",
    )
    recent_visits: list[dt.date] = Field(
        default_factory=list, max_length=100, description="Dates of field visits already made (visit frequency)"
    )

    @field_validator("last_contact")
    @classmethod
    def _sane_last_contact(cls, value: dt.date | None) -> dt.date | None:
        return None if value is None else check_sane_date(value)

    @field_validator("recent_visits")
    @classmethod
    def _sane_recent_visits(cls, value: list[dt.date]) -> list[dt.date]:
        return [check_sane_date(day) for day in value]

    @property
    def bucket(self) -> Bucket:
        """The overdue bucket (:func:`overdue_bucket`)."""
        return overdue_bucket(self.days_past_due)


class Visit(_Model):
    """One field visit to a borrower, to be made at most once at one of its addresses."""

    id: Id
    case_id: Id | None = None
    priority: int = Field(50, ge=0, le=100, description="0 (lowest) to 100 (highest)")
    required: bool = Field(False, description="Must be planned; if impossible, the plan says why")
    duration_min: int = Field(30, ge=0, le=24 * 60, description="Service time on site, minutes")
    addresses: list[Address] = Field(min_length=1, max_length=10)
    skills: list[Id] = Field(default_factory=list, max_length=50, description="Every one must be held by the crew")
    time_windows: list[TimeWindow] = Field(
        default_factory=list,
        description="When the visit may happen at any address (intersected with each address's windows)",
    )
    crew_size: int = Field(1, ge=1, le=10, description="Minimum people in the crew")
    appointment: TimeWindow | None = Field(None, description="Booked window: hard, the visit must start inside it")
    pinned_agent: Id | None = Field(None, description="Only this crew may make the visit")
    load: int = Field(0, ge=0, le=10**9, description="Generic capacity use (e.g. benchmarks); 0 for field visits")
    borrower: Borrower | None = None
    purpose: str | None = Field(None, max_length=200)
    timezone: str | None = Field(None, max_length=64, description="Borrower's IANA time zone for visiting-hour rules")
    case: CaseInfo | None = Field(None, description="The collection case the visit serves (screening; amounts as the "
                                                    "role allows)")
    due_by: dt.date | None = Field(
        None, description="Plan it on or before this date (planning several dates: a visit not planned by then is "
                          "reported past_due; its priority rises as the date nears)",
    )
    preferred_agents: list[Id] = Field(
        default_factory=list, max_length=20,
        description="Crews that should make it, best first (e.g. the collector of the earlier visit): a soft "
                    "preference; another crew costs options.preferred_agent_cost_s. Ids not in the day are ignored",
    )

    @field_validator("due_by")
    @classmethod
    def _sane_due_by(cls, value: dt.date | None) -> dt.date | None:
        return None if value is None else check_sane_date(value)

    @field_validator("timezone")
    @classmethod
    def _known_visit_zone(cls, value: str | None) -> str | None:
        return None if value is None else _check_zone(value)

    @property
    def case_key(self) -> str:
        """The case frequency limits count against."""
        return self.case_id or self.id

    @property
    def is_hard(self) -> bool:
        """Required visits and booked appointments must be made."""
        return self.required or self.appointment is not None


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a file name
        raise ValueError(f"unknown time zone {value[:64]!r}; use an IANA name such as Asia/Shanghai") from None
    return value


class Contact(_Model):
    """A past contact with a case, for frequency limits."""

    case_id: Id
    at: AwareDatetime
    kind: Literal["visit", "call"] = "visit"

    @field_validator("at")
    @classmethod
    def _sane_at(cls, value: dt.datetime) -> dt.datetime:
        return check_sane_datetime(value)

    @property
    def case_key(self) -> str:
        return self.case_id


class Break(_Model):
    """A break of fixed length taken somewhere inside its window, never splitting a visit."""

    window: TimeWindow
    duration_min: int = Field(ge=1, le=8 * 60)


class Agent(_Model):
    """A crew: one or more field agents working together for the day."""

    id: Id
    members: list[Name] = Field(default_factory=list, max_length=10, description="People in the crew")
    shift: TimeWindow
    breaks: list[Break] = Field(default_factory=list, max_length=5)
    start: Place
    end: Place | None = Field(None, description="Where the day ends; default: back at start")
    open_end: bool = Field(False, description="The day ends at the last visit")
    skills: list[Id] = Field(default_factory=list, max_length=50)
    max_visits: int | None = Field(None, ge=0, le=20000)
    max_work_min: int | None = Field(None, ge=1, le=DAY_SPAN_DAYS * 24 * 60, description="Upper bound on the working span")
    travel_mode: TravelMode = "drive"
    capacity: int | None = Field(None, ge=0, le=10**12, description="Generic capacity for Visit.load")

    @property
    def crew_size(self) -> int:
        return max(1, len(self.members))

    @model_validator(mode="after")
    def _breaks_fit_shift(self) -> Self:
        total = sum(b.duration_min for b in self.breaks)
        if isinstance(self.shift.start, dt.time):
            start = dt.datetime.combine(dt.date(2000, 1, 3), self.shift.start)
            end = dt.datetime.combine(dt.date(2000, 1, 3), self.shift.end)  # type: ignore[arg-type]
        else:
            start, end = self.shift.start, self.shift.end  # type: ignore[assignment]
        shift_min = (end - start).total_seconds() / 60
        if total > shift_min:
            raise ValueError(
                f"breaks: total break time {total} min is longer than the shift ({shift_min:.0f} min)"
            )
        return self


def _default_rule_set() -> str:
    from solver.rules import default_rule_set

    return default_rule_set()


class Options(_Model):
    """How to solve."""

    time_limit_s: float = Field(
        10.0, gt=0, le=3600,
        description="Time limit of the whole plan, seconds: geocoding and the travel matrix count in it, "
                    "but the search keeps at least half of it after them",
    )
    objective: Objective = Field("time", description="Minimise travel time or travel distance")
    slot_minutes: int = Field(60, ge=0, le=480, description="Width of published appointment slots; 0: none")
    slot_align_minutes: int = Field(15, ge=1, le=120)
    slot_policy: Literal["guaranteed", "best_effort"] = Field(
        "guaranteed",
        description="guaranteed: every stop gets a slot min(slot_minutes, its window) wide, planned in; "
                    "best_effort: slots cut from the slack the routes happen to have",
    )
    rule_set: str = Field(
        default_factory=_default_rule_set, max_length=64,
        description='Jurisdiction rule set from config/rules/; default: [planning] rule_set (cn-cba-2026); '
                    '"none" (only when named) plans without rules',
    )
    balance: Literal["none", "visits", "time"] = Field(
        "none", description="Spread the work fairly: by number of visits or by working time"
    )
    seed: int = Field(0, ge=0, le=2**31 - 1)
    snap_max_m: float = Field(500.0, gt=0, le=100_000, description="Farther than this from a road: straight-line fallback")
    threads: int | None = Field(
        None, ge=1, le=64,
        description="Parallel searches (processes) keeping the best; default: [planning] threads, else (0) the "
                    "cores available less the 1-minute load average of other work, at least 1",
    )
    preferred_agent_cost_s: int = Field(
        900, ge=0, le=86_400,
        description="What serving a visit by a crew outside its preferred_agents costs, in seconds of travel "
                    "(0: preferences off)",
    )
    max_iterations: int | None = Field(
        None, ge=1, le=10_000_000,
        description="Stop the search after this many iterations (PyVRP's, ruin-and-recreate's) or guided "
                    "local search solutions, before the time limit: quicker plans of small days, and with "
                    "one thread the same plan every time; default: search until the time limit",
    )

    @field_validator("rule_set", mode="before")
    @classmethod
    def _rule_set_named(cls, value: Any) -> Any:
        return _default_rule_set() if value is None else value  # null: the configured default

    @field_validator("rule_set")
    @classmethod
    def _known_rule_set(cls, value: str) -> str:
        from solver.rules import NO_RULES, available_rule_sets

        known = available_rule_sets()
        if value != NO_RULES and value not in known:
            raise ValueError(f"unknown rule set {value!r}; known: {', '.join([*known, NO_RULES])}")
        return value


class Problem(_Model):
    """One day's planning problem."""

    date: dt.date = Field(description=f"The plan date, {MIN_DATE} to {MAX_DATE}")
    timezone: str = Field("Asia/Shanghai", max_length=64, description="IANA time zone of the visits")
    visits: list[Visit] = Field(default_factory=list, max_length=20000)
    agents: list[Agent] = Field(min_length=1, max_length=2000)
    options: Options = Field(default_factory=Options)
    skills: list[Id] | None = Field(
        None, max_length=1000, description="Skill catalogue; default: the configured catalogue plus every agent's skills"
    )
    history: list[Contact] = Field(default_factory=list, description="Past contacts, for frequency limits")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return _check_zone(value)

    @field_validator("date")
    @classmethod
    def _sane_date(cls, value: dt.date) -> dt.date:
        return check_sane_date(value)

    def _datetime_errors(self) -> list[str]:
        """``path: reason`` for absolute datetimes off the plan's day.

        The rule: a shift starts on the plan date (local time) and ends at
        the latest at midnight after the next day, so night shifts may cross
        midnight; break windows, visit and address windows and appointments
        given as datetimes lie within the same two days. (Times of day are
        on the plan date by construction.)
        """
        first = self.midnight
        day_end = first + dt.timedelta(days=1)
        last = first + dt.timedelta(days=DAY_SPAN_DAYS)
        errors: list[str] = []
        span = f"{self.date} 00:00 to {(self.date + dt.timedelta(days=DAY_SPAN_DAYS))} 00:00 in {self.timezone}"

        def within(path: str, window: TimeWindow | None) -> None:
            if window is None or isinstance(window.start, dt.time):
                return
            for name in ("start", "end"):
                value: dt.datetime = getattr(window, name)
                if not first <= value <= last:
                    errors.append(f"{path}.{name}: {value.isoformat()} is not within the plan's day ({span})")

        for i, agent in enumerate(self.agents):
            shift = agent.shift
            if isinstance(shift.start, dt.datetime) and not first <= shift.start < day_end:
                errors.append(f"agents.{i}.shift.start: {shift.start.isoformat()} is not on the plan date "
                              f"{self.date} in {self.timezone}")
            else:
                within(f"agents.{i}.shift", shift)
            for j, brk in enumerate(agent.breaks):
                within(f"agents.{i}.breaks.{j}.window", brk.window)
        for i, visit in enumerate(self.visits):
            for j, window in enumerate(visit.time_windows):
                within(f"visits.{i}.time_windows.{j}", window)
            within(f"visits.{i}.appointment", visit.appointment)
            for k, address in enumerate(visit.addresses):
                for j, window in enumerate(address.time_windows):
                    within(f"visits.{i}.addresses.{k}.time_windows.{j}", window)
        return errors

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        errors: list[str] = self._datetime_errors()
        for label, ids in (("visits", [v.id for v in self.visits]), ("agents", [a.id for a in self.agents])):
            dup = sorted(i for i, n in Counter(ids).items() if n > 1)
            if dup:
                errors.append(f"{label}: duplicate id(s) {', '.join(map(repr, dup[:10]))}")
        catalogue = self.skill_catalogue()
        for i, visit in enumerate(self.visits):
            unknown = sorted(set(visit.skills) - catalogue)
            if unknown:
                errors.append(f"visits.{i}.skills: unknown skill(s) {', '.join(map(repr, unknown))}")
        if self.skills is not None:
            for i, agent in enumerate(self.agents):
                unknown = sorted(set(agent.skills) - catalogue)
                if unknown:
                    errors.append(f"agents.{i}.skills: unknown skill(s) {', '.join(map(repr, unknown))}")
        agent_ids = {a.id for a in self.agents}
        for i, visit in enumerate(self.visits):
            if visit.pinned_agent is not None and visit.pinned_agent not in agent_ids:
                errors.append(f"visits.{i}.pinned_agent: no agent with id {visit.pinned_agent!r}")
        if errors:
            raise ValueError("; ".join(errors))
        return self

    # -- helpers ----------------------------------------------------------- #
    def skill_catalogue(self) -> set[str]:
        """Skills that may be named: the given catalogue, or the configured
        default catalogue plus every skill an agent holds."""
        if self.skills is not None:
            return set(self.skills)
        from solver.config import default_skill_catalogue

        return set(default_skill_catalogue()).union(*(a.skills for a in self.agents))

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def midnight(self) -> dt.datetime:
        """Local midnight at the start of the plan date (aware)."""
        return dt.datetime.combine(self.date, dt.time(0, 0), tzinfo=self.tz)

    def seconds(self, value: Clock) -> int:
        """Whole seconds of real time elapsed since local midnight of the plan
        date (so a day with a daylight-saving change is counted correctly)."""
        if isinstance(value, dt.time):
            value = dt.datetime.combine(self.date, value, tzinfo=self.tz)
        utc = dt.UTC
        return round((value.astimezone(utc) - self.midnight.astimezone(utc)).total_seconds())

    def clock(self, seconds: float) -> dt.datetime:
        """The aware local datetime ``seconds`` after local midnight."""
        utc = self.midnight.astimezone(dt.UTC) + dt.timedelta(seconds=round(seconds))
        return utc.astimezone(self.tz)

    def window_seconds(self, window: TimeWindow) -> tuple[int, int]:
        return self.seconds(window.start), self.seconds(window.end)

    def visit(self, visit_id: str) -> Visit:
        for v in self.visits:
            if v.id == visit_id:
                return v
        raise KeyError(visit_id)

    def agent(self, agent_id: str) -> Agent:
        for a in self.agents:
            if a.id == agent_id:
                return a
        raise KeyError(agent_id)


# --------------------------------------------------------------------------- #
# Output
# --------------------------------------------------------------------------- #
class Slot(_Model):
    """A published appointment slot: arriving anywhere inside keeps the route feasible."""

    start: dt.datetime
    end: dt.datetime


class Stop(_Model):
    """A planned visit on a route."""

    visit_id: str
    address_index: int = Field(description="Which of the visit's addresses is used")
    address_kind: AddressKind
    address_text: str | None = None
    location: Location = Field(description="WGS-84 point used for routing")
    arrival: dt.datetime
    start: dt.datetime = Field(description="Service start (arrival plus any wait)")
    end: dt.datetime = Field(description="Service end, departure")
    earliest_start: dt.datetime = Field(description="Earliest feasible service start given the route")
    latest_start: dt.datetime = Field(description="Latest feasible service start given the route")
    slot: Slot | None = None
    travel_s: int = Field(description="Travel from the previous place, seconds")
    distance_m: int = Field(description="Travel distance from the previous place, metres")
    wait_s: int = 0
    priority: int = 0


class PlannedBreak(_Model):
    start: dt.datetime
    end: dt.datetime


class Route(_Model):
    agent_id: str
    travel_mode: TravelMode
    start_location: Location
    end_location: Location | None = Field(None, description="None for an open end")
    start: dt.datetime = Field(description="Leaves the start place")
    end: dt.datetime = Field(description="Reaches the end place (or ends the last visit)")
    stops: list[Stop] = Field(default_factory=list)
    breaks: list[PlannedBreak] = Field(default_factory=list)
    end_travel_s: int = 0
    end_distance_m: int = 0

    @property
    def travel_s(self) -> int:
        return sum(s.travel_s for s in self.stops) + self.end_travel_s

    @property
    def distance_m(self) -> int:
        return sum(s.distance_m for s in self.stops) + self.end_distance_m


ReasonCode = Literal[
    "no_skill",
    "crew_too_small",
    "outside_hours",
    "not_geocoded",
    "geocode_imprecise",
    "unreachable",
    "window_unreachable",
    "frequency_limit",
    "no_usable_address",
    "pinned_agent_unavailable",
    "capacity",
    "lower_priority",
    "required_infeasible",
    "past_due",
]


class Unassigned(_Model):
    visit_id: str
    code: ReasonCode
    reason: str = Field(description="What a dispatcher can act on")
    details: dict[str, Any] = Field(default_factory=dict)


class PlanFlag(_Model):
    """Something the dispatcher should confirm (the plan is still valid)."""

    code: Literal["geocode_low_confidence", "geocode_failed", "off_road", "geocode_provider_failed"]
    message: str
    visit_id: str | None = None
    agent_id: str | None = None
    address_index: int | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class PlanSummary(_Model):
    visits_total: int
    visits_planned: int
    priority_total: int
    priority_planned: int
    travel_s: int
    distance_m: int
    crews_used: int


class SolverStats(_Model):
    status: str
    objective: int | None = None
    seconds: float
    matrix_seconds: float = 0.0
    first_solution: str | None = None
    metaheuristic: str | None = None
    matrix_engine: str | None = Field(None, description="What priced the travel matrices (e.g. csgraph)")


class Plan(_Model):
    date: dt.date
    timezone: str
    routes: list[Route]
    unassigned: list[Unassigned] = Field(default_factory=list)
    summary: PlanSummary
    solver: SolverStats
    warnings: list[str] = Field(default_factory=list)
    flags: list[PlanFlag] = Field(default_factory=list, description="Geocodes and points to confirm")
    rule_set: str | None = Field(
        None, description='The rule set the plan applied ("none": no rules; null: not recorded, an older plan)'
    )
    slot_policy: str | None = Field(None, description="How the slots were made: guaranteed or best_effort")

    def route(self, agent_id: str) -> Route:
        for r in self.routes:
            if r.agent_id == agent_id:
                return r
        raise KeyError(agent_id)


# --------------------------------------------------------------------------- #
# Mid-day state and appointment offers
# --------------------------------------------------------------------------- #
class CrewState(_Model):
    """Where a crew is now, for a mid-day re-plan."""

    agent_id: Id
    location: Location | None = Field(None, description="Current position; default: where the plan has it now")
    absent: bool = Field(False, description="Crew out for the rest of the day (e.g. ill)")


class DayState(_Model):
    """What has happened so far today, for :func:`solver.reoptimize`."""

    now: AwareDatetime
    crews: list[CrewState] = Field(default_factory=list, max_length=2000)
    completed: list[Id] = Field(default_factory=list, max_length=20000, description="Visit ids finished (or closed) already")
    in_progress: dict[Id, Id] = Field(
        default_factory=dict, description="Visit id -> agent id of visits under way now; finished first"
    )
    cancelled: list[Id] = Field(default_factory=list, max_length=20000, description="Visit ids no longer to be made")
    added: list[Visit] = Field(default_factory=list, max_length=20000, description="New visits (e.g. urgent) to fit in")
    declined: list[Id] = Field(
        default_factory=list, max_length=20000,
        description="Visit ids whose borrower declined the slot: planned again without that promise",
    )

    @field_validator("now")
    @classmethod
    def _sane_now(cls, value: dt.datetime) -> dt.datetime:
        return check_sane_datetime(value)


class SlotOffer(_Model):
    """An appointment slot a new visit can be given without breaking any promise."""

    agent_id: Id
    position: int = Field(ge=0, le=20000, description="Index in the crew's stops where the visit would go")
    address_index: int = Field(ge=0, le=9)
    start: dt.datetime = Field(description="Slot start: arriving from here ...")
    end: dt.datetime = Field(description="... to here keeps the whole route feasible")
    extra_travel_s: int = Field(ge=-10**9, le=10**9, description="Added travel for the crew")
    score: float = Field(allow_inf_nan=False, description="Lower is better")
