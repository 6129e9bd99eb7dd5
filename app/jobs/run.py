"""Running one planning job to its end, in whatever process runs it.

:func:`run_job` takes a queued job through validating → solving (or
re-planning) → checking → publishing, writing progress to the store as it
goes, and records the result: ``succeeded`` with the published version, or
``failed`` with an ``error_code`` (:mod:`app.jobs.failure`) and a message. A
failed job publishes nothing, so the date's previous plan stays current. A job
failed meanwhile by someone else (the reaper, a wall-clock cap) stops with
:class:`JobLost` without publishing: every step re-checks that the job is
still ``running``.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import solver
from app.errors import describe_exception
from app.events import Webhook, plan_events
from app.jobs.failure import TIME_LIMIT, code_for_exception
from app.jobs.owner import process_owner
from app.store.base import ACTIVE, Event, NewEvent, Store, VersionConflict, utcnow
from solver.check import check_plan
from solver.model import DayState, Plan, Problem
from solver.travel import TravelModel

__all__ = ["MAX_ERROR_CHARS", "REOPTIMIZE_ATTEMPTS", "JobEnv", "JobLost", "closed_visits", "run_job"]

log = logging.getLogger("doorstep.jobs")

#: Longest error message kept on a job.
MAX_ERROR_CHARS = 2000
#: Attempts of a re-plan whose base version was replaced meanwhile.
REOPTIMIZE_ATTEMPTS = 3


class JobLost(Exception):
    """The job was failed by the reaper (or otherwise finished) while this
    process was still working on it: stop without publishing."""


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
        except Exception as exc:  # noqa: BLE001 - progress is best effort; never fail the solve for it
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
    closed.update(state.in_progress)
    return closed


def run_job(env: JobEnv, job_id: str, spec: dict[str, Any]) -> int | None:
    """Run one job to the end and return the published version (of the first
    date for a ``days`` job; None for a draft); on failure
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
        version: int | None
        if kind == "plan":
            version, plan, problem = _run_plan(env, job_id, spec, travel, progress, published)
        elif kind == "reoptimize":
            version, plan, problem = _run_reoptimize(env, job_id, spec, travel, progress, published)
        elif kind == "days":
            version, plan, problem = _run_days(env, job_id, spec, travel, progress, published)
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
        code = code_for_exception(exc)
        if code == TIME_LIMIT:  # e.g. RQ's JobTimeoutException in a work horse
            message = f"{type(exc).__name__}: the job ran past its wall-clock cap ({exc})"
        if isinstance(exc, MemoryError):  # its message is empty or a size: say which cap
            message = "MemoryError: the job needed more memory than the job memory cap"
            # free what the failed frames hold (the traceback keeps their locals alive): recording the
            # failure needs memory too (SQLite maps its WAL index)
            traceback.clear_frames(exc.__traceback__)
            gc.collect()
        log.error("job %s failed after %.1f s: %s", job_id, time.perf_counter() - started, describe_exception(exc))
        try:
            store.update_job(job_id, if_status=tuple(ACTIVE), status="failed", error=message[:MAX_ERROR_CHARS],
                             error_code=code)
        except Exception as store_exc:  # noqa: BLE001
            log.error("job %s: failure not recorded: %s", job_id, type(store_exc).__name__)
        raise
    log.info(
        "job %s succeeded: version %s of %s, %d/%d visits planned, %.1f s",
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


def _run_plan(env: JobEnv, job_id: str, spec: dict[str, Any], travel: TravelModel, progress: _Progress,
              published: list[NewEvent]) -> tuple[int, Plan, Problem]:
    from app.jobs.split import plan_day

    problem = Problem.model_validate_json(spec["problem_json"])
    plan = plan_day(problem, travel, progress, spec)  # solver.solve, or in parts past [jobs] split_above
    _check_still_running(env.store, job_id, "checking")
    check_plan(problem, plan, travel).raise_if_invalid()  # never publish a plan that breaks a rule
    version = _publish(env.store, job_id, problem, plan, reason="plan", expect_version=None, published=published)
    return version, plan, problem


def _run_reoptimize(env: JobEnv, job_id: str, spec: dict[str, Any], travel: TravelModel, progress: _Progress,
                    published: list[NewEvent]) -> tuple[int, Plan, Problem]:
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
        problem, plan = solver.reoptimize(old_problem, old_plan, state, travel)
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


def _run_days(env: JobEnv, job_id: str, spec: dict[str, Any], travel: TravelModel, progress: _Progress,
              published: list[NewEvent]) -> tuple[int | None, Plan, Problem]:
    """Plan several dates (or keep one as a draft): :mod:`app.multiday`."""
    import json

    from app.multiday import DRAFT, PUBLISHING, FollowupsAdded, publish_set, set_record
    from solver.multiday import Horizon, plan_days

    store = env.store
    horizon = Horizon.model_validate_json(spec["horizon_json"])
    result = plan_days(horizon, travel, progress=progress)
    _check_still_running(store, job_id, "checking")
    for day in result.days:
        check_plan(day.problem, day.plan, travel).raise_if_invalid()  # never keep a plan that breaks a rule
    record = set_record(job_id, result, followups=FollowupsAdded(spec.get("followups") or []), store=store)
    version = None
    if spec.get("publish", True):
        _check_still_running(store, job_id, "publishing")
        store.save_plan_set(job_id, PUBLISHING, json.dumps(record))
        record = publish_set(store, job_id, record, expect_status=PUBLISHING, reason="plan", job_id=job_id,
                             published=published)
        version = record["days"][0]["version"]
    else:
        _check_still_running(store, job_id, "saving the draft")
        store.save_plan_set(job_id, DRAFT, json.dumps(record))
    first = result.days[0]
    return version, first.plan, first.problem
