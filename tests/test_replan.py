"""Mid-day re-optimisation keeps what is done, promised slots and crews' work."""

from __future__ import annotations

import datetime as dt

import pytest

from solver import reoptimize, solve
from solver.check import check_plan
from solver.model import DayState, Visit
from tests.factories import DATE, PLANE, crew, problem, visit

TZ = dt.timezone(dt.timedelta(hours=8))


def at(hhmm: str) -> dt.datetime:
    h, m = map(int, hhmm.split(":"))
    return dt.datetime.combine(DATE, dt.time(h, m), tzinfo=TZ)


@pytest.fixture(scope="module")
def morning():
    visits = [visit(f"e{i}", 4 * (i + 1), duration_min=40, priority=50) for i in range(5)]
    visits += [visit(f"w{i}", -4 * (i + 1), duration_min=40, priority=50) for i in range(5)]
    agents = [crew("east", x=2, shift=("09:00", "17:00")), crew("west", x=-2, shift=("09:00", "17:00"))]
    p = problem(visits, agents, slot_minutes=60, time_limit_s=1)
    plan = solve(p, PLANE)
    check_plan(p, plan, PLANE).raise_if_invalid()
    return p, plan


def assignment(plan):
    return {s.visit_id: r.agent_id for r in plan.routes for s in r.stops}


def test_nothing_changed_means_nothing_moves(morning):
    p, plan = morning
    rest, plan2 = reoptimize(p, plan, DayState(now=at("08:00")), PLANE)
    check_plan(rest, plan2, PLANE).raise_if_invalid()
    assert assignment(plan2) == assignment(plan)


def test_mid_day_re_plan_keeps_done_work_promises_and_absorbs_an_absent_crew(morning):
    p, plan = morning
    now = at("11:00")
    done = [s.visit_id for r in plan.routes for s in r.stops if s.end <= now]
    under_way = {s.visit_id: r.agent_id for r in plan.routes for s in r.stops if s.start <= now < s.end}
    urgent = Visit.model_validate(visit("urgent", 3, duration_min=30, priority=100))
    state = DayState(now=now, completed=done, in_progress=under_way, added=[urgent],
                     crews=[{"agent_id": "west", "absent": True}])
    rest, plan2 = reoptimize(p, plan, state, PLANE)
    check_plan(rest, plan2, PLANE).raise_if_invalid()

    ids = {v.id for v in rest.visits}
    assert not ids & set(done) and not ids & set(under_way)
    assert "urgent" in assignment(plan2)
    assert all(r.agent_id != "west" for r in plan2.routes)
    east = plan2.route("east")
    assert east.start >= now
    for stop in east.stops:
        assert stop.start >= now
    # every promised slot still holds for the visits that remain
    old = {s.visit_id: s.slot for r in plan.routes for s in r.stops}
    for stop in (s for r in plan2.routes for s in r.stops):
        if stop.visit_id in old:
            assert old[stop.visit_id].start <= stop.start <= old[stop.visit_id].end
    # what west could not keep is reported, with reasons
    for u in plan2.unassigned:
        assert u.reason


def test_crew_restarts_from_its_reported_position(morning):
    p, plan = morning
    state = DayState(now=at("12:00"), crews=[{"agent_id": "east", "location": {"lat": 0, "lon": 30}}])
    rest, plan2 = reoptimize(p, plan, state, PLANE)
    assert plan2.route("east").start_location.lon == 30
    check_plan(rest, plan2, PLANE).raise_if_invalid()


def test_cancelled_visit_leaves_the_plan(morning):
    p, plan = morning
    rest, plan2 = reoptimize(p, plan, DayState(now=at("09:00"), cancelled=["e3"]), PLANE)
    assert "e3" not in {v.id for v in rest.visits}
    assert "e3" not in assignment(plan2)


def test_unknown_ids_in_the_state_are_named(morning):
    p, plan = morning
    with pytest.raises(ValueError, match=r"state\.completed: unknown visit id"):
        reoptimize(p, plan, DayState(now=at("10:00"), completed=["nope"]), PLANE)


def test_break_taken_on_return_after_a_re_plan_checks_out():
    """Regression: the last visit ends as the break window opens; the break is
    taken on arrival back at the branch, and the route ends when the crew is back."""
    from solver.demo import generate_day
    from solver.geo.network import load_bundled_network

    network = load_bundled_network()
    p = generate_day(seed=0, visits=12, crews=3, date=dt.date(2026, 12, 5))
    p.options.time_limit_s = 1
    p.options.max_iterations = 10
    plan = solve(p, network)
    now = min(r.start for r in plan.routes)
    rest, plan2 = reoptimize(p, plan, DayState(now=now, crews=[{"agent_id": "crew-02", "absent": True}]), network)
    check_plan(rest, plan2, network).raise_if_invalid()
