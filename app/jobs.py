"""Planning jobs: validate → solve (or re-plan) → check → publish, off the request thread.

Two runners share :func:`run_job`:

* :class:`ThreadJobRunner` — embedded mode (no Redis): a thread pool inside the
  web process. On start it fails the queued/running jobs that a process which
  no longer exists left behind (the web process died or was restarted).
* :class:`RQJobRunner` — with Redis: jobs go on an RQ queue and any number of
  ``doorstep worker`` processes (:class:`DoorstepWorker`, on any machine) run
  them. The worker's parent process (which forks a work horse per job, so it
  is never blocked by the solver holding the GIL) writes a heartbeat on the job
  every few seconds. A job is never left "running" by a dead worker:

  - the work horse dies (OOM, SIGKILL): the worker's parent sees it and fails
    the job at once (``handle_work_horse_killed``);
  - the whole worker dies (machine lost, SIGKILL of both): the job's heartbeat
    goes stale, and the reaper (:meth:`JobRunner.reap`, run whenever a job is
    read and by every worker) fails it after ``HEARTBEAT_TIMEOUT_S``; RQ's own
    abandoned-job handling (``StartedJobRegistry.cleanup``) calls
    :func:`rq_on_failure` as well.

  A job that was failed this way and whose orphaned work horse later finishes
  publishes nothing: every step re-checks that the job is still ``running``.

A job's status goes ``queued`` → ``running`` → ``succeeded`` | ``failed``, with
``progress`` ``{stage, fraction}`` along the way (the solver reports
"geocoding", "matrix" and "solving"; the job adds "validating", "checking" and
"publishing"). While solving, the fraction is the share of the time limit used.
A failed job publishes nothing, so the date's previous plan stays current.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import solver
from app.errors import describe_exception
from app.events import Webhook, plan_events
from app.store.base import ACTIVE, Event, Job, NewEvent, Store, VersionConflict, parse_utc, utcnow
from solver.check import check_plan
from solver.model import DayState, Plan, Problem
from solver.travel import StraightLineTravel, TravelModel

log = logging.getLogger("doorstep.jobs")

#: Longest error message kept on a job.
MAX_ERROR_CHARS = 2000
#: Attempts of a re-plan whose base version was replaced meanwhile.
REOPTIMIZE_ATTEMPTS = 3


class JobLost(Exception):
    """The job was failed by the reaper (or otherwise finished) while this
    process was still working on it: stop without publishing."""


# --------------------------------------------------------------------------- #
# Travel models
# --------------------------------------------------------------------------- #
class TravelProvider:
    """The travel model jobs use: an injected one, or the bundled road network
    loaded once, on first use."""

    def __init__(self, travel: TravelModel | str | None = None) -> None:
        if travel == "straight":
            travel = StraightLineTravel()
        elif travel in ("network", ""):
            travel = None
        self._travel = travel
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """How a worker process can build the same model: "straight" or "network"."""
        return "straight" if isinstance(self._travel, StraightLineTravel) else "network"

    def get(self) -> TravelModel:
        if self._travel is None:
            with self._lock:
                if self._travel is None:
                    from solver.geo.routing import travel_model_from_config

                    started = time.perf_counter()
                    self._travel = travel_model_from_config()
                    log.info("bundled road network loaded in %.1f s", time.perf_counter() - started)
        return self._travel  # type: ignore[return-value]


_WORKER_TRAVEL: dict[str, TravelProvider] = {}


def worker_travel(name: str) -> TravelProvider:
    """A process-wide provider per travel name (a worker preloads the network
    before forking its work horses, which inherit it)."""
    if name not in _WORKER_TRAVEL:
        _WORKER_TRAVEL[name] = TravelProvider(name)
    return _WORKER_TRAVEL[name]


# --------------------------------------------------------------------------- #
# Process identity (for the reaper)
# --------------------------------------------------------------------------- #
def _process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), '' elsewhere:
    tells a live process from a later one that reused its pid."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def process_owner(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_process_start(pid)}"


def owner_alive(owner: str) -> bool | None:
    """Whether the process named by ``owner`` still runs; None when it is on
    another host (cannot tell)."""
    host, _, rest = owner.partition(":")
    pid_text, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if start and _process_start(pid) not in ("", start):
        return False  # the pid was reused
    try:  # a zombie (ended, not yet reaped by its parent) is dead too
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
    except (OSError, IndexError):
        pass
    return True


# --------------------------------------------------------------------------- #
# Running one job (any runner)
# --------------------------------------------------------------------------- #
class _Progress:
    """Writes progress to the store when the stage changes or the fraction moves
    by at least ``step`` (the solver may report often). Refuses to go on when
    the job is no longer running (reaped)."""

    def __init__(self, store: Store, job_id: str, step: float = 0.05) -> None:
        self.store, self.job_id, self.step = store, job_id, step
        self._stage: str | None = None
        self._fraction = 0.0
        self._lock = threading.Lock()

    def __call__(self, stage: str, fraction: float, *_args: Any, **info: Any) -> None:
        fraction = min(1.0, max(0.0, float(fraction)))
        best = info.get("best_cost", info.get("objective"))
        with self._lock:
            new_stage = stage != self._stage
            if not new_stage and fraction < 1.0 and abs(fraction - self._fraction) < self.step and best is None:
                return
            self._stage, self._fraction = stage, fraction
        changes: dict[str, Any] = {"stage": stage, "fraction": round(fraction, 4)}
        if new_stage:
            changes["stage_started_at"] = utcnow()
        if best is not None:
            changes["best_cost"] = float(best)
        try:
            updated = self.store.update_job(self.job_id, if_status=("running",), **changes)
        except Exception as exc:  # progress is best effort; never fail the solve for it
            log.warning("job %s: progress not saved: %s", self.job_id, type(exc).__name__)
            return
        if updated is None:
            raise JobLost(self.job_id)


@dataclass
class JobEnv:
    """What running a job needs."""

    store: Store
    travel: Callable[[], TravelModel]
    webhook: Webhook
    background_webhook: bool = True


def _plan_and_problem(store: Store, date: str, version: int) -> tuple[Plan, Problem]:
    stored = store.get_plan(date, version)
    problem_json = store.get_problem(date, version)
    if stored is None or problem_json is None:
        raise LookupError(f"plan {date} version {version} not found")
    return Plan.model_validate_json(stored.plan_json), Problem.model_validate_json(problem_json)


def closed_visits(base_meta: dict[str, Any], plan: Plan, state: DayState) -> dict[str, str | None]:
    """Visits a re-plan takes out of the day as done or under way (visit id ->
    crew), added to those earlier re-plans took out: outcomes can still be
    recorded for them although they are no longer in the current plan."""
    crew_of = {s.visit_id: r.agent_id for r in plan.routes for s in r.stops}
    closed: dict[str, str | None] = dict(base_meta.get("closed") or {})
    for visit_id in state.completed:
        closed.setdefault(visit_id, crew_of.get(visit_id))
    for visit_id, agent_id in state.in_progress.items():
        closed[visit_id] = agent_id
    return closed


def run_job(env: JobEnv, job_id: str, spec: dict[str, Any]) -> int:
    """Run one job to the end and return the published version; on failure
    the error is recorded on the job and re-raised (a :class:`JobLost` job is
    left as the reaper marked it)."""
    store = env.store
    progress = _Progress(store, job_id)
    started = time.perf_counter()
    published: list[NewEvent] = []
    try:
        running = store.update_job(
            job_id, if_status=("queued",), status="running", stage="validating", fraction=0.0,
            owner=process_owner(), heartbeat_at=utcnow(), stage_started_at=utcnow(),
        )
        if running is None:
            raise JobLost(job_id)
        travel = env.travel()
        kind = spec.get("kind", "plan")
        if kind == "plan":
            version, plan, problem = _run_plan(env, job_id, spec, travel, progress, published)
        elif kind == "reoptimize":
            version, plan, problem = _run_reoptimize(env, job_id, spec, travel, progress, published)
        else:
            raise ValueError(f"unknown job kind {kind!r}")
        store.update_job(
            job_id, status="succeeded", stage="done", fraction=1.0, version=version,
            best_cost=None if plan.solver.objective is None else float(plan.solver.objective),
        )
    except JobLost:
        log.warning("job %s: no longer running here (failed by the reaper?); nothing published", job_id)
        raise
    except BaseException as exc:
        message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        log.error("job %s failed after %.1f s: %s", job_id, time.perf_counter() - started, describe_exception(exc))
        try:
            store.update_job(job_id, if_status=tuple(ACTIVE), status="failed", error=message[:MAX_ERROR_CHARS])
        except Exception as store_exc:
            log.error("job %s: failure not recorded: %s", job_id, type(store_exc).__name__)
        raise
    log.info(
        "job %s succeeded: version %d of %s, %d/%d visits planned, %.1f s",
        job_id, version, problem.date, plan.summary.visits_planned, plan.summary.visits_total,
        time.perf_counter() - started,
    )
    env.webhook.send([Event("", e.event_id, e.type, e.at, e.data) for e in published],
                     background=env.background_webhook)
    return version


def _check_still_running(store: Store, job_id: str, stage: str) -> None:
    if store.update_job(job_id, if_status=("running",), stage=stage, fraction=0.0, stage_started_at=utcnow()) is None:
        raise JobLost(job_id)


def _publish(
    store: Store,
    job_id: str,
    problem: Problem,
    plan: Plan,
    *,
    reason: str,
    expect_version: int | None,
    published: list[NewEvent],
    extra_meta: dict[str, Any] | None = None,
    ignore: frozenset[str] = frozenset(),
) -> int:
    date = problem.date.isoformat()
    _check_still_running(store, job_id, "publishing")

    def events(version: int) -> list[NewEvent]:
        old = store.get_plan(date, version - 1) if version > 1 else None
        old_plan = Plan.model_validate_json(old.plan_json) if old is not None else None
        made = plan_events(date, version, plan, old_plan, old.version if old else None, reason=reason, job_id=job_id,
                           ignore=ignore)
        published[:] = made
        return made

    meta = {"job_id": job_id, "reason": reason, "summary": plan.summary.model_dump(mode="json"), **(extra_meta or {})}
    return store.publish_plan(
        date, plan.model_dump_json(), problem.model_dump_json(), meta=meta, expect_version=expect_version,
        events=events,
    )


def _run_plan(env, job_id, spec, travel, progress, published):  # type: ignore[no-untyped-def]
    problem = Problem.model_validate_json(spec["problem_json"])
    plan = solver.solve(problem, travel, progress=progress)
    _check_still_running(env.store, job_id, "checking")
    check_plan(problem, plan, travel).raise_if_invalid()  # never publish a plan that breaks a rule
    version = _publish(env.store, job_id, problem, plan, reason="plan", expect_version=None, published=published)
    return version, plan, problem


def _run_reoptimize(env, job_id, spec, travel, progress, published):  # type: ignore[no-untyped-def]
    store: Store = env.store
    date: str = spec["date"]
    base: int = int(spec["base_version"])
    state = DayState.model_validate_json(spec["state_json"])
    for attempt in range(1, REOPTIMIZE_ATTEMPTS + 1):
        old_plan, old_problem = _plan_and_problem(store, date, base)
        base_stored = store.get_plan(date, base)
        base_meta = base_stored.meta if base_stored is not None else {}
        progress("solving", 0.0)
        # the rest of the day: done, under way and cancelled visits leave the problem, absent crews too
        result = solver.reoptimize(old_problem, old_plan, state, travel)  # type: ignore[attr-defined]
        if isinstance(result, tuple):
            problem, plan = result
        else:  # a solver that re-plans the whole day keeps the day's problem (plus added visits)
            plan = result
            problem = old_problem.model_copy(update={"visits": [*old_problem.visits, *state.added]})
        _check_still_running(store, job_id, "checking")
        check_plan(problem, plan, travel).raise_if_invalid()
        closed = closed_visits(base_meta, old_plan, state)
        try:
            version = _publish(store, job_id, problem, plan, reason="reoptimize", expect_version=base,
                               published=published, extra_meta={"closed": closed, "base_version": base},
                               ignore=frozenset(closed))
            return version, plan, problem
        except VersionConflict as conflict:  # a booking or another re-plan got in first: redo on top of it
            if attempt == REOPTIMIZE_ATTEMPTS or conflict.current is None:
                raise
            log.info("job %s: version %s replaced by %s meanwhile; re-planning again", job_id, base, conflict.current)
            base = conflict.current
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------- #
# Runners
# --------------------------------------------------------------------------- #
class JobRunner:
    """What the web app uses: submit jobs, wait for them, reap dead ones."""

    runner_name = "base"

    def __init__(self, store: Store, travel: TravelProvider, webhook: Webhook, heartbeat_timeout_s: float = 30.0):
        self.store = store
        self.travel = travel
        self.webhook = webhook
        self.heartbeat_timeout_s = float(heartbeat_timeout_s)

    def _new_job(self, kind: str, date: str, visits: int, agents: int, time_limit_s: float | None) -> Job:
        return Job(
            id=uuid.uuid4().hex, date=date, visits=visits, agents=agents, kind=kind, runner=self.runner_name,
            owner=process_owner() if self.runner_name == "thread" else None, time_limit_s=time_limit_s,
        )

    def submit(self, problem: Problem) -> Job:
        """Record a queued job planning ``problem`` and start it."""
        job = self._new_job("plan", problem.date.isoformat(), len(problem.visits), len(problem.agents),
                            problem.options.time_limit_s)
        self.store.save_job(job)
        self._start(job, {"kind": "plan", "problem_json": problem.model_dump_json()})
        log.info("job %s queued (%s): %s, %d visits, %d agents", job.id, self.runner_name, job.date, job.visits,
                 job.agents)
        return job

    def submit_reoptimize(self, problem: Problem, base_version: int, state: DayState) -> Job:
        job = self._new_job("reoptimize", problem.date.isoformat(), len(problem.visits) + len(state.added),
                            len(problem.agents), problem.options.time_limit_s)
        self.store.save_job(job)
        spec = {"kind": "reoptimize", "date": job.date, "base_version": base_version,
                "state_json": state.model_dump_json()}
        self._start(job, spec)
        log.info("job %s queued (%s): re-plan %s from version %d", job.id, self.runner_name, job.date, base_version)
        return job

    def _start(self, job: Job, spec: dict[str, Any]) -> None:
        raise NotImplementedError

    # -- reading ------------------------------------------------------------ #
    def get(self, job_id: str) -> Job | None:
        """The job, reaped first if its worker is gone."""
        job = self.store.get_job(job_id)
        return None if job is None else self.reap(job)

    def reap(self, job: Job) -> Job:
        """Fail ``job`` if it is queued/running but whoever runs it is gone."""
        reason = dead_reason(job, self.heartbeat_timeout_s)
        if reason is None:
            return job
        updated = self.store.update_job(job.id, if_status=tuple(ACTIVE), status="failed", error=reason)
        if updated is not None:
            log.warning("job %s failed by the reaper: %s", job.id, reason)
            return updated
        return self.store.get_job(job.id) or job

    def reap_all(self) -> int:
        """Reap every active job; returns how many were failed."""
        failed = 0
        for job in self.store.active_jobs():
            if self.reap(job).status == "failed":
                failed += 1
        return failed

    def wait(self, job_id: str, timeout_s: float, poll_s: float = 0.05) -> Job | None:
        """The job once finished, or as it stands after ``timeout_s`` seconds."""
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.get(job_id)
            remaining = deadline - time.monotonic()
            if job is None or job.finished or remaining <= 0:
                return job
            time.sleep(min(poll_s, remaining))

    def shutdown(self, wait: bool = True) -> None:  # noqa: B027
        pass


def dead_reason(job: Job, heartbeat_timeout_s: float) -> str | None:
    """Why an active job can no longer finish, or None while it can."""
    if job.status not in ACTIVE:
        return None
    if job.runner == "thread":
        if job.owner and owner_alive(job.owner) is False:
            return "the process running the job ended before it finished"
        return None
    if job.status == "running":  # rq: the worker's parent beats every few seconds
        last = job.heartbeat_at or job.updated_at
        age = time.time() - parse_utc(last).timestamp()
        if age > heartbeat_timeout_s:
            return f"worker lost: no heartbeat for {age:.0f} s"
        if job.owner and owner_alive(job.owner) is False and age > 2.0:
            return "worker lost: the work horse process ended before the job finished"
    return None


class ThreadJobRunner(JobRunner):
    """Runs planning jobs on a thread pool inside the web process."""

    runner_name = "thread"

    def __init__(self, store: Store, travel: TravelProvider, webhook: Webhook, workers: int = 1,
                 heartbeat_timeout_s: float = 30.0) -> None:
        super().__init__(store, travel, webhook, heartbeat_timeout_s)
        self._pool = cf.ThreadPoolExecutor(max_workers=max(1, int(workers)), thread_name_prefix="doorstep-job")
        self._futures: dict[str, cf.Future[int]] = {}
        self._lock = threading.Lock()
        self.env = JobEnv(store, travel.get, webhook, background_webhook=True)
        failed = self.reap_all()  # jobs a dead process left queued or running
        if failed:
            log.warning("%d job(s) left by a process that ended were marked failed", failed)

    def _start(self, job: Job, spec: dict[str, Any]) -> None:
        future = self._pool.submit(self._run, job.id, spec)
        with self._lock:
            self._futures[job.id] = future
        future.add_done_callback(lambda _f, job_id=job.id: self._forget(job_id))

    def _run(self, job_id: str, spec: dict[str, Any]) -> int:
        return run_job(self.env, job_id, spec)

    def _forget(self, job_id: str) -> None:
        with self._lock:
            self._futures.pop(job_id, None)

    def wait(self, job_id: str, timeout_s: float, poll_s: float = 0.05) -> Job | None:
        with self._lock:
            future = self._futures.get(job_id)
        if future is not None:
            cf.wait([future], timeout=timeout_s)
        return super().wait(job_id, max(0.0, timeout_s) if future is None else 0.0, poll_s)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=not wait)


# --------------------------------------------------------------------------- #
# RQ
# --------------------------------------------------------------------------- #
DEFAULT_QUEUE = "doorstep"


def rq_connection(url: str):  # type: ignore[no-untyped-def]
    """A Redis client as RQ wants it (bytes, not decoded)."""
    import redis

    return redis.Redis.from_url(url)


class RQJobRunner(JobRunner):
    """Puts planning jobs on an RQ queue for ``doorstep worker`` processes."""

    runner_name = "rq"

    def __init__(self, store: Store, travel: TravelProvider, webhook: Webhook, *, redis_url: str,
                 queue: str = DEFAULT_QUEUE, heartbeat_timeout_s: float = 30.0) -> None:
        from rq import Queue

        super().__init__(store, travel, webhook, heartbeat_timeout_s)
        self.queue = Queue(queue, connection=rq_connection(redis_url))

    def _start(self, job: Job, spec: dict[str, Any]) -> None:
        from rq import Callback

        spec = {
            **spec,
            "job_id": job.id,
            "prefix": getattr(self.store, "prefix", None),
            "travel": self.travel.name,
            "webhook_url": self.webhook.url,
            "webhook_timeout_s": self.webhook.timeout_s,
        }
        limit = job.time_limit_s or 60.0
        self.queue.enqueue(
            "app.jobs.rq_entry",
            spec,
            job_id=job.id,
            job_timeout=int(limit * 3 + 600),  # geocoding and matrices come on top of the search
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


def rq_entry(spec: dict[str, Any]) -> int:
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


def _fail_rq_job(rq_job: Any, connection: Any, reason: str) -> None:
    meta = rq_job.meta or {}
    job_id = meta.get("doorstep_job") or rq_job.id
    store = _store_for(connection, meta.get("prefix"))
    try:
        if store.update_job(job_id, if_status=tuple(ACTIVE), status="failed", error=reason[:MAX_ERROR_CHARS]):
            log.warning("job %s failed: %s", job_id, reason)
    except Exception as exc:  # the job record may be gone
        log.error("job %s: failure not recorded: %s", job_id, type(exc).__name__)
    finally:
        store.close()


def rq_on_failure(job: Any, connection: Any, type_: Any, value: Any, traceback: Any) -> None:
    """RQ's failure callback: exceptions in the job (already recorded by
    :func:`run_job`) and abandoned jobs found by RQ's registry cleanup."""
    name = getattr(type_, "__name__", str(type_))
    if name == "JobLost":
        return
    _fail_rq_job(job, connection, f"{name}: the worker running the job stopped" if name == "AbandonedJobError"
                 else f"{name}: {value}" if str(value) else name)


def make_worker_class():  # type: ignore[no-untyped-def]
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
                current = store.get_job(job_id)
                if current is None or current.status != "running":
                    return
                changes: dict[str, Any] = {"heartbeat_at": utcnow()}
                if current.stage == "solving" and current.time_limit_s and current.stage_started_at:
                    elapsed = time.time() - parse_utc(current.stage_started_at).timestamp()
                    changes["fraction"] = round(min(0.99, max(current.fraction, elapsed / current.time_limit_s)), 4)
                store.update_job(job_id, if_status=("running",), **changes)
            except Exception as exc:
                self.log.warning("doorstep heartbeat of job %s not saved: %s", job_id, type(exc).__name__)
            finally:
                store.close()

        def handle_work_horse_killed(self, job, retpid, ret_val, rusage):  # type: ignore[no-untyped-def]
            super().handle_work_horse_killed(job, retpid, ret_val, rusage)
            signal_no = os.WTERMSIG(ret_val) if ret_val and os.WIFSIGNALED(ret_val) else None
            how = f"killed by signal {signal_no}" if signal_no else f"exited with status {ret_val}"
            _fail_rq_job(job, self.connection, f"WorkerLost: the work horse running the job was {how}")

        def run_maintenance_tasks(self):  # type: ignore[no-untyped-def]
            super().run_maintenance_tasks()
            reaper = getattr(self, "doorstep_reaper", None)
            if reaper is not None:
                try:
                    reaper()
                except Exception as exc:
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
    store = RedisStore(redis_url, prefix=prefix or DEFAULT_PREFIX)
    reaper = JobRunner(store, TravelProvider("straight"), Webhook(None), heartbeat_timeout_s)
    worker.doorstep_reaper = reaper.reap_all
    failed = reaper.reap_all()
    if failed:
        log.warning("%d job(s) of dead workers marked failed", failed)
    if preload:
        worker_travel("network").get()  # forked work horses inherit the loaded network
    return bool(worker.work(burst=burst, with_scheduler=False))
