"""The storage interface of the service.

Every backend — :class:`app.store.sqlite.SQLiteStore` (embedded default) and
:class:`app.store.redis.RedisStore` (production, shared by several app and
worker processes) — implements :class:`Store`, and the whole store test suite
runs against both. The interface deals in plain values — strings of JSON, ints,
small dataclasses — so a backend never imports the solver's models:

* a *job* is one planning request (plan a day, re-plan it): status
  (``queued`` → ``running`` → ``succeeded`` | ``failed``), progress, error, the
  plan version it published, and who runs it (for the reaper that fails the
  jobs of dead workers);
* a *plan version* is one published :class:`solver.model.Plan` for a date, kept
  with the :class:`solver.model.Problem` it answers. Versions are numbered 1, 2,
  3 … per date; publishing is atomic (a reader sees the old current version or
  the new one, never a mix), old versions are kept, and ``expect_version``
  turns a publish into a compare-and-set;
* *events* (plan published, itinerary changed, outcome recorded …) are appended
  in the same atomic step as the change they describe;
* *tokens* (only their sha256, with a short public id derived from it),
  *visit states and outcomes*, *idempotency records* and *follow-ups*;
* *counters* (fixed-window, shared by every process: the failed-auth throttle);
* the webhook *outbox*: one :class:`Delivery` per event and endpoint, claimed
  with a lease by whichever process delivers it (:mod:`app.webhooks`).
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

JobStatus = Literal["queued", "running", "succeeded", "failed"]
JOB_STATUSES: tuple[str, ...] = ("queued", "running", "succeeded", "failed")
FINISHED: frozenset[str] = frozenset({"succeeded", "failed"})
ACTIVE: frozenset[str] = frozenset({"queued", "running"})


def utcnow() -> str:
    """Now, UTC, ISO-8601 with a ``Z`` suffix (millisecond precision)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_utc(value: str) -> dt.datetime:
    """The inverse of :func:`utcnow`."""
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Job:
    """One planning request and its state."""

    id: str
    date: str  # plan date, YYYY-MM-DD
    status: JobStatus = "queued"
    stage: str | None = None
    fraction: float = 0.0
    error: str | None = None
    version: int | None = None  # plan version published on success
    visits: int = 0  # counts only: no personal data in job records
    agents: int = 0
    created_at: str = field(default_factory=utcnow)
    updated_at: str = field(default_factory=utcnow)
    kind: str = "plan"  # plan | reoptimize
    runner: str = "thread"  # process (a child of the web process; "thread" before) | rq (a `doorstep worker`)
    owner: str | None = None  # "host:pid[:start]" of the process running it
    heartbeat_at: str | None = None  # last sign of life of the process running it
    best_cost: float | None = None  # the solver's objective, when known
    time_limit_s: float | None = None
    stage_started_at: str | None = None
    error_code: str | None = None  # why a failed job failed (app.jobs.failure), machine-readable

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


#: The fields :meth:`Store.update_job` may change.
JOB_MUTABLE_FIELDS: frozenset[str] = frozenset(
    {"status", "stage", "fraction", "error", "version", "owner", "heartbeat_at", "best_cost", "stage_started_at",
     "error_code"}
)
JOB_INT_FIELDS = frozenset({"version", "visits", "agents"})
JOB_FLOAT_FIELDS = frozenset({"fraction", "best_cost", "time_limit_s"})


@dataclass(frozen=True)
class PlanVersion:
    """One published plan version (without the problem, fetched separately)."""

    date: str
    version: int
    created_at: str
    plan_json: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VersionInfo:
    """A line of a date's version list."""

    date: str
    version: int
    created_at: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NewEvent:
    """An event to append: ``type`` and a small JSON-able ``data`` (no personal data)."""

    type: str
    data: dict[str, Any]
    event_id: str = ""
    at: str = field(default_factory=utcnow)


@dataclass(frozen=True)
class Event:
    """A stored event. ``id`` is the backend's cursor (SQLite row id, Redis
    stream id), increasing; ``GET /v1/events?after=<id>`` pages with it."""

    id: str
    event_id: str
    type: str
    at: str
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


EventsFor = Callable[[int], Sequence[NewEvent]]


#: Length of the hex prefix of the token's sha256 that makes its public id.
TOKEN_ID_HEX = 12


def token_id_of(token_hash: str) -> str:
    """The public id of a token: ``tok_`` + the first 12 hex digits of its
    sha256. It names the token in lists, logs and outcome records; it cannot
    be turned back into the token (it is part of a one-way hash of 256 random
    bits), and records stored before ids existed get theirs without migration."""
    return "tok_" + token_hash[:TOKEN_ID_HEX]


@dataclass(frozen=True)
class TokenRecord:
    """A bearer token as stored: its sha256 only.

    ``member`` names the person holding an agent token (a crew has two or
    more); ``expires_at`` (UTC ISO, None: never) ends it; ``last_used_at`` is
    updated at most once a minute (:data:`app.auth.TOUCH_EVERY_S`)."""

    token_hash: str
    role: str
    agent_id: str | None = None
    label: str | None = None
    created_at: str = field(default_factory=utcnow)
    member: str | None = None
    expires_at: str | None = None
    last_used_at: str | None = None

    @property
    def token_id(self) -> str:
        return token_id_of(self.token_hash)

    def expired(self, now: str | None = None) -> bool:
        return self.expires_at is not None and parse_utc(self.expires_at) <= parse_utc(now or utcnow())


#: Fields of :class:`TokenRecord` after ``token_hash``, in order.
TOKEN_FIELDS: tuple[str, ...] = tuple(f for f in TokenRecord.__dataclass_fields__ if f != "token_hash")


@dataclass(frozen=True)
class VisitState:
    """Where a visit of a date stands: ``arrived`` / ``completed`` (None: planned)."""

    date: str
    visit_id: str
    status: str | None = None
    result: str | None = None
    agent_id: str | None = None
    updated_at: str | None = None


@dataclass(frozen=True)
class Idempotency:
    """An Idempotency-Key: the request it answered (hash) and the answer."""

    scope: str
    key: str
    request_hash: str
    status: int = 0
    body_json: str = ""


@dataclass(frozen=True)
class OutcomeWrite:
    """Everything recording one outcome writes, atomically."""

    date: str
    visit_id: str
    agent_id: str | None
    status: str  # arrived | completed
    result: str | None
    allowed_from: frozenset[str | None]  # visit statuses this transition may start from
    outcome_json: str
    followups: Sequence[tuple[str, str, str]] = ()  # (id, date, record JSON)
    events: Sequence[NewEvent] = ()
    idempotency: Idempotency | None = None  # with the response to replay


#: Delivery statuses: waiting for an attempt, delivered (2xx), given up.
DELIVERY_STATUSES: tuple[str, ...] = ("pending", "delivered", "dead")


@dataclass(frozen=True)
class Delivery:
    """One event to deliver to one webhook endpoint (a row of the outbox).

    ``id`` is derived from endpoint and event id, so fanning an event out
    twice (two processes, a retry) makes one row. ``next_attempt_at`` is also
    the lease: a process claiming the row moves it ``lease_s`` ahead and sets
    ``lease``; if the process dies, the row is due again when the lease ends.
    ``history`` lists the attempts (at, HTTP status or error class, ms)."""

    id: str
    endpoint: str
    event_id: str
    event_type: str
    body: str  # the JSON POSTed (events hold no borrower data)
    created_at: str = field(default_factory=utcnow)
    status: str = "pending"
    attempts: int = 0
    next_attempt_at: float = 0.0  # epoch seconds
    last_status: int | None = None
    last_error: str | None = None
    delivered_at: str | None = None
    lease: str | None = None
    history: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["history"] = list(self.history)
        return data


class NotFound(KeyError):
    """The job or plan asked for does not exist."""


class VersionConflict(Exception):
    """``publish_plan(..., expect_version=N)`` found another current version."""

    def __init__(self, expected: int | None, current: int | None) -> None:
        super().__init__(f"the current version is {current}, not {expected}")
        self.expected = expected
        self.current = current


class TransitionRefused(Exception):
    """An outcome whose status cannot follow the visit's current one."""

    def __init__(self, current: VisitState) -> None:
        super().__init__(f"visit is {current.status or 'planned'}")
        self.current = current


class IdempotencyMismatch(Exception):
    """The Idempotency-Key was used before with another request body."""


class Store(ABC):
    """Where the service keeps its state. Implementations are thread-safe and
    may be shared by several processes (SQLite: one file; Redis: one server)."""

    # -- jobs ---------------------------------------------------------------- #
    @abstractmethod
    def save_job(self, job: Job) -> None:
        """Insert or replace a job."""

    @abstractmethod
    def get_job(self, job_id: str) -> Job | None:
        """The job, or None when unknown."""

    @abstractmethod
    def update_job(self, job_id: str, *, if_status: Sequence[str] | None = None, **changes: Any) -> Job | None:
        """Change some of :data:`JOB_MUTABLE_FIELDS`; sets ``updated_at``.
        Raises :class:`NotFound` for an unknown job. With ``if_status`` the
        change is made only while the job's status is one of those (atomic
        compare-and-set); otherwise nothing changes and None is returned."""

    @abstractmethod
    def active_jobs(self) -> list[Job]:
        """Jobs queued or running (for the reaper)."""

    # -- plans --------------------------------------------------------------- #
    @abstractmethod
    def publish_plan(
        self,
        date: str,
        plan_json: str,
        problem_json: str,
        *,
        meta: dict[str, Any] | None = None,
        expect_version: int | None = None,
        events: EventsFor | None = None,
    ) -> int:
        """Store a new plan version for ``date`` atomically and return its
        number: one more than the highest so far (1 for the first). ``meta`` is
        a small JSON-able dict listed with the version (job id, summary).

        With ``expect_version`` the publish happens only if the date's current
        version is still that one (0 or None: no version yet is not checked;
        pass 0 to require that there is none); otherwise
        :class:`VersionConflict`. ``events(version)`` gives the events appended
        in the same atomic step."""

    @abstractmethod
    def get_plan(self, date: str, version: int | None = None) -> PlanVersion | None:
        """A version of the date's plan (the current one when ``version`` is None)."""

    @abstractmethod
    def list_versions(self, date: str) -> list[VersionInfo]:
        """The date's versions, oldest first; empty when none."""

    @abstractmethod
    def get_problem(self, date: str, version: int) -> str | None:
        """The problem JSON a version was planned from."""

    def current_version(self, date: str) -> int | None:
        """The current (newest) version number of the date, or None."""
        versions = self.list_versions(date)
        return versions[-1].version if versions else None

    # -- events -------------------------------------------------------------- #
    @abstractmethod
    def append_events(self, events: Sequence[NewEvent]) -> list[Event]:
        """Append events (atomically together) and return them as stored."""

    @abstractmethod
    def list_events(self, after: str | None = None, limit: int = 100) -> list[Event]:
        """Events after the cursor ``after`` (from the start when None), oldest first."""

    @abstractmethod
    def valid_cursor(self, cursor: str) -> bool:
        """Whether ``cursor`` has the form of an event id of this backend."""

    # -- tokens -------------------------------------------------------------- #
    @abstractmethod
    def save_token(self, record: TokenRecord) -> None:
        """Insert a token record."""

    @abstractmethod
    def get_token(self, token_hash: str) -> TokenRecord | None:
        """The token record with this sha256, or None."""

    @abstractmethod
    def delete_token(self, token_hash: str) -> bool:
        """Revoke a token; False when unknown."""

    @abstractmethod
    def list_tokens(self) -> list[TokenRecord]:
        """Every token record, oldest first."""

    def get_token_and_count(self, token_hash: str, key: str, window_s: int) -> tuple[TokenRecord | None, int, float]:
        """:meth:`get_token` and the counter ``key`` (:meth:`count_hit` with
        ``add=0``) together — one round trip where the backend allows (the
        request path of every authenticated call)."""
        count, left = self.count_hit(key, window_s, add=0)
        return self.get_token(token_hash), count, left

    def find_token(self, token_id: str) -> TokenRecord | None:
        """The token with this public id (:func:`token_id_of`), or None."""
        if not token_id.startswith("tok_") or len(token_id) != 4 + TOKEN_ID_HEX:
            return None
        return next((t for t in self.list_tokens() if t.token_id == token_id), None)

    @abstractmethod
    def touch_token(self, token_hash: str, at: str) -> None:
        """Set the token's ``last_used_at`` (nothing when it was revoked meanwhile)."""

    # -- counters ------------------------------------------------------------ #
    @abstractmethod
    def count_hit(self, key: str, window_s: int, *, add: int = 1) -> tuple[int, float]:
        """Add ``add`` (0: just read) to the counter ``key`` of the current
        fixed window of ``window_s`` seconds; return the window's count and
        the seconds left in it. Windows expire on their own."""

    # -- webhook outbox ------------------------------------------------------ #
    @abstractmethod
    def outbox_cursor(self, endpoint: str) -> str | None:
        """The event id up to which events were fanned out to ``endpoint``
        ("" from the start; None when the endpoint was never set up)."""

    @abstractmethod
    def advance_outbox(self, endpoint: str, expect: str | None, cursor: str, deliveries: Sequence[Delivery]) -> bool:
        """Atomically: if the endpoint's cursor is still ``expect``, insert the
        deliveries (an id already present is kept as is) and set the cursor;
        else change nothing and return False (another process did it)."""

    @abstractmethod
    def claim_deliveries(self, now: float, lease_s: float, lease: str, limit: int = 20) -> list[Delivery]:
        """Pending deliveries due at ``now`` (epoch seconds), at most ``limit``,
        each moved ``lease_s`` ahead and marked with ``lease`` atomically, so
        two processes never claim the same row at once."""

    @abstractmethod
    def finish_attempt(self, delivery: Delivery, lease: str) -> bool:
        """Store the outcome of an attempt (status, attempts, next_attempt_at,
        last_status, last_error, delivered_at, history of ``delivery``) if the
        row is still held with ``lease``; False otherwise (the lease ended and
        another process took it)."""

    @abstractmethod
    def get_delivery(self, delivery_id: str) -> Delivery | None:
        """One delivery, or None."""

    @abstractmethod
    def list_deliveries(self, status: str | None = None, limit: int = 100) -> list[Delivery]:
        """The newest deliveries first (of one status when given)."""

    @abstractmethod
    def prune_deliveries(self, delivered_before: float) -> int:
        """Delete deliveries delivered before ``delivered_before`` (epoch
        seconds); pending and dead ones stay. Returns how many."""

    @abstractmethod
    def retry_delivery(self, delivery_id: str, now: float) -> Delivery | None:
        """Make a ``dead`` delivery pending again, due at ``now``, with a new
        attempt budget (history kept); None when it is unknown or not dead."""

    # -- visits, outcomes, follow-ups ----------------------------------------- #
    @abstractmethod
    def get_visit_state(self, date: str, visit_id: str) -> VisitState:
        """The visit's state (status None when nothing was recorded)."""

    def get_visit_states(self, date: str, visit_ids: Sequence[str]) -> list[VisitState]:
        """The states of several visits of a date, in the order asked (one
        round trip in the backends; this default asks one by one)."""
        return [self.get_visit_state(date, visit_id) for visit_id in visit_ids]

    @abstractmethod
    def get_idempotency(self, scope: str, key: str) -> Idempotency | None:
        """A stored Idempotency-Key answer."""

    @abstractmethod
    def record_outcome(self, write: OutcomeWrite) -> tuple[Idempotency | None, list[Event]]:
        """Atomically: replay a stored answer for the same Idempotency-Key and
        request (returns it and no events); or refuse a different request with
        the same key (:class:`IdempotencyMismatch`); or check the transition
        (:class:`TransitionRefused`) and write the visit state, the outcome,
        the follow-ups, the events and the idempotency record together
        (returns None and the stored events)."""

    @abstractmethod
    def list_outcomes(self, date: str, visit_id: str) -> list[str]:
        """The outcome records (JSON) of a visit, oldest first."""

    @abstractmethod
    def list_followups(self, date: str) -> list[str]:
        """Follow-up records (JSON) due on ``date``, in creation order."""

    # -- housekeeping ------------------------------------------------------- #
    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""

    @staticmethod
    def check_job_changes(changes: dict[str, Any]) -> None:
        unknown = set(changes) - JOB_MUTABLE_FIELDS
        if unknown:
            raise ValueError(f"job fields that cannot be updated: {', '.join(sorted(unknown))}")
        status = changes.get("status")
        if status is not None and status not in JOB_STATUSES:
            raise ValueError(f"unknown job status {status!r}")

    # -- collection cases (app.cases) ---------------------------------------- #
    def get_case(self, case_id: str) -> tuple[int, str | None]:
        """The case's state (JSON) and its version (0 and None: no case yet)."""
        raise NotImplementedError

    def write_case(self, write: CaseWrite) -> tuple[Idempotency | None, list[Event]]:
        """Atomically: replay a stored answer for the same Idempotency-Key and
        request (returns it and no events); or refuse another request with the
        same key (:class:`IdempotencyMismatch`); or, if the case's version is
        still ``write.expect_version`` (else :class:`CaseConflict`: read again
        and retry), store the new state (version + 1), append the history
        entries, the follow-ups, the events and the idempotency record, and
        keep the case in (or out of) the set of cases with open promises."""
        raise NotImplementedError

    def list_case_entries(self, case_id: str) -> list[str]:
        """The case's history entries (JSON), in the order they were written."""
        raise NotImplementedError

    def open_cases(self) -> list[str]:
        """Ids of the cases with open promises to pay, sorted."""
        raise NotImplementedError

    def get_cases(self, case_ids: Sequence[str]) -> dict[str, str]:
        """The state (JSON) of each known case among ``case_ids`` (screening
        reads many at once; backends do it in one round trip)."""
        found = {}
        for case_id in case_ids:
            _version, state = self.get_case(case_id)
            if state is not None:
                found[case_id] = state
        return found

    # -- reports (app.reports) --------------------------------------------- #
    def current_days(self, dates: Sequence[str]) -> dict[str, tuple[PlanVersion, str]]:
        """The current plan version and its problem JSON of each date among
        ``dates`` that has a plan (reports read a month at once; backends do
        it in one or two round trips)."""
        found: dict[str, tuple[PlanVersion, str]] = {}
        for date in dates:
            stored = self.get_plan(date)
            problem = None if stored is None else self.get_problem(date, stored.version)
            if stored is not None and problem is not None:
                found[date] = (stored, problem)
        return found

    def list_case_entries_many(self, case_ids: Sequence[str]) -> dict[str, list[str]]:
        """:meth:`list_case_entries` of several cases (those with none are
        left out); backends do it in one round trip per chunk."""
        found: dict[str, list[str]] = {}
        for case_id in dict.fromkeys(case_ids):
            entries = self.list_case_entries(case_id)
            if entries:
                found[case_id] = entries
        return found

    # -- plan sets (app.multiday): the plans of several dates made by one job,
    # or any plan kept as a draft; one JSON record per job id with a status
    # (draft -> publishing -> published) ------------------------------------ #
    def save_plan_set(self, set_id: str, status: str, record_json: str) -> None:
        """Store a new plan set (an existing id is replaced)."""
        raise NotImplementedError

    def get_plan_set(self, set_id: str) -> tuple[str, str] | None:
        """The plan set's status and record (JSON); None: no such set."""
        raise NotImplementedError

    def update_plan_set(self, set_id: str, *, expect_status: str, status: str, record_json: str) -> bool:
        """Compare-and-set: replace the status and record if the status is
        still ``expect_status``; False otherwise (or when there is no set)."""
        raise NotImplementedError

    def keep_idempotency(self, idem: Idempotency) -> Idempotency | None:
        """Store an answer under its Idempotency-Key unless the key has one
        already; returns the one stored earlier (None: this one was kept).
        For writes that are not one store transaction (queuing a job)."""
        raise NotImplementedError

    # -- attachments and one-time events (app.attachments, app.safety) -------- #
    def save_attachment(self, attachment_id: str, meta_json: str, content: bytes | None) -> None:
        """Store an attachment's record (JSON) and, unless it is kept in a
        folder (None), its bytes; an id is written once."""
        raise NotImplementedError

    def get_attachment(self, attachment_id: str, *, content: bool = True) -> tuple[str, bytes | None] | None:
        """(record JSON, bytes or None) of an attachment; None when unknown.
        ``content=False`` reads the record only."""
        raise NotImplementedError

    def delete_attachment(self, attachment_id: str) -> None:
        """Forget an attachment (an upload whose case write lost to a retry)."""
        raise NotImplementedError

    def emit_once(self, marker: str, events: Sequence[NewEvent]) -> list[Event]:
        """Atomically: if ``marker`` was never set, set it and append
        ``events`` (returned as stored); else append nothing and return []."""
        raise NotImplementedError

    def emitted(self, marker: str) -> bool:
        """Whether :meth:`emit_once` set ``marker`` (a cheap read before building the events)."""
        raise NotImplementedError


@dataclass(frozen=True)
class CaseWrite:
    """Everything one change of a collection case writes, atomically."""

    case_id: str
    expect_version: int  # the version read (0: no case yet)
    state_json: str
    has_open_promises: bool
    entries: Sequence[str] = ()  # history entries (JSON), appended
    followups: Sequence[tuple[str, str, str]] = ()  # (id, date, record JSON)
    events: Sequence[NewEvent] = ()
    idempotency: Idempotency | None = None  # with the response to replay


class CaseConflict(Exception):
    """``write_case`` found another version of the case: read again and retry."""

