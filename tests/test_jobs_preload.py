"""The job forkserver's preload (:mod:`app.jobs.preload`), run in a forked child of the test
process (its heap unfrozen first), as the forkserver runs it after its own imports."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys

from app.jobs import preload
from tests.conftest import ROOT


def _preload_in_a_child() -> dict[str, object]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe and never returns
        try:
            gc.unfreeze()  # the test process froze its own heap (tests/conftest.py)
            before = gc.get_freeze_count()
            missing = preload.preload()
            result = {"before": before, "frozen": gc.get_freeze_count(), "missing": missing,
                      "loaded": [m for m in preload.MODULES if m in sys.modules],
                      "pb2": "ortools.constraint_solver.routing_parameters_pb2" in sys.modules}
            os.write(write, json.dumps(result).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return json.loads(data)  # type: ignore[no-any-return]


def test_preload_imports_what_jobs_import_and_freezes_the_heap():
    result = _preload_in_a_child()
    assert result["before"] == 0
    assert result["frozen"] > 10_000  # every object of the server's heap, out of the collector's view
    assert result["missing"] == []  # PyVRP is installed with the tests: nothing is left for a job to import
    assert sorted(result["loaded"]) == sorted(preload.MODULES)  # type: ignore[arg-type]
    assert result["pb2"]  # OR-Tools' search-parameter messages are built


def test_a_job_process_takes_the_travel_its_server_preloaded_only_under_the_same_settings(monkeypatch):
    from app.jobs.travel import job_travel, preload_travel, worker_travel

    assert preload_travel("straight") >= 0
    assert job_travel("straight") is worker_travel("straight")  # inherited, not built again
    monkeypatch.setenv("DOORSTEP_INDEX_DIR", "/elsewhere")  # the job was submitted under other settings
    assert job_travel("straight") is not worker_travel("straight")
    assert job_travel("tests.faults:pausing") is not worker_travel("tests.faults:pausing")  # never preloaded


#: A service's first job on the road network, in a fresh interpreter (its forkserver is its own).
_NETWORK_JOB = """
import json, logging
from pathlib import Path
from app.events import Webhook
from app.jobs import ProcessJobRunner, TravelProvider
from app.jobs.limits import JobLimits
from app.store.sqlite import SQLiteStore
from solver.demo import generate_day


class Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append([record.processName, record.getMessage()])


def main(folder):
    records = Records()
    logging.getLogger("doorstep").addHandler(records)
    logging.getLogger("doorstep").setLevel(logging.INFO)
    store = SQLiteStore(Path(folder) / "jobs.sqlite3")
    runner = ProcessJobRunner(store, TravelProvider("network"), Webhook(None), workers=1,
                              limits=JobLimits.from_config().replace(poll_s=0.01))
    day = generate_day(seed=1, visits=5, crews=1)
    day = day.model_copy(update={"options": day.options.model_copy(update={"time_limit_s": 20, "max_iterations": 5})})
    job = runner.submit(day)
    while job.id not in runner.reports:
        runner._cond.acquire(); runner._cond.wait(0.05); runner._cond.release()
    final = store.get_job(job.id)
    plan = json.loads(store.get_plan(day.date.isoformat()).plan_json)
    runner.shutdown()
    print(json.dumps({"status": final.status, "engine": plan["solver"]["matrix_engine"],
                      "served": len([s for r in plan["routes"] for s in r["stops"]]), "records": records.lines}))


if __name__ == "__main__":
    import sys
    main(sys.argv[1])
"""


def test_the_first_network_job_of_a_service_runs_on_the_network_its_forkserver_preloaded(tmp_path, warm_map):
    script = tmp_path / "network_job.py"
    script.write_text(_NETWORK_JOB)
    out = subprocess.run([sys.executable, str(script), str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                         timeout=300, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["status"] == "succeeded" and result["served"] > 0
    assert result["engine"] == "ch"  # priced on the road network's hierarchies
    from_the_job = [message for process, message in result["records"] if process == "job process"]
    assert from_the_job  # the job process's records reach the service's log
    assert not [m for m in from_the_job if m.startswith("travel model")]  # it built no travel model of its own
