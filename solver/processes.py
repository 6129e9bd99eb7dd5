"""Process hygiene for the searches and jobs that run in child processes.

:func:`die_with_parent` asks the kernel (Linux ``PR_SET_PDEATHSIG``) to kill
the calling process when its parent ends, so that a search or job whose
parent was killed (a time or memory cap, a lost worker, a stopped server)
stops at once instead of solving on, unseen and outside every cap.
:func:`process_state` reads whether a process still runs (a zombie, ended but
not yet reaped by its parent, has state ``"Z"``).
"""

from __future__ import annotations

import ctypes
import os
import signal

__all__ = ["die_with_parent", "process_state"]

#: prctl option: the signal a process gets when its parent ends (Linux).
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Have the kernel SIGKILL this process when its parent ends (Linux; a
    no-op elsewhere). Exits at once when the parent is gone already."""
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return
    if os.getppid() != parent:  # the parent ended before the call
        os._exit(1)


def process_state(pid: int) -> str | None:
    """The state letter of process ``pid`` (Linux ``/proc/<pid>/stat``: ``"R"``,
    ``"S"``, ``"Z"`` for a zombie, ...); None when it cannot be read (no such
    process, or not Linux)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None
