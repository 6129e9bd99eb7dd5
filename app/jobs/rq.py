"""Jobs on Redis: an RQ queue served by ``doorstep worker`` processes.

:class:`RQJobRunner` puts jobs on an RQ queue; any number of ``doorstep
worker`` processes (:class:`DoorstepWorker`, on any machine) run them. The
worker's parent process forks a *work horse* per job (so the parent is never
blocked by the solver), which caps its own address space and lowers its CPU
priority (:class:`app.jobs.limits.JobLimits` of the worker's machine) before it
runs :func:`app.jobs.run.run_job`. The parent writes a heartbeat on the job
every few seconds and estimates the solving progress. A job is never left
"running" by a dead worker:

- the work horse dies (native abort, segmentation fault, OOM, SIGKILL): the
  worker's parent sees it and fails the job at once (``solver_crashed``; a
  horse killed past its wall-clock cap: ``time_limit``);
- an allocation past the memory cap raises :class:`MemoryError` in the horse:
  the job fails with ``memory_limit``; RQ's timeout (the job's wall-clock cap)
  raises in the horse: ``time_limit``;
- the whole worker dies (machine lost, SIGKILL of both): the job's heartbeat
  goes stale, and the reaper (:meth:`JobRunner.reap`, run whenever a job is
  read and by every worker) fails it after ``HEARTBEAT_TIMEOUT_S``
  (``worker_lost``); RQ's own abandoned-job handling
  (``StartedJobRegistry.cleanup``) calls :func:`rq_on_failure` as well.

A job that was failed this way and whose orphaned work horse later finishes
publishes nothing: every step re-checks that the job is still ``running``.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from app.events import Webhook
from app.jobs.failure import (
    JOB_ERROR,
    MEMORY_LIMIT,
    TIME_LIMIT,
    WORKER_LOST,
    describe_wait_status,
)
from app.jobs.limits import JobLimits, apply_process_limits
from app.jobs.owner import beat
from app.jobs.run import MAX_ERROR_CHARS, JobEnv, run_job
from app.jobs.runner import JobRunner
from app.jobs.travel import TravelProvider, preload_travel, worker_travel
from app.store.base import ACTIVE, Job, Store
from solver.processes import die_with_parent

__all__ = ["DEFAULT_QUEUE", "RQJobRunner", "make_worker_class", "rq_connection", "rq_entry", "rq_on_failure",
           "run_worker"]

log = logging.getLogger("doorstep.jobs")

DEFAULT_QUEUE = "doorstep"


def rq_connection(url: str):  # type: ignore[no-untyped-def]
    """A Redis client as RQ wants it (bytes, not decoded)."""
    import redis

    return redis.Redis.from_url(url)


class RQJobRunner(JobRunner):
    """Puts planning jobs on an RQ queue for ``doorstep worker`` processes."""

    runner_name = "rq"

    def __init__(self, store: Store, travel: TravelProvider, webhook: Webhook, *, redis_url: str,
                 queue: str = DEFAULT_QUEUE, heartbeat_timeout_s: float = 30.0,
                 limits: JobLimits | None = None) -> None:
        from rq import Queue

        super().__init__(store, travel, webhook, heartbeat_timeout_s, limits)
        self.queue = Queue(queue, connection=rq_connection(redis_url))

    def _start(self, job: Job, spec: dict[str, Any]) -> None:
        from rq import Callback

        spec = {
            **spec,
            "job_id": job.id,
            "prefix": getattr(self.store, "prefix", None),
            "travel": self.travel.job_travel(),
            "webhook_url": self.webhook.url,
            "webhook_timeout_s": self.webhook.timeout_s,
        }
        wall = self.limits.wall_clock_for(job.time_limit_s)
        self.queue.enqueue(
            "app.jobs.rq.rq_entry",
            spec,
            job_id=job.id,
            job_timeout=max(1, round(wall)),  # the job's wall-clock cap: RQ stops the work horse past it
            result_ttl=3600,
            failure_ttl=7 * 86400,
            on_failure=Callback(rq_on_failure),
            meta={"doorstep_job": job.id, "prefix": spec["prefix"]},
            description=f"doorstep {job.kind} job {job.id} for {job.date}",  # RQ logs it: no problem data
        )


def _store_for(connection: Any, prefix: str | None) -> Store:
    """The Redis store on the worker's own connection, under the job's prefix."""
    import redis

    from app.store.redis import DEFAULT_PREFIX, RedisStore

    pool = connection.connection_pool
    kwargs = {**pool.connection_kwargs, "decode_responses": True}
    client = redis.Redis(connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **kwargs))
    return RedisStore("", prefix=prefix or DEFAULT_PREFIX, client=client)


def rq_entry(spec: dict[str, Any]) -> int | None:
    """The RQ job function (runs in a worker's work horse)."""
    from rq import get_current_job

    current = get_current_job()
    store = _store_for(current.connection, spec.get("prefix"))  # type: ignore[union-attr]
    env = JobEnv(
        store=store,
        travel=worker_travel(spec.get("travel", "network")).get,
        webhook=Webhook(spec.get("webhook_url"), spec.get("webhook_timeout_s", 2.0)),
        background_webhook=False,  # the horse exits after the job: send before that
    )
    try:
        return run_job(env, spec["job_id"], spec)
    finally:
        store.close()


def _fail_rq_job(rq_job: Any, connection: Any, reason: str, code: str) -> None:
    meta = rq_job.meta or {}
    if meta.get("doorstep_part_of"):  # a part of a split day: its parent job solves it again or reports it
        return
    job_id = meta.get("doorstep_job") or rq_job.id
    store = _store_for(connection, meta.get("prefix"))
    try:
        if store.update_job(job_id, if_status=tuple(ACTIVE), status="failed", error=reason[:MAX_ERROR_CHARS],
                            error_code=code):
            log.warning("job %s failed: %s", job_id, code)
    except Exception as exc:  # noqa: BLE001 - the job record may be gone
        log.error("job %s: failure not recorded: %s", job_id, type(exc).__name__)
    finally:
        store.close()


def rq_on_failure(job: Any, connection: Any, type_: Any, value: Any, traceback: Any) -> None:
    """RQ's failure callback: exceptions in the job (already recorded by
    :func:`run_job`) and abandoned jobs found by RQ's registry cleanup."""
    name = getattr(type_, "__name__", str(type_))
    if name == "JobLost":
        return
    if name == "AbandonedJobError":
        _fail_rq_job(job, connection, f"{name}: the worker running the job stopped", WORKER_LOST)
    elif name == "JobTimeoutException":
        _fail_rq_job(job, connection, "the job ran past its wall-clock cap", TIME_LIMIT)
    elif isinstance(value, MemoryError):
        _fail_rq_job(job, connection, "the job needed more memory than the job memory cap", MEMORY_LIMIT)
    else:
        _fail_rq_job(job, connection, f"{name}: {value}" if str(value) else name, JOB_ERROR)


def make_worker_class() -> Any:
    """:class:`DoorstepWorker` (built lazily so importing app.jobs needs no rq)."""
    from rq import Worker

    class DoorstepWorker(Worker):
        """An RQ worker that beats on the running Doorstep job, estimates the
        solving progress, fails the job when its work horse is killed, and reaps
        jobs of dead workers."""

        def maintain_heartbeats(self, job):  # type: ignore[no-untyped-def]
            super().maintain_heartbeats(job)
            meta = job.meta or {}
            job_id = meta.get("doorstep_job") or job.id
            store = _store_for(self.connection, meta.get("prefix"))
            try:
                beat(store, job_id)
            except Exception as exc:  # noqa: BLE001
                self.log.warning("doorstep heartbeat of job %s not saved: %s", job_id, type(exc).__name__)
            finally:
                store.close()

        def main_work_horse(self, job, queue):  # type: ignore[no-untyped-def]
            # in the forked work horse, before the job: it dies with its worker (a lost worker's
            # job is failed by the reaper, so solving on is wasted), the memory cap, a lower priority
            die_with_parent()
            limits: JobLimits = getattr(self, "doorstep_limits", None) or JobLimits.from_config()
            apply_process_limits(limits.memory_mb, limits.nice)
            super().main_work_horse(job, queue)

        def handle_work_horse_killed(self, job, retpid, ret_val, rusage):  # type: ignore[no-untyped-def]
            super().handle_work_horse_killed(job, retpid, ret_val, rusage)  # type: ignore[no-untyped-call]
            signal_no = os.WTERMSIG(ret_val) if ret_val and os.WIFSIGNALED(ret_val) else None
            how = f"killed by signal {signal_no}" if signal_no else f"exited with status {ret_val}"
            code, what = describe_wait_status(ret_val or 0)
            started = getattr(job, "started_at", None)
            timeout = getattr(job, "timeout", None)
            if started is not None and timeout not in (None, -1):  # killed by RQ past the job's timeout
                from rq.utils import now

                if (now() - started).total_seconds() > float(timeout):
                    code, what = TIME_LIMIT, "the job ran past its wall-clock cap"
            _fail_rq_job(job, self.connection, f"WorkerLost: the work horse running the job was {how}; {what}", code)

        def run_maintenance_tasks(self):  # type: ignore[no-untyped-def]
            super().run_maintenance_tasks()  # type: ignore[no-untyped-call]
            reaper = getattr(self, "doorstep_reaper", None)
            if reaper is not None:
                try:
                    reaper()
                except Exception as exc:  # noqa: BLE001
                    self.log.warning("doorstep reaper failed: %s", type(exc).__name__)

    return DoorstepWorker


def run_worker(
    redis_url: str,
    *,
    queues: list[str],
    prefix: str | None = None,
    heartbeat_s: int = 2,
    heartbeat_timeout_s: float = 30.0,
    preload: bool = True,
    burst: bool = False,
    name: str | None = None,
    limits: JobLimits | None = None,
) -> bool:
    """Run a :class:`DoorstepWorker` until stopped (or, with ``burst``, until the queues are empty)."""
    from app.store.redis import DEFAULT_PREFIX, RedisStore

    connection = rq_connection(redis_url)
    worker_class = make_worker_class()
    worker = worker_class(
        queues,
        connection=connection,
        name=name,
        job_monitoring_interval=max(1, int(heartbeat_s)),
        maintenance_interval=max(5, int(heartbeat_timeout_s)),
        log_job_description=False,  # descriptions are ours, but keep RQ's logs free of job arguments
        disable_default_exception_handler=True,  # run_job logs failures without their message
    )
    worker.doorstep_limits = limits or JobLimits.from_config()
    store = RedisStore(redis_url, prefix=prefix or DEFAULT_PREFIX)
    reaper = JobRunner(store, TravelProvider("straight"), Webhook(None), heartbeat_timeout_s)
    worker.doorstep_reaper = reaper.reap_all
    failed = reaper.reap_all()
    if failed:
        log.warning("%d job(s) of dead workers marked failed", failed)
    if preload:
        # forked work horses inherit the loaded network, its kernels, hierarchies and segment indexes
        log.info("road network loaded and warmed in %.1f s", preload_travel("network"))
    return bool(worker.work(burst=burst, with_scheduler=False))
