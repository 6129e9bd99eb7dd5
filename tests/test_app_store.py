"""The SQLite store on a real file: jobs, plan versions, atomic publishing."""

from __future__ import annotations

import json
import sqlite3
import threading

import pytest

from app.store import Job, NotFound, SQLiteStore, make_store


@pytest.fixture
def store(tmp_path):
    return SQLiteStore.in_dir(tmp_path)


def test_job_round_trip(store, tmp_path):
    job = Job(id="j1", date="2026-12-01", visits=6, agents=2)
    store.save_job(job)
    assert store.get_job("j1") == job
    assert store.get_job("nope") is None

    updated = store.update_job("j1", status="running", stage="matrix", fraction=0.5)
    assert (updated.status, updated.stage, updated.fraction) == ("running", "matrix", 0.5)
    assert updated.created_at == job.created_at and updated.updated_at >= job.updated_at
    store.update_job("j1", status="succeeded", version=3)

    again = SQLiteStore.in_dir(tmp_path).get_job("j1")  # another instance reads the same file
    assert again is not None and again.status == "succeeded" and again.version == 3 and again.finished

    with pytest.raises(NotFound):
        store.update_job("nope", status="failed")
    with pytest.raises(ValueError):
        store.update_job("j1", visits=99)
    with pytest.raises(ValueError):
        store.update_job("j1", status="exploded")


def test_plan_versions_round_trip(store):
    assert store.get_plan("2026-12-01") is None
    assert store.list_versions("2026-12-01") == []
    assert store.current_version("2026-12-01") is None

    v1 = store.publish_plan("2026-12-01", '{"plan": 1}', '{"problem": 1}', meta={"job_id": "a"})
    v2 = store.publish_plan("2026-12-01", '{"plan": 2}', '{"problem": 2}')
    other = store.publish_plan("2026-12-02", '{"plan": "x"}', '{"problem": "x"}')
    assert (v1, v2, other) == (1, 2, 1)

    current = store.get_plan("2026-12-01")
    assert current is not None and current.version == 2 and json.loads(current.plan_json) == {"plan": 2}
    first = store.get_plan("2026-12-01", 1)
    assert first is not None and first.meta == {"job_id": "a"} and first.plan_json == '{"plan": 1}'
    assert store.get_plan("2026-12-01", 3) is None
    assert [v.version for v in store.list_versions("2026-12-01")] == [1, 2]
    assert store.current_version("2026-12-01") == 2
    assert store.get_problem("2026-12-01", 1) == '{"problem": 1}'
    assert store.get_problem("2026-12-01", 9) is None


def test_the_database_is_in_wal_mode(store):
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_concurrent_publishes_get_strictly_increasing_versions(tmp_path):
    threads, per_thread = 4, 25
    barrier = threading.Barrier(threads)
    results: dict[int, list[int]] = {}
    errors: list[BaseException] = []

    def publish(worker: int) -> None:
        store = SQLiteStore.in_dir(tmp_path)  # its own instance, as another process would
        mine = []
        try:
            barrier.wait()
            for i in range(per_thread):
                mine.append(store.publish_plan("2026-12-01", json.dumps([worker, i]), "{}"))
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
    store = SQLiteStore.in_dir(tmp_path)
    stored = {v.version: json.loads(store.get_plan("2026-12-01", v.version).plan_json) for v in store.list_versions("2026-12-01")}
    # each version holds what its publisher wrote
    for worker, mine in results.items():
        assert [stored[v] for v in mine] == [[worker, i] for i in range(per_thread)]


def test_a_failed_publish_leaves_no_version(store, monkeypatch):
    store.publish_plan("2026-12-01", "{}", "{}")
    with pytest.raises(sqlite3.IntegrityError):
        store.publish_plan("2026-12-01", None, "{}")  # type: ignore[arg-type]  # NOT NULL
    assert [v.version for v in store.list_versions("2026-12-01")] == [1]
    assert store.publish_plan("2026-12-01", "{}", "{}") == 2


def test_unknown_backend_is_refused(tmp_path):
    with pytest.raises(ValueError, match="STORE"):
        make_store({"STORE": "postgres", "DATA_DIR": str(tmp_path)})


def test_the_app_keeps_its_database_in_the_configured_data_dir(tmp_path, monkeypatch):
    from app import create_app

    monkeypatch.chdir(tmp_path)
    app = create_app({"TRAVEL": object()})  # default DATA_DIR: [service] data_dir, relative to cwd
    try:
        assert (tmp_path / "var" / "doorstep.sqlite3").is_file()
        assert app.extensions["doorstep"].store.path == tmp_path / "var" / "doorstep.sqlite3"
    finally:
        app.extensions["doorstep"].close()
