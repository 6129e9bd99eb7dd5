"""Which process runs a job, whether it still lives, and when a job is dead.

A job record names its *owner* as ``host:pid:start`` (the start time tells a
live process from a later one that reused its pid) and beats on it while it
runs (:func:`beat`). The reaper fails an active job whose owner is gone or
whose heartbeat went stale (:func:`dead_reason`).
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from app.store.base import ACTIVE, Job, Store, parse_utc, utcnow
from solver.processes import process_state

__all__ = ["dead_reason", "owner_alive", "owner_pid", "process_owner"]

#: Runners whose jobs run on this host under a process named by ``owner``.
LOCAL_RUNNERS = frozenset({"thread", "process"})


def _process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), '' elsewhere:
    tells a live process from a later one that reused its pid."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def process_owner(pid: int | None = None) -> str:
    """``host:pid:start`` of a process (this one by default)."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_process_start(pid)}"


def owner_pid(owner: str | None) -> int | None:
    """The pid in an owner string, if any."""
    if not owner:
        return None
    pid_text = owner.split(":")[1] if owner.count(":") >= 1 else ""
    return int(pid_text) if pid_text.isdigit() else None


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
    # a zombie (ended, not yet reaped by its parent) is dead too
    return process_state(pid) != "Z"


def dead_reason(job: Job, heartbeat_timeout_s: float) -> str | None:
    """Why an active job can no longer finish, or None while it can."""
    if job.status not in ACTIVE:
        return None
    if job.runner in LOCAL_RUNNERS:
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


def beat(store: Store, job_id: str) -> None:
    """Write the running job's heartbeat and, while it solves, its progress
    estimated as the share of the time limit used (never backwards, below 1
    until the job says it is done). Nothing when the job is not running."""
    current = store.get_job(job_id)
    if current is None or current.status != "running":
        return
    changes: dict[str, Any] = {"heartbeat_at": utcnow()}
    if current.stage == "solving" and current.time_limit_s and current.stage_started_at:
        elapsed = time.time() - parse_utc(current.stage_started_at).timestamp()
        changes["fraction"] = round(min(0.99, max(current.fraction, elapsed / current.time_limit_s)), 4)
    store.update_job(job_id, if_status=("running",), **changes)
