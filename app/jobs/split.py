"""Big days in parts: a plan job past ``[jobs] split_above`` visits is split
(:mod:`solver.search.split`) and its parts are solved as RQ jobs.

:func:`plan_day` is what a plan job calls instead of :func:`solver.solve`.
A day at or below ``split_above`` visits is solved whole, as before. A bigger
day is split into parts; where the parts are solved depends on where the job
runs:

* in an RQ work horse (``doorstep worker``), :class:`RQParts` puts one RQ job
  per part on the job's own queue (:func:`part_entry`), so that every idle
  worker on any machine takes one, and waits for them. The parent job's own
  worker is busy with the parent, so the parent never waits idle while a part
  is still queued: it takes that part off the queue itself (``LREM`` is
  atomic, so a part is solved by exactly one process) and solves it inline.
  With a single worker the parent thus solves every part itself, one after
  another: no deadlock. A part whose job fails (its work horse killed, an
  exception) is solved inline while there is time. A part late for the
  parts' deadline is still waited for until the end of the whole budget
  (the border polish then has less time: a part's plan is worth more than
  the polish), and :attr:`PartWaitParams.late_s` after it; a part not back by then is stopped and
  its visits stay unassigned with a reason;
* elsewhere (the embedded runner's job process, tests, the CLI), the parts
  are solved one after another in the job's process.

Then the part plans are merged and the borders polished, in the parent.

The day's time limit is a wall-clock budget from the start of the plan job
(:func:`solver.search.split.solve_split`). Each part gets the *deadline* of
the parts (an absolute ``time.time()``, so any process on a machine with a
synchronised clock can use it) and its share of the time left (the time
left over the rounds of parts the workers need), whichever ends first: a
part started late by a busy queue still ends in time. A part's job carries
only its problem as JSON; it builds its own travel matrices, and sends back
only its plan.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import solver
from app.jobs.limits import JobLimits
from app.jobs.travel import worker_travel
from solver.model import Plan, Problem
from solver.search.split import (
    Part,
    SplitParams,
    needs_split,
    solve_part,
    solve_parts_inline,
    solve_split,
)
from solver.search.split.report import SplitReport
from solver.travel import TravelModel

__all__ = ["PartWaitParams", "RQParts", "part_entry", "plan_day", "split_params"]

log = logging.getLogger("doorstep.jobs")

#: Called as ``progress(stage, fraction)``; may raise to stop the job (reaped).
Progress = Callable[..., None]


@dataclass(frozen=True)
class PartWaitParams:
    """How a parent job waits for its parts on RQ.

    Parameters
    ----------
    poll_s
        How often the parent looks at its parts.
    late_s
        How long past the end of the day's budget the parent still waits for
        late parts (and solves parts nobody took) before it gives them up:
        losing a part's visits costs more than a late plan (when one or two
        processes solve four parts on a loaded machine, the parts' fixed
        costs, matrices and timing the routes, exceed a short budget). The
        job's wall-clock cap stays the hard limit.
    result_ttl_s
        How long Redis keeps a part's plan and failure.
    """

    poll_s: float = 0.2
    late_s: float = 60.0
    result_ttl_s: int = 900


def split_params(limits: JobLimits | None = None, solvers: int = 1) -> SplitParams:
    """The split settings of ``[jobs]`` (``split_above``, ``split_part_visits``,
    ``split_polish_share``; environment ``DOORSTEP_JOBS_SPLIT_*``) for
    ``solvers`` processes solving parts at once."""
    limits = limits or JobLimits.from_config()
    return SplitParams(split_above=limits.split_above, part_visits=limits.split_part_visits,
                       polish_share=limits.split_polish_share, solvers=max(1, solvers))


def part_entry(spec: dict[str, Any]) -> str:
    """The RQ job of one part (runs in a worker's work horse): the part's
    plan as JSON, made by ``spec["deadline"]`` (``time.time()``) or within
    ``spec["share_s"]`` from now, whichever ends first
    (:func:`solver.search.split.solve_part`). Raises when the part cannot
    be solved (the parent solves it again or gives it up)."""
    started = time.time()
    deadline = min(float(spec["deadline"]), started + float(spec["share_s"]))
    problem = Problem.model_validate_json(spec["problem_json"])
    travel = worker_travel(spec.get("travel", "network")).get()
    plan = solve_part(problem, deadline, travel, params=split_params())
    if plan is None:
        raise RuntimeError(f"part {spec.get('part')} of job {spec.get('parent')} could not be solved")
    log.info("part %s of job %s: %d/%d visits planned, %.1f s (matrices %.1f s), %.1f s to its deadline",
             spec.get("part"), spec.get("parent"), plan.summary.visits_planned, plan.summary.visits_total,
             time.time() - started, plan.solver.matrix_seconds, deadline - time.time())
    return plan.model_dump_json()


class RQParts:
    """``solve_parts`` for :func:`solver.search.split.solve_split` on RQ (see
    the module docstring)."""

    def __init__(self, connection: Any, queue: str, *, parent: str, travel_name: str, travel: TravelModel,
                 prefix: str | None = None, progress: Progress | None = None,
                 params: PartWaitParams | None = None, split: SplitParams | None = None,
                 report: SplitReport | None = None) -> None:
        from rq import Queue

        self.queue = Queue(queue, connection=connection)
        self.connection = connection
        self.parent, self.travel_name, self.travel, self.prefix = parent, travel_name, travel, prefix
        self.progress = progress
        self.params = params or PartWaitParams()
        self.split = split or SplitParams()
        #: Where each part was solved, how long it was queued (:class:`SplitReport`).
        self.report = report if report is not None else SplitReport()
        #: Where each part was solved ("worker", "inline", "fallback"), by part index (absent: lost).
        self.where = self.report.where
        #: How many parts the last call had.
        self.count = 0

    def workers(self) -> int:
        """Workers listening on the queue (the parent's own included)."""
        from rq import Worker

        return max(1, Worker.count(connection=self.connection, queue=self.queue))

    def __call__(self, parts: Sequence[Part], deadline: float, end: float | None = None) -> list[Plan | None]:
        """Solve ``parts`` on the queue's workers and here by ``deadline``
        (``time.time()``), waiting for late ones until ``end`` (the end of
        the day's budget; default the deadline) and :attr:`PartWaitParams.late_s`;
        a plan per part (None: lost)."""
        started = time.time()
        self.count = len(parts)
        workers = self.workers()
        share = (deadline - started) / math.ceil(len(parts) / workers)  # each round of parts
        jobs = [self._enqueue(part, deadline, share) for part in parts]
        plans: list[Plan | None] = [None] * len(parts)
        pending = set(range(len(parts)))
        give_up = max(deadline, end or deadline) + self.params.late_s
        try:
            while pending:
                queued = 0
                for k in sorted(pending):
                    state, plan = self._state(jobs[k])
                    if state == "finished":
                        plans[k], self.where[k] = plan, "worker"
                        self._record_queued(k, jobs[k])
                        pending.discard(k)
                    elif state == "failed":
                        log.warning("job %s: part %d failed on its worker; solving it here", self.parent, k)
                        pending.discard(k)
                        if time.time() < give_up:
                            plans[k] = solve_part(parts[k].problem, min(deadline, time.time() + share),
                                                  self.travel, params=self.split)
                            self.where[k] = "fallback"
                    elif state == "queued":
                        queued += 1
                # a part nobody took by the deadline is still solved here, briefly (a late plan beats
                # none); past the grace the parent takes no more: the job must end within its own cap
                taken = self._take_queued(sorted(pending, reverse=True), jobs) if time.time() < give_up else None
                if taken is not None:  # nobody took it yet: this process solves it, with its share of what is left
                    now = time.time()
                    self.report.queued_s[taken] = now - started
                    own = now + (deadline - now) / max(1, math.ceil(queued / workers))
                    plans[taken] = solve_part(parts[taken].problem, own, self.travel, params=self.split)
                    self.where[taken] = "inline"
                    pending.discard(taken)
                elif pending and time.time() > give_up:
                    for k in pending:
                        log.warning("job %s: part %d not back by the end of the budget; its visits stay unassigned",
                                    self.parent, k)
                    break
                elif pending:
                    time.sleep(self.params.poll_s)
                if self.progress is not None:  # raises JobLost when the parent was failed meanwhile
                    self.progress("solving", 0.9 * (len(parts) - len(pending)) / len(parts))
        finally:
            self._clean_up(jobs, pending)
        return plans

    def _record_queued(self, k: int, job: Any) -> None:
        """How long part ``k``'s job waited on the queue (RQ's timestamps)."""
        try:
            if job.started_at is not None and job.enqueued_at is not None:
                self.report.queued_s[k] = max(0.0, (job.started_at - job.enqueued_at).total_seconds())
        except (AttributeError, TypeError):  # timestamps of another RQ version
            pass

    @staticmethod
    def _state(job: Any) -> tuple[str, Plan | None]:
        """("finished", its plan), ("failed", None), ("queued", None) or ("running", None)."""
        from rq.exceptions import NoSuchJobError
        from rq.job import JobStatus

        try:
            status = job.get_status(refresh=True)
            if status == JobStatus.FINISHED:
                result = job.return_value(refresh=True)
                return ("finished", Plan.model_validate_json(result)) if result else ("failed", None)
        except NoSuchJobError:  # expired or deleted
            return "failed", None
        if status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED, None):
            return "failed", None
        return ("queued", None) if status == JobStatus.QUEUED else ("running", None)

    def _clean_up(self, jobs: Sequence[Any], unfinished: set[int]) -> None:
        """Stop the parts still running (the parent gave up on them) and delete every part job."""
        from rq.command import send_stop_job_command

        for k, job in enumerate(jobs):
            try:
                if k in unfinished:
                    self.queue.remove(job.id)
                    if job.get_status(refresh=True) == "started":
                        send_stop_job_command(self.connection, job.id)
                job.delete(remove_from_queue=True)
            except Exception as exc:  # noqa: BLE001 - it may have ended or expired meanwhile
                log.info("job %s: part %d not cleaned up: %s", self.parent, k, type(exc).__name__)

    def _enqueue(self, part: Part, deadline: float, share_s: float) -> Any:
        wall = JobLimits.from_config().wall_clock_for(max(1.0, deadline - time.time()))
        spec = {"problem_json": part.problem.model_dump_json(), "deadline": deadline, "share_s": share_s,
                "travel": self.travel_name, "part": part.index, "parent": self.parent}
        return self.queue.enqueue(
            "app.jobs.split.part_entry", spec,
            job_timeout=max(1, round(wall)), result_ttl=self.params.result_ttl_s,
            failure_ttl=self.params.result_ttl_s,
            meta={"doorstep_part_of": self.parent, "prefix": self.prefix},
            description=f"doorstep part {part.index} of job {self.parent}",  # no problem data in RQ's logs
        )

    def _take_queued(self, order: Sequence[int], jobs: Sequence[Any]) -> int | None:
        """Take one part still waiting on the queue off it (the last first:
        workers take from the front); its index, or None."""
        for k in order:
            if self.queue.remove(jobs[k].id):
                return k
        return None


def plan_day(problem: Problem, travel: TravelModel, progress: Progress | None, spec: dict[str, Any],
             limits: JobLimits | None = None) -> Plan:
    """A plan job's plan: the day solved whole, or in parts past
    ``[jobs] split_above`` visits (see the module docstring)."""
    params = split_params(limits)
    if not needs_split(problem, params):
        return solver.solve(problem, travel, progress=progress)  # looked up now: tests/faults.py replaces it
    current = _current_rq_job()
    if progress is not None:
        progress("solving", 0.0)
    report = SplitReport()
    if current is None:
        plan = solve_split(problem, travel, params=params, solve_parts=solve_parts_inline(travel, params=params),
                           report=report)
    else:
        parts = RQParts(current.connection, current.origin, parent=spec.get("job_id", current.id),
                        travel_name=spec.get("travel", "network"), travel=travel, prefix=spec.get("prefix"),
                        progress=progress, report=report)
        params = replace(params, solvers=parts.workers())
        parts.split = params
        plan = solve_split(problem, travel, params=params, solve_parts=parts, started=_started_at(current),
                           report=report)
        where = [parts.where.get(k, "lost") for k in range(parts.count)]
        plan.solver.first_solution = f"{plan.solver.first_solution} ({', '.join(where)})"
    plan.solver.first_solution = f"{plan.solver.first_solution}; {report.describe()}"
    log.info("job %s: split day: %s", spec.get("job_id"), report.describe())
    if progress is not None:
        progress("solving", 1.0)
    return plan


def _started_at(job: Any) -> float | None:
    """When RQ started ``job`` (``time.time()``), or None when it does not say."""
    started = getattr(job, "started_at", None)
    if not isinstance(started, dt.datetime):
        return None
    if started.tzinfo is None:  # RQ keeps UTC
        started = started.replace(tzinfo=dt.UTC)
    return started.timestamp()


def _current_rq_job() -> Any:
    """The RQ job this process runs, or None (not in a work horse, no rq)."""
    try:
        from rq import get_current_job
    except ImportError:  # pragma: no cover - rq is a dependency of Redis deployments only
        return None
    return get_current_job()
