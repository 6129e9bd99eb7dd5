"""solver.multiday: several dates planned in order with the real solver on the
plane (tests/factories.py: 1 unit = 1 minute of travel)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import ValidationError

from solver.check import check_plan
from solver.multiday import Horizon, MultiDayParams, due_priority, plan_days
from solver.solve import solve
from tests.factories import MAX_ITERATIONS, PLANE, crew, problem, visit

D1, D2, D3 = dt.date(2026, 12, 1), dt.date(2026, 12, 2), dt.date(2026, 12, 3)


def horizon(visits: list[dict[str, Any]], agents: list[dict[str, Any]], dates=(D1, D2, D3), **extra: Any) -> Horizon:
    return Horizon.model_validate({
        "dates": [str(d) for d in dates], "timezone": "Asia/Shanghai", "visits": visits, "agents": agents,
        "options": {"time_limit_s": 1, "rule_set": "none", "threads": 1, "max_iterations": MAX_ITERATIONS}, **extra,
    })


def _planned(day) -> dict[str, str]:
    return {s.visit_id: r.agent_id for r in day.plan.routes for s in r.stops}


def test_a_full_first_day_carries_the_rest_to_the_next_dates_and_every_day_checks():
    # one crew with max 3 visits a day, 7 visits: 3 + 3 + 1 over three days
    visits = [visit(f"v{i}", 5 + i, priority=90 - 10 * i) for i in range(7)]
    result = plan_days(horizon(visits, [crew("c1", max_visits=3)]), PLANE)
    assert [d.date for d in result.days] == [D1, D2, D3]
    per_day = [_planned(d) for d in result.days]
    assert [len(p) for p in per_day] == [3, 3, 1]
    assert set(per_day[0]) == {"v0", "v1", "v2"}  # the highest priorities first
    assert set().union(*per_day) == {f"v{i}" for i in range(7)}  # each visit once
    assert result.unplanned == []
    assert result.date_of("v6") == D3
    for day in result.days:
        check_plan(day.problem, day.plan, PLANE).raise_if_invalid()
        # visits planned earlier are not candidates again
        assert {v.id for v in day.problem.visits}.isdisjoint(
            {vid for other in result.days if other.date < day.date for vid in _planned(other)})


def test_a_visit_due_on_day_one_is_planned_on_day_one_before_higher_priorities():
    # room for 2 a day; the due visit has the lowest priority but must go on day 1
    visits = [visit("hi1", 5, priority=90), visit("hi2", 6, priority=90), visit("due", 7, priority=5, due_by=str(D1))]
    result = plan_days(horizon(visits, [crew("c1", max_visits=2)]), PLANE)
    assert "due" in _planned(result.days[0])
    assert result.unplanned == []


def test_a_visit_that_cannot_be_made_by_its_due_date_is_reported_past_due():
    # only open 20:00-21:00, after every shift: never plannable; due on day 2
    visits = [visit("late", 5, windows=[("20:00", "21:00")], due_by=str(D2)), visit("ok", 6)]
    result = plan_days(horizon(visits, [crew("c1", shift=("08:00", "18:00"))]), PLANE)
    assert "late" not in {v.id for v in result.days[2].problem.visits}  # past due on day 3: not a candidate
    [entry] = result.unplanned
    assert entry.visit_id == "late" and entry.code == "past_due"
    assert entry.details["due_by"] == str(D2)
    assert str(D2) in entry.reason


def test_due_priority_rises_as_the_due_date_nears():
    params = MultiDayParams(due_boost_days=3, due_boost_per_day=10)
    v = problem([visit("v", 1, priority=40, due_by=str(D3))], [crew("c")]).visits[0]
    assert [due_priority(v, d, params) for d in (D1 - dt.timedelta(days=1), D1, D2, D3)] == [40, 50, 60, 70]
    plain = problem([visit("p", 1, priority=40)], [crew("c")]).visits[0]
    assert due_priority(plain, D1, params) == 40


def test_available_from_holds_a_visit_back_until_its_date():
    visits = [visit("now", 5), visit("later", 6)]
    result = plan_days(horizon(visits, [crew("c1")], available_from={"later": str(D2)}), PLANE)
    assert set(_planned(result.days[0])) == {"now"}
    assert set(_planned(result.days[1])) == {"later"}


def test_preferred_agent_is_honoured_when_cheap_and_overridden_when_infeasible():
    # two crews at the same depot; "v" prefers crew b although a is as close
    day = problem([visit("v", 10, preferred_agents=["b"])], [crew("a"), crew("b")], time_limit_s=1, threads=1)
    plan = solve(day, PLANE)
    assert plan.route("b").stops and not plan.route("a").stops
    # b cannot make it (its shift ends before the visit's window): a takes it, the preference is soft
    day = problem([visit("w", 10, windows=[("15:00", "16:00")], preferred_agents=["b"])],
                  [crew("a"), crew("b", shift=("08:00", "12:00"))], time_limit_s=1, threads=1)
    plan = solve(day, PLANE)
    assert [s.visit_id for s in plan.route("a").stops] == ["w"]
    check_plan(day, plan, PLANE).raise_if_invalid()
    # unknown crews are ignored; cost 0 turns preferences off (the nearer crew takes it)
    day = problem([visit("x", 10, preferred_agents=["nobody", "far"])], [crew("near", 5), crew("far", -30)],
                  time_limit_s=1, threads=1, preferred_agent_cost_s=0)
    assert solve(day, PLANE).route("near").stops


def test_a_preference_outweighs_a_little_travel_but_not_a_lot():
    # crew a sits at the visit, b 5 minutes away: cost 900 s > 2 x 5 min, so b makes it
    near = problem([visit("v", 10, preferred_agents=["b"])], [crew("a", 10), crew("b", 15)], threads=1)
    assert [s.visit_id for s in solve(near, PLANE).route("b").stops] == ["v"]
    # b 60 minutes away: 2 h of travel outweigh 15 min of preference
    far = problem([visit("v", 10, preferred_agents=["b"])], [crew("a", 10), crew("b", 70)], threads=1)
    assert [s.visit_id for s in solve(far, PLANE).route("a").stops] == ["v"]


@pytest.mark.parametrize(
    ("dates", "needle"),
    [
        ([str(D1 + dt.timedelta(days=i)) for i in range(8)], "at most 7"),
        ([str(D2), str(D1)], "ascending"),
        ([str(D1), str(D1)], "distinct"),
        (["2026-13-01"], "date"),
        ([], "at least 1"),
        ([str(D1), str(D1 + dt.timedelta(days=40))], "31 days"),
    ],
)
def test_bad_dates_name_the_field(dates, needle):
    with pytest.raises(ValidationError) as caught:
        Horizon.model_validate({"dates": dates, "visits": [visit("v", 1)], "agents": [crew("c")]})
    [err] = caught.value.errors()
    assert err["loc"][0] == "dates"
    assert needle in str(err["msg"])


def test_horizon_checks_what_a_day_checks():
    with pytest.raises(ValidationError) as caught:
        Horizon.model_validate({"dates": [str(D1)], "visits": [visit("v", 1), visit("v", 2)], "agents": [crew("c")]})
    assert "duplicate id" in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        Horizon.model_validate({"dates": [str(D1)], "visits": [visit("v", 1, pinned_agent="zz")],
                                "agents": [crew("c")]})
    assert "visits.0.pinned_agent" in str(caught.value)


def test_a_one_day_plan_reports_a_visit_past_its_due_date_and_plans_the_rest():
    day = problem([visit("late", 5, due_by=str(D1 - dt.timedelta(days=1))), visit("due", 6, due_by=str(D1)),
                   visit("plain", 7)], [crew("c")], threads=1)
    plan = solve(day, PLANE)
    assert {s.visit_id for r in plan.routes for s in r.stops} == {"due", "plain"}
    [entry] = plan.unassigned
    assert (entry.visit_id, entry.code, entry.details["due_by"]) == ("late", "past_due", "2026-11-30")
    check_plan(day, plan, PLANE).raise_if_invalid()
