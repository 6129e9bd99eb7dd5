"""Jobs: the in-process runner's recovery on startup, and RQ workers for real
(a `doorstep worker` process on the test Redis), including workers killed with
SIGKILL in the middle of a solve."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.jobs.owner import owner_alive
from app.store import Job
from tests.rqworkers import drop_queue, stop_workers
from tests.rqworkers import start_worker as launch_worker

DAY = "2026-12-01"
ROOT = Path(__file__).resolve().parent.parent


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_embedded_startup_fails_jobs_left_by_a_dead_process(make_app, payload):
    from app.jobs import process_owner

    app = make_app()
    store = app.extensions["doorstep"].store
    dead = process_owner(_dead_pid()).rsplit(":", 1)[0] + ":"  # host:pid: of a process that ended
    store.save_job(Job(id="left-running", date=DAY, status="running", stage="solving", owner=dead))
    store.save_job(Job(id="left-queued", date=DAY, status="queued", owner=dead))
    store.save_job(Job(id="mine", date=DAY, status="queued", owner=process_owner()))  # this process: alive
    app.extensions["doorstep"].close()

    restarted = make_app()  # a new web process on the same data
    client = restarted.test_client()
    for job_id in ("left-running", "left-queued"):
        job = client.get(f"/v1/jobs/{job_id}").get_json()
        assert job["status"] == "failed" and "ended" in job["error"]
    assert client.get("/v1/jobs/mine").get_json()["status"] == "queued"


# --------------------------------------------------------------------------- #
# RQ
# --------------------------------------------------------------------------- #
@pytest.fixture
def rq_app(make_app):
    return make_app(redis=True, JOBS="rq", HEARTBEAT_TIMEOUT_S=4)


@pytest.fixture
def start_worker(rq_app, tmp_path):
    """Start `doorstep worker` processes on the app's queue; stopped after the test."""
    procs: list[subprocess.Popen] = []
    cfg = rq_app.config

    def start() -> tuple[subprocess.Popen, Path]:
        log = tmp_path / f"worker-{len(procs)}.log"
        proc = launch_worker(cfg, log, heartbeat_timeout_s=4)
        procs.append(proc)
        return proc, log

    yield start
    stop_workers(procs)
    drop_queue(cfg["RQ_QUEUE"])


def _poll(client, job_id: str, until, timeout_s: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        job = client.get(f"/v1/jobs/{job_id}").get_json()
        if until(job) or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def _solving(client, body) -> dict:
    response = client.post("/v1/plans", json=body)
    assert response.status_code == 202
    job = _poll(client, response.get_json()["job_id"], lambda j: j["progress"]["stage"] == "solving" or j["status"]
                in ("succeeded", "failed"))
    assert job["status"] == "running" and job["progress"]["stage"] == "solving", job
    return job


def test_rq_workers_plan_and_report_progress(rq_app, start_worker, payload):
    start_worker()
    start_worker()  # several may run
    client = rq_app.test_client()
    response = client.post("/v1/plans?wait=60", json=payload())
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["version"] == 1 and len(body["plan"]["routes"]) == 2
    job = client.get(f"/v1/jobs/{body['job_id']}").get_json()
    assert (job["status"], job["runner"], job["progress"]["stage"]) == ("succeeded", "rq", "done")
    assert job["progress"]["best_cost"] is not None and job["heartbeat_at"] is not None

    slow = payload()
    slow["options"].update(time_limit_s=4, max_iterations=None)  # searches its whole time limit
    running = _solving(client, slow)
    later = _poll(client, running["job_id"], lambda j: j["progress"]["fraction"] > 0.2 or j["status"] != "running")
    assert later["status"] == "running" and 0.2 < later["progress"]["fraction"] < 1  # share of the time limit
    done = _poll(client, running["job_id"], lambda j: j["status"] != "running")
    assert done["status"] == "succeeded" and done["version"] == 2


def test_a_worker_killed_mid_solve_leaves_the_job_failed_and_the_plan_current(rq_app, start_worker, payload):
    worker, log = start_worker()
    client = rq_app.test_client()
    first = client.post("/v1/plans?wait=60", json=payload())
    assert first.status_code == 201, first.get_json()

    slow = payload()
    slow["options"].update(time_limit_s=120, max_iterations=None)  # would run for two minutes
    job = _solving(client, slow)
    horse = int(rq_app.extensions["doorstep"].store.get_job(job["job_id"]).owner.split(":")[1])
    assert horse != worker.pid  # RQ forks a work horse per job
    os.kill(worker.pid, signal.SIGKILL)  # the whole worker dies: machine lost
    os.kill(horse, signal.SIGKILL)
    worker.wait()

    started = time.monotonic()
    failed = _poll(client, job["job_id"], lambda j: j["status"] != "running", timeout_s=30)
    assert failed["status"] == "failed" and "worker lost" in failed["error"], failed
    assert time.monotonic() - started < 15  # HEARTBEAT_TIMEOUT_S is 4
    current = client.get(f"/v1/plans/{DAY}").get_json()
    assert current["version"] == 1 and current["plan"] == first.get_json()["plan"]
    # the worker logged no borrower data
    text = log.read_text(encoding="utf-8", errors="replace")
    assert "Borrower 1" not in text and "13800000001" not in text


def test_a_work_horse_dies_with_its_worker(rq_app, start_worker, payload):
    # the whole worker is lost: its job is failed by the reaper, so the horse must not solve on
    worker, _log = start_worker()
    client = rq_app.test_client()
    slow = payload()
    slow["options"].update(time_limit_s=120, max_iterations=None)
    job = _solving(client, slow)
    horse = int(rq_app.extensions["doorstep"].store.get_job(job["job_id"]).owner.split(":")[1])
    os.kill(worker.pid, signal.SIGKILL)  # the worker only
    worker.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and owner_alive(f"{socket.gethostname()}:{horse}:"):
        time.sleep(0.1)
    assert not owner_alive(f"{socket.gethostname()}:{horse}:"), "the work horse outlived its worker"
    failed = _poll(client, job["job_id"], lambda j: j["status"] != "running", timeout_s=30)
    assert failed["status"] == "failed" and failed["error_code"] == "worker_lost", failed


def test_a_killed_work_horse_fails_the_job_at_once_and_the_worker_goes_on(rq_app, start_worker, payload):
    worker, _log = start_worker()
    client = rq_app.test_client()
    slow = payload()
    slow["options"].update(time_limit_s=120, max_iterations=None)
    job = _solving(client, slow)
    horse = int(rq_app.extensions["doorstep"].store.get_job(job["job_id"]).owner.split(":")[1])
    os.kill(horse, signal.SIGKILL)  # e.g. the OOM killer
    failed = _poll(client, job["job_id"], lambda j: j["status"] != "running", timeout_s=20)
    assert failed["status"] == "failed", failed
    # the worker's parent reports it (or, if a reader comes first, the reaper sees the horse gone)
    assert "killed by signal 9" in failed["error"] or "work horse process ended" in failed["error"], failed
    assert client.get(f"/v1/plans/{DAY}").status_code == 404  # nothing published
    assert worker.poll() is None
    again = client.post("/v1/plans?wait=60", json=payload())  # the same worker takes the next job
    assert again.status_code == 201, again.get_json()


def test_a_preloading_worker_warms_its_network_before_taking_jobs(monkeypatch):
    """`doorstep worker` (preload on) loads each mode's segment index and hierarchy in its own process
    before it takes jobs, so that the work horses it forks inherit them."""
    import uuid

    from app.jobs import rq as rq_module
    from app.jobs import travel as travel_module
    from app.jobs.travel import TravelProvider
    from solver.geo.network import RoadNetwork
    from solver.geo.synthetic import synthetic_city
    from tests.conftest import REDIS_URL

    net = RoadNetwork(synthetic_city(10, seed=4).graph, engine="ch")
    provider = TravelProvider(net)
    asked: list[str] = []
    monkeypatch.setattr(travel_module, "worker_travel", lambda name: asked.append(name) or provider)
    monkeypatch.setattr(travel_module, "_PRELOADED", {})  # what preload_travel records goes with the test
    queue = f"doorstep-test-warm-{uuid.uuid4().hex[:8]}"
    try:
        rq_module.run_worker(REDIS_URL, queues=[queue], prefix=f"{queue}:", preload=True, burst=True)
    finally:
        drop_queue(queue)
    assert asked == ["network"] and set(travel_module._PRELOADED) == {"network"}  # through preload_travel
    for mode in ("drive", "ebike", "walk"):
        assert {"seg_tree", "ch"} <= set(net.mode_graph(mode).lazy)
