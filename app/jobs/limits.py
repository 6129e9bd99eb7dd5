"""Resource limits of planning jobs: what a job process may use, and how big
a request may be.

The figures behind the defaults are measured by ``bench/memory.py`` (see
docs/operations.md, "Resource limits"). Every field is set, in order of
precedence, by the app config ``JOB_LIMITS`` (a dict), the environment
(``DOORSTEP_JOBS_<FIELD>``, e.g. ``DOORSTEP_JOBS_MEMORY_MB=3072``) and the
``[jobs]`` section of ``config/defaults.toml``.
"""

from __future__ import annotations

import dataclasses
import os
import resource
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from solver.config import defaults

__all__ = ["JobLimits", "SizeViolation", "apply_process_limits"]


@dataclass(frozen=True)
class SizeViolation:
    """A request bigger than a size limit: which one, its maximum, what came."""

    field: str
    max: float
    got: float

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "max": self.max, "got": self.got}


@dataclass(frozen=True)
class JobLimits:
    """Limits of one planning job.

    Parameters
    ----------
    memory_mb
        Address-space cap of the job process (``RLIMIT_AS``), and the resident
        size at which the parent kills it; 0: no cap.
    wall_clock_s
        Wall-clock cap of a job; 0 derives it from the job's search time
        limit: ``time_limit_s * wall_clock_factor + wall_clock_extra_s``.
    wall_clock_factor, wall_clock_extra_s
        See ``wall_clock_s``; the extra covers geocoding, the travel matrix,
        checking and publishing.
    nice
        Added to the job process's CPU niceness (web requests stay fast).
    max_visits, max_agents
        Largest day accepted (visits of the day plus added visits; crews).
    max_locations
        Largest number of locations accepted: every address of every visit
        plus each crew's start and end. Travel matrices hold locations² cells
        per travel mode, so memory grows with its square.
    max_time_limit_s
        Largest search time limit accepted.
    poll_s
        How often the parent checks its job processes (memory, clock, exit).
    split_above
        Days with more visits are planned in parts (:mod:`app.jobs.split`;
        0: never); such days may have up to ``max_split_visits`` visits and
        ``max_split_locations`` locations, since no travel matrix of the
        whole day is built.
    split_part_visits, split_polish_share
        Most visits per part; share of the time limit polishing the borders.
    max_split_visits, max_split_locations
        Size limits of days planned in parts.
    """

    memory_mb: int = 2048
    wall_clock_s: float = 0.0
    wall_clock_factor: float = 1.5
    wall_clock_extra_s: float = 120.0
    nice: int = 10
    max_visits: int = 2500
    max_agents: int = 300
    max_locations: int = 4000
    max_time_limit_s: float = 600.0
    poll_s: float = 0.2
    split_above: int = 1500
    split_part_visits: int = 1250
    split_polish_share: float = 0.15
    max_split_visits: int = 10000
    max_split_locations: int = 20000

    @classmethod
    def from_config(cls, overrides: Mapping[str, Any] | JobLimits | None = None) -> JobLimits:
        """Defaults, then ``[jobs]`` of the TOML config, then the environment,
        then ``overrides`` (unknown keys are an error)."""
        if isinstance(overrides, JobLimits):
            return overrides
        values: dict[str, Any] = {}
        section = defaults().get("jobs", {})
        names = {f.name: f for f in dataclasses.fields(cls)}
        for name in names:
            if name in section:
                values[name] = section[name]
            env = os.environ.get(f"DOORSTEP_JOBS_{name.upper()}")
            if env:
                values[name] = env
        unknown = set(overrides or {}) - set(names)
        if unknown:
            raise ValueError(f"unknown JOB_LIMITS key(s): {', '.join(sorted(unknown))}")
        values.update(overrides or {})
        typed: dict[str, Any] = {}
        for name, raw in values.items():
            kind = int if names[name].type in ("int", int) else float
            typed[name] = kind(float(raw)) if kind is int else kind(raw)
        return cls(**typed)

    def replace(self, **changes: Any) -> JobLimits:
        return dataclasses.replace(self, **changes)

    def wall_clock_for(self, time_limit_s: float | None) -> float:
        """The wall-clock cap of a job whose search may take ``time_limit_s``."""
        if self.wall_clock_s > 0:
            return self.wall_clock_s
        return (time_limit_s or 10.0) * self.wall_clock_factor + self.wall_clock_extra_s

    def check_size(self, *, visits: int, agents: int, locations: int, time_limit_s: float | None) -> SizeViolation | None:
        """The first limit the request breaks, or None (a day past
        ``split_above`` visits is held to the limits of split days)."""
        split = 0 < self.split_above < visits and agents > 1
        for field, maximum, got in (
            ("visits", self.max_split_visits if split else self.max_visits, visits),
            ("agents", self.max_agents, agents),
            ("locations", self.max_split_locations if split else self.max_locations, locations),
            ("options.time_limit_s", self.max_time_limit_s, time_limit_s or 0.0),
        ):
            if maximum and got > maximum:
                return SizeViolation(field, maximum, got)
        return None


def apply_process_limits(memory_mb: int, nice: int) -> None:
    """In a job process: cap its address space at ``memory_mb`` (0: no cap;
    never above an existing hard limit) and lower its CPU priority by ``nice``."""
    if memory_mb > 0:
        cap = int(memory_mb) * 1024 * 1024
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            cap = min(cap, hard)
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    if nice > 0:
        try:
            os.nice(int(nice))
        except OSError:  # not allowed here: run at the same priority
            pass
