"""Benchmark planning several dates (:func:`solver.multiday.plan_days`).

A random week in a 12 km square of Shanghai priced by straight-line travel
(``StraightLineTravel``: no network to load, so the figures are the planner's
own): crews of at most ``--per-day`` visits a day, more visits than the first
date can take, a share due by a date of the horizon (``due_by``) and a share
preferring a crew (``preferred_agents``, as follow-ups do). Every day's plan
is run through the independent checker. It prints, per date, the candidates,
the visits planned, the due visits planned on their due date, and the wall
time; then the visits planned on no date (by reason), how many preferences
were honoured, and the total time.

Usage::

    python bench/multiday.py                           # 300 visits, 12 crews, 5 dates, 2 s a date
    python bench/multiday.py --visits 600 --crews 20 --dates 7 --time-limit 5
    python bench/multiday.py --preferred-cost 0      # preferences off: how often chance honours them
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from solver.check import check_plan
from solver.multiday import Horizon, plan_days
from solver.travel import StraightLineTravel

CENTRE = (31.2300, 121.4740)
#: Degrees of latitude / longitude of about 12 km.
SPAN = (0.108, 0.126)


def make_horizon(visits: int, crews: int, dates: int, per_day: int, time_limit: float, seed: int,
                 due_share: float, preferred_share: float, preferred_cost: int = 900) -> Horizon:
    """The random horizon described in the module's docstring."""
    rng = random.Random(seed)
    first = dt.date(2026, 12, 7)
    days = [first + dt.timedelta(days=k) for k in range(dates)]

    def point() -> dict[str, float]:
        return {"lat": CENTRE[0] + (rng.random() - 0.5) * SPAN[0], "lon": CENTRE[1] + (rng.random() - 0.5) * SPAN[1]}

    agents = [{"id": f"crew-{c:02d}", "shift": {"start": "08:30", "end": "18:00"}, "start": {"location": point()},
               "max_visits": per_day, "breaks": [{"window": {"start": "11:30", "end": "13:30"}, "duration_min": 45}]}
              for c in range(crews)]
    items: list[dict[str, Any]] = []
    for i in range(visits):
        window = rng.choice([None, ("09:00", "12:00"), ("13:00", "17:00"), ("10:00", "16:00")])
        item: dict[str, Any] = {
            "id": f"v{i:04d}", "case_id": f"CASE-{i:04d}", "priority": rng.randint(0, 100),
            "duration_min": rng.choice([20, 30, 45]),
            "addresses": [{"location": point(),
                           "time_windows": [] if window is None else [{"start": window[0], "end": window[1]}]}],
        }
        if rng.random() < due_share:
            item["due_by"] = rng.choice(days).isoformat()
        if rng.random() < preferred_share:
            item["preferred_agents"] = [rng.choice(agents)["id"]]
        items.append(item)
    return Horizon.model_validate({
        "dates": [d.isoformat() for d in days], "timezone": "Asia/Shanghai", "visits": items, "agents": agents,
        "options": {"time_limit_s": time_limit, "rule_set": "none", "slot_minutes": 60,
                    "preferred_agent_cost_s": preferred_cost},
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--visits", type=int, default=300)
    parser.add_argument("--crews", type=int, default=12)
    parser.add_argument("--dates", type=int, default=5)
    parser.add_argument("--per-day", type=int, default=6, help="max visits of a crew a day")
    parser.add_argument("--time-limit", type=float, default=2.0, help="search seconds per date")
    parser.add_argument("--due-share", type=float, default=0.2)
    parser.add_argument("--preferred-share", type=float, default=0.3)
    parser.add_argument("--preferred-cost", type=int, default=900, help="options.preferred_agent_cost_s (0: off)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    horizon = make_horizon(args.visits, args.crews, args.dates, args.per_day, args.time_limit, args.seed,
                           args.due_share, args.preferred_share, args.preferred_cost)
    travel = StraightLineTravel()
    started = time.perf_counter()
    result = plan_days(horizon, travel)
    total = time.perf_counter() - started
    by_id = {v.id: v for v in horizon.visits}
    print(f"{args.visits} visits, {args.crews} crews x {args.per_day} a day, {args.dates} dates, "
          f"{args.time_limit:g} s a date, preferred_agent_cost_s {args.preferred_cost}")
    print(f"{'date':<12}{'candidates':>11}{'planned':>9}{'due today':>11}{'due made':>10}{'checker':>9}")
    for day in result.days:
        planned = {s.visit_id for r in day.plan.routes for s in r.stops}
        due = [v.id for v in day.problem.visits if v.due_by == day.date]
        report = check_plan(day.problem, day.plan, travel)
        print(f"{day.date.isoformat():<12}{len(day.problem.visits):>11}{len(planned):>9}{len(due):>11}"
              f"{sum(1 for v in due if v in planned):>10}{'ok' if report.ok else 'FAILED':>9}")
    honoured = asked = 0
    for visit_id, visit in by_id.items():
        if visit.preferred_agents:
            agent = result.agent_of(visit_id)
            if agent is not None:
                asked += 1
                honoured += agent == visit.preferred_agents[0]
    reasons = Counter(u.code for u in result.unplanned)
    served = sum(len(r.stops) for d in result.days for r in d.plan.routes)
    print(f"planned {served} of {args.visits}; on no date: {len(result.unplanned)} "
          f"({', '.join(f'{k} {n}' for k, n in sorted(reasons.items())) or 'none'})")
    print(f"preferred crew honoured for {honoured} of {asked} planned visits with a preference")
    print(f"total {total:.1f} s")


if __name__ == "__main__":
    main()
