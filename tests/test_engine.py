"""The OR-Tools engine on small instances whose right answer is known by hand.

Every plan produced here is re-verified by the independent checker.
"""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import pytest

from solver import solve
from solver.check import check_plan
from solver.solomon import dimacs_travel, read_solomon
from tests.factories import PLANE, crew, minutes, problem, visit

SHARED = Path(__file__).resolve().parents[2] / "shared"


def solve_checked(p, travel=PLANE):
    plan = solve(p, travel)
    check_plan(p, plan, travel).raise_if_invalid()
    return plan


def stop_ids(plan, agent_id):
    return [s.visit_id for s in plan.route(agent_id).stops]


def test_windows_force_the_order_and_times():
    # B (5 min out) must start by 08:20, A (10 min out) only from 09:00.
    p = problem(
        [visit("A", 10, windows=[("09:00", "09:10")]), visit("B", 5, windows=[("08:00", "08:20")])],
        [crew("c1")],
    )
    plan = solve_checked(p)
    assert stop_ids(plan, "c1") == ["B", "A"]
    b, a = plan.route("c1").stops
    assert 8 * 60 + 5 <= minutes(b.start) <= 8 * 60 + 20
    assert minutes(a.start) == 9 * 60
    assert a.travel_s == 5 * 60 and b.travel_s == 5 * 60
    assert plan.route("c1").end_travel_s == 10 * 60
    assert plan.summary.travel_s == 20 * 60


def test_second_window_used_when_first_cannot_be_reached():
    # 30 minutes away; first window closes 08:10, so it must be the 14:00 one.
    p = problem([visit("A", 30, windows=[("08:00", "08:10"), ("14:00", "14:30")])], [crew("c1")])
    plan = solve_checked(p)
    (stop,) = plan.route("c1").stops
    assert minutes(stop.start) == 14 * 60
    assert stop.wait_s == 0  # leaves late rather than waiting at the door
    assert minutes(plan.route("c1").start) == 14 * 60 - 30


def test_two_addresses_one_visit_at_the_one_that_suits():
    v = {
        "id": "V",
        "duration_min": 20,
        "addresses": [
            {"location": {"lat": 0, "lon": 40}, "kind": "home", "time_windows": [{"start": "19:00", "end": "20:00"}]},
            {"location": {"lat": 0, "lon": 10}, "kind": "work", "time_windows": [{"start": "09:00", "end": "17:00"}]},
        ],
    }
    plan = solve_checked(problem([v], [crew("c1")]))
    (stop,) = plan.route("c1").stops
    assert stop.address_index == 1 and stop.address_kind == "work"
    assert plan.summary.visits_planned == 1


def test_unusable_work_address_is_not_used():
    v = {
        "id": "V",
        "addresses": [
            {"location": {"lat": 0, "lon": 40}, "kind": "home"},
            {"location": {"lat": 0, "lon": 1}, "kind": "work", "usable": False},
        ],
    }
    plan = solve_checked(problem([v], [crew("c1")]))
    assert plan.route("c1").stops[0].address_index == 0


def test_skills_and_crew_size_route_visits_to_the_right_crew():
    p = problem(
        [visit("legal", 5, skills=["legal"]), visit("pair", 6, crew_size=2), visit("any", 7)],
        [crew("solo", skills=["legal"], members=["A"]), crew("duo", members=["B", "C"])],
    )
    plan = solve_checked(p)
    assert "legal" in stop_ids(plan, "solo")
    assert "pair" in stop_ids(plan, "duo")


def test_unserveable_visits_get_specific_reasons():
    p = problem(
        [
            visit("skill", 5, skills=["lang:yue"]),
            visit("size", 5, crew_size=3),
            visit("hours", 5, windows=[("22:00", "23:00")]),
            visit("far", 150, windows=[("08:00", "09:00")]),
            visit("ok", 5),
        ],
        [crew("c1", members=["A", "B"])],
    )
    plan = solve_checked(p)
    codes = {u.visit_id: u.code for u in plan.unassigned}
    assert codes == {"skill": "no_skill", "size": "crew_too_small", "hours": "outside_hours",
                     "far": "window_unreachable"}
    assert "lang:yue" in next(u.reason for u in plan.unassigned if u.visit_id == "skill")
    assert stop_ids(plan, "c1") == ["ok"]


def test_priority_decides_which_conflicting_visit_is_dropped():
    # Both need 08:30-08:40 at places 20 minutes apart: only one can be made.
    p = problem(
        [
            visit("low", 10, windows=[("08:30", "08:40")], priority=10),
            visit("high", -10, windows=[("08:30", "08:40")], priority=90),
        ],
        [crew("c1")],
    )
    plan = solve_checked(p)
    assert stop_ids(plan, "c1") == ["high"]
    (u,) = plan.unassigned
    assert u.visit_id == "low" and u.code == "lower_priority"
    # the reason says where it would go and what it would displace
    assert u.details["agent_id"] == "c1" and u.details["position"] == 1
    assert u.details["displaces"] == ["high"] and u.details["displaced_priority"] == 90
    assert "in place of visit high (priority 90 vs 10)" in u.reason


def test_one_high_priority_visit_outweighs_several_low_ones():
    # Either the single priority-100 visit (east) or three priority-20 visits (west).
    lows = [visit(f"low{i}", -20 - i, windows=[("08:20", "08:40")], priority=20, duration_min=1) for i in range(3)]
    high = visit("high", 20, windows=[("08:20", "08:40")], priority=100)
    plan = solve_checked(problem([*lows, high], [crew("c1", shift=("08:00", "09:10"))]))
    assert "high" in stop_ids(plan, "c1")


def test_required_visits_that_conflict_are_reported_not_silently_dropped():
    p = problem(
        [
            visit("r1", 10, windows=[("08:30", "08:35")], required=True),
            visit("r2", -10, windows=[("08:30", "08:35")], required=True),
        ],
        [crew("c1")],
    )
    plan = solve_checked(p)
    assert plan.summary.visits_planned == 1
    (u,) = plan.unassigned
    assert u.code == "required_infeasible"


def test_appointment_is_kept_even_over_higher_priority():
    p = problem(
        [
            visit("booked", 10, priority=0, appointment={"start": "10:00", "end": "10:15"}),
            visit("urgent", -10, windows=[("09:50", "10:20")], priority=100, duration_min=30),
        ],
        [crew("c1", shift=("09:40", "10:40"))],
    )
    plan = solve_checked(p)
    assert "booked" in stop_ids(plan, "c1")
    stop = next(s for s in plan.route("c1").stops if s.visit_id == "booked")
    assert 600 <= minutes(stop.start) <= 615


def test_lunch_break_taken_inside_its_window_never_splitting_a_visit():
    visits = [visit(f"v{i}", 2 + i, duration_min=50) for i in range(6)]
    agent = crew("c1", shift=("10:00", "16:00"),
                 breaks=[{"window": {"start": "12:00", "end": "13:30"}, "duration_min": 60}])
    plan = solve_checked(problem(visits, [agent]))
    (brk,) = plan.route("c1").breaks
    assert minutes(brk.start) >= 12 * 60 and minutes(brk.end) <= 13 * 60 + 30
    assert (brk.end - brk.start).total_seconds() == 3600
    for s in plan.route("c1").stops:
        assert s.end <= brk.start or s.start >= brk.end


def test_max_visits_per_crew():
    p = problem([visit(f"v{i}", 1 + i) for i in range(4)], [crew("a", max_visits=1), crew("b", x=50)])
    plan = solve_checked(p)
    assert len(stop_ids(plan, "a")) == 1
    assert len(stop_ids(plan, "b")) == 3


def test_own_start_and_end_places_and_open_end():
    p = problem(
        [visit("west", -20), visit("east", 20)],
        [crew("w", x=-25, end=at_point(-30)), crew("e", x=25, open_end=True)],
    )
    plan = solve_checked(p)
    assert stop_ids(plan, "w") == ["west"] and stop_ids(plan, "e") == ["east"]
    assert plan.route("w").end_travel_s == 10 * 60
    assert plan.route("e").end_travel_s == 0 and plan.route("e").end_location is None


def test_pinned_visit_goes_to_its_crew():
    p = problem([visit("v", 1, pinned_agent="far")], [crew("near"), crew("far", x=80)])
    assert stop_ids(solve_checked(p), "far") == ["v"]


def test_travel_mode_per_crew_uses_its_own_speed():
    from solver.travel import StraightLineTravel

    travel = StraightLineTravel()
    base = {"lat": 31.23, "lon": 121.47}
    p = problem(
        [{"id": "v", "addresses": [{"location": {"lat": 31.24, "lon": 121.47}}]}],
        [
            {"id": "walker", "shift": {"start": "08:00", "end": "18:00"}, "start": {"location": base},
             "travel_mode": "walk"},
        ],
    )
    walk = solve_checked(p, travel).route("walker").stops[0].travel_s
    p2 = p.model_copy(deep=True)
    p2.agents[0].travel_mode = "ebike"
    ebike = solve_checked(p2, travel).route("walker").stops[0].travel_s
    assert walk == pytest.approx(ebike * 15 / 4.5, rel=0.01)


def at_point(x: float, y: float = 0.0):
    return {"location": {"lat": y, "lon": x}}


@pytest.mark.skipif(not (SHARED / "benchmarks").exists(), reason="../shared benchmarks not present")
@pytest.mark.parametrize("name", ["R101", "RC101"])
def test_tightly_windowed_solomon_instances_are_solved_feasibly(name):
    from solver.search import SearchParams

    p = read_solomon(SHARED / "benchmarks/vrptw/instances/solomon" / f"{name}.txt", time_limit_s=3)
    plan = solve(p, dimacs_travel(), params=SearchParams().stopping_after(300))  # about 1 s
    check_plan(p, plan, dimacs_travel()).raise_if_invalid()
    assert plan.summary.visits_planned == 100
    assert plan.summary.crews_used <= 25
    bks = {"R101": 1637.7, "RC101": 1619.8}[name]
    # quality is measured in bench/vrptw.py; here only a sanity bound for a short run
    assert plan.summary.distance_m / 10 < bks * 1.15


def test_visit_left_out_because_every_crew_is_full_says_so():
    p = problem([visit(f"v{i}", 1 + i, priority=10 * i) for i in range(3)], [crew("a", max_visits=2)])
    plan = solve_checked(p)
    (u,) = plan.unassigned
    assert u.visit_id == "v0" and u.code == "capacity"


@pytest.mark.parametrize("balance", ["visits", "time"])
def test_balance_spreads_the_work_across_crews(balance):
    # ten visits in a cluster next to both crews' shared branch: without
    # balance one crew makes them all (least travel); with it, both work.
    visits = [visit(f"v{i}", 1 + i % 3, i // 3, duration_min=20) for i in range(10)]
    crews = [crew("a"), crew("b")]
    unbalanced = solve_checked(problem(visits, crews))
    counts = sorted(len(r.stops) for r in unbalanced.routes)
    assert counts == [0, 10]
    balanced = solve_checked(problem(visits, crews, balance=balance))
    counts = sorted(len(r.stops) for r in balanced.routes)
    assert counts[0] >= 4, counts


def test_ortools_fixes_local_search_operators_when_the_model_closes():
    """The engine's design rests on this OR-Tools behaviour (9.15): operators
    chosen in the parameters of a later solve are ignored; the ones of the
    close stay. If a new OR-Tools changes it, the light/heavy split in
    ``solver.search`` must be revisited."""
    import random

    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    rng = random.Random(1)
    pts = [(rng.random() * 100, rng.random() * 100) for _ in range(40)]
    dist = [[int(((a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2) ** 0.5) for b in pts] for a in pts]
    manager = pywrapcp.RoutingIndexManager(40, 3, 0)
    routing = pywrapcp.RoutingModel(manager)
    routing.SetArcCostEvaluatorOfAllVehicles(routing.RegisterTransitMatrix(dist))
    greedy = routing_enums_pb2.LocalSearchMetaheuristic.GREEDY_DESCENT
    closing = pywrapcp.DefaultRoutingSearchParameters()
    closing.local_search_metaheuristic = greedy
    routing.CloseModelWithParameters(closing)  # default operators
    no_operators = pywrapcp.DefaultRoutingSearchParameters()
    no_operators.local_search_metaheuristic = greedy
    for f in no_operators.local_search_operators.DESCRIPTOR.fields:
        setattr(no_operators.local_search_operators, f.name, 2)  # BOOL_FALSE
    bad = [[manager.NodeToIndex(i) for i in range(1 + k, 40, 3)] for k in range(3)]  # interleaved
    start = routing.solver().Assignment()
    assert routing.RoutesToAssignment(bad, True, True, start)
    begin = routing.SolveFromAssignmentWithParameters(start, no_operators)
    initial = sum(dist[0 if a == 0 else a][b] for r in [[0] + [manager.IndexToNode(i) for i in route] + [0]
                                                      for route in bad] for a, b in itertools.pairwise(r))
    assert begin.ObjectiveValue() < initial  # the closed model's operators still ran


def _mixed_day(n_visits=48, seed=7, **options):
    """An overloaded day with what a sub-model repair must carry: a skill
    only one crew has, home/work alternatives with different windows, lunch
    breaks, a visit limit and optional visits of mixed priority."""
    import random

    rng = random.Random(seed)
    visits = []
    for i in range(n_visits):
        x, y = rng.uniform(-25, 25), rng.uniform(-25, 25)
        extra = {"priority": rng.randint(0, 100), "duration_min": rng.choice([30, 45, 60])}
        if i % 7 == 0:
            extra["skills"] = ["legal"]
        if i % 5 == 0:
            extra["addresses"] = [
                {"location": {"lat": y, "lon": x}, "kind": "home",
                 "time_windows": [{"start": "17:00", "end": "19:00"}]},
                {"location": {"lat": -y, "lon": -x}, "kind": "work",
                 "time_windows": [{"start": "09:00", "end": "12:00"}]},
            ]
            visits.append({"id": f"v{i}", **extra})
        else:
            visits.append(visit(f"v{i}", x, y, windows=[("08:00", "13:00")] if i % 3 == 0 else (), **extra))
    lunch = [{"window": {"start": "11:30", "end": "13:30"}, "duration_min": 45}]
    agents = [crew("c0", shift=("08:00", "19:00"), breaks=lunch, skills=["legal"]),
              crew("c1", x=10, shift=("08:00", "16:00"), breaks=lunch, max_visits=6),
              crew("c2", y=-10, shift=("09:00", "18:00"), breaks=lunch),
              crew("c3", x=-10, shift=("08:00", "15:00"))]
    # stopped by iterations when they are given: the limit is only a backstop (a loaded machine is slow)
    return problem(visits, agents, time_limit_s=60 if options.get("max_iterations") else 3, **options)


def _spy_repairs(monkeypatch):
    """Count the engine's repairs by kind and capture what the ruin and
    recreate returned."""
    from solver.search.ruin_recreate import RuinAndRecreate

    seen = {"part": 0, "whole": 0}
    for kind in ("part", "whole"):
        original = getattr(RuinAndRecreate, f"_repair_{kind}")

        def counted(self, *args, _original=original, _kind=kind):
            seen[_kind] += 1
            return _original(self, *args)

        monkeypatch.setattr(RuinAndRecreate, f"_repair_{kind}", counted)
    run = RuinAndRecreate.run

    def spy_run(self, routes, cost, budget_s):
        result = run(self, routes, cost, budget_s)
        seen.update(rr=self, first_cost=cost, best=result)
        return result

    monkeypatch.setattr(RuinAndRecreate, "run", spy_run)
    return seen


def test_sub_model_repairs_keep_every_rule_and_price_the_result_exactly(monkeypatch):
    """Repairs of a few routes in a sub-model: the day still passes the
    checker (skills, alternatives, breaks, visit limit), the ruin and recreate
    improves on the first solution, and the cost it tracked by summing
    route and drop costs is the objective OR-Tools gives the final routes."""
    from solver.compile import compile_problem
    from solver.search import RuinRecreateParams, SearchParams, search
    from solver.solve import build_plan

    # a few routes out of four; OR-Tools' repairs are under test
    params = SearchParams(use_ils=False, ruin_recreate=RuinRecreateParams(scope_visits=12, whole_share=0.0))
    seen = _spy_repairs(monkeypatch)
    p = _mixed_day(max_iterations=25)
    data = compile_problem(p, PLANE)
    raw = search(data, params=params)
    plan = build_plan(data, raw)
    check_plan(p, plan, PLANE).raise_if_invalid()
    assert seen["part"] > 20 and seen["whole"] == 0
    best_routes, best_cost = seen["best"]
    assert seen["rr"].improvements > 0 and best_cost < seen["first_cost"]
    assert raw.objective == best_cost == seen["rr"].cost(best_routes)
    assert raw.status == "success"  # the descent's outcome, not the read-back's (stopped at its first solution)
    assert [[s.node for s in r.stops] for r in raw.routes] == best_routes
    assert 0 < plan.summary.visits_planned < plan.summary.visits_total  # overloaded: some left out
    legal = {f"v{i}" for i in range(0, 48, 7)}
    for route in plan.routes:
        if route.agent_id != "c0":
            assert not legal & {s.visit_id for s in route.stops}
    assert len(plan.route("c1").stops) <= 6


def test_whole_day_repairs_while_visits_are_left_out_keep_the_cost_exact(monkeypatch):
    """While the day leaves visits out, some repairs take the whole day (a
    left-out visit may fit only a far crew); mixed with sub-model repairs the
    tracked cost is still OR-Tools' objective of the final routes. A day that
    serves every visit is never repaired whole."""
    from solver.compile import compile_problem
    from solver.search import RuinRecreateParams, SearchParams, search
    from solver.solve import build_plan

    # the second day is one PyVRP could take
    params = SearchParams(use_ils=False, ruin_recreate=RuinRecreateParams(whole_share=0.5))
    seen = _spy_repairs(monkeypatch)
    p = _mixed_day(max_iterations=20)
    data = compile_problem(p, PLANE)
    raw = search(data, params=params)
    assert seen["whole"] > 0 and seen["part"] > 0
    best_routes, best_cost = seen["best"]
    assert raw.objective == best_cost == seen["rr"].cost(best_routes)
    check_plan(p, build_plan(data, raw), PLANE).raise_if_invalid()

    seen = _spy_repairs(monkeypatch)
    light = problem([visit(f"v{i}", i % 5, i // 5) for i in range(10)], [crew("a"), crew("b", x=3)],
                    time_limit_s=2)
    search(compile_problem(light, PLANE), params=params)
    assert seen["part"] > 0 and seen["whole"] == 0


def test_costs_outside_ortools_equal_its_objective_with_stability_and_left_out_visits():
    """:class:`solver.search.costs.Costs` prices arcs, stability and drops as the
    model does, on a solution that leaves visits out and moves visits away
    from the crew that had them."""
    from solver.compile import compile_problem
    from solver.search.costs import price
    from solver.search.ortools_model import build_model, descent_parameters, routes_of
    from solver.search.ruin_recreate import RuinAndRecreate

    data = compile_problem(_mixed_day(), PLANE)
    visit_nodes = [n for n, node in enumerate(data.nodes) if node.kind == "visit"]
    preferred = {n: k % len(data.vehicles) for k, n in enumerate(visit_nodes)}
    model = build_model(data, preferred, 900)
    solution = model.routing.SolveWithParameters(descent_parameters(2, heavy=False))
    routes = routes_of(model, solution)
    served = {data.nodes[n].visit for r in routes for n in r}
    assert len(served) < len(data.visit_nodes)
    moved = sum(1 for v, r in enumerate(routes) for n in r if preferred[n] != v)
    assert moved > 0
    rr = RuinAndRecreate(data, price(data, preferred, 900), 0)
    assert rr.cost(routes) == solution.ObjectiveValue()


def test_sub_model_repairs_price_moving_a_visit_to_another_crew():
    """A re-plan's stability cost reaches the sub-model: visits that crew a
    was told about go back to crew a after a ruin, although crew b starts
    next to them, and the repair's cost is the day's objective."""
    from solver.compile import compile_problem
    from solver.search.costs import price
    from solver.search.ortools_model import build_model
    from solver.search.ruin_recreate import RuinAndRecreate

    visits = [visit(f"v{i}", 45 + i, 1) for i in range(4)]
    data = compile_problem(problem(visits, [crew("a"), crew("b", x=50)], time_limit_s=2), PLANE)
    nodes = [n for n, node in enumerate(data.nodes) if node.kind == "visit"]
    preferred = dict.fromkeys(nodes, 0)
    model = build_model(data, preferred, 10**6)
    rr = RuinAndRecreate(data, model.costs, 0, preferred_vehicle=preferred, stability_cost=10**6)
    routes = [sorted(nodes), []]
    sp = data.nodes[nodes[0]].point
    candidate, cost = rr._repair_part(routes, set(nodes), nodes, sp, False, 1.0, rr.cost(routes))
    assert sorted(candidate[0]) == sorted(nodes) and candidate[1] == []
    assert cost == rr.cost(candidate)
    without = RuinAndRecreate(data, price(data, None, 0), 0)
    moved, _ = without._repair_part(routes, set(nodes), nodes, sp, False, 1.0, without.cost(routes))
    assert sorted(moved[1]) == sorted(nodes)  # the control: without stability crew b takes them


def test_whole_day_repairs_in_the_full_operator_model_are_read_back_correctly(monkeypatch):
    """With workload balance the objective is not a sum over routes, so every
    repair takes the whole day, here all in the second (heavy) model; the best
    routes are read back through the first model with their times and breaks
    and pass the checker."""
    from solver.search import RuinRecreateParams, SearchParams

    seen = _spy_repairs(monkeypatch)
    p = _mixed_day(n_visits=36, balance="visits", max_iterations=15)
    plan = solve(p, PLANE, params=SearchParams(ruin_recreate=RuinRecreateParams(heavy_share=1.0)))
    check_plan(p, plan, PLANE).raise_if_invalid()
    assert seen["whole"] > 0 and seen["part"] == 0
    assert seen["rr"].heavy is not None and seen["rr"].improvements > 0
    for route in plan.routes:
        if route.stops and route.agent_id != "c3":
            (brk,) = route.breaks
            assert minutes(brk.start) >= 11 * 60 + 30 and minutes(brk.end) <= 13 * 60 + 30


def test_a_subset_never_opens_a_visit_to_crews_it_was_closed_to():
    """A visit only crew c0 may make keeps no crew in a subset without c0
    (an empty list would mean "every crew")."""
    from solver.compile import compile_problem
    from solver.search import search

    p = problem([visit("legal", 5, skills=["legal"]), visit("any", 6)],
                [crew("c0", skills=["legal"]), crew("c1", x=5)])
    data = compile_problem(p, PLANE)
    sub, node_map, vehicles = data.subset([1], list(data.visit_nodes))
    legal = next(k for k, n in enumerate(node_map) if data.nodes[n].kind == "visit"
                 and p.visits[data.nodes[n].visit].id == "legal")
    assert sub.nodes[legal].vehicles == [-1] and vehicles == [1]
    raw = search(sub, time_limit_s=1)
    served = {p.visits[sub.nodes[s.node].visit].id for r in raw.routes for s in r.stops}
    assert served == {"any"}


@pytest.mark.skipif(not (SHARED / "benchmarks").exists(), reason="../shared benchmarks not present")
def test_a_horizon_past_two_days_is_read_on_a_half_minute_clock():
    """GH 200's C2 instances run 3,598 minutes, more than a plan's two days:
    they are read at 30 s a unit, and travel priced on the same clock keeps
    distances (the benchmark's objective) as they are."""
    from solver.search import SearchParams
    from solver.solomon import seconds_per_unit

    path = SHARED / "benchmarks/vrptw/instances/homberger_200/c2_2_1.txt"
    assert seconds_per_unit(path) == 30
    assert seconds_per_unit(SHARED / "benchmarks/vrptw/instances/solomon/R101.txt") == 60
    p = read_solomon(path, time_limit_s=3)
    assert p.agents[0].shift.end - p.agents[0].shift.start == dt.timedelta(seconds=3598 * 30)
    assert p.visits[0].duration_min == 45  # 90 units of service
    travel = dimacs_travel(30)
    plan = solve(p, travel, params=SearchParams().stopping_after(50))
    check_plan(p, plan, travel).raise_if_invalid()
    assert plan.summary.visits_planned == 200
    assert plan.summary.distance_m / 10 < 1922.1 * 1.2  # best known 1922.1: distances are not scaled


def test_a_horizon_past_two_days_even_at_half_a_minute_is_read_and_planned(tmp_path):
    """GH 1000's R2 and RC2 instances run 7,284-7,697 units: past a plan's two
    days even at 30 s a unit, with 10-unit services that a finer clock would
    make fractions of a minute. They are read past the day-span rule (which
    bounds what clients send), planned, and every route checks."""
    from pydantic import ValidationError

    from solver.model import Problem
    from solver.search import SearchParams
    from solver.solomon import seconds_per_unit

    rows = [(0, 40, 50, 0, 0, 7697, 0), (1, 45, 68, 10, 0, 7500, 10), (2, 45, 70, 30, 6000, 7400, 10),
            (3, 42, 66, 10, 100, 200, 10), (4, 35, 69, 10, 3000, 3300, 10)]
    path = tmp_path / "long.txt"
    path.write_text("LONG\n\nVEHICLE\nNUMBER     CAPACITY\n  3         200\n\nCUSTOMER\n"
                    "CUST NO.  XCOORD.   YCOORD.    DEMAND   READY TIME  DUE DATE   SERVICE TIME\n\n"
                    + "\n".join("  ".join(str(v) for v in r) for r in rows) + "\n")
    assert seconds_per_unit(path) == 30
    p = read_solomon(path, time_limit_s=2)
    assert p.agents[0].shift.end - p.agents[0].shift.start == dt.timedelta(seconds=7697 * 30)
    assert p.visits[0].duration_min == 5  # 10 units of service
    with pytest.raises(ValidationError, match="not within the plan's day"):  # what a client may not send
        Problem.model_validate(p.model_dump())
    travel = dimacs_travel(30)
    plan = solve(p, travel, params=SearchParams().stopping_after(20))
    check_plan(p, plan, travel).raise_if_invalid()
    assert plan.summary.visits_planned == 4
    (late,) = [s for r in plan.routes for s in r.stops if s.visit_id == "2"]
    assert late.start >= p.agents[0].shift.start + dt.timedelta(seconds=6000 * 30)  # on the third day


def test_a_search_without_a_first_solution_in_time_builds_the_day_by_insertion():
    """OR-Tools found no first solution within the limit (a loaded machine,
    a limit too short): the day is built by cheapest insertion from empty
    routes instead of failing the job; windows, breaks and limits hold."""
    from solver.compile import compile_problem
    from solver.search.engine import inserted_from_empty
    from solver.solve import build_plan

    visits = [visit(f"v{i}", 3 * i, windows=[("09:00", "12:00")] if i % 2 else (), priority=10 * i)
              for i in range(8)]
    lunch = [{"window": {"start": "12:00", "end": "13:00"}, "duration_min": 30}]
    p = problem(visits, [crew("a", max_visits=3, breaks=lunch), crew("b", x=30, breaks=lunch)])
    data = compile_problem(p, PLANE)
    raw = inserted_from_empty(data, float("inf"), 0.0)
    assert raw is not None and raw.first_solution.startswith("cheapest insertion")
    plan = build_plan(data, raw)
    check_plan(p, plan, PLANE).raise_if_invalid()
    assert plan.summary.visits_planned == 8
    assert len(plan.route("a").stops) <= 3
    # nothing placed past its deadline: an expired deadline leaves every visit out, with routes still timed
    empty = inserted_from_empty(data, 0.0, 0.0)
    assert empty is not None and len(empty.dropped) == 8 and all(not r.stops for r in empty.routes)
