"""Benchmark the solver on Solomon and Gehring–Homberger VRPTW instances,
optionally beside PyVRP in the same run.

Runs :func:`solver.solve` through its public API under the DIMACS convention
(travel = Euclidean distance truncated to one decimal, distance-only objective,
fleet capped at K) and prints, per instance: distance, vehicles used, gap to
``bks_distance_only``, seconds, and feasibility by the independent checker;
then the mean gap. With ``--peer pyvrp``, PyVRP solves
the same instance right after, with the same time limit and one thread
(integer matrices floor(10·euclid), fleet K), and the table and summary show
both. The output is also written to ``bench/results/`` (dated).

Usage::

    python bench/vrptw.py                      # all 56 Solomon, 10 s each
    python bench/vrptw.py --set gh200 --time-limit 30
    python bench/vrptw.py --set gh1000 --time-limit 60 --peer pyvrp --instances C1_10_2,R1_10_2
    python bench/vrptw.py --instances R103,RC103 --time-limit 5 --peer pyvrp
    python bench/vrptw.py --set gh200 --time-limit 30 --seed 1   # another random seed
    python bench/vrptw.py --threads 2          # Options.threads (default 1 here)

Data: ``../shared/benchmarks/vrptw`` (Solomon 1987; Gehring & Homberger 1999;
best-known solutions from CVRPLIB via PyVRP/Instances).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from solver import solve  # noqa: E402
from solver.check import check_plan  # noqa: E402
from solver.solomon import dimacs_travel, read_solomon, seconds_per_unit  # noqa: E402

DATA = ROOT.parent / "shared" / "benchmarks" / "vrptw"
SETS = {"solomon": "instances/solomon", "gh200": "instances/homberger_200", "gh1000": "instances/homberger_1000"}
RESULTS = ROOT / "bench" / "results"
#: The 12 hard Solomon instances of issue 12.
HARD = "R103,R107,R110,R202,R206,C104,C204,RC103,RC105,RC107,RC202,RC206"


def load_bks() -> dict[str, float]:
    with open(DATA / "bks.csv") as handle:
        return {row["instance"].upper(): float(row["bks_distance_only"]) for row in csv.DictReader(handle)}


def pyvrp_solve(path: Path, time_limit_s: float, seed: int) -> tuple[float, int, bool, float]:
    """PyVRP on the instance file: (distance, vehicles, feasible, seconds)."""
    import numpy as np
    import pyvrp
    from pyvrp.stop import MaxRuntime

    rows = [r.split() for r in path.read_text().splitlines() if r.split()]
    k_idx = next(i for i, r in enumerate(rows) if r[0].upper() == "NUMBER")
    fleet, capacity = int(rows[k_idx + 1][0]), int(rows[k_idx + 1][1])
    table = [[float(x) for x in r] for r in rows if r[0].isdigit() and len(r) == 7]
    xy = np.array([(r[1], r[2]) for r in table])
    matrix = np.floor(10 * np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1))).astype(np.int64)
    depot = table[0]
    data = pyvrp.ProblemData(
        locations=[pyvrp.Location(x=r[1], y=r[2]) for r in table],
        clients=[pyvrp.Client(location=i + 1, delivery=[int(r[3])], service_duration=int(10 * r[6]),
                              tw_early=int(10 * r[4]), tw_late=int(10 * r[5])) for i, r in enumerate(table[1:])],
        depots=[pyvrp.Depot(location=0)],
        vehicle_types=[pyvrp.VehicleType(num_available=fleet, capacity=[capacity],
                                         tw_early=int(10 * depot[4]), tw_late=int(10 * depot[5]))],
        distance_matrices=[matrix], duration_matrices=[matrix],
    )
    t0 = time.perf_counter()
    result = pyvrp.solve(data, stop=MaxRuntime(time_limit_s), seed=seed, collect_stats=False)
    seconds = time.perf_counter() - t0
    return result.best.distance() / 10, result.best.num_routes(), bool(result.is_feasible()), seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=sorted(SETS), default="solomon")
    parser.add_argument("--time-limit", type=float, default=10.0, help="seconds per instance")
    parser.add_argument("--only", nargs="*", help="instance names, e.g. R101 C201")
    parser.add_argument("--instances", help=f"comma-separated names, e.g. R103,RC103; 'hard': {HARD}")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--seed", type=int, default=0, help="the search's random seed (Options.seed)")
    parser.add_argument("--threads", type=int, default=1, help="Options.threads (default 1: one core, like the peer)")
    parser.add_argument("--peer", choices=["pyvrp"], help="solve each instance with this solver too, same run")
    parser.add_argument("--peer-seed", type=int, default=1)
    parser.add_argument("--out", type=Path, help="raw output file (default: bench/results/<date>-<set>-<t>s...)")
    args = parser.parse_args()

    peer = args.peer
    if peer == "pyvrp":
        try:
            import pyvrp  # noqa: F401
        except ImportError:
            print("--peer pyvrp: pyvrp is not installed (pip install 'pyvrp>=0.14,<0.15')", file=sys.stderr)
            return 2
    bks = load_bks()
    files = sorted((args.data / SETS[args.set]).glob("*.txt"))
    wanted: set[str] = set()
    if args.only:
        wanted |= {n.upper() for n in args.only}
    if args.instances:
        names = HARD if args.instances.lower() == "hard" else args.instances
        wanted |= {n.strip().upper() for n in names.split(",") if n.strip()}
    if wanted:
        files = [f for f in files if f.stem.upper() in wanted]
    out_path = args.out or RESULTS / (
        f"{dt.date.today().isoformat()}-{args.set}-{args.time_limit:g}s"
        f"{'-seed' + str(args.seed) if args.seed else ''}{'-t' + str(args.threads) if args.threads != 1 else ''}"
        f"{'-' + peer if peer else ''}{'-subset' if wanted else ''}.txt")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out = open(out_path, "w")  # noqa: SIM115 - closed at the end of main

    def emit(line: str = "") -> None:
        print(line, flush=True)
        out.write(line + "\n")
        out.flush()

    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    emit(f"# {' '.join(sys.argv[1:])} | {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC | load {load} | "
         f"{len(os.sched_getaffinity(0))} cores")
    head = f"{'instance':10} {'distance':>10} {'veh':>4} {'bks':>10} {'gap %':>7} {'sec':>6} {'served':>8} feasible"
    if peer:
        head += f"  | {peer + ' dist':>11} {'veh':>4} {'gap %':>7} {'sec':>6} ok"
    emit(head)
    gaps: list[float] = []
    peer_gaps: list[float] = []
    pairs: list[tuple[str, float, float]] = []
    infeasible = 0
    for path in files:
        name = path.stem.upper()
        problem = read_solomon(path, time_limit_s=args.time_limit)
        problem.options.seed = args.seed
        problem.options.threads = args.threads
        travel = dimacs_travel(seconds_per_unit(path))
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
        line = (f"{name:10} {distance:10.1f} {plan.summary.crews_used:4d} {bks[name]:10.1f} {gap:7.2f} "
                f"{seconds:6.1f} {plan.summary.visits_planned:4d}/{plan.summary.visits_total:<4d}"
                f"{'yes' if ok else 'NO: ' + '; '.join(v.message for v in report.violations[:2]):>4}")
        if peer:
            p_dist, p_veh, p_ok, p_sec = pyvrp_solve(path, args.time_limit, args.peer_seed)
            p_gap = 100 * (p_dist - bks[name]) / bks[name] if p_ok else math.nan
            if p_ok:
                peer_gaps.append(p_gap)
                if ok:
                    pairs.append((name, gap, p_gap))
            line += f"  | {p_dist:11.1f} {p_veh:4d} {p_gap:7.2f} {p_sec:6.1f} {'yes' if p_ok else 'NO'}"
        emit(line)
    if gaps:
        emit(f"\nDoorstep: mean gap {statistics.mean(gaps):.2f} % (max {max(gaps):.2f} %) over {len(gaps)} "
             f"feasible instances; {infeasible} infeasible or incomplete")
    if peer and peer_gaps:
        emit(f"{peer}: mean gap {statistics.mean(peer_gaps):.2f} % (max {max(peer_gaps):.2f} %) over "
             f"{len(peer_gaps)} feasible instances")
        if pairs:
            diff = statistics.mean(g - p for _, g, p in pairs)
            emit(f"Doorstep - {peer}, same instances: {diff:+.2f} points")
    _summary_by_class(emit, gaps=[(n, g) for n, g, _ in pairs] if pairs else None)
    out.close()
    print(f"(written to {out_path})")
    return 0 if infeasible == 0 else 1


def _summary_by_class(emit: Any, gaps: list[tuple[str, float]] | None) -> None:
    """Mean Doorstep gap per instance class (C1, R2...), when several classes ran."""
    if not gaps:
        return
    by: dict[str, list[float]] = {}
    for name, gap in gaps:
        cls = name.split("_")[0] if "_" in name else name.rstrip("0123456789")[:2] + name.lstrip("CR")[:1]
        by.setdefault(cls, []).append(gap)
    if len(by) > 1:
        emit("by class (Doorstep): " + ", ".join(f"{c} {statistics.mean(v):.2f}" for c, v in sorted(by.items())))


if __name__ == "__main__":
    raise SystemExit(main())
