"""One deadline for the whole search (solver/search/deadline.py): its
arithmetic on a fake clock, stages handed an expired deadline, and the
territories' shares of it."""

from __future__ import annotations

import random

import pytest

from solver.check import check_plan
from solver.compile import compile_problem
from solver.search import Deadline, SearchParams, TerritoryParams, hybrid, insert_dropped, polish, territories
from solver.search.raw import RawRoute, RawSolution
from solver.search.territories import retime
from solver.solve import build_plan
from tests.factories import PLANE, crew, problem, visit


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_deadline_measures_shares_and_caps_on_its_clock():
    clock = FakeClock()
    deadline = Deadline.after(10.0, clock)
    assert deadline.at == 110.0 and deadline.remaining() == 10.0 and not deadline.expired()
    assert deadline.expired(margin_s=10.0)
    clock.now = 104.0
    assert deadline.remaining() == 6.0
    # a share of what remains once a reserve is kept back, never past the deadline
    assert deadline.share(0.5).at == 107.0
    assert deadline.share(0.5, reserve_s=2.0).at == 106.0
    assert deadline.share(2.0).at == 110.0
    assert deadline.cap(1.0).at == 105.0 and deadline.cap(60.0).at == 110.0
    assert deadline.until(108.0).at == 108.0 and deadline.until(120.0).at == 110.0
    clock.now = 111.0
    assert deadline.remaining() == 0.0 and deadline.expired()
    assert deadline.share(0.5).at == 110.0 and deadline.cap(1.0).at == 110.0  # nothing left to share
    assert Deadline.of(deadline) is deadline


def test_a_cpu_reserve_ends_the_search_earlier_the_less_of_a_core_the_plan_gets():
    wall, cpu = FakeClock(0.0), FakeClock(0.0)
    deadline = Deadline(10.0, wall, cpu_clock=cpu).reserving(0.5)
    assert deadline.end() == 9.5  # no time has passed: a whole core assumed
    wall.now, cpu.now = 4.0, 4.0  # a core to itself: the reserve is 0.5 s
    assert deadline.end() == 9.5 and deadline.remaining() == 5.5
    cpu.now = 1.0  # a quarter of a core (a loaded machine): building the plan will take 2 s
    assert deadline.core_share() == 0.25 and deadline.end() == 8.0 and deadline.remaining() == 4.0
    assert deadline.share(0.5).at == 6.0 and deadline.cap(10.0).at == 8.0
    cpu.now = 0.0  # nothing measured: at least min_share
    assert deadline.end() == 10.0 - 0.5 / deadline.min_share
    assert deadline.expired()
    assert Deadline(10.0, wall).end() == 10.0  # no reserve: the moment itself
    # a prior from the machine's load, counted as two seconds of measure
    wall.now, cpu.now = 0.0, 0.0
    primed = Deadline(10.0, wall, cpu_clock=cpu).reserving(0.5, prior_share=0.25, prior_weight_s=2.0)
    assert primed.end() == 8.0
    wall.now, cpu.now = 2.0, 2.0  # the search then had a whole core
    assert primed.core_share() == pytest.approx(0.625) and primed.end() == pytest.approx(9.2)


def _two_sided_day(n: int = 16, **options):
    """Visits at both ends of a line, a crew at each end, every visit on the west crew's route."""
    visits = [visit(f"w{i}", -30 + i % 4, i // 4) for i in range(n // 2)]
    visits += [visit(f"e{i}", 30 + i % 4, i // 4) for i in range(n // 2)]
    p = problem(visits, [crew("a", x=-30), crew("b", x=30)], slot_minutes=0, **options)
    data = compile_problem(p, PLANE)
    nodes = [ns[0] for ns in data.visit_nodes.values()]
    raw = RawSolution(routes=[RawRoute(0, 0, 0, []), RawRoute(1, 0, 0, [])], dropped=[], objective=None,
                      status="test", seconds=0, first_solution="", metaheuristic="")
    assert retime(data, raw.routes[0], nodes)
    return p, data, raw, nodes


def test_a_polish_handed_an_expired_deadline_returns_its_routes_untouched():
    _, data, _, nodes = _two_sided_day()
    routes = [nodes, []]
    expired = Deadline(0.0)
    polished, cost, (iterations, improvements) = polish(data, routes, expired, seed=1)
    assert polished == routes and (iterations, improvements) == (0, 0)
    # the same day with time (stopped by iterations) moves the eastern visits to the eastern crew
    polished, better, (iterations, improvements) = polish(data, routes, 30.0, seed=1,
                                                          params=SearchParams().stopping_after(40).ruin_recreate)
    assert iterations > 0 and improvements > 0
    assert cost is not None and better is not None and better < cost


def test_an_insertion_handed_an_expired_deadline_places_nothing():
    _, data, raw, nodes = _two_sided_day()
    # take the eastern visits out: they fit crew b
    keep = nodes[: len(nodes) // 2]
    assert retime(data, raw.routes[0], keep)
    raw.dropped = [vi for vi, ns in data.visit_nodes.items() if ns[0] in nodes[len(nodes) // 2:]]
    assert insert_dropped(data, raw, Deadline(0.0)) == 0
    assert len(raw.dropped) == len(nodes) // 2
    assert insert_dropped(data, raw, Deadline.after(60.0)) == len(nodes) // 2
    assert raw.dropped == []


def test_the_hybrid_handed_an_expired_deadline_declines_and_the_engine_still_answers():
    from solver.search import search

    lunch = [{"window": {"start": "11:30", "end": "13:30"}, "duration_min": 45}]
    rng = random.Random(2)
    visits = [visit(f"v{i}", rng.uniform(-8, 8), rng.uniform(-8, 8), duration_min=20) for i in range(12)]
    p = problem(visits, [crew("a", x=-4, breaks=lunch), crew("b", x=4, breaks=lunch)], slot_minutes=0, threads=1)
    data = compile_problem(p, PLANE)
    assert hybrid.hybrid_search(data, Deadline(0.0)) is None
    # long past: the engine builds no model and answers with its (empty) insertion fallback
    raw = search(data, deadline=Deadline(0.0), params=SearchParams().stopping_after(5))
    assert raw.metaheuristic == "none" and sorted(raw.dropped) == sorted(data.visit_nodes)
    check_plan(p, build_plan(data, raw), PLANE).raise_if_invalid()
    # with time, the same call plans every visit
    raw = search(data, deadline=Deadline.after(30.0), params=SearchParams().stopping_after(5))
    assert raw.dropped == []


def test_territories_share_one_deadline_in_proportion_and_leave_the_rest_to_the_polish(monkeypatch):
    """On a fake clock that moves only as far as each territory's search is
    allowed, the territories together end at their share of the deadline, each
    in proportion to its visits, and the whole-day polish is handed the same
    deadline."""
    rng = random.Random(5)
    visits = [visit(f"v{i}", (-40 if i < 90 else 40) + rng.uniform(-5, 5), rng.uniform(-5, 5), duration_min=10)
              for i in range(120)]
    crews = [crew(f"c{k}", x=-40 if k < 6 else 40, shift=("08:00", "17:00")) for k in range(12)]
    p = problem(visits, crews, slot_minutes=0, threads=1)
    data = compile_problem(p, PLANE)
    tp = TerritoryParams(visits_per_territory=60, polish_share=0.2, cross_insert_share=0.05)
    params = SearchParams(territories=tp).stopping_after(5)
    clock = FakeClock(1000.0)
    deadline = Deadline.after(40.0, clock)
    budgets: list[tuple[int, float]] = []
    original = territories.search

    def spy(sub, *, deadline, params=None):
        budgets.append((len(sub.visit_nodes), deadline.at - clock.now))
        raw = original(sub, deadline=Deadline.after(30.0), params=params)
        clock.now = deadline.at  # the territory's search took all it was given
        return raw

    handed: list[Deadline] = []

    def polish_spy(data, raw, budget, params=None):
        handed.append(budget)
        return 0, 0

    monkeypatch.setattr(territories, "search", spy)
    monkeypatch.setattr(territories, "polish_merged", polish_spy)
    raw = territories.search_by_territory(data, deadline, params)
    assert [n for n, _ in budgets] == [90, 30]
    territory_s = 40.0 * (1 - 0.2 - 0.05)
    assert budgets[0][1] == pytest.approx(territory_s * 90 / 120)
    assert budgets[1][1] == pytest.approx(territory_s * 30 / 120)
    assert handed == [deadline]
    served = {data.nodes[s.node].visit for r in raw.routes for s in r.stops}
    assert len(served) + len(raw.dropped) == 120


def test_a_territory_past_its_share_still_gets_its_minimum_but_never_past_the_deadline(monkeypatch):
    rng = random.Random(6)
    visits = [visit(f"v{i}", (-40 if i % 2 else 40) + rng.uniform(-5, 5), rng.uniform(-5, 5), duration_min=10)
              for i in range(80)]
    crews = [crew(f"c{k}", x=-40 if k % 2 else 40, shift=("08:00", "17:00")) for k in range(6)]
    p = problem(visits, crews, slot_minutes=0, threads=1)
    data = compile_problem(p, PLANE)
    params = SearchParams(territories=TerritoryParams(visits_per_territory=40)).stopping_after(5)
    clock = FakeClock(0.0)
    deadline = Deadline.after(2.0, clock)
    budgets: list[float] = []
    original = territories.search

    def spy(sub, *, deadline, params=None):
        budgets.append(deadline.at - clock.now)
        raw = original(sub, deadline=Deadline.after(30.0), params=params)
        clock.now += 1.9  # the first territory overran its share
        return raw

    monkeypatch.setattr(territories, "search", spy)
    territories.search_by_territory(data, deadline, params)
    minimum = params.budget.min_territory_s
    assert budgets[0] == pytest.approx(2.0 * 0.75 * 0.5)
    assert budgets[1] == pytest.approx(0.1)  # its minimum would pass the deadline: cut to it
    assert minimum > 0.1


def test_a_plans_deadline_counts_its_matrix_but_leaves_the_search_its_minimum_share():
    clock = FakeClock(100.0)
    started = 98.0  # geocoding and the matrix took 2 s of a 10 s limit
    assert Deadline.for_plan(started, 10.0, 0.5, clock).at == 108.0
    clock.now = 106.0  # a matrix of 8 s: the search still gets half the limit
    assert Deadline.for_plan(started, 10.0, 0.5, clock).at == 111.0
    assert Deadline.for_plan(started, 10.0, 0.0, clock).at == 108.0


class SlowTravel:
    """The planar travel model, its matrices taking ``delay_s`` each."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s

    def matrix(self, points, mode):
        import time

        time.sleep(self.delay_s)
        return PLANE.matrix(points, mode)


def _searching_day(time_limit_s: float):
    visits = [visit(f"v{i}", (i % 5) - 2, (i // 5) - 2, priority=10 + i) for i in range(25)]
    crews = [crew("a", shift=("08:00", "12:00")), crew("b", x=1, shift=("08:00", "12:00"))]
    return problem(visits, crews, time_limit_s=time_limit_s, max_iterations=None, slot_minutes=0)


def test_a_slow_matrix_counts_in_the_time_limit_and_the_search_keeps_its_share():
    from solver import solve

    # a 1 s matrix in a 2 s limit: the plan is back in about 2 s, not 3
    p = _searching_day(2.0)
    plan = solve(p, SlowTravel(1.0))
    check_plan(p, plan, SlowTravel(0.0)).raise_if_invalid()
    assert plan.solver.matrix_seconds >= 1.0
    assert plan.solver.seconds < 2.0 + 0.6
    # a 1.5 s matrix in a 2 s limit: the search still has at least half the limit
    p = _searching_day(2.0)
    plan = solve(p, SlowTravel(1.5))
    assert plan.solver.seconds >= 1.5 + 0.5 * 2.0 - 0.2  # less the reserve for building the plan
