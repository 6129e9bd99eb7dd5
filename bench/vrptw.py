"""Benchmark the solver on Solomon and Gehring–Homberger VRPTW instances.

Runs :func:`solver.solve` through its public API under the DIMACS convention
(travel = Euclidean distance truncated to one decimal, distance-only objective,
fleet capped at K) and prints, per instance: distance, vehicles used, gap to
``bks_distance_only``, seconds, and feasibility by the independent checker;
then the mean gap.

Usage::

    python bench/vrptw.py                      # all 56 Solomon, 10 s each
    python bench/vrptw.py --set gh200 --time-limit 30
    python bench/vrptw.py --only R101 RC101 --time-limit 5
    python bench/vrptw.py --set gh200 --time-limit 30 --seed 1   # another random seed

Data: ``../shared/benchmarks/vrptw`` (Solomon 1987; Gehring & Homberger 1999;
best-known solutions from CVRPLIB via PyVRP/Instances).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from solver import solve  # noqa: E402
from solver.check import check_plan  # noqa: E402
from solver.solomon import dimacs_travel, read_solomon  # noqa: E402

DATA = ROOT.parent / "shared" / "benchmarks" / "vrptw"
SETS = {"solomon": "instances/solomon", "gh200": "instances/homberger_200"}


def load_bks() -> dict[str, float]:
    with open(DATA / "bks.csv") as handle:
        return {row["instance"].upper(): float(row["bks_distance_only"]) for row in csv.DictReader(handle)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=sorted(SETS), default="solomon")
    parser.add_argument("--time-limit", type=float, default=10.0, help="seconds per instance")
    parser.add_argument("--only", nargs="*", help="instance names, e.g. R101 C201")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--seed", type=int, default=0, help="the search's random seed (Options.seed)")
    args = parser.parse_args()

    bks = load_bks()
    files = sorted((args.data / SETS[args.set]).glob("*.txt"))
    if args.only:
        wanted = {n.upper() for n in args.only}
        files = [f for f in files if f.stem.upper() in wanted]
    travel = dimacs_travel()
    print(f"{'instance':10} {'distance':>10} {'veh':>4} {'bks':>10} {'gap %':>7} {'sec':>6} {'served':>7} feasible")
    gaps, infeasible = [], 0
    for path in files:
        name = path.stem.upper()
        problem = read_solomon(path, time_limit_s=args.time_limit)
        problem.options.seed = args.seed
        t0 = time.perf_counter()
        plan = solve(problem, travel)
        seconds = time.perf_counter() - t0
        report = check_plan(problem, plan, travel)
        served = plan.summary.visits_planned == plan.summary.visits_total
        ok = report.ok and served
        distance = plan.summary.distance_m / 10
        gap = 100 * (distance - bks[name]) / bks[name]
        if ok:
            gaps.append(gap)
        else:
            infeasible += 1
        print(f"{name:10} {distance:10.1f} {plan.summary.crews_used:4d} {bks[name]:10.1f} {gap:7.2f} "
              f"{seconds:6.1f} {plan.summary.visits_planned:4d}/{plan.summary.visits_total:<3d} "
              f"{'yes' if ok else 'NO: ' + '; '.join(v.message for v in report.violations[:2])}", flush=True)
    if gaps:
        print(f"\nmean gap {statistics.mean(gaps):.2f} % over {len(gaps)} feasible instances; "
              f"{infeasible} infeasible or incomplete")
    return 0 if infeasible == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
