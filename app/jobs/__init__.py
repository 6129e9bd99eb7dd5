"""Planning jobs: validate → solve (or re-plan) → check → publish, never in
the web process.

A job's status goes ``queued`` → ``running`` → ``succeeded`` | ``failed``, with
``progress`` ``{stage, fraction}`` along the way (the solver reports
"geocoding", "matrix" and "solving"; the job adds "validating", "checking" and
"publishing"). While solving, the fraction is the share of the time limit used.
A failed job carries an ``error_code`` (:mod:`app.jobs.failure`) and publishes
nothing, so the date's previous plan stays current.

Modules, one topic each:

* :mod:`app.jobs.run` — :func:`run_job`, one job to its end (any process);
* :mod:`app.jobs.runner` — :class:`JobRunner`, what the web app holds;
* :mod:`app.jobs.process` — :class:`ProcessJobRunner`, embedded mode: a
  child process per job, under a memory and a wall-clock cap;
* :mod:`app.jobs.rq` — :class:`RQJobRunner` and the ``doorstep worker``;
* :mod:`app.jobs.split` — days past ``[jobs] split_above`` visits, planned in
  parts (RQ jobs on every worker, or one after another in the job process);
* :mod:`app.jobs.limits` — :class:`JobLimits`, process caps and request sizes;
* :mod:`app.jobs.failure` — error codes;
* :mod:`app.jobs.travel` — travel models by name;
* :mod:`app.jobs.owner` — process identity and the reaper's verdict.
"""

from __future__ import annotations

from app.jobs.failure import ERROR_CODES
from app.jobs.limits import JobLimits, SizeViolation
from app.jobs.owner import dead_reason, owner_alive, process_owner
from app.jobs.process import ProcessJobRunner
from app.jobs.rq import (
    DEFAULT_QUEUE,
    RQJobRunner,
    make_worker_class,
    rq_connection,
    rq_entry,
    rq_on_failure,
    run_worker,
)
from app.jobs.run import (
    MAX_ERROR_CHARS,
    REOPTIMIZE_ATTEMPTS,
    JobEnv,
    JobLost,
    closed_visits,
    run_job,
)
from app.jobs.runner import JobRunner
from app.jobs.travel import TravelProvider, build_travel, worker_travel

#: The former name of the embedded runner (jobs ran on threads of the web process).
ThreadJobRunner = ProcessJobRunner

__all__ = [
    "DEFAULT_QUEUE",
    "ERROR_CODES",
    "MAX_ERROR_CHARS",
    "REOPTIMIZE_ATTEMPTS",
    "JobEnv",
    "JobLimits",
    "JobLost",
    "JobRunner",
    "ProcessJobRunner",
    "RQJobRunner",
    "SizeViolation",
    "ThreadJobRunner",
    "TravelProvider",
    "build_travel",
    "closed_visits",
    "dead_reason",
    "make_worker_class",
    "owner_alive",
    "process_owner",
    "rq_connection",
    "rq_entry",
    "rq_on_failure",
    "run_job",
    "run_worker",
    "worker_travel",
]
