"""The embedded store: one SQLite file, ``DATA_DIR/doorstep.sqlite3``.

Each thread of each process has its own connection, opened on first use and
kept (opening one is cheap, but its first statement reads the schema, which
costs more than the query of a hot read), so the store is safe to share
between threads and even between processes: a process that inherits a store
over ``fork`` opens new connections rather than use its parent's.
Connections are in autocommit mode: each statement sees the latest committed
state; writes open their transactions explicitly. The database runs in WAL mode: readers never block the
writer, and a reader sees the database as of its transaction's start, so it
sees a publish whole or not at all. Every write that touches several rows
(publishing a version with its events, recording an outcome with its
follow-ups, events and idempotency record) is one ``BEGIN IMMEDIATE``
transaction, so concurrent publishers get strictly increasing numbers and
nothing is ever half-written; the ``(date, version)`` primary key guards it too.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from app.store.base import (
    ACTIVE,
    TOKEN_FIELDS,
    CaseConflict,
    CaseWrite,
    Delivery,
    Event,
    EventsFor,
    Idempotency,
    IdempotencyMismatch,
    Job,
    NewEvent,
    NotFound,
    OutcomeWrite,
    PlanVersion,
    Store,
    TokenRecord,
    TransitionRefused,
    VersionConflict,
    VersionInfo,
    VisitState,
    utcnow,
)

FILENAME = "doorstep.sqlite3"

#: Connections inherited over fork: kept referenced, never used or closed in the child.
_INHERITED: list[sqlite3.Connection] = []

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
    updated_at  TEXT NOT NULL,
    kind        TEXT NOT NULL DEFAULT 'plan',
    runner      TEXT NOT NULL DEFAULT 'thread',
    owner       TEXT,
    heartbeat_at TEXT,
    best_cost   REAL,
    time_limit_s REAL,
    stage_started_at TEXT,
    error_code  TEXT
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
CREATE TABLE IF NOT EXISTS events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id  TEXT NOT NULL,
    type      TEXT NOT NULL,
    at        TEXT NOT NULL,
    data      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    token_hash  TEXT PRIMARY KEY,
    role        TEXT NOT NULL,
    agent_id    TEXT,
    label       TEXT,
    created_at  TEXT NOT NULL,
    member      TEXT,
    expires_at  TEXT,
    last_used_at TEXT
);
CREATE TABLE IF NOT EXISTS counters (
    key         TEXT PRIMARY KEY,
    count       INTEGER NOT NULL,
    expires     REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    endpoint        TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    body            TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_status     INTEGER,
    last_error      TEXT,
    delivered_at    TEXT,
    lease           TEXT,
    history         TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_attempt_at);
CREATE TABLE IF NOT EXISTS outbox_cursors (
    endpoint    TEXT PRIMARY KEY,
    cursor      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS visit_states (
    date        TEXT NOT NULL,
    visit_id    TEXT NOT NULL,
    status      TEXT,
    result      TEXT,
    agent_id    TEXT,
    updated_at  TEXT,
    PRIMARY KEY (date, visit_id)
);
CREATE TABLE IF NOT EXISTS outcomes (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    date        TEXT NOT NULL,
    visit_id    TEXT NOT NULL,
    record      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outcomes_visit ON outcomes (date, visit_id);
CREATE TABLE IF NOT EXISTS idempotency (
    scope         TEXT NOT NULL,
    key           TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    status        INTEGER NOT NULL,
    body          TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE TABLE IF NOT EXISTS followups (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    date        TEXT NOT NULL,
    record      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS followups_date ON followups (date);
CREATE TABLE IF NOT EXISTS cases (
    case_id     TEXT PRIMARY KEY,
    version     INTEGER NOT NULL,
    state       TEXT NOT NULL,
    open        INTEGER NOT NULL DEFAULT 0,
    updated_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS cases_open ON cases (open);
CREATE TABLE IF NOT EXISTS case_entries (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id     TEXT NOT NULL,
    record      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS case_entries_case ON case_entries (case_id, seq);
CREATE TABLE IF NOT EXISTS attachments (
    id          TEXT PRIMARY KEY,
    meta        TEXT NOT NULL,
    content     BLOB
);
CREATE TABLE IF NOT EXISTS once_marks (
    marker      TEXT PRIMARY KEY,
    at          TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS plan_sets (
    id          TEXT PRIMARY KEY,
    status      TEXT NOT NULL,
    record      TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
"""

#: Columns added to ``jobs`` after the first release (added to older files on open).
_JOB_EXTRA_COLUMNS = {
    "kind": "TEXT NOT NULL DEFAULT 'plan'",
    "runner": "TEXT NOT NULL DEFAULT 'thread'",
    "owner": "TEXT",
    "heartbeat_at": "TEXT",
    "best_cost": "REAL",
    "time_limit_s": "REAL",
    "stage_started_at": "TEXT",
    "error_code": "TEXT",
}

#: Columns added to ``tokens`` after the first release (token ids need none: they derive from the hash).
_TOKEN_EXTRA_COLUMNS = {"member": "TEXT", "expires_at": "TEXT", "last_used_at": "TEXT"}

_JOB_COLUMNS = tuple(Job.__dataclass_fields__)
_DELIVERY_COLUMNS = tuple(Delivery.__dataclass_fields__)

#: Tables and indexes the schema creates.
_SCHEMA_NAMES = frozenset(re.findall(r"CREATE (?:TABLE|INDEX) IF NOT EXISTS (\w+)", _SCHEMA))


def _replayed(conn: sqlite3.Connection, idem: Idempotency | None) -> Idempotency | None:
    """The stored answer of a write retried with the same key (in the write's
    transaction); IdempotencyMismatch when the key came with another request."""
    if idem is None:
        return None
    row = conn.execute(
        "SELECT request_hash, status, body FROM idempotency WHERE scope = ? AND key = ?", (idem.scope, idem.key)
    ).fetchone()
    if row is None:
        return None
    if row[0] != idem.request_hash:
        raise IdempotencyMismatch(idem.key)
    return Idempotency(idem.scope, idem.key, row[0], row[1], row[2])


def _remember(conn: sqlite3.Connection, idem: Idempotency | None, now: str) -> None:
    """Store a write's answer under its key, in the write's transaction."""
    if idem is not None:
        conn.execute(
            "INSERT INTO idempotency (scope, key, request_hash, status, body, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (idem.scope, idem.key, idem.request_hash, idem.status, idem.body_json, now),
        )


class SQLiteStore(Store):
    """:class:`Store` on a SQLite file."""

    backend = "sqlite"

    def __init__(self, path: str | Path, *, timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._timeout_s = timeout_s
        self._local = threading.local()
        self._open: list[sqlite3.Connection] = []  # every connection this process opened (for close)
        self._open_lock = threading.Lock()
        self._open_pid = os.getpid()
        self._wal()
        if self._schema_current():  # the usual case: no write lock needed to open the store
            return
        # several processes may open a new file at once: create and migrate in one write transaction
        with self._transaction() as conn:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            have = {row["name"] for row in conn.execute("PRAGMA table_info(jobs)")}
            for name, decl in _JOB_EXTRA_COLUMNS.items():  # files from before these columns
                if name not in have:
                    conn.execute(f"ALTER TABLE jobs ADD COLUMN {name} {decl}")
            have = {row["name"] for row in conn.execute("PRAGMA table_info(tokens)")}
            for name, decl in _TOKEN_EXTRA_COLUMNS.items():  # files from before these columns
                if name not in have:
                    conn.execute(f"ALTER TABLE tokens ADD COLUMN {name} {decl}")

    def _schema_current(self) -> bool:
        """Whether every table, index and column of the schema exists already (read only)."""
        with self._connect() as conn:
            rows = conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')").fetchall()
            if not {row["name"] for row in rows} >= _SCHEMA_NAMES:
                return False
            jobs = {row["name"] for row in conn.execute("PRAGMA table_info(jobs)")}
            tokens = {row["name"] for row in conn.execute("PRAGMA table_info(tokens)")}
        return set(_JOB_EXTRA_COLUMNS) <= jobs and set(_TOKEN_EXTRA_COLUMNS) <= tokens

    def _wal(self) -> None:
        """Switch the file to WAL (persistent: stored in the file). Switching
        takes an exclusive lock that does not wait for other openers, so retry."""
        deadline = time.monotonic() + self._timeout_s
        while True:
            try:
                with self._connect() as conn:
                    if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                        conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    @classmethod
    def in_dir(cls, data_dir: str | Path, *, timeout_s: float = 30.0) -> SQLiteStore:
        return cls(Path(data_dir) / FILENAME, timeout_s=timeout_s)

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    def _thread_connection(self) -> sqlite3.Connection:
        """This thread's connection (a new one in a forked child)."""
        pid = os.getpid()
        held = getattr(self._local, "held", None)
        if held is not None and held[0] == pid:
            return held[1]  # type: ignore[no-any-return]
        if held is not None:  # inherited over fork: never used (nor closed) here
            _INHERITED.append(held[1])
        # isolation_level=None: autocommit; transactions are opened explicitly.
        # check_same_thread=False only so that close() may close it; one thread uses it.
        conn = sqlite3.connect(self.path, timeout=self._timeout_s, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA synchronous=NORMAL")  # safe with WAL
        self._local.held = (pid, conn)
        with self._open_lock:
            if self._open and self._open_pid != pid:
                _INHERITED.extend(self._open)
                self._open = []
            self._open_pid = pid
            self._open.append(conn)
        return conn

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if getattr(self._local, "busy", False):
            # nested in another operation of this thread (e.g. an events callback inside a
            # publish): a connection of its own, as every operation had before, so it sees
            # committed data only and never touches the outer transaction
            conn = sqlite3.connect(self.path, timeout=self._timeout_s, isolation_level=None)
            try:
                conn.row_factory = sqlite3.Row
                yield conn
            finally:
                conn.close()
            return
        conn = self._thread_connection()
        if conn.in_transaction:  # left open by an interrupted write: start clean
            conn.execute("ROLLBACK")
        self._local.busy = True
        try:
            yield conn
        finally:
            self._local.busy = False

    def close(self) -> None:
        """Close the connections this process opened (the store reopens on use)."""
        with self._open_lock:
            conns, self._open = (self._open, []) if getattr(self, "_open_pid", None) == os.getpid() else ([], [])
        for conn in conns:
            try:
                conn.close()
            except sqlite3.Error:
                pass
        self._local = threading.local()

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

    def update_job(self, job_id: str, *, if_status: Sequence[str] | None = None, **changes: Any) -> Job | None:
        self.check_job_changes(changes)
        changes["updated_at"] = utcnow()
        columns = ", ".join(f"{name} = ?" for name in changes)
        with self._transaction() as conn:
            row = conn.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise NotFound(job_id)
            if if_status is not None and row["status"] not in if_status:
                return None
            conn.execute(f"UPDATE jobs SET {columns} WHERE id = ?", [*changes.values(), job_id])
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return Job.from_dict(dict(row))

    def active_jobs(self) -> list[Job]:
        marks = ", ".join("?" for _ in ACTIVE)
        with self._connect() as conn:
            rows = conn.execute(
                f"SELECT * FROM jobs WHERE status IN ({marks}) ORDER BY created_at", tuple(ACTIVE)
            ).fetchall()
        return [Job.from_dict(dict(r)) for r in rows]

    # -- plans --------------------------------------------------------------- #
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
        if plan_json is None or problem_json is None:  # type: ignore[redundant-expr]  # callers are untyped too
            raise sqlite3.IntegrityError("plan_json and problem_json are required")
        with self._transaction() as conn:
            (highest,) = conn.execute(
                "SELECT COALESCE(MAX(version), 0) FROM plan_versions WHERE date = ?", (date,)
            ).fetchone()
            highest = int(highest)
            if expect_version is not None and highest != expect_version:
                raise VersionConflict(expect_version, highest or None)
            version = highest + 1
            conn.execute(
                "INSERT INTO plan_versions (date, version, created_at, meta, plan_json, problem_json) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (date, version, utcnow(), json.dumps(meta or {}), plan_json, problem_json),
            )
            if events is not None:
                self._insert_events(conn, events(version))
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

    # -- events -------------------------------------------------------------- #
    @staticmethod
    def _insert_events(conn: sqlite3.Connection, events: Sequence[NewEvent]) -> list[Event]:
        stored = []
        for event in events:
            event_id = event.event_id or uuid.uuid4().hex
            cursor = conn.execute(
                "INSERT INTO events (event_id, type, at, data) VALUES (?, ?, ?, ?)",
                (event_id, event.type, event.at, json.dumps(event.data, ensure_ascii=False)),
            )
            stored.append(Event(str(cursor.lastrowid), event_id, event.type, event.at, dict(event.data)))
        return stored

    def append_events(self, events: Sequence[NewEvent]) -> list[Event]:
        with self._transaction() as conn:
            return self._insert_events(conn, events)

    def list_events(self, after: str | None = None, limit: int = 100) -> list[Event]:
        start = int(after) if after else 0
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT id, event_id, type, at, data FROM events WHERE id > ? ORDER BY id LIMIT ?",
                (start, int(limit)),
            ).fetchall()
        return [Event(str(r["id"]), r["event_id"], r["type"], r["at"], json.loads(r["data"])) for r in rows]

    def valid_cursor(self, cursor: str) -> bool:
        return cursor.isdigit() and len(cursor) < 19

    # -- tokens -------------------------------------------------------------- #
    def save_token(self, record: TokenRecord) -> None:
        columns = ("token_hash", *TOKEN_FIELDS)
        with self._connect() as conn:
            conn.execute(
                f"INSERT INTO tokens ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
                [getattr(record, c) for c in columns],
            )

    def get_token(self, token_hash: str) -> TokenRecord | None:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM tokens WHERE token_hash = ?", (token_hash,)).fetchone()
        return None if row is None else TokenRecord(**dict(row))

    def delete_token(self, token_hash: str) -> bool:
        with self._connect() as conn:
            return conn.execute("DELETE FROM tokens WHERE token_hash = ?", (token_hash,)).rowcount > 0

    def get_token_and_count(self, token_hash: str, key: str, window_s: int) -> tuple[TokenRecord | None, int, float]:
        now = time.time()
        window = int(now // window_s)
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM tokens WHERE token_hash = ?", (token_hash,)).fetchone()
            hit = conn.execute("SELECT count FROM counters WHERE key = ?", (f"{key}@{window}",)).fetchone()
        record = None if row is None else TokenRecord(**dict(row))
        return record, (int(hit[0]) if hit else 0), (window + 1) * window_s - now

    def list_tokens(self) -> list[TokenRecord]:
        with self._connect() as conn:
            rows = conn.execute("SELECT * FROM tokens ORDER BY created_at, token_hash").fetchall()
        return [TokenRecord(**dict(r)) for r in rows]

    def touch_token(self, token_hash: str, at: str) -> None:
        with self._connect() as conn:
            conn.execute("UPDATE tokens SET last_used_at = ? WHERE token_hash = ?", (at, token_hash))

    # -- counters ------------------------------------------------------------ #
    def count_hit(self, key: str, window_s: int, *, add: int = 1) -> tuple[int, float]:
        now = time.time()
        window = int(now // window_s)
        ends = (window + 1) * window_s
        slot = f"{key}@{window}"
        with self._transaction() as conn:
            if add:
                conn.execute(
                    "INSERT INTO counters (key, count, expires) VALUES (?, ?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET count = count + excluded.count",
                    (slot, add, ends),
                )
                conn.execute("DELETE FROM counters WHERE expires < ?", (now - window_s,))
            row = conn.execute("SELECT count FROM counters WHERE key = ?", (slot,)).fetchone()
        return (int(row[0]) if row else 0), ends - now

    # -- webhook outbox ------------------------------------------------------ #
    @staticmethod
    def _delivery(row: sqlite3.Row) -> Delivery:
        values = {c: row[c] for c in _DELIVERY_COLUMNS}
        values["history"] = tuple(json.loads(values["history"] or "[]"))
        return Delivery(**values)

    def outbox_cursor(self, endpoint: str) -> str | None:
        with self._connect() as conn:
            row = conn.execute("SELECT cursor FROM outbox_cursors WHERE endpoint = ?", (endpoint,)).fetchone()
        return None if row is None else row[0]

    def advance_outbox(self, endpoint: str, expect: str | None, cursor: str, deliveries: Sequence[Delivery]) -> bool:
        with self._transaction() as conn:
            row = conn.execute("SELECT cursor FROM outbox_cursors WHERE endpoint = ?", (endpoint,)).fetchone()
            if (None if row is None else row[0]) != expect:
                return False
            for d in deliveries:
                values = d.to_dict()
                values["history"] = json.dumps(values["history"])
                conn.execute(
                    f"INSERT OR IGNORE INTO outbox ({', '.join(_DELIVERY_COLUMNS)}) "
                    f"VALUES ({', '.join('?' for _ in _DELIVERY_COLUMNS)})",
                    [values[c] for c in _DELIVERY_COLUMNS],
                )
            conn.execute(
                "INSERT INTO outbox_cursors (endpoint, cursor) VALUES (?, ?) "
                "ON CONFLICT (endpoint) DO UPDATE SET cursor = excluded.cursor",
                (endpoint, cursor),
            )
        return True

    def claim_deliveries(self, now: float, lease_s: float, lease: str, limit: int = 20) -> list[Delivery]:
        with self._connect() as conn:  # a read first: an idle deliverer does not take the write lock every poll
            if conn.execute("SELECT 1 FROM outbox WHERE status = 'pending' AND next_attempt_at <= ? LIMIT 1",
                            (now,)).fetchone() is None:
                return []
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= ? "
                "ORDER BY next_attempt_at, seq LIMIT ?",
                (now, int(limit)),
            ).fetchall()
            ids = [r[0] for r in rows]
            claimed = []
            for delivery_id in ids:
                conn.execute("UPDATE outbox SET next_attempt_at = ?, lease = ? WHERE id = ?",
                             (now + lease_s, lease, delivery_id))
                claimed.append(self._delivery(conn.execute("SELECT * FROM outbox WHERE id = ?",
                                                           (delivery_id,)).fetchone()))
        return claimed

    def finish_attempt(self, delivery: Delivery, lease: str) -> bool:
        with self._connect() as conn:
            return conn.execute(
                "UPDATE outbox SET status = ?, attempts = ?, next_attempt_at = ?, last_status = ?, last_error = ?, "
                "delivered_at = ?, history = ?, lease = NULL WHERE id = ? AND lease = ? AND status = 'pending'",
                (delivery.status, delivery.attempts, delivery.next_attempt_at, delivery.last_status,
                 delivery.last_error, delivery.delivered_at, json.dumps(list(delivery.history)), delivery.id, lease),
            ).rowcount > 0

    def get_delivery(self, delivery_id: str) -> Delivery | None:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM outbox WHERE id = ?", (delivery_id,)).fetchone()
        return None if row is None else self._delivery(row)

    def list_deliveries(self, status: str | None = None, limit: int = 100) -> list[Delivery]:
        with self._connect() as conn:
            if status is None:
                rows = conn.execute("SELECT * FROM outbox ORDER BY seq DESC LIMIT ?", (int(limit),)).fetchall()
            else:
                rows = conn.execute("SELECT * FROM outbox WHERE status = ? ORDER BY seq DESC LIMIT ?",
                                    (status, int(limit))).fetchall()
        return [self._delivery(r) for r in rows]

    def prune_deliveries(self, delivered_before: float) -> int:
        cutoff = dt.datetime.fromtimestamp(delivered_before, dt.UTC)
        iso = cutoff.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        with self._connect() as conn:
            return conn.execute("DELETE FROM outbox WHERE status = 'delivered' AND delivered_at < ?",
                                (iso,)).rowcount

    def retry_delivery(self, delivery_id: str, now: float) -> Delivery | None:
        with self._transaction() as conn:
            changed = conn.execute(
                "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?, lease = NULL "
                "WHERE id = ? AND status = 'dead'",
                (now, delivery_id),
            ).rowcount
            row = conn.execute("SELECT * FROM outbox WHERE id = ?", (delivery_id,)).fetchone()
        return self._delivery(row) if changed else None

    # -- visits, outcomes, follow-ups ----------------------------------------- #
    @staticmethod
    def _visit_state(conn: sqlite3.Connection, date: str, visit_id: str) -> VisitState:
        row = conn.execute(
            "SELECT * FROM visit_states WHERE date = ? AND visit_id = ?", (date, visit_id)
        ).fetchone()
        return VisitState(date, visit_id) if row is None else VisitState(**dict(row))

    def get_visit_state(self, date: str, visit_id: str) -> VisitState:
        with self._connect() as conn:
            return self._visit_state(conn, date, visit_id)

    def get_visit_states(self, date: str, visit_ids: Sequence[str]) -> list[VisitState]:
        if not visit_ids:
            return []
        found: dict[str, VisitState] = {}
        with self._connect() as conn:
            for start in range(0, len(visit_ids), 500):  # within SQLite's bound-parameter limit
                chunk = list(dict.fromkeys(visit_ids[start:start + 500]))
                rows = conn.execute(
                    f"SELECT * FROM visit_states WHERE date = ? AND visit_id IN ({', '.join('?' for _ in chunk)})",
                    (date, *chunk),
                ).fetchall()
                found.update((row["visit_id"], VisitState(**dict(row))) for row in rows)
        return [found.get(visit_id) or VisitState(date, visit_id) for visit_id in visit_ids]

    def get_idempotency(self, scope: str, key: str) -> Idempotency | None:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT scope, key, request_hash, status, body FROM idempotency WHERE scope = ? AND key = ?",
                (scope, key),
            ).fetchone()
        return None if row is None else Idempotency(row[0], row[1], row[2], row[3], row[4])

    def record_outcome(self, write: OutcomeWrite) -> tuple[Idempotency | None, list[Event]]:
        with self._transaction() as conn:
            idem = write.idempotency
            replayed = _replayed(conn, idem)
            if replayed is not None:
                return replayed, []
            state = self._visit_state(conn, write.date, write.visit_id)
            if state.status not in write.allowed_from:
                raise TransitionRefused(state)
            now = utcnow()
            conn.execute(
                "INSERT OR REPLACE INTO visit_states (date, visit_id, status, result, agent_id, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (write.date, write.visit_id, write.status, write.result, write.agent_id, now),
            )
            conn.execute(
                "INSERT INTO outcomes (date, visit_id, record) VALUES (?, ?, ?)",
                (write.date, write.visit_id, write.outcome_json),
            )
            for fid, fdate, record in write.followups:
                conn.execute("INSERT INTO followups (id, date, record) VALUES (?, ?, ?)", (fid, fdate, record))
            events = self._insert_events(conn, write.events)
            _remember(conn, idem, now)
        return None, events

    def list_outcomes(self, date: str, visit_id: str) -> list[str]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT record FROM outcomes WHERE date = ? AND visit_id = ? ORDER BY seq", (date, visit_id)
            ).fetchall()
        return [r[0] for r in rows]

    def list_followups(self, date: str) -> list[str]:
        with self._connect() as conn:
            rows = conn.execute("SELECT record FROM followups WHERE date = ? ORDER BY seq", (date,)).fetchall()
        return [r[0] for r in rows]

    # -- collection cases (app.cases) ---------------------------------------- #
    def get_case(self, case_id: str) -> tuple[int, str | None]:
        with self._connect() as conn:
            row = conn.execute("SELECT version, state FROM cases WHERE case_id = ?", (case_id,)).fetchone()
        return (0, None) if row is None else (int(row[0]), row[1])

    def write_case(self, write: CaseWrite) -> tuple[Idempotency | None, list[Event]]:
        with self._transaction() as conn:
            idem = write.idempotency
            replayed = _replayed(conn, idem)
            if replayed is not None:
                return replayed, []
            row = conn.execute("SELECT version FROM cases WHERE case_id = ?", (write.case_id,)).fetchone()
            if (0 if row is None else int(row[0])) != write.expect_version:
                raise CaseConflict(write.case_id)
            now = utcnow()
            conn.execute(
                "INSERT INTO cases (case_id, version, state, open, updated_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (case_id) DO UPDATE SET version = excluded.version, state = excluded.state, "
                "open = excluded.open, updated_at = excluded.updated_at",
                (write.case_id, write.expect_version + 1, write.state_json, int(write.has_open_promises), now),
            )
            for record in write.entries:
                conn.execute("INSERT INTO case_entries (case_id, record) VALUES (?, ?)", (write.case_id, record))
            for fid, fdate, record in write.followups:
                conn.execute("INSERT INTO followups (id, date, record) VALUES (?, ?, ?)", (fid, fdate, record))
            events = self._insert_events(conn, write.events)
            _remember(conn, idem, now)
        return None, events

    def list_case_entries(self, case_id: str) -> list[str]:
        with self._connect() as conn:
            rows = conn.execute("SELECT record FROM case_entries WHERE case_id = ? ORDER BY seq",
                                (case_id,)).fetchall()
        return [r[0] for r in rows]

    def open_cases(self) -> list[str]:
        with self._connect() as conn:
            rows = conn.execute("SELECT case_id FROM cases WHERE open = 1 ORDER BY case_id").fetchall()
        return [r[0] for r in rows]

    def get_cases(self, case_ids: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        ids = list(dict.fromkeys(case_ids))
        with self._connect() as conn:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                marks = ", ".join("?" * len(chunk))
                rows = conn.execute(f"SELECT case_id, state FROM cases WHERE case_id IN ({marks})", chunk).fetchall()
                found.update({row[0]: row[1] for row in rows})
        return found

    # -- reports (app.reports) --------------------------------------------- #
    def current_days(self, dates: Sequence[str]) -> dict[str, tuple[PlanVersion, str]]:
        found: dict[str, tuple[PlanVersion, str]] = {}
        wanted = list(dict.fromkeys(dates))
        with self._connect() as conn:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500]
                marks = ", ".join("?" * len(chunk))
                rows = conn.execute(
                    "SELECT p.date, p.version, p.created_at, p.meta, p.plan_json, p.problem_json "
                    "FROM plan_versions p JOIN (SELECT date, MAX(version) AS version FROM plan_versions "
                    f"WHERE date IN ({marks}) GROUP BY date) c ON p.date = c.date AND p.version = c.version",
                    chunk,
                ).fetchall()
                for row in rows:
                    found[row["date"]] = (PlanVersion(date=row["date"], version=int(row["version"]),
                                                      created_at=row["created_at"], plan_json=row["plan_json"],
                                                      meta=json.loads(row["meta"] or "{}")), row["problem_json"])
        return found

    def list_case_entries_many(self, case_ids: Sequence[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        ids = list(dict.fromkeys(case_ids))
        with self._connect() as conn:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                marks = ", ".join("?" * len(chunk))
                rows = conn.execute(f"SELECT case_id, record FROM case_entries WHERE case_id IN ({marks}) "
                                    "ORDER BY seq", chunk).fetchall()
                for row in rows:
                    found.setdefault(row[0], []).append(row[1])
        return found

    # -- plan sets (app.multiday) ------------------------------------------- #
    def save_plan_set(self, set_id: str, status: str, record_json: str) -> None:
        with self._transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO plan_sets (id, status, record, updated_at) VALUES (?, ?, ?, ?)",
                         (set_id, status, record_json, utcnow()))

    def get_plan_set(self, set_id: str) -> tuple[str, str] | None:
        with self._connect() as conn:
            row = conn.execute("SELECT status, record FROM plan_sets WHERE id = ?", (set_id,)).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    def update_plan_set(self, set_id: str, *, expect_status: str, status: str, record_json: str) -> bool:
        with self._transaction() as conn:
            cursor = conn.execute(
                "UPDATE plan_sets SET status = ?, record = ?, updated_at = ? WHERE id = ? AND status = ?",
                (status, record_json, utcnow(), set_id, expect_status),
            )
            return cursor.rowcount == 1

    def keep_idempotency(self, idem: Idempotency) -> Idempotency | None:
        with self._transaction() as conn:
            row = conn.execute("SELECT request_hash, status, body FROM idempotency WHERE scope = ? AND key = ?",
                               (idem.scope, idem.key)).fetchone()
            if row is not None:
                return Idempotency(idem.scope, idem.key, row[0], row[1], row[2])
            _remember(conn, idem, utcnow())
        return None

    # -- attachments and one-time events ------------------------------------- #
    def save_attachment(self, attachment_id: str, meta_json: str, content: bytes | None) -> None:
        with self._transaction() as conn:
            conn.execute("INSERT INTO attachments (id, meta, content) VALUES (?, ?, ?)",
                         (attachment_id, meta_json, None if content is None else sqlite3.Binary(content)))

    def get_attachment(self, attachment_id: str, *, content: bool = True) -> tuple[str, bytes | None] | None:
        column = "content" if content else "NULL"
        with self._connect() as conn:
            row = conn.execute(f"SELECT meta, {column} FROM attachments WHERE id = ?", (attachment_id,)).fetchone()
        return None if row is None else (row[0], None if row[1] is None else bytes(row[1]))

    def delete_attachment(self, attachment_id: str) -> None:
        with self._transaction() as conn:
            conn.execute("DELETE FROM attachments WHERE id = ?", (attachment_id,))

    def emit_once(self, marker: str, events: Sequence[NewEvent]) -> list[Event]:
        with self._transaction() as conn:
            if conn.execute("SELECT 1 FROM once_marks WHERE marker = ?", (marker,)).fetchone() is not None:
                return []
            conn.execute("INSERT INTO once_marks (marker, at) VALUES (?, ?)", (marker, utcnow()))
            return self._insert_events(conn, events)

    def emitted(self, marker: str) -> bool:
        with self._connect() as conn:
            return conn.execute("SELECT 1 FROM once_marks WHERE marker = ?", (marker,)).fetchone() is not None
