"""Benchmark a realistic city-scale day: 1,000 visits, 60 crews.

The day is generated on the synthetic city (:mod:`solver.geo.synthetic`, a
grid-and-arterial network of about 55,000 directed edges, 19 km across) so
that a known plan serves every visit (a *witness*; see :func:`make_day`):

* 60 two-person crews from 8 branches, shifts 08:30-18:30 with a 45-minute
  lunch inside 11:30-13:30, e-bike or car (one in three), at most 18 visits;
* visits at random addresses (house numbers, lanes, intersections), 20-45
  minutes, priorities 0-100; open, morning, afternoon or office-hours
  windows, or a one-hour booked appointment (about 5 %), always containing
  the time the witness reaches them.

The witness is timed and run through the independent checker first, so the
denominator of "served of the visits a plan can serve" is proven: all of
them. Then the day is planned through :func:`solver.solve` (wall time
includes geocoding and the travel matrix; not the network, which a service
loads once), every route is checked, and it prints wall time per stage,
visits served, priority served, unassigned reasons and peak memory (the
generator runs in a child process so that its pool matrix does not count).

Usage::

    python bench/day.py                   # 1,000 visits, 60 crews, 50 s time limit
    python bench/day.py --visits 500 --crews 30 --time-limit 20
    python bench/day.py --city-size 400   # a whole city (network from the index store)
    python bench/day.py --visits 5000 --crews 300 --workers 4 --time-limit 90
        # as a plan job on 4 local `doorstep worker`s (Redis): a day past
        # [jobs] split_above is split into parts solved as RQ jobs (bench/workers.py)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import random
import resource
import sys
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from solver import solve
from solver.check import check_plan
from solver.geo.network import NetworkStore, RoadNetwork
from solver.geo.network.store import store_key
from solver.geo.synthetic import synthetic_city
from solver.model import Problem

DATE = dt.date(2026, 12, 1)


SHIFT = (8 * 3600 + 1800, 18 * 3600 + 1800)  # 08:30-18:30: evenings are when borrowers are home
LUNCH = ((11 * 3600 + 1800, 13 * 3600 + 1800), 45 * 60)  # 45 min inside 11:30-13:30
SERVICE_MIN = [20, 20, 25, 30, 30, 45]
POOL_PER_VISIT = 4
BRANCHES = 8


def _hhmm(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


def _window_for(start: int, rng: random.Random) -> tuple[list[dict], dict | None]:
    """Time windows (or a booked appointment) that the witness start fits."""
    h = 3600
    options = [("open", 4)]
    if start <= 12 * h:
        options.append(("morning", 2))
    if 13 * h <= start <= 18 * h:
        options.append(("afternoon", 2))
    if 9 * h <= start <= 12 * h or 13 * h + 1800 <= start <= 17 * h:
        options.append(("office", 3))
    options.append(("appointment", 0.6))
    kind = rng.choices([k for k, _ in options], weights=[w for _, w in options])[0]
    if kind == "morning":
        return [{"start": "08:30", "end": "12:00"}], None
    if kind == "afternoon":
        return [{"start": "13:00", "end": "18:00"}], None
    if kind == "office":
        return [{"start": "09:00", "end": "12:00"}, {"start": "13:30", "end": "17:00"}], None
    if kind == "appointment":
        begin = max(SHIFT[0], start // 1800 * 1800 - rng.choice([0, 1800]))
        return [], {"start": _hhmm(begin), "end": _hhmm(begin + 3600)}
    return [], None


def _pool(city, n: int, seed: int, district_m: float) -> list:
    """The branches (first :data:`BRANCHES`) and ``n`` addresses the crews may
    visit: anywhere in the city (``district_m`` 0), or within ``district_m``
    of a branch, each branch's district."""
    if district_m <= 0:
        return city.addresses(n + BRANCHES, seed=seed)
    from solver.travel import haversine_m

    branches = city.addresses(BRANCHES, seed=seed)
    pool: list = []
    batch = 0
    while len(pool) < n:
        batch += 1
        for a in city.addresses(4 * n, seed=seed * 1000 + batch):
            if min(haversine_m(a.location, b.location) for b in branches) <= district_m:
                pool.append(a)
    return branches + pool[:n]


#: On cities larger than the default (size 125, 19 km across) the day's visits lie within this many
#: metres of a branch: across a whole city (size 400, 61 km) 60 crews reach only 870 of 1,000 visits.
DISTRICT_M = 4000.0


def make_day(city, network, visits: int, crews: int, seed: int, time_limit: float,
             district_m: float = 0.0) -> tuple[dict, dict]:
    """A day of ``visits`` visits that a known plan serves in full.

    Crews leave from 8 branches (the visits lie in their districts when
    ``district_m`` is set); the generator walks each crew, in turn, to
    one of the 6 nearest unvisited addresses of a pool (true road times of
    its travel mode), with 20-45 minute visits and a lunch break, while the
    crew can still get back to its branch by the end of its shift. Each
    visit then gets windows (open, morning, afternoon, office hours) or a
    one-hour booked appointment that contain the time the walk reached it.
    Returns the problem payload and the witness: each crew's sequence of
    visit ids, which proves that every visit can be served.
    """
    import numpy as np

    rng = random.Random(seed)
    pool = _pool(city, int(visits * POOL_PER_VISIT), seed, district_m)
    branches = pool[:BRANCHES]
    points = [a.location for a in pool]
    modes = ["drive" if k % 3 == 0 else "ebike" for k in range(crews)]
    times = {m: network.matrix(points, m).durations.astype(np.int64) for m in set(modes)}
    used = np.zeros(len(pool), dtype=bool)
    used[:BRANCHES] = True
    state = [{"pos": k % BRANCHES, "t": SHIFT[0], "lunch": False, "seq": [], "open": True} for k in range(crews)]
    service: dict[int, int] = {}
    starts: dict[int, int] = {}
    placed = 0
    while placed < visits and any(c["open"] for c in state):
        for k, crew in enumerate(state):
            if placed >= visits or not crew["open"]:
                continue
            row = np.where(used, np.iinfo(np.int64).max, times[modes[k]][crew["pos"]])
            near = np.argpartition(row, 6)[:6]
            target = int(near[rng.randrange(6)])
            duration = rng.choice(SERVICE_MIN) * 60
            t = crew["t"]
            travel = int(times[modes[k]][crew["pos"], target])
            (lo, hi), length = LUNCH
            if not crew["lunch"] and t + travel + duration > hi - length:
                t = max(t, lo) + length  # lunch where the crew is, before moving on
                crew["lunch"] = True
            start = t + travel
            back = int(times[modes[k]][target, k % BRANCHES])
            if start + duration + back > SHIFT[1]:
                crew["open"] = False
                continue
            used[target] = True
            crew["pos"], crew["t"] = target, start + duration
            crew["seq"].append(target)
            service[target], starts[target] = duration, start
            placed += 1
    ids = {}
    visit_list = []
    for target in sorted(starts):
        i = len(visit_list)
        ids[target] = f"V{i:04d}"
        address = pool[target]
        windows, appointment = _window_for(starts[target], rng)
        visit = {
            "id": ids[target],
            "case_id": f"C{i:05d}",
            "priority": rng.randint(0, 100),
            "duration_min": service[target] // 60,
            "addresses": [{"text": address.text, "location": address.location.model_dump(),
                           "kind": rng.choice(["home", "home", "work"]), "time_windows": windows}],
        }
        if appointment:
            visit["appointment"] = appointment
        visit_list.append(visit)
    agent_list = []
    for k in range(crews):
        branch = branches[k % BRANCHES]
        agent_list.append({
            "id": f"crew-{k + 1:02d}",
            "members": [f"A{k}a", f"A{k}b"],
            "shift": {"start": _hhmm(SHIFT[0]), "end": _hhmm(SHIFT[1])},
            "breaks": [{"window": {"start": _hhmm(LUNCH[0][0]), "end": _hhmm(LUNCH[0][1])},
                        "duration_min": LUNCH[1] // 60}],
            "start": {"text": branch.text, "location": branch.location.model_dump()},
            "travel_mode": modes[k],
            "max_visits": 18,
        })
    payload = {"date": DATE.isoformat(), "timezone": "Asia/Shanghai", "visits": visit_list, "agents": agent_list,
               # best_effort: the witness proves every visit can be served, not with an hour's
               # slack at each stop; the price of guaranteed slots is bench/slots.py's to measure
               "options": {"time_limit_s": time_limit, "slot_minutes": 60, "slot_policy": "best_effort"}}
    witness = {f"crew-{k + 1:02d}": [ids[t] for t in crew["seq"]] for k, crew in enumerate(state)}
    return payload, witness


def check_witness(problem: Problem, network, witness: dict[str, list[str]]):
    """Time the witness routes and run the independent checker on them:
    returns the checker's report for a plan serving every visit."""
    from solver.compile import compile_problem
    from solver.model import Plan, SolverStats
    from solver.solve import summarize, timed_route

    data = compile_problem(problem, network)
    node_of = {problem.visits[vi].id: nodes[0] for vi, nodes in data.visit_nodes.items()}
    routes = []
    for v, veh in enumerate(data.vehicles):
        route = timed_route(data, v, [node_of[i] for i in witness[veh.agent.id]])
        if route is None:
            raise SystemExit(f"witness route of {veh.agent.id} does not time: generator bug")
        routes.append(route)
    plan = Plan(date=problem.date, timezone=problem.timezone, routes=routes, unassigned=[],
                summary=summarize(problem, routes),
                solver=SolverStats(status="witness", objective=None, seconds=0, matrix_seconds=0,
                                   first_solution="witness", metaheuristic="none"))
    return check_plan(problem, plan, network)


def city_network(size: int, seed: int, store: str | None) -> tuple[RoadNetwork, float, bool]:
    """The synthetic city's road network: from the index store when it holds it
    (memory-mapped), else built and stored. Returns (network, seconds, loaded)."""
    t0 = time.perf_counter()
    if store is None:
        return RoadNetwork(synthetic_city(size, seed=seed).graph), time.perf_counter() - t0, False
    key = store_key(f"synthetic:{size}:{seed}", RoadNetwork._settings(None, None, None))
    indexes = NetworkStore(store)
    loaded = indexes.has(key)
    network = indexes.load_or_build(key, lambda: RoadNetwork(synthetic_city(size, seed=seed).graph))
    return network, time.perf_counter() - t0, loaded


#: Days past this many visits are made of independent chunks of about this size (the generator's
#: pool matrix grows with the square of the visits: 5,000 visits at once would need ~19 GB).
CHUNK_VISITS = 1000


def _generate(size: int, visits: int, crews: int, seed: int, time_limit: float, store: str | None,
              district_m: float = 0.0):
    """The day, its witness, and the checker's verdict on the witness. A day
    past :data:`CHUNK_VISITS` visits is the union of chunks made with seeds
    ``seed``, ``seed + 1``, ... (each with its own branches, crews and pool;
    their visits mix across the city): each chunk's witness is checked on its
    own, and the union of the witnesses serves every visit of the day, since a
    crew's route only involves its own chunk."""
    city = synthetic_city(size, seed=seed)
    network, _, _ = city_network(size, seed, store)
    chunks = max(1, -(-visits // CHUNK_VISITS))
    payload: dict = {}
    witness: dict[str, list[str]] = {}
    texts = []
    ok = True
    for c in range(chunks):
        part_visits = visits // chunks + (1 if c < visits % chunks else 0)
        part_crews = crews // chunks + (1 if c < crews % chunks else 0)
        part, part_witness = make_day(city, network, part_visits, part_crews, seed + c, time_limit, district_m)
        report = check_witness(Problem.model_validate(part), network, part_witness)
        ok, texts = ok and report.ok, texts + ([] if report.ok else [str(report)])
        if chunks > 1:  # ids unique across chunks
            rename = {v["id"]: f"{v['id']}-{c}" for v in part["visits"]}
            for v in part["visits"]:
                v["id"], v["case_id"] = rename[v["id"]], f"{v['case_id']}-{c}"
            crew_rename = {a["id"]: f"{a['id']}-{c}" for a in part["agents"]}
            for a in part["agents"]:
                a["id"] = crew_rename[a["id"]]
            part_witness = {crew_rename[k]: [rename[v] for v in seq] for k, seq in part_witness.items()}
        if not payload:
            payload = part
        else:
            payload["visits"] += part["visits"]
            payload["agents"] += part["agents"]
        witness.update(part_witness)
    return payload, witness, ok, "; ".join(texts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", type=int, default=1000)
    parser.add_argument("--crews", type=int, default=60)
    parser.add_argument("--time-limit", type=float, default=50.0, help="plan time limit, seconds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--size", "--city-size", type=int, default=125,
                        help="synthetic city: intersections per side (400: a whole city, 160,000 nodes)")
    parser.add_argument("--district-km", type=float, default=None,
                        help="draw the visits within this many km of the 8 branches (0: anywhere in the city; "
                             f"default: 0 on the default city, {DISTRICT_M / 1000:g} on larger ones)")
    parser.add_argument("--store", default="var/bench-index",
                        help="index store for the city's network (built once, then memory-mapped); '' to rebuild")
    parser.add_argument("--day-cache", default="var/bench-days",
                        help="folder keeping generated days (and their witness check) for reuse; '' to regenerate")
    parser.add_argument("--workers", type=int, default=0,
                        help="plan as a job on this many local `doorstep worker` processes (0: solve() here)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13", help="Redis of the workers")

    parser.add_argument("--trace-heap", action="store_true",
                        help="trace the peak Python heap (tracemalloc: makes the plan's Python work several times "
                             "slower, e.g. building the plan 2 s -> 28 s, so wall times then mean little)")
    parser.add_argument("--no-hybrid", action="store_true",
                        help="search days with breaks without PyVRP (solver.search.hybrid off), to compare")
    args = parser.parse_args()
    if args.no_hybrid and args.workers:
        parser.error("--no-hybrid compares searches in this process: not with --workers")

    # the day and its witness are made in a child process, so that the peak
    # memory printed below is the plan's, not the generator's (its pool matrix)
    t0 = time.perf_counter()
    district_m = 1000 * args.district_km if args.district_km is not None else (DISTRICT_M if args.size > 125 else 0.0)
    name = f"day-{args.visits}-{args.crews}-{args.seed}-{args.size}" + (f"-d{district_m:g}" if district_m else "")
    cached = Path(args.day_cache) / f"{name}.json" if args.day_cache else None
    if cached is not None and cached.exists():
        payload, witness_ok, witness_text = json.loads(cached.read_text())
        payload["options"]["time_limit_s"] = args.time_limit
    else:
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
            payload, _witness, witness_ok, witness_text = pool.submit(
                _generate, args.size, args.visits, args.crews, args.seed, args.time_limit,
                args.store or None, district_m).result()
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            cached.write_text(json.dumps([payload, witness_ok, witness_text]))
    t_generate = time.perf_counter() - t0
    problem = Problem.model_validate(payload)
    where = f"within {district_m / 1000:g} km of the {BRANCHES} branches" if district_m else "anywhere in the city"
    print(f"day: {len(problem.visits)} visits ({where}), {len(problem.agents)} crews; generated in {t_generate:.1f} s "
          f"with a witness plan serving all of them: {'checker accepts it' if witness_ok else witness_text}")
    if not witness_ok:
        return 1
    network, t_network, from_store = city_network(args.size, args.seed, args.store or None)
    print(f"city: {network.node_count('drive'):,} drive nodes, {network.edge_count('drive'):,} drive edges, "
          f"{'loaded from the store' if from_store else 'built'} in {t_network:.1f} s "
          f"(not part of a plan: a service loads its network once); matrix engine {network.engine}")
    if args.trace_heap:
        tracemalloc.start()

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
    if args.workers:
        from bench.workers import plan_on_workers

        store = str(Path(args.store).resolve()) if args.store else ""
        plan, wall, peaks, search = plan_on_workers(problem, workers=args.workers, redis_url=args.redis_url,
                                                    city=f"{args.size}:{args.seed}:{store}")
        for pid, mib in sorted(peaks.workers.items()):
            print(f"worker {pid}: peak RSS {mib:.0f} MiB; its work horses ({len(peaks.horse_count.get(pid, ()))}) "
                  f"peak RSS {peaks.horses.get(pid, 0.0):.0f} MiB")
        print(f"job stages (seen from outside, 0.1 s polls): {peaks.stage_times(wall)}")
        print(f"job: {search}")
    else:
        from solver.search import HybridParams, SearchParams

        params = SearchParams(hybrid=HybridParams(enabled=not args.no_hybrid))
        plan = solve(problem, network, progress=progress, params=params)
        wall = time.perf_counter() - t1
    if last[1] is not None:
        stages[last[1]] = stages.get(last[1], 0.0) + time.perf_counter() - last[0]
    t2 = time.perf_counter()
    report = check_plan(problem, plan, network)
    t_check = time.perf_counter() - t2
    _, peak = tracemalloc.get_traced_memory() if args.trace_heap else (0, 0)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    served = plan.summary.visits_planned
    servable = len(problem.visits)  # the witness serves them all
    print(f"load average {Path('/proc/loadavg').read_text().strip()}")
    print(f"plan wall time {wall:.1f} s (time limit {problem.options.time_limit_s:.0f} s): " +
          ", ".join(f"{k} {v:.1f} s" for k, v in stages.items()) +
          f"; matrix {plan.solver.matrix_seconds:.1f} s ({plan.solver.matrix_engine}); "
          f"search {plan.solver.metaheuristic}")
    print(f"served {served} of the {servable} visits a plan can serve (the witness serves all): "
          f"{100 * served / servable:.1f} %")
    reasons = {}
    for u in plan.unassigned:
        reasons[u.code] = reasons.get(u.code, 0) + 1
    print(f"unassigned by reason: {reasons}")
    print(f"priority served {plan.summary.priority_planned} of {plan.summary.priority_total}; "
          f"travel {plan.summary.travel_s / 3600:.1f} h, {plan.summary.distance_m / 1000:.0f} km; "
          f"crews used {plan.summary.crews_used}")
    print(f"checker: {'all routes valid' if report.ok else report}; checked in {t_check:.1f} s")
    heap = f"peak Python heap {peak / 2**20:.0f} MiB; " if args.trace_heap else ""
    print(f"{heap}peak RSS {rss_mb:.0f} MiB"
          + (" (this process: submits the job, checks the plan)" if args.workers else ""))
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
