"""Embedded mode: every planning job in a child process of its own.

:class:`ProcessJobRunner` never solves in the web process. Each job gets a
fresh child process, so that a native abort of OR-Tools (``Check failed``), a
segmentation fault, running out of memory or a runaway search ends that child
only: the job is failed with an error code (:mod:`app.jobs.failure`), and the
web server, the other jobs and the published plans are untouched.

Why a process per job and not a pool: each job starts with a clean heap
under a fresh memory cap (a long-lived pool worker's heap only grows, and a
crash would take down the jobs queued on it), nothing leaks from one day's
data to the next, and killing a job is killing its process. The price is the
start of a process, made small by the *forkserver* start method: one server
process, started once, imports the solver (OR-Tools, numpy) and forks a
single-threaded copy of itself per job (safe from a multi-threaded web
server, unlike a plain fork of it). ``bench/memory.py`` prints the cost.

The child
    caps its address space (``RLIMIT_AS`` = ``[jobs] memory_mb``: an
    allocation past it raises :class:`MemoryError` or aborts the process),
    lowers its CPU priority (``nice``), dies with its parent
    (``PR_SET_PDEATHSIG``), reopens the store (the SQLite file or Redis),
    builds the travel model from its name (the web process never loads the
    road network for jobs) and runs :func:`app.jobs.run.run_job`, which writes
    progress and the result to the store itself.
The parent
    runs at most ``workers`` children at a time (further jobs wait, queued),
    and one supervisor thread checks each child every ``poll_s``: its resident
    memory (killed past the cap: ``memory_limit``), its wall clock (killed
    past :meth:`JobLimits.wall_clock_for`: ``time_limit``), and its end (died
    of a signal or without a result: ``solver_crashed``). About once a second
    it beats on the job and estimates the solving progress from the time
    limit (the search holds the child's only thread between reports).
"""

from __future__ import annotations

import collections
import logging
import multiprocessing
import multiprocessing.connection
import os
import resource
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.events import Webhook
from app.jobs.failure import (
    MEMORY_LIMIT,
    SHUTDOWN,
    SOLVER_CRASHED,
    TIME_LIMIT,
    describe_exit,
)
from app.jobs.limits import JobLimits, apply_process_limits
from app.jobs.owner import beat
from app.jobs.run import MAX_ERROR_CHARS, JobEnv, JobLost, run_job
from app.jobs.runner import JobRunner
from app.jobs.travel import TravelProvider, doorstep_environ, job_travel
from app.store.base import ACTIVE, Job, Store
from solver.processes import die_with_parent

__all__ = ["ChildReport", "ProcessJobRunner", "child_main", "measure_plan_job", "open_store", "store_ref"]

log = logging.getLogger("doorstep.jobs")

_SOLVER = ["app.jobs.process", "solver", "solver.check"]
#: Modules the forkserver imports once, before forking job processes (:mod:`app.jobs.preload` last: it
#: imports what jobs import lazily and freezes the heap).
PRELOAD = [*_SOLVER, "app.jobs.preload"]
#: The same, for jobs that price on the road network: the forkserver also loads and warms it
#: (:mod:`app.jobs.preload_network`: numba's kernels, the network, its hierarchies).
PRELOAD_NETWORK = [*_SOLVER, "app.jobs.preload_network", "app.jobs.preload"]
#: Seconds between the parent's heartbeats / progress estimates on a running job.
BEAT_S = 1.0
#: Seconds a child gets to end after SIGTERM at shutdown before SIGKILL.
TERMINATE_GRACE_S = 2.0

_CONTEXT: Any = None
_CONTEXT_LOCK = threading.Lock()


def job_context(travel: str = "straight") -> Any:
    """The start method of job processes: forkserver with the solver
    preloaded where available (Linux, macOS), else spawn.

    The forkserver is one per process, started for the first job: ``travel``
    (the job's travel name) of that first call chooses what it preloads, the
    road network too (:data:`PRELOAD_NETWORK`) for ``"network"``. A service
    runs one app per process, so its jobs all travel alike; a later job with
    another travel builds its model itself, as without the preload."""
    global _CONTEXT
    with _CONTEXT_LOCK:
        if _CONTEXT is None:
            if "forkserver" in multiprocessing.get_all_start_methods():
                ctx = multiprocessing.get_context("forkserver")
                ctx.set_forkserver_preload(PRELOAD_NETWORK if travel in ("network", "") else PRELOAD)
                _CONTEXT = ctx
            else:  # pragma: no cover - Windows
                _CONTEXT = multiprocessing.get_context("spawn")
        return _CONTEXT


# --------------------------------------------------------------------------- #
# The store, by reference
# --------------------------------------------------------------------------- #
def store_ref(store: Store) -> dict[str, Any]:
    """How a child process reopens ``store``."""
    backend = getattr(store, "backend", "")
    if backend == "sqlite":
        return {"backend": "sqlite", "path": str(store.path)}  # type: ignore[attr-defined]
    if backend == "redis":
        return {"backend": "redis", "url": store.url, "prefix": store.prefix}  # type: ignore[attr-defined]
    raise ValueError(f"a job process cannot reopen a {type(store).__name__}")


def open_store(ref: dict[str, Any]) -> Store:
    """The store named by :func:`store_ref`."""
    if ref["backend"] == "sqlite":
        from app.store.sqlite import SQLiteStore

        return SQLiteStore(ref["path"])
    from app.store.redis import RedisStore

    return RedisStore(ref["url"], prefix=ref["prefix"])


# --------------------------------------------------------------------------- #
# The child
# --------------------------------------------------------------------------- #


def _release_forkserver() -> None:
    """Close the forkserver's "alive" pipe that a forked child inherits: the
    forkserver ends when the web process does only once no one else holds it
    (and this process, dying with the forkserver, must not keep it alive)."""
    try:
        from multiprocessing import forkserver

        server: Any = vars(forkserver)["_forkserver"]
        fd = getattr(server, "_forkserver_alive_fd", None)
        if fd is not None:
            os.close(fd)
            server._forkserver_alive_fd = None
    except (ImportError, AttributeError, KeyError, OSError):  # pragma: no cover - another Python
        pass


def _die_with_parent() -> None:
    """Have the kernel SIGKILL this process when its parent ends (Linux). The
    parent is the forkserver, which ends with the web process."""
    _release_forkserver()
    die_with_parent()


class _PipeHandler(logging.Handler):
    """Sends a job process's log records to its parent, which logs them."""

    def __init__(self, connection: multiprocessing.connection.Connection) -> None:
        super().__init__()
        self.connection = connection

    def emit(self, record: logging.LogRecord) -> None:
        try:
            data = dict(record.__dict__)
            data.update(msg=record.getMessage(), args=None, exc_info=None, exc_text=None, stack_info=None)
            data["processName"] = "job process"
            with self.lock:  # type: ignore[union-attr]
                self.connection.send(("log", data))
        except Exception:  # noqa: BLE001 - never fail a job for a log line
            pass


def adopt_environ(environ: dict[str, str] | None) -> None:
    """Make this process's ``DOORSTEP_*`` variables exactly ``environ`` (None: keep them)."""
    if environ is None:
        return
    for key in [k for k in os.environ if k.startswith("DOORSTEP_") and k not in environ]:
        del os.environ[key]
    os.environ.update(environ)


def child_main(spec: dict[str, Any], report: multiprocessing.connection.Connection | None = None) -> None:
    """The job process: limits, store, travel by name, :func:`run_job`.

    Exits 0 when the job finished (succeeded, or failed and recorded), 1 when
    :func:`run_job` raised (the failure is recorded on the job). Sends its
    peak resident memory (kB) on ``report`` before it ends."""
    _die_with_parent()
    adopt_environ(spec.get("environ"))
    apply_process_limits(int(spec.get("memory_mb", 0)), int(spec.get("nice", 0)))
    if report is not None:  # log through the parent's handlers (a job's logs name ids and counts only)
        root = logging.getLogger()
        for handler in list(root.handlers):
            root.removeHandler(handler)
        root.addHandler(_PipeHandler(report))
        root.setLevel(int(spec.get("log_level", logging.INFO)))
    code = 0
    store = open_store(spec["store"])
    try:
        env = JobEnv(
            store=store,
            travel=lambda: job_travel(spec["travel"]).get(),  # the forkserver's own when it preloaded it
            webhook=Webhook(spec.get("webhook_url"), spec.get("webhook_timeout_s", 2.0)),
            background_webhook=False,  # the process ends after the job: send before that
        )
        run_job(env, spec["job_id"], spec)
    except JobLost:
        code = 0
    except BaseException:  # noqa: BLE001 - recorded on the job by run_job; no traceback on stderr (it may quote the input)
        code = 1
    finally:
        try:
            store.close()
        finally:
            if report is not None:
                try:
                    usage = resource.getrusage(resource.RUSAGE_SELF)
                    report.send(("peak", usage.ru_maxrss))
                    report.send(("cpu", usage.ru_utime + usage.ru_stime))
                    report.close()
                except Exception:  # noqa: BLE001 - the report is best effort
                    pass
    sys.stdout.flush()
    sys.exit(code)


# --------------------------------------------------------------------------- #
# The parent
# --------------------------------------------------------------------------- #
def _proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM and VmSize of a process in kB ({} when it is gone)."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM", "VmSize"):
                    out[key] = int(value.split()[0])
    except (OSError, ValueError):
        pass
    return out


@dataclass
class ChildReport:
    """How a job process ended (kept for the last jobs; ``bench/memory.py``)."""

    job_id: str
    exitcode: int | None = None
    peak_rss_kb: int = 0
    seconds: float = 0.0
    start_s: float = 0.0  # from asking for the process to its first sign of life
    error_code: str | None = None
    cpu_s: float = 0.0  # the process's CPU time (user + system), as it reported it before ending (0: unknown)


@dataclass
class _Child:
    job_id: str
    process: Any  # multiprocessing.process.BaseProcess
    report: multiprocessing.connection.Connection
    started: float
    deadline: float
    time_limit_s: float | None
    last_beat: float = 0.0
    peak_rss_kb: int = 0
    last_vm_kb: int = 0
    kill_code: str | None = None
    kill_message: str = ""
    start_s: float = 0.0
    cpu_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class ProcessJobRunner(JobRunner):
    """Runs each planning job in a child process (see the module's doc)."""

    runner_name = "process"
    owns_queued = True

    def __init__(self, store: Store, travel: TravelProvider, webhook: Webhook, workers: int = 1,
                 heartbeat_timeout_s: float = 30.0, limits: JobLimits | None = None) -> None:
        super().__init__(store, travel, webhook, heartbeat_timeout_s, limits)
        self.workers = max(1, int(workers))
        self._store_ref = store_ref(store)
        self._pending: collections.deque[tuple[str, dict[str, Any], float | None]] = collections.deque()
        self._running: dict[str, _Child] = {}
        self._starting: set[str] = set()
        self._cond = threading.Condition()
        self._closed = False
        #: How the last jobs' processes ended, by job id (newest last).
        self.reports: collections.OrderedDict[str, ChildReport] = collections.OrderedDict()
        failed = self.reap_all()  # jobs a dead process left queued or running
        if failed:
            log.warning("%d job(s) left by a process that ended were marked failed", failed)
        self._supervisor = threading.Thread(target=self._supervise, name="doorstep-jobs", daemon=True)
        self._supervisor.start()

    # -- submitting --------------------------------------------------------- #
    def _check_can_start(self) -> None:
        if self._closed:
            raise RuntimeError("the job runner is shut down")
        self.travel.job_travel()  # ValueError for a travel model a child cannot rebuild

    def _start(self, job: Job, spec: dict[str, Any]) -> None:
        spec = {
            **spec,
            "job_id": job.id,
            "store": self._store_ref,
            "travel": self.travel.job_travel(),
            "webhook_url": self.webhook.url,
            "webhook_timeout_s": self.webhook.timeout_s,
            "memory_mb": self.limits.memory_mb,
            "nice": self.limits.nice,
            "log_level": logging.DEBUG if logging.getLogger("doorstep").isEnabledFor(logging.DEBUG) else logging.INFO,
            "environ": doorstep_environ(),
        }
        with self._cond:
            self._pending.append((job.id, spec, job.time_limit_s))
            self._cond.notify_all()

    # -- reading ------------------------------------------------------------ #
    def _mine(self, job_id: str) -> bool:
        with self._cond:
            return job_id in self._running or job_id in self._starting or any(p[0] == job_id for p in self._pending)

    def reap(self, job: Job) -> Job:
        if self._mine(job.id):  # supervised here: the supervisor records how it ends
            return job
        return super().reap(job)

    def running_pids(self) -> dict[str, int]:
        """Job id → pid of the job processes running now."""
        with self._cond:
            return {job_id: c.process.pid for job_id, c in self._running.items()}

    # -- supervising -------------------------------------------------------- #
    def _supervise(self) -> None:
        while True:
            with self._cond:
                if self._closed:
                    return
                starting = []
                while self._pending and len(self._running) + len(self._starting) < self.workers:
                    starting.append(self._pending.popleft())
                    self._starting.add(starting[-1][0])
            for job_id, spec, time_limit_s in starting:  # outside the lock: the first start takes a while
                child = self._launch(job_id, spec, time_limit_s)
                with self._cond:
                    self._starting.discard(job_id)
                    if child is not None:
                        self._running[job_id] = child
            with self._cond:
                if not self._running:
                    if not self._pending and not self._closed:
                        self._cond.wait()
                    continue
                children = list(self._running.values())
            for child in children:
                try:
                    self._check(child)
                except Exception as exc:  # noqa: BLE001 - never let the supervisor die
                    log.error("job %s: supervising failed: %s", child.job_id, type(exc).__name__)
            with self._cond:
                if not self._closed:
                    self._cond.wait(self.limits.poll_s)

    def _launch(self, job_id: str, spec: dict[str, Any], time_limit_s: float | None) -> _Child | None:
        ctx = job_context(spec["travel"])
        asked = time.monotonic()
        receive, send = ctx.Pipe(duplex=False)
        try:
            process = ctx.Process(target=child_main, args=(spec, send), name=f"doorstep-job-{job_id[:8]}",
                                  daemon=False)
            process.start()
        except Exception as exc:  # noqa: BLE001
            receive.close()
            send.close()
            log.error("job %s: the job process did not start: %s", job_id, type(exc).__name__)
            self._fail(job_id, SOLVER_CRASHED, f"the job process did not start ({type(exc).__name__})")
            return None
        send.close()  # the child holds its end
        started = time.monotonic()
        wall = self.limits.wall_clock_for(time_limit_s)
        log.info("job %s: process %d started (wall-clock cap %.0f s, memory cap %s MB)", job_id, process.pid, wall,
                 self.limits.memory_mb or "no")
        return _Child(job_id, process, receive, started, started + wall, time_limit_s, last_beat=started,
                      start_s=started - asked)

    def _drain(self, child: _Child) -> None:
        """Log what the child logged; note its peak memory and CPU time when it sends them."""
        try:
            while child.report.poll(0):
                kind, data = child.report.recv()
                if kind == "log":
                    record = logging.makeLogRecord(data)
                    logger = logging.getLogger(record.name)
                    if logger.isEnabledFor(record.levelno):
                        logger.handle(record)
                elif kind == "peak":
                    child.peak_rss_kb = max(child.peak_rss_kb, int(data))
                elif kind == "cpu":
                    child.cpu_s = float(data)
        except (EOFError, OSError, ValueError, TypeError):
            pass

    def _check(self, child: _Child) -> None:
        self._drain(child)
        if child.process.exitcode is not None:
            self._finish(child)
            return
        status = _proc_status(child.process.pid)
        rss, vm = status.get("VmRSS", 0), status.get("VmSize", 0)
        child.peak_rss_kb = max(child.peak_rss_kb, status.get("VmHWM", rss))
        child.last_vm_kb = vm or child.last_vm_kb
        now = time.monotonic()
        cap_kb = self.limits.memory_mb * 1024
        if child.kill_code is not None:
            return  # killed already; waiting for it to end
        if cap_kb and rss > cap_kb:
            self._kill(child, MEMORY_LIMIT, f"the job used more than the job memory cap of {self.limits.memory_mb} MB")
        elif now > child.deadline:
            self._kill(child, TIME_LIMIT, f"the job ran past its wall-clock cap of {child.deadline - child.started:.0f} s")
        elif now - child.last_beat >= BEAT_S:
            child.last_beat = now
            self._beat(child)

    def _kill(self, child: _Child, code: str, message: str) -> None:
        child.kill_code, child.kill_message = code, message
        log.warning("job %s: stopping its process: %s", child.job_id, code)
        try:
            child.process.kill()
        except (OSError, ValueError):
            pass

    def _beat(self, child: _Child) -> None:
        """Heartbeat, and the solving progress as the share of the time limit used."""
        beat(self.store, child.job_id)

    def _finish(self, child: _Child) -> None:
        process = child.process
        process.join(timeout=1.0)
        exitcode = process.exitcode
        self._drain(child)
        child.report.close()
        code: str | None = None
        if child.kill_code is not None:
            code, message = child.kill_code, child.kill_message
        elif exitcode != 0:
            code, message = describe_exit(exitcode)
            cap_kb = self.limits.memory_mb * 1024
            if (exitcode in (-signal.SIGABRT, -signal.SIGSEGV, -signal.SIGKILL) and cap_kb
                    and child.last_vm_kb >= 0.9 * cap_kb):  # an allocation past the cap that aborted natively
                code = MEMORY_LIMIT
                message = f"{message}, at the job memory cap of {self.limits.memory_mb} MB"
        else:
            message = "the job process ended without recording a result"
            code = SOLVER_CRASHED
        recorded = self._fail(child.job_id, code, message) if code else None
        try:
            final = self.store.get_job(child.job_id)
        except Exception as exc:  # noqa: BLE001 - the store is down: the reaper fails the job once it is back
            log.error("job %s: final state not read: %s", child.job_id, type(exc).__name__)
            final = None
        report = ChildReport(child.job_id, exitcode, child.peak_rss_kb, time.monotonic() - child.started,
                             child.start_s, final.error_code if final is not None else None, child.cpu_s)
        log.info("job %s: process ended (exit %s, peak RSS %d MB, %.1f s)%s", child.job_id, exitcode,
                 child.peak_rss_kb // 1024, report.seconds, f": {recorded}" if recorded else "")
        try:
            process.close()
        except ValueError:
            pass
        with self._cond:
            self._running.pop(child.job_id, None)
            self.reports[child.job_id] = report
            while len(self.reports) > 100:
                self.reports.popitem(last=False)
            self._cond.notify_all()

    def _fail(self, job_id: str, code: str, message: str) -> str | None:
        """Fail the job unless it is finished already; returns the code when it did."""
        try:
            updated = self.store.update_job(job_id, if_status=tuple(ACTIVE), status="failed",
                                            error=message[:MAX_ERROR_CHARS], error_code=code)
        except Exception as exc:  # noqa: BLE001
            log.error("job %s: failure not recorded: %s", job_id, type(exc).__name__)
            return None
        if updated is None:
            return None
        log.warning("job %s failed: %s", job_id, code)
        return code

    # -- stopping ----------------------------------------------------------- #
    def shutdown(self, wait: bool = True) -> None:
        """Stop: queued jobs and running children are failed (``shutdown``);
        children get SIGTERM, then SIGKILL after :data:`TERMINATE_GRACE_S`."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            pending = list(self._pending)
            self._pending.clear()
            self._cond.notify_all()
        self._supervisor.join(timeout=10)
        for job_id, _spec, _limit in pending:
            self._fail(job_id, SHUTDOWN, "the service stopped before the job started")
        children = list(self._running.values())
        for child in children:
            if child.process.exitcode is None:
                child.kill_code = child.kill_code or SHUTDOWN
                child.kill_message = child.kill_message or "the service stopped before the job finished"
                child.process.terminate()
        deadline = time.monotonic() + TERMINATE_GRACE_S
        for child in children:
            child.process.join(timeout=max(0.0, deadline - time.monotonic()))
            if child.process.exitcode is None:
                child.process.kill()
                child.process.join(timeout=5)
            self._finish(child)


# --------------------------------------------------------------------------- #
# Measuring (bench/memory.py)
# --------------------------------------------------------------------------- #
def measure_plan_job(problem: Any, travel: str, limits: JobLimits, data_dir: str | Path, *,
                     wall_clock_s: float | None = None) -> Any:
    """Run one plan job of ``problem`` as the service does (a job process
    under ``limits``, travel by name, a SQLite store in ``data_dir``) and
    return ``(peak_rss_mb, outcome, report)`` as a simple namespace; outcome
    is "ok" or the job's error code."""
    from types import SimpleNamespace

    from app.store.sqlite import SQLiteStore

    if wall_clock_s is not None:
        limits = limits.replace(wall_clock_s=wall_clock_s)
    store = SQLiteStore(Path(data_dir) / "doorstep.sqlite3")
    runner = ProcessJobRunner(store, TravelProvider(travel), Webhook(None), workers=1, limits=limits)
    try:
        job = runner.submit(problem)
        while True:
            with runner._cond:
                report = runner.reports.get(job.id)
            if report is not None:
                break
            time.sleep(0.1)
        final = store.get_job(job.id)
        outcome = "ok" if final is not None and final.status == "succeeded" else (
            final.error_code if final is not None and final.error_code else "failed")
        return SimpleNamespace(peak_rss_mb=report.peak_rss_kb / 1024, outcome=outcome, report=report, job=final)
    finally:
        runner.shutdown()
        store.close()
