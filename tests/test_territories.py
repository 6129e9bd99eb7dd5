"""Large days are decomposed into territories around the crews' start places."""

from __future__ import annotations

import random

from solver import solve
from solver.check import check_plan
from solver.compile import compile_problem
from solver.search import SearchParams, TerritoryParams
from solver.search.territories import crew_groups
from tests.factories import PLANE, crew, problem, visit


def test_a_large_day_is_planned_by_territory_and_checks_out():
    # "large" scaled down by the parameters (the product decomposes above 250
    # visits into territories of about 150): the same mechanics, a quarter of the work
    territories = TerritoryParams(decompose_above=90, visits_per_territory=60)
    params = SearchParams(use_ils=False, territories=territories)  # a day PyVRP could take whole
    rng = random.Random(3)
    centres = [(-40, 0), (0, 0), (40, 0)]
    visits = []
    for i in range(territories.decompose_above + 30):
        cx, cy = centres[i % 3]
        visits.append(visit(f"v{i}", cx + rng.uniform(-6, 6), cy + rng.uniform(-6, 6), duration_min=10,
                            priority=rng.randint(0, 100)))
    crews = [crew(f"c{k}", x=centres[k % 3][0], y=centres[k % 3][1], shift=("08:00", "17:00"))
             for k in range(12)]
    p = problem(visits, crews, time_limit_s=6, slot_minutes=0, max_iterations=10)
    data = compile_problem(p, PLANE)
    groups = crew_groups(data, territories)
    assert len(groups) == 2  # three start places merged down to about 60 visits each
    plan = solve(p, PLANE, params=params)
    check_plan(p, plan, PLANE).raise_if_invalid()
    assert "territories" in plan.solver.first_solution
    # every crew works near its own start: no route crosses to the far centre
    for route in plan.routes:
        for stop in route.stops:
            assert abs(stop.location.lon - route.start_location.lon) < 45
    assert plan.summary.visits_planned >= 0.8 * len(visits)


def test_visits_a_territory_left_out_are_placed_with_a_crew_that_has_room():
    import time

    from solver.search import RawRoute, RawSolution, RawStop, insert_dropped
    from solver.solve import build_plan

    visits = [visit(f"v{i}", 1 + i, duration_min=20, priority=10 * i) for i in range(6)]
    crews = [crew("a", x=0, max_visits=3), crew("b", x=12, max_visits=2)]
    p = problem(visits, crews, slot_minutes=0)
    data = compile_problem(p, PLANE)
    node = {p.visits[vi].id: nodes[0] for vi, nodes in data.visit_nodes.items()}
    index = {v.id: i for i, v in enumerate(p.visits)}
    # as a territory split might leave it: crew a full, crew b idle, three visits out
    a_nodes = [node["v0"], node["v1"], node["v2"]]
    raw = RawSolution(
        routes=[RawRoute(0, 8 * 3600, 10 * 3600, [RawStop(n, 9 * 3600) for n in a_nodes]), RawRoute(1, 8 * 3600, 8 * 3600)],
        dropped=[index["v3"], index["v4"], index["v5"]], objective=None, status="test", seconds=0,
        first_solution="", metaheuristic="",
    )
    placed = insert_dropped(data, raw, time.perf_counter() + 10)
    assert placed == 2  # crew b takes two: its limit
    assert raw.dropped == [index["v3"]]  # the least important stays out
    b_stops = [data.nodes[s.node].visit for s in raw.routes[1].stops]
    assert sorted(p.visits[vi].id for vi in b_stops) == ["v4", "v5"]
    plan = build_plan(data, raw)
    check_plan(p, plan, PLANE).raise_if_invalid()
    assert [u.visit_id for u in plan.unassigned] == ["v3"]
    assert plan.unassigned[0].code == "capacity"  # every eligible crew is at its limit


def test_whole_day_polish_moves_visits_across_a_territory_border():
    """As a territory split can leave it: crew a makes the visits next to
    crew b's start, crew b the ones next to crew a's. Ruin and recreate over
    the merged day swaps them back; the routes are re-timed (lunch breaks
    included) and pass the checker, and the day's objective is updated."""
    from solver.search import RawRoute, RawSolution, RawStop
    from solver.search.territories import polish_merged, retime
    from solver.solve import build_plan

    lunch = [{"window": {"start": "11:30", "end": "13:30"}, "duration_min": 45}]
    visits = [visit(f"w{i}", -30 + i, 1, duration_min=30) for i in range(5)]
    visits += [visit(f"e{i}", 30 + i, 1, duration_min=30) for i in range(5)]
    crews = [crew("a", x=-30, breaks=lunch), crew("b", x=30, breaks=lunch)]
    p = problem(visits, crews, slot_minutes=0, time_limit_s=2)
    data = compile_problem(p, PLANE)
    node = {p.visits[vi].id: nodes[0] for vi, nodes in data.visit_nodes.items()}
    crossed = {0: [node[f"e{i}"] for i in range(5)], 1: [node[f"w{i}"] for i in range(5)]}
    raw = RawSolution(
        routes=[RawRoute(v, 0, 0, [RawStop(n, 0) for n in crossed[v]]) for v in (0, 1)],
        dropped=[], objective=None, status="test", seconds=0, first_solution="", metaheuristic="",
    )
    for route in raw.routes:  # time the crossed day as it stands
        assert retime(data, route, crossed[route.vehicle])
    before = build_plan(data, raw).summary.travel_s
    iterations, improvements = polish_merged(data, raw, 1.5, SearchParams().stopping_after(30))
    assert iterations > 0 and improvements > 0
    plan = build_plan(data, raw)
    check_plan(p, plan, PLANE).raise_if_invalid()
    assert {s.visit_id[0] for s in plan.route("a").stops} == {"w"}
    assert {s.visit_id[0] for s in plan.route("b").stops} == {"e"}
    assert plan.summary.travel_s < before / 4
    assert raw.objective == plan.summary.travel_s  # objective "time": travel seconds, nothing left out


def test_whole_day_polish_keeps_the_day_when_no_changed_route_can_be_timed(monkeypatch):
    """Repairs whose routes the timing refuses are discarded: the day stays
    as it was."""
    from solver.search import RawRoute, RawSolution, territories

    visits = [visit(f"e{i}", 30 + i, 1) for i in range(4)]
    p = problem(visits, [crew("a", x=-30), crew("b", x=30)], slot_minutes=0)
    data = compile_problem(p, PLANE)
    nodes = [n[0] for n in data.visit_nodes.values()]
    raw = RawSolution(routes=[RawRoute(0, 0, 0, []), RawRoute(1, 0, 0, [])], dropped=[], objective=None,
                      status="test", seconds=0, first_solution="", metaheuristic="")
    assert territories.retime(data, raw.routes[0], nodes)
    monkeypatch.setattr(territories, "simulate", lambda route: None)
    iterations, improvements = territories.polish_merged(data, raw, 0.5, SearchParams().stopping_after(20))
    assert iterations > 0 and improvements == 0
    assert [s.node for s in raw.routes[0].stops] == nodes and raw.routes[1].stops == []


def test_a_day_too_full_for_the_estimate_is_shared_in_proportion_not_piled_on_the_nearest(monkeypatch):
    from solver.search import territories

    rng = random.Random(5)
    # 340 visits around A, 60 around B; each side's crews can make about 162 (the estimate)
    visits = [visit(f"v{i}", (-40 if i < 340 else 40) + rng.uniform(-5, 5), rng.uniform(-5, 5),
                    duration_min=10, priority=rng.randint(0, 100)) for i in range(400)]
    lunch = [{"window": {"start": "12:00", "end": "13:00"}, "duration_min": 30}]
    crews = [crew(f"c{k}", x=-40 if k < 6 else 40, shift=("08:00", "17:00"), max_visits=40, breaks=lunch)
             for k in range(12)]
    # the shares are under test, not the searches: each stops after 3 iterations (repairs of this
    # 400-visit day take 0.2 s each; at 10 the searches ran to their time limits)
    p = problem(visits, crews, time_limit_s=4, slot_minutes=0, threads=1, max_iterations=3)
    data = compile_problem(p, PLANE)
    sizes = []
    original = territories.search

    def spy(sub, *, deadline, params=None):
        sizes.append(len(sub.visit_nodes))
        return original(sub, deadline=deadline.cap(1.0), params=params)

    monkeypatch.setattr(territories, "search", spy)
    raw = territories.search_by_territory(data, 4, SearchParams().stopping_after(3))
    # the share: 162 × 400 / 324 each, not 162 + the 76 visits past every estimate on side A
    assert sizes == [200, 200]
    served = {data.nodes[s.node].visit for r in raw.routes for s in r.stops}
    assert len(served) + len(raw.dropped) == 400
    assert all(len(r.stops) <= 40 for r in raw.routes)
