"""Forked child processes that each send one answer back: :func:`run_forked`.

A fork inherits what the test process has loaded (the solver, the network), so a child costs a few
milliseconds where a fresh interpreter spends about a second importing; it still dies alone (a native
abort, a fault) without taking the xdist worker down.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Sequence
from typing import Any


def run_forked(target: Callable[..., None], args_of_each: Sequence[tuple[Any, ...]],
               timeout_s: float = 120.0) -> list[tuple[Any, int | None]]:
    """Start one forked process per ``args_of_each`` entry, all at once, running
    ``target(*args, sender)``; ``sender`` is the write end of a pipe for its one answer.

    Returns
    -------
    list of (answer, exit code)
        Per process, in order: what it sent (None when it sent nothing: it died, or outlasted
        ``timeout_s``) and its exit code. A process still running at the deadline is killed, so
        none outlives the call.
    """
    context = multiprocessing.get_context("fork")
    pipes = [context.Pipe(duplex=False) for _ in args_of_each]
    procs = [context.Process(target=target, args=(*args, sender)) for args, (_, sender) in zip(args_of_each, pipes)]
    for proc in procs:
        proc.start()
    for _, sender in pipes:
        sender.close()  # the children hold theirs: a child that dies leaves its receiver at EOF
    deadline = time.monotonic() + timeout_s
    answers = []
    for receiver, _ in pipes:
        try:
            answers.append(receiver.recv() if receiver.poll(max(0.0, deadline - time.monotonic())) else None)
        except EOFError:
            answers.append(None)
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            proc.kill()
            proc.join()
    return [(answer, proc.exitcode) for answer, proc in zip(answers, procs, strict=True)]
