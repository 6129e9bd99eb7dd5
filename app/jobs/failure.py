"""Why a job failed: machine-readable error codes.

A failed job carries ``error_code`` (one of :data:`ERROR_CODES`) and
``error``, a short message for people. Messages made here never hold a
traceback or anything from the request (borrower names, phones, addresses):
they name the code, the limit and the signal only.

``solver_crashed``
    The process solving the job died: a native abort (OR-Tools ``Check
    failed``), a segmentation fault, any other fatal signal, or an exit
    without a result.
``memory_limit``
    The job needed more memory than the job memory cap (``[jobs] memory_mb``).
``time_limit``
    The job ran past its wall-clock cap (the search time limit plus the
    geocoding and matrix allowance).
``worker_lost``
    The process or worker running the job went away (found by the reaper).
``shutdown``
    The service stopped before the job finished.
``job_error``
    Any other error raised while planning (invalid plan, missing version …).
"""

from __future__ import annotations

import os
import signal

SOLVER_CRASHED = "solver_crashed"
MEMORY_LIMIT = "memory_limit"
TIME_LIMIT = "time_limit"
WORKER_LOST = "worker_lost"
SHUTDOWN = "shutdown"
JOB_ERROR = "job_error"

#: Every code a failed job may carry.
ERROR_CODES: tuple[str, ...] = (SOLVER_CRASHED, MEMORY_LIMIT, TIME_LIMIT, WORKER_LOST, SHUTDOWN, JOB_ERROR)

#: What a job process that died of a signal most likely met.
_SIGNAL_CAUSES: dict[int, str] = {
    int(signal.SIGABRT): "a native abort (e.g. an OR-Tools check failed)",
    int(signal.SIGSEGV): "a segmentation fault",
    int(signal.SIGBUS): "a bus error",
    int(signal.SIGILL): "an illegal instruction",
    int(signal.SIGFPE): "an arithmetic fault",
    int(signal.SIGKILL): "SIGKILL (e.g. the system's out-of-memory killer)",
}

#: Exception class names (any module) that mean the job ran out of time.
_TIMEOUT_EXCEPTIONS = frozenset({"JobTimeoutException", "TimeoutError", "WallClockExceeded"})


def code_for_exception(exc: BaseException) -> str:
    """The error code of an exception raised while running a job."""
    if isinstance(exc, MemoryError):
        return MEMORY_LIMIT
    if type(exc).__name__ in _TIMEOUT_EXCEPTIONS:
        return TIME_LIMIT
    return JOB_ERROR


def signal_name(signal_no: int) -> str:
    """``SIGSEGV`` for 11, ``signal 99`` for an unknown number."""
    try:
        return signal.Signals(signal_no).name
    except ValueError:
        return f"signal {signal_no}"


def describe_exit(exitcode: int | None) -> tuple[str, str]:
    """``(code, message)`` for a job process that ended without recording a
    result: ``exitcode`` as :attr:`multiprocessing.Process.exitcode` (minus
    the signal number when killed by a signal)."""
    if exitcode is not None and exitcode < 0:
        signo = -exitcode
        name = signal_name(signo)
        what = _SIGNAL_CAUSES.get(signo, name)
        return SOLVER_CRASHED, f"the solver process died of {what}" + (f" ({name})" if what != name else "")
    return SOLVER_CRASHED, f"the solver process exited with status {exitcode} before the job finished"


def describe_wait_status(status: int) -> tuple[str, str]:
    """:func:`describe_exit` for an :func:`os.waitpid` status."""
    if os.WIFSIGNALED(status):
        return describe_exit(-os.WTERMSIG(status))
    return describe_exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else status)
