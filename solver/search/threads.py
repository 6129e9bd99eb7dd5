"""How many searches run at once when the plan does not say: :func:`search_threads`.

``Options.threads`` PyVRP searches run side by side
(:mod:`solver.search.portfolio`). When a plan leaves it unset, the configured
``[planning] threads`` (environment ``DOORSTEP_PLANNING_THREADS``) decides;
when that is 0 (the default), the machine does: the cores this process may
run on less the load of *other* work, at least one
(:func:`threads_for`). On a 2-core machine already busy with other plans, a
second search only takes time from the first (GH 1000, 60 s, loaded: 3.55 %
over the best known with 2 threads, 2.04 % with 1).

Other work is the 1-minute load average less this process's own share (its
CPU time, its children's included, over its lifetime, capped at the cores: a
long benchmark that keeps both cores busy does not read its own load as
other work), or the tasks runnable right now when fewer (a worker's previous
plan, still in the average, has ended).
"""

from __future__ import annotations

import math
import os
import time
from typing import TYPE_CHECKING

from solver.config import defaults
from solver.search.portfolio import PortfolioParams

if TYPE_CHECKING:
    from solver.model import Options

#: The environment variable that overrides ``[planning] threads``.
THREADS_ENV = "DOORSTEP_PLANNING_THREADS"


def available_cores() -> int:
    """Cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def threads_for(cores: int, load: float, own_load: float = 0.0, running: float | None = None,
                spare_share: float = 0.5) -> int:
    """Searches to run on ``cores`` cores with a 1-minute load average of
    ``load``, ``own_load`` of it this process's own, and ``running`` other
    tasks runnable right now (None: not known).

    Other work takes ``load - own_load`` cores, or ``running`` when fewer: the
    load average remembers a minute, and work that has ended since (this
    worker's previous plan) no longer competes. The rest of the cores are
    free, a core counting as free when at least ``spare_share`` of it is.
    Between one and ``cores``.

    Examples
    --------
    >>> threads_for(2, 0.3)
    2
    >>> threads_for(2, 6.0)
    1
    >>> threads_for(8, 3.2, own_load=1.0)
    6
    >>> threads_for(2, 2.0, running=0.0)
    2
    """
    other = max(0.0, load - max(0.0, own_load))
    if running is not None:
        other = min(other, max(0.0, running))
    free = cores - other
    return max(1, min(cores, math.floor(free + 1 - spare_share)))


def own_load(cores: int) -> float:
    """This process's average CPU use (its children's included) over its
    lifetime, in cores (at most ``cores``): its likely share of the load average."""
    usage = os.times()
    cpu = usage.user + usage.system + usage.children_user + usage.children_system
    try:
        with open(f"/proc/{os.getpid()}/stat") as handle:
            start_ticks = int(handle.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as handle:
            uptime = float(handle.read().split()[0])
        lifetime = uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        lifetime = 0.0
    if lifetime <= 0:  # pragma: no cover - not Linux
        return 0.0
    # the load average looks back about a minute: a young process has added little to it yet
    return min(float(cores), cpu / lifetime) * min(1.0, lifetime / 60.0)


def running_now(samples: int = 3, interval_s: float = 0.002) -> float | None:
    """Tasks runnable right now besides this one (``procs_running`` of
    ``/proc/stat``, the mean of ``samples`` reads ``interval_s`` apart);
    None where there is no ``/proc/stat``."""
    counts: list[int] = []
    for k in range(samples):
        if k:
            time.sleep(interval_s)
        try:
            with open("/proc/stat") as handle:
                line = next((x for x in handle if x.startswith("procs_running")), None)
        except OSError:  # pragma: no cover - not Linux
            return None
        if line is None:  # pragma: no cover - not Linux
            return None
        counts.append(int(line.split()[1]))
    return max(0.0, sum(counts) / len(counts) - 1)  # this task is one of them


def default_threads(params: PortfolioParams | None = None) -> int:
    """Searches to run when neither the plan nor the configuration says:
    :func:`threads_for` on this machine now, or every available core when
    :attr:`PortfolioParams.load_aware` is off or the load is unknown."""
    params = params or PortfolioParams()
    cores = available_cores()
    if not params.load_aware:
        return cores
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover - no load average on this platform
        return cores
    return threads_for(cores, load, own_load(cores), running_now(), params.spare_share)


def configured_threads() -> int:
    """``DOORSTEP_PLANNING_THREADS``, else ``[planning] threads`` of the
    configuration; 0 (decide from the machine) when neither is set."""
    value = os.environ.get(THREADS_ENV, "").strip()
    if value:
        threads = int(value)
    else:
        threads = int(defaults().get("planning", {}).get("threads", 0) or 0)
    if threads < 0:
        raise ValueError(f"{THREADS_ENV} / [planning] threads must be 0 (automatic) or more, not {threads}")
    return threads


def search_threads(options: Options, params: PortfolioParams | None = None) -> int:
    """Searches a plan runs at once: ``options.threads`` when set, else the
    configured number (:func:`configured_threads`), else :func:`default_threads`."""
    if options.threads:
        return options.threads
    return configured_threads() or default_threads(params)


__all__ = ["THREADS_ENV", "available_cores", "configured_threads", "default_threads", "own_load",
           "running_now", "search_threads", "threads_for"]
