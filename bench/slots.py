"""Measure the price of guaranteed appointment slots (issue 13).

For each day, slot width ``W`` and slot policy (``guaranteed``: the slack of a
``W``-wide slot planned in, :mod:`solver.slots`; ``best_effort``: slots cut
from whatever slack the routes have) it plans the day, checks the plan with
:mod:`solver.check`, and reports over all the planned stops:

* the slot widths: median (minutes), share reaching ``W``, share reaching the
  stop's target ``min(W, the length of the window it is served in)``;
* visits served, priority served and travel (hours), summed over the days.

Days: ``doorstep demo`` days (bundled Shanghai map, 100 visits, 10 crews,
seeds 0-4 by default) and, with ``--day-seeds``, ``bench/day.py``'s
1,000-visit synthetic-city day (a short time limit: ``--day-time-limit``).

Usage::

    python bench/slots.py                                 # demo seeds 0-4, W = 30, 60, 120
    python bench/slots.py --seeds 0 --widths 60 --time-limit 5
    python bench/slots.py --seeds "" --day-seeds 1,2,3 --day-time-limit 20 --widths 60
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from solver import solve
from solver.check import check_plan
from solver.compile import compile_problem
from solver.model import Plan, Problem
from solver.travel import TravelModel

POLICIES = ("best_effort", "guaranteed")


@dataclass
class Tally:
    """Figures of one (day kind, W, policy) over its days."""

    widths: list[float] = field(default_factory=list)  # minutes
    targets: list[float] = field(default_factory=list)  # minutes
    served: int = 0
    total: int = 0
    priority: int = 0
    priority_total: int = 0
    travel_s: int = 0
    invalid: int = 0
    seconds: float = 0.0

    def add(self, problem: Problem, plan: Plan, targets: dict[str, float], valid: bool, seconds: float) -> None:
        for route in plan.routes:
            for stop in route.stops:
                if stop.slot is not None:
                    self.widths.append((stop.slot.end - stop.slot.start).total_seconds() / 60)
                    self.targets.append(targets.get(stop.visit_id, 0.0))
        s = plan.summary
        self.served += s.visits_planned
        self.total += s.visits_total
        self.priority += s.priority_planned
        self.priority_total += s.priority_total
        self.travel_s += s.travel_s
        self.invalid += not valid
        self.seconds += seconds

    def row(self, label: str, width: int, policy: str) -> str:
        n = len(self.widths)
        median = statistics.median(self.widths) if n else 0.0
        reach_w = sum(w >= width - 0.01 for w in self.widths) / n if n else 0.0
        reach_t = sum(w >= t - 0.01 for w, t in zip(self.widths, self.targets, strict=True)) / n if n else 0.0
        return (f"| {label} | {width} | {policy} | {median:.0f} | {100 * reach_w:.0f} % | {100 * reach_t:.0f} % | "
                f"{self.served}/{self.total} | {self.priority}/{self.priority_total} | {self.travel_s / 3600:.1f} | "
                f"{'ok' if not self.invalid else f'{self.invalid} invalid'} |")


def window_lengths(problem: Problem, travel: TravelModel, plan: Plan) -> dict[str, float]:
    """Per planned visit, in minutes: the length of the service-start window
    (as compiled: address, visit, appointment, legal hours, shift) its slot
    lies in; the slot target is ``min(W, this)``."""
    data = compile_problem(problem, travel)
    by_place = {}
    for node in data.nodes:
        if node.kind == "visit" and node.visit is not None:
            by_place[(problem.visits[node.visit].id, node.address)] = node.windows
    out = {}
    for route in plan.routes:
        for stop in route.stops:
            if stop.slot is None:
                continue
            start = problem.seconds(stop.slot.start)
            for lo, hi in by_place.get((stop.visit_id, stop.address_index), []):
                if lo <= start <= hi:
                    out[stop.visit_id] = (hi - lo) / 60
    return out


def run(problems: Iterable[tuple[Problem, TravelModel]], widths: list[int], time_limit: float,
        label: str) -> list[str]:
    rows = []
    days = list(problems)
    for width in widths:
        for policy in POLICIES:
            tally = Tally()
            for base, travel in days:
                options = base.options.model_copy(update={"slot_minutes": width, "slot_policy": policy,
                                                          "time_limit_s": time_limit})
                problem = base.model_copy(update={"options": options})
                t0 = time.perf_counter()
                plan = solve(problem, travel)
                seconds = time.perf_counter() - t0
                valid = check_plan(problem, plan, travel).ok
                targets = {k: min(width, v) for k, v in window_lengths(problem, travel, plan).items()}
                tally.add(problem, plan, targets, valid, seconds)
            row = tally.row(label, width, policy)
            print(row, flush=True)
            rows.append(row)
    return rows


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3,4", help="demo seeds, comma-separated ('' for none)")
    parser.add_argument("--widths", default="30,60,120", help="slot widths W, minutes")
    parser.add_argument("--time-limit", type=float, default=10.0, help="demo search time limit, s")
    parser.add_argument("--day-seeds", default="", help="bench/day.py seeds (1,000 visits), e.g. 1,2,3")
    parser.add_argument("--day-time-limit", type=float, default=20.0, help="1,000-visit day time limit, s")
    args = parser.parse_args()
    widths = _ints(args.widths)
    print("| day | W (min) | policy | median slot (min) | slots reaching W | reaching min(W, window) "
          "| visits served | priority served | travel (h) | checker |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    seeds = _ints(args.seeds)
    if seeds:
        from solver.demo import generate_day
        from solver.solve import default_travel

        travel = default_travel()
        run([(generate_day(seed, 100, 10), travel) for seed in seeds], widths, args.time_limit,
            f"demo seeds {args.seeds} ({args.time_limit:g} s)")
    day_seeds = _ints(args.day_seeds)
    if day_seeds:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from day import _generate

        from solver.geo.network import RoadNetwork
        from solver.geo.synthetic import synthetic_city

        days = []
        for seed in day_seeds:
            payload, _witness, ok, _text = _generate(125, 1000, 60, seed, args.day_time_limit)
            assert ok, "the day's witness plan must pass the checker"
            days.append((Problem.model_validate(payload), RoadNetwork(synthetic_city(125, seed=seed).graph)))
        run(days, widths, args.day_time_limit, f"bench/day.py seeds {args.day_seeds} ({args.day_time_limit:g} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
