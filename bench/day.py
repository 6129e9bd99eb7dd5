"""Benchmark a realistic city-scale day: 1,000 visits, 60 crews.

The day is generated on the synthetic city (:mod:`solver.geo.synthetic`, a
grid-and-arterial network of about 55,000 directed edges, 19 km across):

* visits at random addresses (house numbers, lanes, intersections), 20-45
  minutes, priorities 0-100, a third with office-hours windows, a third with
  morning or afternoon windows, 5 % booked appointments;
* 60 two-person crews from 8 branches, shifts 08:30-17:30 with a lunch break,
  e-bike or car, at most 18 visits each.

It plans the day through :func:`solver.solve` (wall time includes loading
the network and the travel matrix), checks every route with the independent
checker, and prints: wall time per stage, visits served against the visits any
plan could serve (those the screening did not rule out, capped by the crews'
visit limits), and peak memory.

Usage::

    python bench/day.py                   # 1,000 visits, 60 crews, 50 s time limit
    python bench/day.py --visits 500 --crews 30 --time-limit 20
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import resource
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from solver import solve  # noqa: E402
from solver.check import check_plan  # noqa: E402
from solver.geo.network import RoadNetwork  # noqa: E402
from solver.geo.synthetic import synthetic_city  # noqa: E402
from solver.model import Problem  # noqa: E402

DATE = dt.date(2026, 12, 1)


def make_day(city, visits: int, crews: int, seed: int, time_limit: float) -> dict:
    rng = random.Random(seed)
    addresses = city.addresses(visits + 8, seed=seed)
    branches, homes = addresses[:8], addresses[8:]
    visit_list = []
    for i, address in enumerate(homes):
        kind = rng.choice(["home", "home", "work"])
        roll = rng.random()
        if roll < 0.33:
            windows = [{"start": "09:00", "end": "12:00"}, {"start": "13:30", "end": "17:00"}]
        elif roll < 0.5:
            windows = [{"start": "08:30", "end": "12:00"}]
        elif roll < 0.66:
            windows = [{"start": "13:00", "end": "17:00"}]
        else:
            windows = []
        visit = {
            "id": f"V{i:04d}",
            "case_id": f"C{i:05d}",
            "priority": rng.randint(0, 100),
            "duration_min": rng.choice([20, 25, 30, 30, 45]),
            "addresses": [{"text": address.text, "location": address.location.model_dump(), "kind": kind,
                           "time_windows": windows}],
        }
        if rng.random() < 0.05 and windows:
            start = rng.choice([9, 10, 14, 15])
            visit["addresses"][0]["time_windows"] = []
            visit["appointment"] = {"start": f"{start:02d}:00", "end": f"{start + 1:02d}:00"}
        visit_list.append(visit)
    agent_list = []
    for k in range(crews):
        branch = branches[k % len(branches)]
        agent_list.append({
            "id": f"crew-{k + 1:02d}",
            "members": [f"A{k}a", f"A{k}b"],
            "shift": {"start": "08:30", "end": "17:30"},
            "breaks": [{"window": {"start": "11:30", "end": "13:30"}, "duration_min": 45}],
            "start": {"text": branch.text, "location": branch.location.model_dump()},
            "travel_mode": "drive" if k % 3 == 0 else "ebike",
            "max_visits": 18,
        })
    return {"date": DATE.isoformat(), "timezone": "Asia/Shanghai", "visits": visit_list, "agents": agent_list,
            "options": {"time_limit_s": time_limit, "slot_minutes": 60}}


def time_bound(problem: Problem, network, screened: set[str]) -> int:
    """An upper bound on the visits any plan could serve: every visit costs at
    least its service time plus the shortest drive into it from any other
    place (the fastest mode); fill the crews' total working time (shift minus
    breaks) with the cheapest visits first."""
    import numpy as np

    visits = [v for v in problem.visits if v.id not in screened]
    points = [a.start.location for a in problem.agents] + [v.addresses[0].location for v in visits]
    durations = network.matrix(points, "drive").durations.astype(float)
    np.fill_diagonal(durations, np.inf)
    n_agents = len(problem.agents)
    cheapest_in = durations[:, n_agents:].min(axis=0)
    costs = sorted(v.duration_min * 60 + c for v, c in zip(visits, cheapest_in))
    available = sum(problem.seconds(a.shift.end) - problem.seconds(a.shift.start)
                    - sum(b.duration_min * 60 for b in a.breaks) for a in problem.agents)
    served = 0
    for cost in costs:
        if cost > available:
            break
        available -= cost
        served += 1
    return served


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", type=int, default=1000)
    parser.add_argument("--crews", type=int, default=60)
    parser.add_argument("--time-limit", type=float, default=50.0, help="plan time limit, seconds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--size", type=int, default=125, help="synthetic city: intersections per side")
    args = parser.parse_args()

    tracemalloc.start()
    t0 = time.perf_counter()
    city = synthetic_city(args.size, seed=args.seed)
    network = RoadNetwork(city.graph)
    t_network = time.perf_counter() - t0
    problem = Problem.model_validate(make_day(city, args.visits, args.crews, args.seed, args.time_limit))
    print(f"city: {city.edge_count:,} directed edges, built in {t_network:.1f} s "
          f"(not part of a plan: a service loads its network once)")

    stages: dict[str, float] = {}
    last = [time.perf_counter(), None]

    def progress(stage: str, fraction: float) -> None:
        now = time.perf_counter()
        if last[1] is not None and last[1] != stage:
            stages[last[1]] = stages.get(last[1], 0.0) + now - last[0]
            last[0] = now
        elif last[1] is None:
            last[0] = now
        last[1] = stage

    t1 = time.perf_counter()
    plan = solve(problem, network, progress=progress)
    wall = time.perf_counter() - t1
    if last[1] is not None:
        stages[last[1]] = stages.get(last[1], 0.0) + time.perf_counter() - last[0]
    t2 = time.perf_counter()
    report = check_plan(problem, plan, network)
    t_check = time.perf_counter() - t2
    _, peak = tracemalloc.get_traced_memory()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    screened = {u.visit_id for u in plan.unassigned if u.code not in ("lower_priority", "capacity",
                                                                      "required_infeasible")}
    servable = len(problem.visits) - len(screened)
    cap = sum(a.max_visits or len(problem.visits) for a in problem.agents)
    by_time = time_bound(problem, network, screened)
    bound = min(servable, cap, by_time)
    served = plan.summary.visits_planned
    print(f"plan wall time {wall:.1f} s (limit 60 s): " +
          ", ".join(f"{k} {v:.1f} s" for k, v in stages.items()) +
          f"; matrix {plan.solver.matrix_seconds:.1f} s; search {plan.solver.metaheuristic}")
    print(f"served {served} of {len(problem.visits)} visits; any plan could serve at most {bound} "
          f"({servable} pass screening, crews' visit limits {cap}, crews' hours {by_time}): "
          f"{100 * served / max(1, bound):.1f} %")
    print(f"priority served {plan.summary.priority_planned} of {plan.summary.priority_total}; "
          f"travel {plan.summary.travel_s / 3600:.1f} h, {plan.summary.distance_m / 1000:.0f} km; "
          f"crews used {plan.summary.crews_used}")
    print(f"checker: {'all routes valid' if report.ok else report}; checked in {t_check:.1f} s")
    print(f"peak Python heap {peak / 2**20:.0f} MiB; peak RSS {rss_mb:.0f} MiB")
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
