"""PyVRP's iterated local search (solver/search/) on the days it can express."""

from __future__ import annotations

import time

import pytest

from solver import solve
from solver.check import check_plan
from solver.compile import compile_problem
from solver.processes import process_state
from tests.factories import PLANE, at, crew, problem, visit

pytest.importorskip("pyvrp")


def _expressible_day(**options):
    """Alternative addresses, a visit with two windows, capacities and more
    optional work than the crews can do."""
    visits = [visit(f"v{i}", (i % 7) - 3, (i // 7) - 2, priority=(7 * i) % 100, load=1) for i in range(30)]
    visits.append({"id": "alt", "duration_min": 15, "priority": 90,
                   "addresses": [{**at(9, 9), "time_windows": []}, {**at(1, 1), "time_windows": []}]})
    visits.append(visit("two", 2, -2, windows=[("08:00", "08:05"), ("15:00", "15:30")], priority=80))
    visits.append(visit("must", -4, 3, required=True))
    crews = [crew("a", shift=("08:00", "11:00"), capacity=9), crew("b", x=2, shift=("08:00", "16:00"), capacity=9)]
    return problem(visits, crews, slot_minutes=0, **options)


def test_pyvrp_solves_a_day_it_can_express_at_the_objective_ortools_gives_its_routes():
    from solver.search import search
    from solver.search.ortools_model import build_model, restore, search_parameters
    from solver.solve import build_plan

    p = _expressible_day(time_limit_s=2, threads=1)
    data = compile_problem(p, PLANE)
    raw = search(data)
    assert raw.first_solution == "PyVRP" and "1 searches" in raw.metaheuristic
    plan = build_plan(data, raw)
    check_plan(p, plan, PLANE).raise_if_invalid()
    served = {s.visit_id for r in plan.routes for s in r.stops}
    assert {"alt", "must"} <= served and len(raw.dropped) > 0  # overloaded: optional visits left out
    loads = {v.id: v.load for v in p.visits}
    assert all(sum(loads[s.visit_id] for s in r.stops) <= 9 for r in plan.routes)  # capacity
    # the objective PyVRP's routes get is the one OR-Tools' model of the day gives them
    model = build_model(data, None, 0)
    model.routing.CloseModelWithParameters(search_parameters(5))
    restored = restore(model, [[s.node for s in r.stops] for r in raw.routes])
    assert restored is not None and restored.ObjectiveValue() == raw.objective


def test_days_with_what_pyvrp_lacks_stay_with_ortools(monkeypatch):
    from solver.search import expressible, ils

    base = [visit(f"v{i}", i, 1) for i in range(5)]
    breaks = [{"window": {"start": "12:00", "end": "13:00"}, "duration_min": 30}]
    cases = {
        "breaks": problem(base, [crew("a", breaks=breaks)]),
        "crews restricted per visit": problem([*base, visit("s", 2, 2, skills=["legal"])],
                                              [crew("a", skills=["legal"]), crew("b")]),
        "visit limits": problem(base, [crew("a", max_visits=2)]),
        "workload balance": problem(base, [crew("a"), crew("b")], balance="visits"),
    }
    for reason, p in cases.items():
        data = compile_problem(p, PLANE)
        assert expressible(data) == reason
        plan = solve(p, PLANE)
        assert plan.solver.first_solution != "PyVRP"
    assert expressible(compile_problem(problem(base, [crew("a")]), PLANE)) is None
    monkeypatch.setattr(ils, "available", lambda: False)
    assert expressible(compile_problem(problem(base, [crew("a")]), PLANE)) == "pyvrp not installed"
    p = problem(base, [crew("a")])
    check_plan(p, plan := solve(p, PLANE), PLANE).raise_if_invalid()
    assert plan.solver.first_solution != "PyVRP"


def test_two_threads_run_two_searches_and_keep_the_best_within_the_time_limit():
    p = _expressible_day(time_limit_s=2, threads=2, max_iterations=None)  # the whole budget, searched
    started = time.perf_counter()
    plan = solve(p, PLANE)
    seconds = time.perf_counter() - started
    check_plan(p, plan, PLANE).raise_if_invalid()
    assert "2 searches" in plan.solver.metaheuristic
    assert 1.5 < seconds < 3.0


def test_required_visits_that_cannot_all_fit_go_back_to_ortools_in_time():
    p = problem([visit("r1", 10, windows=[("08:30", "08:35")], required=True),
                 visit("r2", -10, windows=[("08:30", "08:35")], required=True)],
                [crew("c1")], time_limit_s=3, threads=1)
    started = time.perf_counter()
    plan = solve(p, PLANE)
    assert time.perf_counter() - started < 4.0
    check_plan(p, plan, PLANE).raise_if_invalid()
    assert plan.summary.visits_planned == 1 and plan.solver.first_solution != "PyVRP"
    (u,) = plan.unassigned
    assert u.code == "required_infeasible"


def _children(pid: int) -> set[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as f:
            return {int(c) for c in f.read().split()}
    except OSError:
        return set()


def _alive(pid: int) -> bool:
    return process_state(pid) not in (None, "Z")


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/task"), reason="needs Linux /proc")
def test_the_searches_of_a_killed_solve_die_with_it():
    # a job killed at its cap (or a lost worker) must not leave its other searches
    # solving on, unseen and outside every cap
    import multiprocessing
    import os
    import signal

    p = _expressible_day(time_limit_s=60, threads=2, max_iterations=None)  # searching when killed
    solving = multiprocessing.get_context("fork").Process(target=solve, args=(p, PLANE))
    solving.start()
    deadline = time.monotonic() + 20
    searches: set[int] = set()
    while time.monotonic() < deadline and not searches:
        searches = _children(solving.pid)
        time.sleep(0.05)
    assert searches, "the two-thread solve started no second search"
    os.kill(solving.pid, signal.SIGKILL)
    solving.join()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_alive(pid) for pid in searches):
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in searches), "a search outlived the solve that started it"
