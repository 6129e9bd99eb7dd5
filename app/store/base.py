"""The storage interface of the service: jobs and published plan versions.

Every backend (SQLite embedded by default, Redis later) implements :class:`Store`.
The interface deals in plain values — strings of JSON, ints, small dataclasses —
so a backend never needs to import the solver's models, and every value is
easy to put in a key-value store:

* a *job* is one planning request: its status (``queued`` → ``running`` →
  ``succeeded`` | ``failed``), progress, error message, and the plan version it
  published;
* a *plan version* is one published :class:`solver.model.Plan` for a date, kept
  with the :class:`solver.model.Problem` it answers. Versions are numbered 1, 2,
  3 … per date; publishing is atomic and the newest version is the current one.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

JobStatus = Literal["queued", "running", "succeeded", "failed"]
JOB_STATUSES: tuple[str, ...] = ("queued", "running", "succeeded", "failed")
FINISHED: frozenset[str] = frozenset({"succeeded", "failed"})


def utcnow() -> str:
    """Now, UTC, ISO-8601 with a ``Z`` suffix (millisecond precision)."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


#: The fields :meth:`Store.update_job` may change.
JOB_MUTABLE_FIELDS: frozenset[str] = frozenset({"status", "stage", "fraction", "error", "version"})


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


class NotFound(KeyError):
    """The job or plan asked for does not exist."""


class Store(ABC):
    """Where jobs and plan versions live. Implementations are thread-safe."""

    # -- jobs ---------------------------------------------------------------- #
    @abstractmethod
    def save_job(self, job: Job) -> None:
        """Insert or replace a job."""

    @abstractmethod
    def get_job(self, job_id: str) -> Job | None:
        """The job, or None when unknown."""

    @abstractmethod
    def update_job(self, job_id: str, **changes: Any) -> Job:
        """Change some of :data:`JOB_MUTABLE_FIELDS`; sets ``updated_at``.
        Raises :class:`NotFound` for an unknown job."""

    # -- plans --------------------------------------------------------------- #
    @abstractmethod
    def publish_plan(
        self, date: str, plan_json: str, problem_json: str, *, meta: dict[str, Any] | None = None
    ) -> int:
        """Store a new plan version for ``date`` atomically and return its
        number: one more than the highest so far (1 for the first). ``meta`` is
        a small JSON-able dict listed with the version (job id, summary)."""

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
