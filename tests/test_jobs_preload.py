"""The job forkserver's preload (:mod:`app.jobs.preload`), run in a forked child of the test
process (its heap unfrozen first), as the forkserver runs it after its own imports."""

from __future__ import annotations

import gc
import json
import os
import sys

from app.jobs import preload


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
