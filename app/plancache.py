"""In-process caches of published plan versions and rendered itineraries.

A published plan version never changes (a new plan, re-plan or booking
publishes a new version), so everything computed from ``(date, version)``
alone can be kept: the parsed :class:`Plan` and :class:`Problem`, and each
crew's itinerary as :func:`app.api.render.itinerary` builds it. What *can*
change under a version — the visits' recorded states (arrived, completed) —
is read from the store on every request, and is part of the key of the
rendered bytes, so a recorded outcome shows at once. Whether the caller may
see the borrower's contact is part of the key as well.

The hot read path, ``GET /v1/agents/{id}/itinerary`` as JSON, then costs the
token lookup, two small store reads (the date's current version number, the
crew's visit states) and a dictionary look-up, instead of reading and
parsing the whole day (hundreds of kB for a day of 1,000 visits) and
rendering it. The cache key also gives a strong ETag, so a phone that asks
again with ``If-None-Match`` gets ``304 Not Modified``.

Caches are per app (one per gunicorn worker process), bounded (least
recently used entries go first) and thread-safe. Nothing here decides who may
read what: the view checks the caller first.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from flask import Flask, current_app

from app.store.base import Store, VisitState
from solver.model import Plan, Problem

__all__ = ["LRU", "Day", "PlanCache", "Rendered", "personalised", "plan_cache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

#: Parsed plan versions kept per process (a day of 1,000 visits is a few MB parsed).
DAYS = 8
#: Crews' base itineraries kept per process.
ITINERARIES = 2048
#: Rendered response bodies kept per process (a crew's day is a few kB).
BODIES = 4096


def _code_salt() -> str:
    """Changes when the code that renders itineraries changes, so ETags of an
    older release never match the bodies of a newer one."""
    digest = hashlib.blake2b(digest_size=8)
    here = Path(__file__).resolve().parent
    for name in ("api/render.py", "api/agents.py", "plancache.py"):
        try:
            digest.update((here / name).read_bytes())
        except OSError:
            digest.update(name.encode())
    return digest.hexdigest()


_SALT = _code_salt()


class LRU(Generic[K, V]):
    """A thread-safe dictionary of at most ``size`` entries, least recently
    used out first. :meth:`get_or_make` builds a missing value outside the
    lock (two threads may build the same value once each; both are equal)."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("an LRU needs room for at least one entry")
        self.size = size
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
                self.hits += 1
            else:
                self.misses += 1
            return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def get_or_make(self, key: K, make: Callable[[], V]) -> V:
        value = self.get(key)
        if value is None:
            value = make()
            self.put(key, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


@dataclass(frozen=True)
class Day:
    """One published plan version, parsed. Shared between requests: read only."""

    date: str
    version: int
    plan: Plan
    problem: Problem
    agents: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Rendered:
    """A response body and its strong ETag (without quotes)."""

    etag: str
    body: bytes


class PlanCache:
    """Parsed plan versions, base itineraries and rendered bodies of one app."""

    def __init__(self, days: int = DAYS, itineraries: int = ITINERARIES, bodies: int = BODIES) -> None:
        self.days: LRU[tuple[str, int], Day] = LRU(days)
        self.itineraries: LRU[tuple[str, int, str], dict[str, Any]] = LRU(itineraries)
        self.bodies: LRU[tuple[Any, ...], Rendered] = LRU(bodies)

    def day(self, store: Store, date: str, version: int) -> Day | None:
        """The parsed plan version (None when the store has no such version)."""
        key = (date, version)
        day = self.days.get(key)
        if day is None:
            stored = store.get_plan(date, version)
            if stored is None:
                return None
            problem_json = store.get_problem(date, version)
            if problem_json is None:  # published together with the plan: should not happen
                raise RuntimeError(f"plan {date} v{version} has no problem stored")
            plan = Plan.model_validate_json(stored.plan_json)
            problem = Problem.model_validate_json(problem_json)
            day = Day(date, version, plan, problem, frozenset(route.agent_id for route in plan.routes))
            self.days.put(key, day)
        return day

    def itinerary(self, day: Day, agent_id: str) -> dict[str, Any]:
        """The crew's itinerary as :func:`app.api.render.itinerary` builds it
        (borrower contact included, no visit states). Read only."""
        from app.api.render import itinerary

        return self.itineraries.get_or_make(
            (day.date, day.version, agent_id), lambda: itinerary(day.problem, day.plan, agent_id, version=day.version)
        )

    @staticmethod
    def etag(key: tuple[Any, ...]) -> str:
        """A strong ETag for a rendering key (same key, same bytes)."""
        return hashlib.blake2b(repr((_SALT, key)).encode("utf-8"), digest_size=12).hexdigest()

    def rendered(self, key: tuple[Any, ...], render: Callable[[], bytes]) -> Rendered:
        """The body for ``key``, rendered once."""
        return self.bodies.get_or_make(key, lambda: Rendered(self.etag(key), render()))


def personalised(base: dict[str, Any], states: Sequence[VisitState], show_borrower: bool,
                 show_amounts: bool = True) -> dict[str, Any]:
    """A copy of a base itinerary with each stop's recorded state, the
    borrower contact removed unless ``show_borrower`` and the case's amount
    unless ``show_amounts``. ``states`` follow the stops' order."""
    stops = []
    for stop, state in zip(base["stops"], states, strict=True):
        copy = dict(stop)
        copy["status"], copy["result"] = state.status, state.result
        if not show_borrower:
            copy["borrower"] = None
        if not show_amounts and copy.get("case"):
            copy["case"] = {**copy["case"], "overdue_amount": None}
        stops.append(copy)
    return {**base, "stops": stops}


def plan_cache(app: Flask | None = None) -> PlanCache:
    """The app's cache (made on first use)."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    cache = app.extensions.get("doorstep_plan_cache")
    if cache is None:
        cache = app.extensions.setdefault("doorstep_plan_cache", PlanCache())
    return cache  # type: ignore[no-any-return]
