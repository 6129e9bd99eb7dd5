"""What the web app holds: a job runner that records jobs, starts them, waits
for them and reaps those whose process died.

Subclasses start the work: :class:`app.jobs.process.ProcessJobRunner` (a
child process per job, embedded mode) and :class:`app.jobs.rq.RQJobRunner`
(an RQ queue served by ``doorstep worker`` processes).
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from app.events import Webhook
from app.jobs.failure import WORKER_LOST
from app.jobs.limits import JobLimits
from app.jobs.owner import dead_reason, process_owner
from app.jobs.travel import TravelProvider
from app.store.base import ACTIVE, Job, Store
from solver.model import DayState, Problem
from solver.multiday import Horizon

__all__ = ["JobRunner"]

log = logging.getLogger("doorstep.jobs")


class JobRunner:
    """What the web app uses: submit jobs, wait for them, reap dead ones."""

    runner_name = "base"
    #: Whether queued jobs are owned by this process (so a restart reaps them).
    owns_queued = False

    def __init__(self, store: Store, travel: TravelProvider, webhook: Webhook, heartbeat_timeout_s: float = 30.0,
                 limits: JobLimits | None = None) -> None:
        self.store = store
        self.travel = travel
        self.webhook = webhook
        self.heartbeat_timeout_s = float(heartbeat_timeout_s)
        self.limits = limits or JobLimits.from_config()

    def _new_job(self, kind: str, date: str, visits: int, agents: int, time_limit_s: float | None) -> Job:
        return Job(
            id=uuid.uuid4().hex, date=date, visits=visits, agents=agents, kind=kind, runner=self.runner_name,
            owner=process_owner() if self.owns_queued else None, time_limit_s=time_limit_s,
        )

    def submit(self, problem: Problem) -> Job:
        """Record a queued job planning ``problem`` and start it."""
        job = self._new_job("plan", problem.date.isoformat(), len(problem.visits), len(problem.agents),
                            problem.options.time_limit_s)
        spec = {"kind": "plan", "problem_json": problem.model_dump_json()}
        self._check_can_start()
        self.store.save_job(job)
        self._start(job, spec)
        log.info("job %s queued (%s): %s, %d visits, %d agents", job.id, self.runner_name, job.date, job.visits,
                 job.agents)
        return job

    def submit_reoptimize(self, problem: Problem, base_version: int, state: DayState) -> Job:
        """Record a queued job re-planning the rest of ``problem``'s day from ``base_version``."""
        job = self._new_job("reoptimize", problem.date.isoformat(), len(problem.visits) + len(state.added),
                            len(problem.agents), problem.options.time_limit_s)
        spec = {"kind": "reoptimize", "date": job.date, "base_version": base_version,
                "state_json": state.model_dump_json()}
        self._check_can_start()
        self.store.save_job(job)
        self._start(job, spec)
        log.info("job %s queued (%s): re-plan %s from version %d", job.id, self.runner_name, job.date, base_version)
        return job

    def submit_days(self, horizon: Horizon, *, publish: bool, followups: list[dict[str, Any]]) -> Job:
        """Record a queued ``days`` job planning ``horizon``'s dates (kept as a
        draft unless ``publish``) and start it (:mod:`app.multiday`). Its
        time limit is the horizon's: the day's search time limit per date."""
        job = self._new_job("days", horizon.dates[0].isoformat(), len(horizon.visits), len(horizon.agents),
                            horizon.options.time_limit_s * len(horizon.dates))
        spec = {"kind": "days", "horizon_json": horizon.model_dump_json(), "publish": publish,
                "followups": followups}
        self._check_can_start()
        self.store.save_job(job)
        self._start(job, spec)
        log.info("job %s queued (%s): %d date(s) from %s, %s", job.id, self.runner_name, len(horizon.dates),
                 job.date, "published" if publish else "draft")
        return job

    def _check_can_start(self) -> None:
        """Raise before recording a job this runner could not start."""

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
        updated = self.store.update_job(job.id, if_status=tuple(ACTIVE), status="failed", error=reason,
                                        error_code=WORKER_LOST)
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

    def shutdown(self, wait: bool = True) -> None:
        """Stop starting jobs (and, for runners that own processes, stop them)."""
