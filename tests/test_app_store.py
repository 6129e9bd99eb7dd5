"""The store suite, run against both backends for real: SQLite on a file in
tmp_path and Redis on the test server (keys under a prefix of the test's own).

Jobs, plan versions (atomic publish, compare-and-set, readers never see a mix),
events, tokens, outcomes with idempotency and follow-ups.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import time

import pytest

from app.store import (
    Idempotency,
    IdempotencyMismatch,
    Job,
    NewEvent,
    NotFound,
    OutcomeWrite,
    SQLiteStore,
    TokenRecord,
    TransitionRefused,
    VersionConflict,
    make_store,
)
from app.store.redis import RedisStore
from tests.conftest import REDIS_URL

DAY = "2026-12-01"


@pytest.fixture(params=["sqlite", "redis"])
def backend(request, tmp_path):
    """``open()`` gives a new instance on the same data (as another process would)."""
    if request.param == "sqlite":
        return lambda: SQLiteStore.in_dir(tmp_path)
    prefix = request.getfixturevalue("redis_prefix")
    return lambda: RedisStore(REDIS_URL, prefix=prefix)


@pytest.fixture
def store(backend):
    s = backend()
    yield s
    s.close()


# --------------------------------------------------------------------------- #
# Jobs
# --------------------------------------------------------------------------- #
def test_job_round_trip(store, backend):
    job = Job(id="j1", date=DAY, visits=6, agents=2, time_limit_s=1.5)
    store.save_job(job)
    assert store.get_job("j1") == job
    assert store.get_job("nope") is None

    updated = store.update_job("j1", status="running", stage="matrix", fraction=0.5, best_cost=12.5)
    assert (updated.status, updated.stage, updated.fraction, updated.best_cost) == ("running", "matrix", 0.5, 12.5)
    assert updated.created_at == job.created_at and updated.updated_at >= job.updated_at
    assert [j.id for j in store.active_jobs()] == ["j1"]
    store.update_job("j1", status="succeeded", version=3, error=None)

    again = backend().get_job("j1")  # another instance reads the same data
    assert again is not None and again.status == "succeeded" and again.version == 3 and again.finished
    assert again.time_limit_s == 1.5 and again.error is None
    assert store.active_jobs() == []

    with pytest.raises(NotFound):
        store.update_job("nope", status="failed")
    with pytest.raises(ValueError):
        store.update_job("j1", visits=99)
    with pytest.raises(ValueError):
        store.update_job("j1", status="exploded")

    store.save_job(Job(id="j3", date=DAY))  # a failed job's error code (app.jobs.failure)
    store.update_job("j3", status="failed", error="the solver process died", error_code="solver_crashed")
    assert backend().get_job("j3").error_code == "solver_crashed" and store.get_job("j1").error_code is None


def test_job_update_can_be_a_compare_and_set_on_the_status(store):
    store.save_job(Job(id="j2", date=DAY))
    assert store.update_job("j2", if_status=("running",), stage="solving") is None  # still queued: no change
    assert store.get_job("j2").stage is None
    assert store.update_job("j2", if_status=("queued",), status="running").status == "running"
    # a reaper and the worker race to finish the job: exactly one wins
    results = []
    barrier = threading.Barrier(2, timeout=30)

    def finish(status: str) -> None:
        barrier.wait()
        results.append(store.update_job("j2", if_status=("running",), status=status))

    threads = [threading.Thread(target=finish, args=(s,)) for s in ("failed", "succeeded")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and store.get_job("j2").status == winners[0].status


# --------------------------------------------------------------------------- #
# Plan versions
# --------------------------------------------------------------------------- #
def test_plan_versions_round_trip(store):
    assert store.get_plan(DAY) is None
    assert store.list_versions(DAY) == []
    assert store.current_version(DAY) is None

    v1 = store.publish_plan(DAY, '{"plan": 1}', '{"problem": 1}', meta={"job_id": "a"})
    v2 = store.publish_plan(DAY, '{"plan": 2}', '{"problem": 2}')
    other = store.publish_plan("2026-12-02", '{"plan": "x"}', '{"problem": "x"}')
    assert (v1, v2, other) == (1, 2, 1)

    current = store.get_plan(DAY)
    assert current is not None and current.version == 2 and json.loads(current.plan_json) == {"plan": 2}
    first = store.get_plan(DAY, 1)
    assert first is not None and first.meta == {"job_id": "a"} and first.plan_json == '{"plan": 1}'
    assert store.get_plan(DAY, 3) is None
    assert [v.version for v in store.list_versions(DAY)] == [1, 2]  # old versions kept and listed
    assert store.list_versions(DAY)[0].meta == {"job_id": "a"}
    assert store.current_version(DAY) == 2
    assert store.get_problem(DAY, 1) == '{"problem": 1}'
    assert store.get_problem(DAY, 9) is None


def test_concurrent_publishes_get_strictly_increasing_versions(backend):
    threads, per_thread = 4, 25
    barrier = threading.Barrier(threads, timeout=30)
    results: dict[int, list[int]] = {}
    errors: list[BaseException] = []

    def publish(worker: int) -> None:
        store = backend()  # its own instance, as another process would
        mine = []
        try:
            barrier.wait()
            for i in range(per_thread):
                mine.append(store.publish_plan(DAY, json.dumps([worker, i]), "{}"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        results[worker] = mine

    pool = [threading.Thread(target=publish, args=(w,)) for w in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert not errors
    everything = sorted(v for mine in results.values() for v in mine)
    assert everything == list(range(1, threads * per_thread + 1))  # no gap, no duplicate
    for mine in results.values():
        assert mine == sorted(mine) and len(set(mine)) == len(mine)
    store = backend()
    stored = {v.version: json.loads(store.get_plan(DAY, v.version).plan_json) for v in store.list_versions(DAY)}
    for worker, mine in results.items():  # each version holds what its publisher wrote
        assert [stored[v] for v in mine] == [[worker, i] for i in range(per_thread)]


def test_publish_with_expect_version_is_a_compare_and_set(store, backend):
    with pytest.raises(VersionConflict):
        store.publish_plan(DAY, "{}", "{}", expect_version=1)  # there is no version 1 yet
    assert store.publish_plan(DAY, '"first"', "{}", expect_version=0) == 1
    with pytest.raises(VersionConflict) as stale:
        store.publish_plan(DAY, '"stale"', "{}", expect_version=0)
    assert (stale.value.expected, stale.value.current) == (0, 1)
    assert [v.version for v in store.list_versions(DAY)] == [1]

    # several publishers computed from version 1 race: exactly one wins, the others conflict
    racers = 6
    barrier = threading.Barrier(racers, timeout=30)
    outcomes: list[object] = []

    def race(i: int) -> None:
        mine = backend()
        barrier.wait()
        try:
            outcomes.append(mine.publish_plan(DAY, json.dumps(i), "{}", expect_version=1))
        except VersionConflict as exc:
            outcomes.append(exc)

    pool = [threading.Thread(target=race, args=(i,)) for i in range(racers)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert [o for o in outcomes if not isinstance(o, VersionConflict)] == [2]
    assert all(o.current == 2 for o in outcomes if isinstance(o, VersionConflict))
    assert [v.version for v in store.list_versions(DAY)] == [1, 2]


def test_readers_see_the_old_or_the_new_version_never_a_mix(backend):
    """While versions are published, every read of the current plan and of the
    problem of that version belong together."""
    writer_store, stop = backend(), threading.Event()
    writer_store.publish_plan(DAY, json.dumps({"n": 0}), json.dumps({"n": 0}))
    mismatches: list[tuple] = []
    reads = [0]

    started = threading.Barrier(3)  # both readers read before the first publish

    def read() -> None:
        mine = backend()
        mine.get_plan(DAY)
        started.wait()
        while not stop.is_set():
            current = mine.get_plan(DAY)
            problem = json.loads(mine.get_problem(DAY, current.version))
            plan = json.loads(current.plan_json)
            reads[0] += 1
            if not (plan["n"] == problem["n"] == current.version - 1):
                mismatches.append((current.version, plan, problem))

    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in readers:
        t.start()
    started.wait()
    for n in range(1, 60):
        writer_store.publish_plan(DAY, json.dumps({"n": n}), json.dumps({"n": n}), meta={"n": n})
        time.sleep(0.0005)  # a publish takes well under a millisecond: let the readers interleave
    stop.set()
    for t in readers:
        t.join()
    assert reads[0] > 10 and not mismatches
    assert writer_store.current_version(DAY) == 60


def test_a_failed_publish_leaves_nothing_behind(store):
    store.publish_plan(DAY, "{}", "{}")

    def broken_events(version: int):
        raise RuntimeError("event builder failed")

    with pytest.raises(RuntimeError):
        store.publish_plan(DAY, '{"half": true}', "{}", events=broken_events)
    with pytest.raises((TypeError, sqlite3.IntegrityError)):
        store.publish_plan(DAY, None, "{}")  # type: ignore[arg-type]
    assert [v.version for v in store.list_versions(DAY)] == [1]
    assert store.list_events() == []
    assert store.publish_plan(DAY, "{}", "{}") == 2


# --------------------------------------------------------------------------- #
# Events
# --------------------------------------------------------------------------- #
def test_events_are_appended_with_the_publish_and_paged_by_cursor(store):
    version = store.publish_plan(
        DAY, "{}", "{}", events=lambda v: [NewEvent("plan.published", {"version": v}, event_id="e1")]
    )
    more = store.append_events([NewEvent("outcome.recorded", {"visit_id": f"v{i}"}) for i in range(3)])
    assert [e.type for e in more] == ["outcome.recorded"] * 3
    everything = store.list_events()
    assert [e.type for e in everything] == ["plan.published"] + ["outcome.recorded"] * 3
    assert everything[0].data == {"version": version} and everything[0].event_id == "e1"
    assert len({e.event_id for e in everything}) == 4
    assert [e.id for e in everything[1:]] == [e.id for e in more]
    assert all(store.valid_cursor(e.id) for e in everything)
    assert not store.valid_cursor("drop table") and not store.valid_cursor("")

    page = store.list_events(after=everything[0].id, limit=2)
    assert [e.data for e in page] == [{"visit_id": "v0"}, {"visit_id": "v1"}]
    assert [e.data for e in store.list_events(after=page[-1].id)] == [{"visit_id": "v2"}]
    assert store.list_events(after=everything[-1].id) == []


def test_redis_events_go_on_the_stream(redis_prefix):
    store = RedisStore(REDIS_URL, prefix=redis_prefix)
    store.append_events([NewEvent("plan.published", {"date": DAY})])
    entries = store.redis.xrange(f"{redis_prefix}events")
    assert len(entries) == 1 and entries[0][1]["type"] == "plan.published"
    assert json.loads(entries[0][1]["data"]) == {"date": DAY}
    assert RedisStore(REDIS_URL).events_key == "doorstep:events"  # the default prefix


# --------------------------------------------------------------------------- #
# Tokens
# --------------------------------------------------------------------------- #
def test_tokens_are_stored_by_hash(store):
    record = TokenRecord(token_hash="ab" * 32, role="agent", agent_id="crew-a", label="phone")
    store.save_token(record)
    assert store.get_token("ab" * 32) == record
    assert store.get_token("cd" * 32) is None
    assert store.delete_token("ab" * 32) and not store.delete_token("ab" * 32)
    assert store.get_token("ab" * 32) is None


# --------------------------------------------------------------------------- #
# Outcomes, idempotency, follow-ups
# --------------------------------------------------------------------------- #
def _write(status: str, allowed, *, key: str | None = None, body: str = "{}", followups=(), result=None):
    return OutcomeWrite(
        date=DAY, visit_id="v1", agent_id="crew-a", status=status, result=result,
        allowed_from=frozenset(allowed), outcome_json=json.dumps({"status": status}),
        followups=followups, events=[NewEvent("outcome.recorded", {"visit_id": "v1", "status": status})],
        idempotency=None if key is None else Idempotency("scope", key, f"hash-of-{body}", 201, body),
    )


def test_outcomes_follow_the_transitions_and_write_everything_together(store):
    assert store.get_visit_state(DAY, "v1").status is None
    replay, events = store.record_outcome(_write("arrived", {None}))
    assert replay is None and [e.type for e in events] == ["outcome.recorded"]
    with pytest.raises(TransitionRefused) as refused:
        store.record_outcome(_write("arrived", {None}))
    assert refused.value.current.status == "arrived"

    followup = ("fu-1", "2026-12-03", json.dumps({"id": "fu-1"}))
    store.record_outcome(_write("completed", {None, "arrived"}, followups=[followup], result="not_at_home"))
    state = store.get_visit_state(DAY, "v1")
    assert (state.status, state.result, state.agent_id) == ("completed", "not_at_home", "crew-a")
    assert [json.loads(o)["status"] for o in store.list_outcomes(DAY, "v1")] == ["arrived", "completed"]
    assert store.list_followups("2026-12-03") == [json.dumps({"id": "fu-1"})]
    assert store.list_followups(DAY) == []
    assert len(store.list_events()) == 2  # the refused one wrote nothing


def test_an_idempotency_key_replays_the_answer_or_refuses_another_body(store):
    first, _ = store.record_outcome(_write("arrived", {None}, key="k1", body='{"a": 1}'))
    assert first is None
    again, events = store.record_outcome(_write("arrived", {None}, key="k1", body='{"a": 1}'))
    assert again is not None and (again.status, again.body_json) == (201, '{"a": 1}') and events == []
    assert store.get_idempotency("scope", "k1").body_json == '{"a": 1}'
    with pytest.raises(IdempotencyMismatch):
        store.record_outcome(_write("arrived", {None}, key="k1", body='{"a": 2}'))
    assert len(store.list_outcomes(DAY, "v1")) == 1 and len(store.list_events()) == 1


def test_two_concurrent_arrivals_record_one(backend):
    barrier = threading.Barrier(4, timeout=30)
    results: list[object] = []

    def arrive() -> None:
        mine = backend()
        barrier.wait()
        try:
            results.append(mine.record_outcome(_write("arrived", {None})))
        except TransitionRefused as exc:
            results.append(exc)

    pool = [threading.Thread(target=arrive) for _ in range(4)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert sum(1 for r in results if not isinstance(r, TransitionRefused)) == 1
    assert len(backend().list_outcomes(DAY, "v1")) == 1


# --------------------------------------------------------------------------- #
# Backend specifics
# --------------------------------------------------------------------------- #
def test_processes_opening_a_new_sqlite_file_at_once_all_succeed(tmp_path):
    barrier, errors = threading.Barrier(8, timeout=30), []

    def open_store() -> None:
        barrier.wait()
        try:
            SQLiteStore.in_dir(tmp_path).save_job(Job(id=threading.current_thread().name, date=DAY))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    pool = [threading.Thread(target=open_store) for _ in range(8)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert errors == [] and len(SQLiteStore.in_dir(tmp_path).active_jobs()) == 8


def test_the_sqlite_database_is_in_wal_mode(tmp_path):
    store = SQLiteStore.in_dir(tmp_path)
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_an_older_sqlite_file_gets_the_new_job_columns(tmp_path):
    path = tmp_path / "doorstep.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE jobs (id TEXT PRIMARY KEY, date TEXT NOT NULL, status TEXT NOT NULL, stage TEXT, "
            "fraction REAL NOT NULL DEFAULT 0, error TEXT, version INTEGER, visits INTEGER NOT NULL DEFAULT 0, "
            "agents INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)"
        )
        conn.execute("INSERT INTO jobs (id, date, status, created_at, updated_at) VALUES ('old', ?, 'succeeded', 'x', 'x')",
                     (DAY,))
    store = SQLiteStore(path)
    old = store.get_job("old")
    assert old is not None and (old.kind, old.runner, old.owner) == ("plan", "thread", None)
    assert old.error_code is None
    failed = store.update_job("old", status="failed", error="x", error_code="solver_crashed")
    assert failed is not None and store.get_job("old").error_code == "solver_crashed"


def test_make_store_picks_the_backend(tmp_path, redis_prefix):
    with pytest.raises(ValueError, match="STORE"):
        make_store({"STORE": "postgres", "DATA_DIR": str(tmp_path)})
    with pytest.raises(ValueError, match="REDIS_URL"):
        make_store({"STORE": "redis", "DATA_DIR": str(tmp_path)})
    assert isinstance(make_store({"DATA_DIR": str(tmp_path)}), SQLiteStore)
    chosen = make_store({"DATA_DIR": str(tmp_path), "REDIS_URL": REDIS_URL, "REDIS_PREFIX": redis_prefix})
    assert isinstance(chosen, RedisStore) and chosen.prefix == redis_prefix


def test_the_app_keeps_its_database_in_the_configured_data_dir(tmp_path, monkeypatch):
    from app import create_app

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DOORSTEP_REDIS_URL", raising=False)
    app = create_app({"TRAVEL": "straight"})  # default DATA_DIR: [service] data_dir, relative to cwd
    try:
        assert (tmp_path / "var" / "doorstep.sqlite3").is_file()
        assert app.extensions["doorstep"].store.path == tmp_path / "var" / "doorstep.sqlite3"
    finally:
        app.extensions["doorstep"].close()


# --------------------------------------------------------------------------- #
# Token lists, counters, webhook outbox
# --------------------------------------------------------------------------- #
def test_tokens_are_listed_found_by_id_and_touched(store, backend):
    from app.store.base import token_id_of

    a = TokenRecord(token_hash="ab" * 32, role="agent", agent_id="crew-a", member="张伟",
                    created_at="2026-01-01T00:00:00.000Z", expires_at="2027-01-01T00:00:00.000Z")
    b = TokenRecord(token_hash="cd" * 32, role="system", created_at="2026-01-02T00:00:00.000Z")
    store.save_token(b)
    store.save_token(a)
    assert store.list_tokens() == [a, b]  # oldest first
    assert backend().find_token(token_id_of("ab" * 32)) == a
    assert store.find_token("tok_" + "ef" * 6) is None
    store.touch_token("ab" * 32, "2026-06-01T00:00:00.000Z")
    assert store.get_token("ab" * 32).last_used_at == "2026-06-01T00:00:00.000Z"
    assert store.delete_token("ab" * 32)
    store.touch_token("ab" * 32, "2026-06-02T00:00:00.000Z")  # revoked meanwhile: not brought back
    assert store.get_token("ab" * 32) is None and store.list_tokens() == [b]


def test_fixed_window_counters_are_shared(store, backend):
    assert store.count_hit("k", 60, add=0)[0] == 0
    assert store.count_hit("k", 60)[0] == 1
    count, left = backend().count_hit("k", 60, add=2)  # another process
    assert count == 3 and 0 < left <= 60
    assert store.count_hit("other", 60, add=0)[0] == 0
    record, hits, _ = store.get_token_and_count("none", "k", 60)
    assert record is None and hits == 3


def test_outbox_fan_out_is_a_compare_and_set_and_rows_are_unique(store, backend):
    from app.store import Delivery

    row = Delivery(id="dlv_1", endpoint="default", event_id="e1", event_type="t", body="{}", next_attempt_at=0.0)
    assert store.outbox_cursor("default") is None
    assert store.advance_outbox("default", None, "", [])
    assert not backend().advance_outbox("default", None, "5", [row])  # someone else set it up: refused
    assert store.advance_outbox("default", "", "5", [row])
    assert not store.advance_outbox("default", "", "6", [row])  # stale cursor
    assert store.advance_outbox("default", "5", "6", [row])  # the same id again: one row
    assert [d.id for d in store.list_deliveries()] == ["dlv_1"] and store.outbox_cursor("default") == "6"
    (claimed,) = store.claim_deliveries(10.0, 30.0, "lease-a")
    assert claimed.lease == "lease-a" and claimed.next_attempt_at == 40.0
    assert backend().claim_deliveries(39.0, 30.0, "lease-b") == []
    assert not store.finish_attempt(claimed, "lease-b")
    done = dataclasses.replace(claimed, status="dead", attempts=1, last_status=500, history=({"at": "x"},))
    assert store.finish_attempt(done, "lease-a")
    got = store.get_delivery("dlv_1")
    assert (got.status, got.attempts, got.last_status, got.lease, got.history) == ("dead", 1, 500, None,
                                                                                  ({"at": "x"},))
    assert store.claim_deliveries(1e12, 30.0, "lease-c") == []  # dead rows are not due
    assert store.retry_delivery("dlv_1", 50.0).status == "pending"
    assert store.retry_delivery("dlv_1", 50.0) is None  # not dead any more
    assert [d.id for d in store.claim_deliveries(50.0, 30.0, "lease-d")] == ["dlv_1"]
