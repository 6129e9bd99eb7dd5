"""Benchmark ``GET /v1/reports`` over a month of data on both stores.

A month (default 30 days, 300 visits and 20 crews a day) is written straight
into a store: each day's plan and problem (routes built by hand: the solver
is not what is measured), an outcome for 85 % of the visits (results drawn
from a fixed mix, about a third of them promises to pay) entered in their
case with :func:`app.cases.on_outcome`, and payments on a third of the
promises with :func:`app.cases.on_payment`, all written through the store's
own atomic writes. Then :func:`app.reports.build_report` runs over the whole
month for each grouping, and the script prints the seeding time, the report
times (best and median of ``--repeat``) and the report's totals, which must
match what was seeded.

Usage::

    python bench/reports.py                       # SQLite and Redis (127.0.0.1:6379 db 15)
    python bench/reports.py --stores sqlite --days 31 --visits 500 --crews 30
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.cases import CasesConfig, CaseState, Payment, on_outcome, on_payment
from app.reports import GROUP_BY, ReportsConfig, build_report
from app.store.base import CaseWrite, OutcomeWrite, Store
from solver.model import Location, Plan, PlanSummary, Problem, Route, SolverStats, Stop
from solver.screening import ScreeningConfig

#: Results drawn for the outcomes, with their weights.
RESULT_MIX = {"promise_to_pay": 30, "not_at_home": 25, "refused": 12, "paid": 10, "plan_agreed": 5,
              "wrong_address": 6, "moved": 4, "third_party": 4, "dispute": 2, "incident": 2}
START = dt.date(2026, 11, 1)
ZONE = dt.timezone(dt.timedelta(hours=8))


def make_day(day: dt.date, visits: int, crews: int, rng: random.Random) -> tuple[Problem, Plan]:
    """A day's problem and a plan serving every visit, crew by crew, 30 minutes apart."""
    problem = Problem.model_validate({
        "date": day.isoformat(), "timezone": "Asia/Shanghai",
        "visits": [{"id": f"v{i}", "case_id": f"C{day:%m%d}-{i}", "duration_min": 30,
                    "case": {"days_past_due": rng.randint(0, 120), "overdue_amount": 5000, "currency": "CNY"},
                    "addresses": [{"text": f"Road {i}", "location": {"lat": 31.2 + rng.random() / 20,
                                                                     "lon": 121.45 + rng.random() / 20}}]}
                   for i in range(visits)],
        "agents": [{"id": f"crew-{c:02d}", "members": ["A", "B"], "shift": {"start": "08:30", "end": "18:30"},
                    "start": {"text": f"Branch {c % 4}", "location": {"lat": 31.22, "lon": 121.47}}}
                   for c in range(crews)],
    })
    routes = []
    for c, agent in enumerate(problem.agents):
        mine = problem.visits[c::crews]
        clock = dt.datetime.combine(day, dt.time(8, 30), tzinfo=ZONE)
        stops = []
        for visit in mine:
            arrival = clock + dt.timedelta(minutes=10)
            location = visit.addresses[0].location
            assert location is not None
            stops.append(Stop(visit_id=visit.id, address_index=0, address_kind="home", location=location,
                              arrival=arrival, start=arrival, end=arrival + dt.timedelta(minutes=30),
                              earliest_start=arrival, latest_start=arrival, travel_s=600,
                              distance_m=rng.randint(500, 4000)))
            clock = arrival + dt.timedelta(minutes=30)
        home = Location(lat=31.22, lon=121.47)
        routes.append(Route(agent_id=agent.id, travel_mode="drive", start_location=home, end_location=home,
                            start=dt.datetime.combine(day, dt.time(8, 30), tzinfo=ZONE),
                            end=clock + dt.timedelta(minutes=15), stops=stops, end_travel_s=900,
                            end_distance_m=3000))
    plan = Plan(date=day, timezone="Asia/Shanghai", routes=routes,
                summary=PlanSummary(visits_total=visits, visits_planned=visits, priority_total=0,
                                    priority_planned=0, travel_s=0, distance_m=0, crews_used=crews),
                solver=SolverStats(status="bench", seconds=0.0))
    return problem, plan


def seed(store: Store, days: int, visits: int, crews: int) -> dict[str, int]:
    """Write the month; return what was written."""
    rng = random.Random(7)
    cases, screening = CasesConfig(), ScreeningConfig()
    counts = {"visits": 0, "made": 0, "promises": 0, "payments": 0}
    results, weights = list(RESULT_MIX), list(RESULT_MIX.values())
    for n in range(days):
        day = START + dt.timedelta(days=n)
        date = day.isoformat()
        problem, plan = make_day(day, visits, crews, rng)
        store.publish_plan(date, plan.model_dump_json(), problem.model_dump_json())
        crew_of = {s.visit_id: r.agent_id for r in plan.routes for s in r.stops}
        counts["visits"] += visits
        for visit in problem.visits:
            if rng.random() > 0.85:
                continue
            result = rng.choices(results, weights)[0]
            amount = 1000.0 if result in ("promise_to_pay", "paid") else None
            at = dt.datetime.combine(day, dt.time(12), tzinfo=ZONE).isoformat()
            record = {"outcome_id": uuid.uuid4().hex, "date": date, "visit_id": visit.id,
                      "agent_id": crew_of[visit.id], "status": "completed", "result": result, "amount": amount,
                      "currency": "CNY" if amount else None, "at": at, "recorded_at": at,
                      "promised_date": (day + dt.timedelta(days=3)).isoformat() if result == "promise_to_pay" else None,
                      "met": "nobody" if result in ("not_at_home", "wrong_address", "moved") else "borrower"}
            store.record_outcome(OutcomeWrite(date=date, visit_id=visit.id, agent_id=record["agent_id"],
                                              status="completed", result=result, allowed_from=frozenset({None}),
                                              outcome_json=json.dumps(record)))
            counts["made"] += 1
            now = record["at"]
            change = on_outcome(CaseState(case_id=visit.case_key), record, visit, cases, now)
            entries = list(change.entries)
            if result == "promise_to_pay":
                counts["promises"] += 1
                if rng.random() < 1 / 3:
                    received = day + dt.timedelta(days=2)
                    payment = Payment(f"pay-{visit.case_key}", 1000.0, "CNY", received,
                                      f"{received.isoformat()}T04:00:00.000Z")
                    change = on_payment(change.state, payment, cases, screening, now)
                    entries += change.entries
                    counts["payments"] += received <= START + dt.timedelta(days=days - 1)
            store.write_case(CaseWrite(case_id=visit.case_key, expect_version=0,
                                       state_json=change.state.model_dump_json(),
                                       has_open_promises=bool(change.state.open_promises),
                                       entries=[json.dumps(e) for e in entries]))
    return counts


def run(store: Store, name: str, args: argparse.Namespace) -> None:
    started = time.perf_counter()
    counts = seed(store, args.days, args.visits, args.crews)
    seeded_s = time.perf_counter() - started
    print(f"{name}: seeded {args.days} days, {counts['visits']} visits, {counts['made']} outcomes, "
          f"{counts['promises']} promises, {counts['payments']} payments in the month in {seeded_s:.1f} s")
    last = START + dt.timedelta(days=args.days - 1)
    for group_by in GROUP_BY:
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            report = build_report(store, START, last, group_by, ReportsConfig())
            times.append(time.perf_counter() - t0)
        total = report.total
        assert total["visits_planned"] == counts["visits"] and total["visits_made"] == counts["made"], total
        assert total["promises_made"] == counts["promises"] and total["payments"] == counts["payments"], total
        print(f"{name}: report by {group_by:<6} {len(report.groups):>3} groups: best {min(times):.2f} s, "
              f"median {statistics.median(times):.2f} s (of {args.repeat}); made {total['visits_made']}, "
              f"contact rate {total['contact_rate']}, kept rate {total['promise_kept_rate']}, "
              f"recovered {total['recovered_amount']}, cost {total['cost']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stores", default="sqlite,redis")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--visits", type=int, default=300, help="visits a day")
    parser.add_argument("--crews", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    args = parser.parse_args()
    for name in args.stores.split(","):
        if name == "sqlite":
            from app.store.sqlite import SQLiteStore

            with tempfile.TemporaryDirectory() as folder:
                store: Store = SQLiteStore.in_dir(folder)
                try:
                    run(store, name, args)
                finally:
                    store.close()
        elif name == "redis":
            from app.store.redis import RedisStore

            redis_store = RedisStore(args.redis_url, prefix=f"doorstep-bench:{uuid.uuid4().hex[:8]}:")
            try:
                run(redis_store, name, args)
            finally:
                redis_store.drop_all()
                redis_store.close()
        else:
            parser.error(f"unknown store {name!r}")


if __name__ == "__main__":
    main()
