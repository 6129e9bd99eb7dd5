"""Measure the safety sweep (:func:`app.safety.sweep`, issue 15) on big days.

Every webhook deliverer runs the sweep every ``[safety] sweep_every_s`` (60 s),
and ``GET /v1/events`` runs it at most as often per process, so its cost on a
big plan matters. This plans the small test day of ``tests/conftest.py`` with
the real solver, repeats its visits and stops until the day holds ``--visits``
stops, publishes it in a real store (SQLite file, or Redis with ``--redis``),
records ``arrived`` (three hours ago) for ``--arrived`` of them, and times:

* the first sweep (it emits one ``safety.overdue`` per arrived visit);
* the next sweeps (nothing new to emit: the steady cost every minute).

Usage::

    python bench/safety_sweep.py                          # 2,000 stops, 1 % arrived, SQLite
    python bench/safety_sweep.py --visits 20000 --redis redis://127.0.0.1:6379/15
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.cases import SafetyRules
from app.events import new_event
from app.safety import sweep
from app.store.base import OutcomeWrite, Store
from app.store.redis import RedisStore
from app.store.sqlite import SQLiteStore
from solver import solve
from solver.model import Plan, Problem
from solver.travel import StraightLineTravel


def small_day(date: str) -> tuple[Problem, Plan]:
    """The six-visit, two-crew test day, planned by the real solver."""
    from tests.conftest import _PAYLOAD

    payload: dict[str, Any] = json.loads(json.dumps(_PAYLOAD))
    payload["date"] = date
    problem = Problem.model_validate(payload)
    return problem, solve(problem, StraightLineTravel())


def big_day(problem: Problem, plan: Plan, stops: int) -> tuple[Problem, Plan]:
    """The day with its visits and stops repeated until it has ``stops`` stops."""
    planned = [s for r in plan.routes for s in r.stops]
    copies = max(1, -(-stops // len(planned)))
    visits = {v.id: v for v in problem.visits}
    new_visits = []
    routes = []
    for route in plan.routes:
        new_stops = []
        for k in range(copies):
            for stop in route.stops:
                new_stops.append(stop.model_copy(update={"visit_id": f"{stop.visit_id}-{k}"}))
                new_visits.append(visits[stop.visit_id].model_copy(update={"id": f"{stop.visit_id}-{k}"}))
        routes.append(route.model_copy(update={"stops": new_stops}))
    return problem.model_copy(update={"visits": new_visits}), plan.model_copy(update={"routes": routes})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--visits", type=int, default=2000, help="Stops in the day")
    parser.add_argument("--arrived", type=float, default=0.01, help="Share of stops arrived and not completed")
    parser.add_argument("--repeat", type=int, default=5, help="Steady-state sweeps timed")
    parser.add_argument("--profile", action="store_true", help="Profile one steady sweep")
    parser.add_argument("--redis", default=None, help="A Redis URL (keys under a prefix of their own, removed)")
    args = parser.parse_args()

    now = dt.datetime.now(dt.UTC)
    date = now.date().isoformat()
    problem, plan = big_day(*small_day(date), args.visits)
    store: Store
    folder = tempfile.TemporaryDirectory()
    if args.redis:
        store = RedisStore(args.redis, prefix=f"doorstep-bench:{uuid.uuid4().hex[:8]}:")
    else:
        store = SQLiteStore.in_dir(folder.name)
    try:
        store.publish_plan(date, plan.model_dump_json(), problem.model_dump_json())
        ids = [s.visit_id for r in plan.routes for s in r.stops]
        step = max(1, round(1 / args.arrived)) if args.arrived > 0 else len(ids) + 1
        arrived = ids[::step]
        at = (now - dt.timedelta(hours=3)).isoformat()
        for visit_id in arrived:
            record = {"status": "arrived", "at": at, "visit_id": visit_id, "actor": {"role": "agent"}}
            store.record_outcome(OutcomeWrite(date=date, visit_id=visit_id, agent_id=None, status="arrived",
                                              result=None, allowed_from=frozenset({None}),
                                              outcome_json=json.dumps(record),
                                              events=[new_event("outcome.recorded", {"visit_id": visit_id})]))
        rules = SafetyRules()
        started = time.perf_counter()
        first = sweep(store, rules, now)
        first_s = time.perf_counter() - started
        steady = []
        if args.profile:
            import cProfile

            cProfile.runctx("sweep(store, rules, now)", globals(), locals(), sort="cumtime")
        for _ in range(args.repeat):
            started = time.perf_counter()
            assert sweep(store, rules, now) == []
            steady.append(time.perf_counter() - started)
        backend = "redis" if args.redis else "sqlite"
        print(f"safety sweep, {backend}: {len(ids)} stops, {len(arrived)} arrived and not completed")
        print(f"  first sweep: {first_s * 1000:.0f} ms, {len(first)} safety.overdue emitted")
        print(f"  next sweeps: median {statistics.median(steady) * 1000:.0f} ms, "
              f"max {max(steady) * 1000:.0f} ms over {len(steady)} (0 emitted)")
    finally:
        if isinstance(store, RedisStore):
            store.drop_all()
        store.close()
        folder.cleanup()


if __name__ == "__main__":
    main()
