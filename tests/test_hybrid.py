"""PyVRP on days with breaks (solver/search/hybrid.py): the day relaxed for
PyVRP, the routes timed, repaired and polished on the real day."""

from __future__ import annotations

import random

import pytest

from solver import solve
from solver.check import check_plan
from solver.compile import compile_problem
from solver.search import SearchParams, expressible, hybrid
from solver.search.params import HybridParams
from solver.timing import simulate
from tests.factories import PLANE, crew, problem, visit

pytest.importorskip("pyvrp")

LUNCH = [{"window": {"start": "11:30", "end": "13:30"}, "duration_min": 45}]
RELAXED = "PyVRP on the day relaxed"


def _collection_day(n_visits=30, seed=3, lunches=None, **options):
    """A small collection day every plan can serve in full: three crews with
    a lunch break and a visit limit, visits with open, morning, afternoon
    and office-hours windows."""
    rng = random.Random(seed)
    kinds = [(), [("08:30", "12:00")], [("13:00", "18:00")], [("09:00", "12:00"), ("13:30", "17:00")]]
    visits = [visit(f"v{i}", rng.uniform(-12, 12), rng.uniform(-12, 12), windows=kinds[i % 4],
                    priority=rng.randint(0, 100), duration_min=rng.choice([20, 30, 45])) for i in range(n_visits)]
    lunches = lunches or [LUNCH] * 3
    agents = [crew(f"c{k}", x=4 * k - 4, shift=("08:30", "18:30"), breaks=lunches[k], max_visits=14)
              for k in range(3)]
    options.setdefault("time_limit_s", 2)
    options.setdefault("threads", 1)
    return problem(visits, agents, slot_minutes=0, **options)


def _assert_breaks_placed(p, plan):
    """Every route takes its lunch inside the window and no visit overlaps it."""
    for route in plan.routes:
        if not route.stops:
            continue
        (brk,) = route.breaks
        assert (brk.end - brk.start).total_seconds() == 45 * 60
        assert brk.start.hour * 60 + brk.start.minute >= 11 * 60 + 30
        assert brk.end.hour * 60 + brk.end.minute <= 13 * 60 + 30
        for stop in route.stops:
            assert stop.end <= brk.start or stop.start >= brk.end


def test_a_day_with_breaks_is_searched_by_pyvrp_and_serves_what_ortools_serves():
    p = _collection_day()
    plan = solve(p, PLANE)
    check_plan(p, plan, PLANE).raise_if_invalid()
    assert plan.solver.first_solution.startswith(RELAXED + " (breaks cut out of the clock)")
    assert "OR-Tools ruin-and-recreate" in plan.solver.metaheuristic
    _assert_breaks_placed(p, plan)
    assert all(len(r.stops) <= 14 for r in plan.routes)  # the visit limit, a PyVRP load dimension

    plain = solve(p, PLANE, params=SearchParams(hybrid=HybridParams(enabled=False)))
    assert not plain.solver.first_solution.startswith(RELAXED)
    assert plan.summary.visits_planned == plain.summary.visits_planned == len(p.visits)


def test_on_the_compressed_clock_every_pyvrp_route_times_with_its_break():
    from solver.search.portfolio import portfolio_search

    data = compile_problem(_collection_day(), PLANE)
    assert expressible(data) == "breaks"
    params = HybridParams()
    relaxation = hybrid.relax(data, params)
    assert relaxation is not None and relaxation.compressed
    assert expressible(relaxation.data) is None
    # the break is pinned at 12:07:30 (half-way through its latest-start range): 45 minutes go from then on
    morning, afternoon = 12 * 3600, 18 * 3600
    pin = 11 * 3600 + 1800 + (2 * 3600 - 2700) // 2
    node = next(n for n in data.visit_nodes[1] if data.nodes[n].windows)
    assert data.nodes[node].windows[-1][1] == morning
    assert relaxation.data.nodes[node].windows[-1][1] == morning  # before the pin: as it was
    assert relaxation.data.vehicles[0].shift[1] == data.vehicles[0].shift[1] - 2700
    late = next(n for n in data.visit_nodes[2] if data.nodes[n].windows)
    assert data.nodes[late].windows[-1][1] == afternoon
    assert relaxation.data.nodes[late].windows[-1][1] == afternoon - 2700
    assert hybrid._clock(pin + 600, [(pin, 2700)]) == pin  # inside the break: the pin
    translation = hybrid.translate_relaxed(relaxation)
    assert translation is not None
    result = portfolio_search(relaxation.data, 1.0, threads=1, translation=translation)
    assert result is not None and result.feasible
    for v, sequence in enumerate(result.routes):
        assert len(sequence) <= 14
        schedule = simulate(data.route_timing(v, sequence))
        assert schedule is not None and (not sequence or len(schedule.breaks) == 1)


def test_crews_with_different_breaks_have_them_folded_in_and_repaired():
    early = [{"window": {"start": "11:00", "end": "12:00"}, "duration_min": 45}]
    late = [{"window": {"start": "13:00", "end": "14:30"}, "duration_min": 30}]
    p = _collection_day(n_visits=36, seed=5, lunches=[early, late, LUNCH])
    data = compile_problem(p, PLANE)
    relaxation = hybrid.relax(data, HybridParams())
    assert relaxation is not None and not relaxation.compressed
    assert [v.shift[1] for v in relaxation.data.vehicles] == [s - d for s, d in zip(
        [v.shift[1] for v in data.vehicles], [2700, 1800, 2700])]
    plan = solve(p, PLANE)
    check_plan(p, plan, PLANE).raise_if_invalid()
    assert plan.solver.first_solution == RELAXED + " (breaks folded into the shifts)"
    for route in plan.routes:
        assert len(route.breaks) == (1 if route.stops else len(route.breaks))


def test_repair_takes_out_what_does_not_fit_with_the_break():
    # one crew, three visits back to back through lunch: only two fit with the break
    p = problem([visit(f"v{i}", 1, duration_min=60, windows=[("11:00", "13:30")], priority=10 * i)
                 for i in range(3)],
                [crew("c", shift=("11:00", "14:30"), breaks=LUNCH)], slot_minutes=0)
    data = compile_problem(p, PLANE)
    nodes = [data.visit_nodes[vi][0] for vi in range(3)]
    assert simulate(data.route_timing(0, nodes)) is None
    kept = hybrid.repair(data, 0, nodes)
    assert simulate(data.route_timing(0, kept)) is not None
    assert kept == nodes[1:]  # the least important visit (priority 0) goes


def test_days_the_hybrid_does_not_take():
    with_skill = _collection_day()
    payload = with_skill.model_dump(mode="json")
    payload["visits"][0]["skills"] = ["legal"]
    payload["agents"][0]["skills"] = ["legal"]
    skilled = type(with_skill).model_validate(payload)
    assert hybrid.relax(compile_problem(skilled, PLANE), HybridParams()) is None
    plan = solve(skilled, PLANE)
    check_plan(skilled, plan, PLANE).raise_if_invalid()
    assert not plan.solver.first_solution.startswith(RELAXED)

    limits_only = problem([visit(f"v{i}", i) for i in range(4)], [crew("a", max_visits=1), crew("b", x=50)])
    data = compile_problem(limits_only, PLANE)
    assert hybrid.relax(data, HybridParams()) is None
    assert hybrid.relax(data, HybridParams(limits_alone=True)) is not None
    day = compile_problem(_collection_day(), PLANE)
    assert hybrid.hybrid_search(day, 5.0, params=SearchParams(hybrid=HybridParams(enabled=False))) is None
    assert hybrid.hybrid_search(day, 0.2) is None  # too short a budget
