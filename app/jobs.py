"""Planning jobs: validate → solve → check → publish, off the request thread.

In embedded mode an in-process :class:`JobRunner` (a thread pool) runs them;
a Redis/RQ runner can later enqueue :func:`run_plan_job` itself, which needs
only a store, a job id, the problem JSON and a travel model.

A job's status goes ``queued`` → ``running`` → ``succeeded`` | ``failed``, with
``progress`` ``{stage, fraction}`` along the way (the solver reports stages
"geocoding", "matrix" and "solving"; the job adds "validating", "checking" and
"publishing"). A failed job publishes nothing, so the date's previous plan
version stays current.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import threading
import time
import uuid
from collections.abc import Callable

import solver
from app.errors import describe_exception
from app.store.base import Job, Store
from solver.check import check_plan
from solver.model import Problem
from solver.travel import TravelModel

log = logging.getLogger("doorstep.jobs")

#: Longest error message kept on a job.
MAX_ERROR_CHARS = 2000


class TravelProvider:
    """The travel model jobs use: an injected one, or the bundled road network
    loaded once, on first use."""

    def __init__(self, travel: TravelModel | None = None) -> None:
        self._travel = travel
        self._lock = threading.Lock()

    def get(self) -> TravelModel:
        if self._travel is None:
            with self._lock:
                if self._travel is None:
                    from solver.geo.network import load_bundled_network

                    started = time.perf_counter()
                    self._travel = load_bundled_network()
                    log.info("bundled road network loaded in %.1f s", time.perf_counter() - started)
        return self._travel


class _Progress:
    """Writes progress to the store when the stage changes or the fraction moves
    by at least ``step`` (the solver may report often)."""

    def __init__(self, store: Store, job_id: str, step: float = 0.05) -> None:
        self.store, self.job_id, self.step = store, job_id, step
        self._stage: str | None = None
        self._fraction = 0.0
        self._lock = threading.Lock()

    def __call__(self, stage: str, fraction: float) -> None:
        fraction = min(1.0, max(0.0, float(fraction)))
        with self._lock:
            if stage == self._stage and fraction < 1.0 and abs(fraction - self._fraction) < self.step:
                return
            self._stage, self._fraction = stage, fraction
        try:
            self.store.update_job(self.job_id, stage=stage, fraction=round(fraction, 4))
        except Exception as exc:  # progress is best effort; never fail the solve for it
            log.warning("job %s: progress not saved: %s", self.job_id, type(exc).__name__)


def run_plan_job(store: Store, job_id: str, problem_json: str, get_travel: Callable[[], TravelModel]) -> int:
    """Run one job to the end and return the published version; on failure the
    error is recorded on the job and re-raised. ``get_travel`` returns the travel
    model (called in the worker, so a lazily loaded network loads there)."""
    progress = _Progress(store, job_id)
    started = time.perf_counter()
    try:
        store.update_job(job_id, status="running", stage="validating", fraction=0.0)
        problem = Problem.model_validate_json(problem_json)
        travel = get_travel()
        plan = solver.solve(problem, travel, progress=progress)
        progress("checking", 0.0)
        check_plan(problem, plan, travel).raise_if_invalid()  # never publish a plan that breaks a rule
        progress("publishing", 0.0)
        meta = {"job_id": job_id, "summary": plan.summary.model_dump(mode="json")}
        version = store.publish_plan(problem.date.isoformat(), plan.model_dump_json(), problem_json, meta=meta)
        store.update_job(job_id, status="succeeded", stage="done", fraction=1.0, version=version)
    except BaseException as exc:
        message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        log.error("job %s failed after %.1f s: %s", job_id, time.perf_counter() - started, describe_exception(exc))
        try:
            store.update_job(job_id, status="failed", error=message[:MAX_ERROR_CHARS])
        except Exception as store_exc:
            log.error("job %s: failure not recorded: %s", job_id, type(store_exc).__name__)
        raise
    log.info(
        "job %s succeeded: version %d of %s, %d/%d visits planned, %.1f s",
        job_id, version, problem.date, plan.summary.visits_planned, plan.summary.visits_total,
        time.perf_counter() - started,
    )
    return version


class JobRunner:
    """Runs planning jobs on a thread pool inside the web process."""

    def __init__(self, store: Store, travel: TravelProvider, workers: int = 1) -> None:
        self.store = store
        self.travel = travel
        self._pool = cf.ThreadPoolExecutor(max_workers=max(1, int(workers)), thread_name_prefix="doorstep-job")
        self._futures: dict[str, cf.Future[int]] = {}
        self._lock = threading.Lock()

    def submit(self, problem: Problem) -> Job:
        """Record a queued job for ``problem`` and start it."""
        job = Job(
            id=uuid.uuid4().hex,
            date=problem.date.isoformat(),
            visits=len(problem.visits),
            agents=len(problem.agents),
        )
        self.store.save_job(job)
        problem_json = problem.model_dump_json()
        future = self._pool.submit(self._run, job.id, problem_json)
        with self._lock:
            self._futures[job.id] = future
        future.add_done_callback(lambda _f, job_id=job.id: self._forget(job_id))
        log.info("job %s queued: %s, %d visits, %d agents", job.id, job.date, job.visits, job.agents)
        return job

    def _run(self, job_id: str, problem_json: str) -> int:
        return run_plan_job(self.store, job_id, problem_json, self.travel.get)

    def _forget(self, job_id: str) -> None:
        with self._lock:
            self._futures.pop(job_id, None)

    def wait(self, job_id: str, timeout_s: float, poll_s: float = 0.05) -> Job | None:
        """The job once finished, or as it stands after ``timeout_s`` seconds."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            future = self._futures.get(job_id)
        if future is not None:
            cf.wait([future], timeout=timeout_s)
        while True:  # the store has the last word (and covers jobs run elsewhere)
            job = self.store.get_job(job_id)
            remaining = deadline - time.monotonic()
            if job is None or job.finished or remaining <= 0:
                return job
            time.sleep(min(poll_s, remaining))

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=not wait)
