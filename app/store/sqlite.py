"""The embedded store: one SQLite file, ``DATA_DIR/doorstep.sqlite3``.

Each operation opens its own short-lived connection (opening a SQLite file
costs microseconds), so the store is safe to share between threads and even
between processes. The database runs in WAL mode: readers never block the
writer. Publishing a version is one ``BEGIN IMMEDIATE`` transaction that reads
the highest version and inserts the next, so concurrent publishers get strictly
increasing numbers; the ``(date, version)`` primary key guards it too.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from app.store.base import Job, NotFound, PlanVersion, Store, VersionInfo, utcnow

FILENAME = "doorstep.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id          TEXT PRIMARY KEY,
    date        TEXT NOT NULL,
    status      TEXT NOT NULL,
    stage       TEXT,
    fraction    REAL NOT NULL DEFAULT 0,
    error       TEXT,
    version     INTEGER,
    visits      INTEGER NOT NULL DEFAULT 0,
    agents      INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS plan_versions (
    date         TEXT NOT NULL,
    version      INTEGER NOT NULL,
    created_at   TEXT NOT NULL,
    meta         TEXT NOT NULL DEFAULT '{}',
    plan_json    TEXT NOT NULL,
    problem_json TEXT NOT NULL,
    PRIMARY KEY (date, version)
);
"""

_JOB_COLUMNS = tuple(Job.__dataclass_fields__)


class SQLiteStore(Store):
    """:class:`Store` on a SQLite file."""

    def __init__(self, path: str | Path, *, timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._timeout_s = timeout_s
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")  # persistent: stored in the file
            conn.executescript(_SCHEMA)

    @classmethod
    def in_dir(cls, data_dir: str | Path) -> SQLiteStore:
        return cls(Path(data_dir) / FILENAME)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # isolation_level=None: autocommit; transactions are opened explicitly.
        conn = sqlite3.connect(self.path, timeout=self._timeout_s, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA synchronous=NORMAL")  # safe with WAL
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction holding the database's write lock from the start."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # -- jobs ---------------------------------------------------------------- #
    def save_job(self, job: Job) -> None:
        values = job.to_dict()
        with self._connect() as conn:
            conn.execute(
                f"INSERT OR REPLACE INTO jobs ({', '.join(_JOB_COLUMNS)}) "
                f"VALUES ({', '.join('?' for _ in _JOB_COLUMNS)})",
                [values[c] for c in _JOB_COLUMNS],
            )

    def get_job(self, job_id: str) -> Job | None:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else Job.from_dict(dict(row))

    def update_job(self, job_id: str, **changes: Any) -> Job:
        self.check_job_changes(changes)
        changes["updated_at"] = utcnow()
        columns = ", ".join(f"{name} = ?" for name in changes)
        with self._transaction() as conn:
            cursor = conn.execute(f"UPDATE jobs SET {columns} WHERE id = ?", [*changes.values(), job_id])
            if cursor.rowcount == 0:
                raise NotFound(job_id)
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return Job.from_dict(dict(row))

    # -- plans --------------------------------------------------------------- #
    def publish_plan(
        self, date: str, plan_json: str, problem_json: str, *, meta: dict[str, Any] | None = None
    ) -> int:
        with self._transaction() as conn:
            (highest,) = conn.execute(
                "SELECT COALESCE(MAX(version), 0) FROM plan_versions WHERE date = ?", (date,)
            ).fetchone()
            version = int(highest) + 1
            conn.execute(
                "INSERT INTO plan_versions (date, version, created_at, meta, plan_json, problem_json) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (date, version, utcnow(), json.dumps(meta or {}), plan_json, problem_json),
            )
        return version

    def get_plan(self, date: str, version: int | None = None) -> PlanVersion | None:
        with self._connect() as conn:
            if version is None:
                row = conn.execute(
                    "SELECT date, version, created_at, meta, plan_json FROM plan_versions "
                    "WHERE date = ? ORDER BY version DESC LIMIT 1",
                    (date,),
                ).fetchone()
            else:
                row = conn.execute(
                    "SELECT date, version, created_at, meta, plan_json FROM plan_versions "
                    "WHERE date = ? AND version = ?",
                    (date, version),
                ).fetchone()
        if row is None:
            return None
        return PlanVersion(
            date=row["date"],
            version=row["version"],
            created_at=row["created_at"],
            plan_json=row["plan_json"],
            meta=json.loads(row["meta"]),
        )

    def list_versions(self, date: str) -> list[VersionInfo]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT date, version, created_at, meta FROM plan_versions WHERE date = ? ORDER BY version",
                (date,),
            ).fetchall()
        return [
            VersionInfo(date=r["date"], version=r["version"], created_at=r["created_at"], meta=json.loads(r["meta"]))
            for r in rows
        ]

    def current_version(self, date: str) -> int | None:
        with self._connect() as conn:
            (highest,) = conn.execute("SELECT MAX(version) FROM plan_versions WHERE date = ?", (date,)).fetchone()
        return None if highest is None else int(highest)

    def get_problem(self, date: str, version: int) -> str | None:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT problem_json FROM plan_versions WHERE date = ? AND version = ?", (date, version)
            ).fetchone()
        return None if row is None else row["problem_json"]
