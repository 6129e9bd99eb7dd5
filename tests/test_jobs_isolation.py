"""Jobs never run in the web process: real job processes (forkserver children,
RQ work horses) under a memory cap, a wall-clock cap and a lower CPU
priority; real faults in them (a native abort, a segmentation fault, memory
past the cap, a search past the wall clock; tests/faults.py) fail that job
only, with an error code; requests bigger than the limits are refused at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.rqworkers import drop_queue, start_worker, stop_workers

DAY = "2026-12-01"
ROOT = Path(__file__).resolve().parent.parent
WAIT = 60


def _poll(client, job_id: str, until, timeout_s: float = WAIT) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        job = client.get(f"/v1/jobs/{job_id}").get_json()
        if until(job) or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


def _finished(job: dict) -> bool:
    return job["status"] in ("succeeded", "failed")


def _proc_field(pid: int, name: str) -> str:
    with open(f"/proc/{pid}/{name}", encoding="ascii") as f:
        return f.read()


def test_a_plan_runs_in_a_capped_child_process_and_its_progress_moves(make_app, payload):
    app = make_app()
    client = app.test_client()
    body = payload()
    body["options"].update(time_limit_s=3, max_iterations=None)  # searches its whole time limit
    response = client.post("/v1/plans", json=body)
    assert response.status_code == 202
    job_id = response.get_json()["job_id"]
    store = app.extensions["doorstep"].store

    seen_pid = None
    fractions: list[float] = []
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:  # poll the store, as a client polls the job
        job = store.get_job(job_id)
        if job.status == "running" and job.owner and seen_pid is None:
            seen_pid = int(job.owner.split(":")[1])
            try:  # the job process: a lower CPU priority and the address-space cap
                nice = int(_proc_field(seen_pid, "stat").rsplit(")", 1)[1].split()[16])
                limits = _proc_field(seen_pid, "limits")
            except OSError:
                seen_pid = -1  # ended already
            else:
                assert nice >= os.nice(0) + 10
                cap = next(line for line in limits.splitlines() if line.startswith("Max address space"))
                assert str(app.extensions["doorstep"].jobs.limits.memory_mb * 1024 * 1024) in cap
        if job.status == "running" and job.stage == "solving":
            fractions.append(job.fraction)
        if job.finished:
            break
        time.sleep(0.05)
    assert job.status == "succeeded" and job.version == 1 and job.error_code is None, job
    assert seen_pid not in (None, os.getpid())  # solved in another process
    assert job.runner == "process"
    assert any(0 < f < 1 for f in fractions), fractions  # progress moved while solving
    assert fractions == sorted(fractions)
    assert "network" not in type(app.extensions["doorstep"].travel.get()).__name__.lower()
    runner = app.extensions["doorstep"].jobs
    while job_id not in runner.reports and time.monotonic() < deadline:  # the supervisor's record of its end
        time.sleep(0.05)
    report = runner.reports[job_id]
    assert report.exitcode == 0 and report.peak_rss_kb > 0
    assert 0 < report.cpu_s <= (os.cpu_count() or 1) * report.seconds + 0.5  # the child's own CPU time, sent at its end


@pytest.mark.parametrize(
    ("travel", "code", "says"),
    [
        ("aborting", "solver_crashed", "SIGABRT"),
        ("segfaulting", "solver_crashed", "SIGSEGV"),
        ("memory_hog", "memory_limit", "memory cap"),
        ("sleeping", "time_limit", "wall-clock cap"),
    ],
)
def test_a_fault_in_a_job_process_fails_that_job_only(make_app, payload, travel, code, says):
    good = make_app()
    client = good.test_client()
    first = client.post(f"/v1/plans?wait={WAIT}", json=payload())
    assert first.status_code == 201, first.get_json()
    # another job on the same store, running meanwhile: its process waits 3 s before it solves (tests/faults.py)
    patient = make_app(TRAVEL="tests.faults:pausing")
    other = patient.test_client().post("/v1/plans", json=payload()).get_json()["job_id"]

    # the same data, served by an app whose job processes fail as `travel` says (tests/faults.py)
    faulty = make_app(TRAVEL=f"tests.faults:{travel}", JOB_WORKERS=2,
                      JOB_LIMITS={"memory_mb": 1024, "wall_clock_s": 4 if code == "time_limit" else 40})
    bad = faulty.test_client()
    response = bad.post(f"/v1/plans?wait={WAIT}", json=payload())
    assert response.status_code == 200, response.get_json()  # finished, without a plan
    failed = response.get_json()
    assert (failed["status"], failed["error_code"]) == ("failed", code), failed
    assert says in failed["error"] and "Traceback" not in failed["error"] and "Borrower" not in failed["error"]
    assert failed["version"] is None

    # the web app goes on answering, the other job publishes, the failed one published nothing
    assert bad.get(f"/v1/plans/{DAY}").get_json()["version"] in (1, 2)
    done = _poll(client, other, _finished)
    assert done["status"] == "succeeded" and done["version"] == 2, done
    versions = client.get(f"/v1/plans/{DAY}/versions").get_json()["versions"]
    assert [(v["version"], v["job_id"]) for v in versions] == [(1, first.get_json()["job_id"]), (2, other)]
    runner = faulty.extensions["doorstep"].jobs
    deadline = time.monotonic() + 10
    while runner.running_pids() and time.monotonic() < deadline:  # the child may record, then end
        time.sleep(0.05)
    assert runner.running_pids() == {}
    print(f"{travel}: job process ended after {runner.reports[failed['job_id']].seconds:.1f} s")


def test_jobs_past_job_workers_wait_queued_and_closing_the_app_stops_its_job_processes(make_app, payload):
    app = make_app(TRAVEL="tests.faults:sleeping", JOB_WORKERS=1)
    client = app.test_client()
    job_id = client.post("/v1/plans", json=payload()).get_json()["job_id"]
    queued_id = client.post("/v1/plans", json=payload()).get_json()["job_id"]
    running = _poll(client, job_id, lambda j: j["status"] == "running" or _finished(j))
    assert running["status"] == "running"
    time.sleep(0.5)
    assert client.get(f"/v1/jobs/{queued_id}").get_json()["status"] == "queued"  # one job at a time
    pid = app.extensions["doorstep"].jobs.running_pids()[job_id]
    assert pid != os.getpid()
    app.extensions["doorstep"].close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    store = app.extensions["doorstep"].store
    for ended in (store.get_job(job_id), store.get_job(queued_id)):
        assert (ended.status, ended.error_code) == ("failed", "shutdown")


def test_the_web_process_never_loads_the_road_network_for_jobs(make_app, payload):
    app = make_app(TRAVEL=None)  # the bundled road network: loaded by the job process
    response = app.test_client().post(f"/v1/plans?wait={WAIT}", json=payload())
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["plan"]["summary"]["visits_planned"] == 6
    provider = app.extensions["doorstep"].travel
    assert provider.name == "network" and provider._travel is None  # not loaded here


def test_a_day_bigger_than_the_limits_is_refused_at_once_with_413(make_app, payload):
    app = make_app(JOB_LIMITS={"max_visits": 5, "max_locations": 9, "max_time_limit_s": 30})
    client = app.test_client()
    store = app.extensions["doorstep"].store

    response = client.post("/v1/plans?wait=5", json=payload())  # 6 visits
    assert response.status_code == 413
    assert response.get_json()["error"] == "too_large"
    assert response.get_json()["limit"] == {"field": "visits", "max": 5, "got": 6}

    body = payload()
    body["visits"] = body["visits"][:5]  # 5 addresses + 2 crews × start and end = 9 locations: fits
    body["visits"][0]["addresses"].append(body["visits"][1]["addresses"][0])  # 10
    response = client.post("/v1/plans", json=body)
    assert response.status_code == 413 and response.get_json()["limit"] == {"field": "locations", "max": 9, "got": 10}

    body = payload()
    body["visits"] = body["visits"][:5]
    body["options"]["time_limit_s"] = 600
    response = client.post("/v1/plans", json=body)  # a bound of the service, not a size: a validation error
    assert response.status_code == 422
    assert response.get_json()["errors"] == [{"field": "options.time_limit_s", "message": "at most 30 seconds on this service"}]
    assert store.active_jobs() == []  # nothing was queued

    # re-planning with added visits counts them too
    roomy = make_app()
    published = roomy.test_client().post(f"/v1/plans?wait={WAIT}", json=payload())
    assert published.status_code == 201, published.get_json()
    limited = make_app(JOB_LIMITS={"max_visits": 6}).test_client()
    extra = payload()["visits"][0] | {"id": "urgent-1"}
    response = limited.post(f"/v1/plans/{DAY}/reoptimize", json={"now": f"{DAY}T10:00:00+08:00", "added": [extra]})
    assert response.status_code == 413 and response.get_json()["limit"] == {"field": "visits", "max": 6, "got": 7}


# --------------------------------------------------------------------------- #
# RQ work horses
# --------------------------------------------------------------------------- #
def test_rq_work_horse_faults_fail_the_job_with_their_code(make_app, payload, tmp_path):
    apps = {
        travel: make_app(redis=True, JOBS="rq", HEARTBEAT_TIMEOUT_S=10, TRAVEL=f"tests.faults:{travel}",
                         JOB_LIMITS={"wall_clock_s": 3 if travel == "sleeping" else 60})  # a busy machine is slow
        for travel in ("aborting", "memory_hog", "sleeping")
    }
    cfg = apps["aborting"].config
    log = tmp_path / "worker.log"
    env = {**os.environ, "DOORSTEP_JOBS_MEMORY_MB": "1024"}  # the worker machine's cap
    worker = start_worker(cfg, log, env=env)
    try:
        for travel, code, says in (("aborting", "solver_crashed", "SIGABRT"),
                                   ("memory_hog", "memory_limit", "memory cap"),
                                   ("sleeping", "time_limit", "wall-clock cap")):
            client = apps[travel].test_client()
            job_id = client.post("/v1/plans", json=payload()).get_json()["job_id"]
            job = _poll(client, job_id, _finished, timeout_s=90)
            assert (job["status"], job["error_code"]) == ("failed", code), job
            assert says in job["error"] and "Borrower" not in job["error"], job
            assert worker.poll() is None  # the worker goes on
        assert apps["aborting"].test_client().get(f"/v1/plans/{DAY}").status_code == 404  # nothing published
    finally:
        stop_workers([worker])
        drop_queue(cfg["RQ_QUEUE"])
    text = log.read_text(encoding="utf-8", errors="replace")
    assert "Borrower 1" not in text and "13800000001" not in text


def _dead(pid: int) -> bool:
    try:
        state = _proc_field(pid, "stat").rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def test_job_processes_die_with_a_killed_web_process(tmp_path, payload):
    import json

    script = tmp_path / "web.py"
    script.write_text(
        "import json, sys, time\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from app import create_app\n"
        "if __name__ == '__main__':  # job processes import the main module, as multiprocessing does\n"
        f"    app = create_app({{'DATA_DIR': {str(tmp_path / 'data')!r}, 'TRAVEL': 'tests.faults:sleeping', "
        "'AUTH': False})\n"
        "    job = app.test_client().post('/v1/plans', json=json.loads(sys.argv[1])).get_json()['job_id']\n"
        "    while job not in app.extensions['doorstep'].jobs.running_pids():\n"
        "        time.sleep(0.05)\n"
        "    print(app.extensions['doorstep'].jobs.running_pids()[job], flush=True)\n"
        "    time.sleep(600)\n",
        encoding="utf-8",
    )
    web = subprocess.Popen([sys.executable, str(script), json.dumps(payload())], cwd=ROOT, stdout=subprocess.PIPE)
    try:
        child = int(web.stdout.readline())
        assert not _dead(child)
        os.kill(web.pid, signal.SIGKILL)  # the web server dies hard: its job processes must not live on
        web.wait()
        deadline = time.monotonic() + 15
        while not _dead(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _dead(child)
    finally:
        if web.poll() is None:
            web.kill()
            web.wait()
