"""The independent plan checker on a plan worked out by hand.

The problem lies on the plane (:class:`PlanarTravel`, 1 unit = 60 s = 10 m,
``Location(lat=y, lon=x)``), so every travel time is known by hand:

====== ======== ============================== ===================================
crew   members  route                           legs (units)
====== ======== ============================== ===================================
crew-a 2        O → v1 → v2 → (lunch) → v3 → O  O–v1 5, v1–v2 5, v2–v3 8, v3–O 6
crew-b 1        O → v4 → O                      5, 5
crew-c 1        (empty)
====== ======== ============================== ===================================

``v5`` is far away and left out (``lower_priority``). Each test corrupts one
copy of the valid plan (or problem) and expects exactly one violation code.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pytest

from solver.check import CODES, CheckReport, PlanInvalid, Violation, check_plan
from solver.model import (
    Break,
    Location,
    Place,
    Plan,
    PlannedBreak,
    PlanSummary,
    Problem,
    Route,
    SolverStats,
    Stop,
    TimeWindow,
    Unassigned,
)
from solver.travel import PlanarTravel, TravelMatrix

PLANE = PlanarTravel(seconds_per_unit=60, metres_per_unit=10)
DATE = dt.date(2026, 12, 1)


def pt(x: float, y: float) -> Location:
    return Location(lat=y, lon=x)


def place(x: float, y: float) -> dict:
    return {"location": {"lat": y, "lon": x}}


def window(start: str, end: str) -> dict:
    return {"start": start, "end": end}


def make_problem() -> Problem:
    visits = [
        {"id": "v1", "priority": 60, "duration_min": 30, "pinned_agent": "crew-a",
         "addresses": [{**place(3, 4), "kind": "work", "time_windows": [window("09:00", "10:00")]}]},
        {"id": "v2", "priority": 80, "duration_min": 60, "crew_size": 2,
         "appointment": window("10:00", "11:00"),
         "addresses": [{**place(6, 8), "kind": "home", "time_windows": [window("08:00", "12:00")]}]},
        {"id": "v3", "priority": 90, "duration_min": 30, "crew_size": 2, "required": True, "skills": ["legal"],
         "addresses": [{**place(6, 0), "kind": "home", "time_windows": [window("12:30", "14:00")]}]},
        {"id": "v4", "priority": 40, "duration_min": 20, "addresses": [{**place(0, 5), "kind": "other"}]},
        {"id": "v5", "priority": 10, "duration_min": 30, "addresses": [{**place(50, 0), "kind": "home"}]},
    ]
    agents = [
        {"id": "crew-a", "members": ["甲", "乙"], "shift": window("08:00", "17:00"),
         "breaks": [{"window": window("11:30", "13:30"), "duration_min": 45}],
         "start": place(0, 0), "skills": ["legal"], "max_visits": 3, "max_work_min": 600},
        {"id": "crew-b", "members": ["丙"], "shift": window("08:00", "17:00"), "start": place(0, 0),
         "max_visits": 3},
        {"id": "crew-c", "members": ["丁"], "shift": window("08:00", "17:00"), "start": place(0, 0)},
    ]
    return Problem.model_validate(
        {"date": DATE.isoformat(), "timezone": "Asia/Shanghai", "visits": visits, "agents": agents,
         "options": {"rule_set": "none"}}  # checker mechanics; the rules are checked in test_rules.py
    )


PROBLEM = make_problem()


def t(hhmm: str) -> dt.datetime:
    """Aware datetime of ``HH:MM`` (or ``HH:MM:SS``) on the plan date."""
    parts = [int(p) for p in hhmm.split(":")] + [0]
    return PROBLEM.clock(parts[0] * 3600 + parts[1] * 60 + parts[2])


def stop(vid: str, kind: str, loc: Location, arrival: str, start: str, end: str, travel_units: int,
         earliest: str | None = None, latest: str | None = None, priority: int = 0) -> Stop:
    a, s = t(arrival), t(start)
    return Stop(
        visit_id=vid, address_index=0, address_kind=kind, location=loc,
        arrival=a, start=s, end=t(end),
        earliest_start=t(earliest or start), latest_start=t(latest or start),
        travel_s=travel_units * 60, distance_m=travel_units * 10,
        wait_s=int((s - a).total_seconds()), priority=priority,
    )


def make_plan() -> Plan:
    origin = pt(0, 0)
    route_a = Route(
        agent_id="crew-a", travel_mode="drive", start_location=origin, end_location=origin,
        start=t("08:55"), end=t("13:06"),
        stops=[
            stop("v1", "work", pt(3, 4), "09:00", "09:00", "09:30", 5, latest="09:25", priority=60),
            stop("v2", "home", pt(6, 8), "09:35", "10:00", "11:00", 5, priority=80),
            stop("v3", "home", pt(6, 0), "11:08", "12:30", "13:00", 8, latest="12:36", priority=90),
        ],
        breaks=[PlannedBreak(start=t("11:30"), end=t("12:15"))],
        end_travel_s=6 * 60, end_distance_m=60,
    )
    route_b = Route(
        agent_id="crew-b", travel_mode="drive", start_location=origin, end_location=origin,
        start=t("08:00"), end=t("08:30"),
        stops=[stop("v4", "other", pt(0, 5), "08:05", "08:05", "08:25", 5, latest="16:35", priority=40)],
        end_travel_s=5 * 60, end_distance_m=50,
    )
    route_c = Route(
        agent_id="crew-c", travel_mode="drive", start_location=origin, end_location=origin,
        start=t("08:00"), end=t("08:00"),
    )
    return Plan(
        date=DATE, timezone="Asia/Shanghai", routes=[route_a, route_b, route_c],
        unassigned=[Unassigned(visit_id="v5", code="lower_priority", reason="far away")],
        summary=PlanSummary(visits_total=5, visits_planned=4, priority_total=280, priority_planned=270,
                            travel_s=2040, distance_m=340, crews_used=2),
        solver=SolverStats(status="hand", seconds=0.0),
    )


PLAN = make_plan()


@pytest.fixture
def problem() -> Problem:
    return PROBLEM.model_copy(deep=True)


@pytest.fixture
def plan() -> Plan:
    return PLAN.model_copy(deep=True)


def codes(problem: Problem, plan: Plan, travel=PLANE) -> set[str]:
    return check_plan(problem, plan, travel).codes


def stop_of(plan: Plan, vid: str) -> Stop:
    return next(s for r in plan.routes for s in r.stops if s.visit_id == vid)


# --------------------------------------------------------------------------- #
# The valid plan
# --------------------------------------------------------------------------- #
def test_hand_made_plan_is_valid():
    report = check_plan(PROBLEM, PLAN, PLANE)
    assert report.ok, str(report)
    assert report.violations == []
    report.raise_if_invalid()  # does not raise
    assert str(report) == "plan is valid"


def test_hand_made_travel_figures_match_the_plane():
    m = PLANE.matrix([pt(0, 0), pt(3, 4), pt(6, 8), pt(6, 0)], "drive")
    assert m.durations[0, 1] == 300 and m.durations[1, 2] == 300
    assert m.durations[2, 3] == 480 and m.durations[3, 0] == 360
    assert m.distances[2, 3] == 80


def test_one_matrix_call_per_route(plan):
    calls: list[int] = []

    class Counting:
        def matrix(self, points: Sequence[Location], mode):
            calls.append(len(points))
            return PLANE.matrix(points, mode)

    assert check_plan(PROBLEM, plan, Counting()).ok
    assert calls == [5, 3, 2]  # start + stops + end per route


def test_every_code_is_documented():
    assert all(isinstance(k, str) and v for k, v in CODES.items())


# --------------------------------------------------------------------------- #
# The rules asked for, one corruption each
# --------------------------------------------------------------------------- #
def test_window_missed(problem, plan):
    problem.visits[0].addresses[0].time_windows[0].start = dt.time(9, 10)
    assert codes(problem, plan) == {"window_missed"}


def test_service_may_end_after_the_window_closes(problem, plan):
    problem.visits[0].addresses[0].time_windows[0].end = dt.time(9, 1)  # start 09:00, end 09:30
    assert codes(problem, plan) == set()


def test_appointment_missed_even_inside_the_address_window(problem, plan):
    problem.visits[1].appointment.start = dt.time(10, 30)
    assert codes(problem, plan) == {"appointment_missed"}


def test_arrival_too_early_for_travel(plan):
    v1 = stop_of(plan, "v1")
    v1.arrival, v1.wait_s = t("08:58"), 120
    report = check_plan(PROBLEM, plan, PLANE)
    assert report.codes == {"arrival_too_early"}
    (v,) = report.violations
    assert (v.agent_id, v.visit_id) == ("crew-a", "v1")


def test_break_overlapping_a_visit(plan):
    plan.route("crew-a").breaks[0] = PlannedBreak(start=t("12:15"), end=t("13:00"))
    report = check_plan(PROBLEM, plan, PLANE)
    assert report.codes == {"break_overlaps_visit"}
    assert report.violations[0].visit_id == "v3"


def test_break_missing(plan):
    plan.route("crew-a").breaks = []
    assert codes(PROBLEM, plan) == {"break_missing"}


def test_break_unexpected(plan):
    plan.route("crew-a").breaks.append(PlannedBreak(start=t("10:00"), end=t("10:10")))
    assert "break_unexpected" in codes(PROBLEM, plan)


def test_break_outside_its_window(plan):
    plan.route("crew-a").breaks[0] = PlannedBreak(start=t("11:10"), end=t("11:55"))
    assert codes(PROBLEM, plan) == {"break_outside_window"}


def test_break_too_short(plan):
    plan.route("crew-a").breaks[0] = PlannedBreak(start=t("11:30"), end=t("12:00"))
    assert codes(PROBLEM, plan) == {"break_duration"}


def test_break_straddling_the_route_start(problem, plan):
    # the crew may break from 08:00, but the route starts 08:55: 08:30-09:15 straddles it
    problem.agents[0].breaks[0].window.start = dt.time(8, 0)
    plan.route("crew-a").breaks[0] = PlannedBreak(start=t("08:30"), end=t("09:15"))
    assert "break_outside_route" in codes(problem, plan)


def test_break_before_the_route_inside_the_shift_is_fine(problem, plan):
    # off the road before leaving: allowed while inside the shift
    problem.agents[0].breaks[0].window.start = dt.time(8, 0)
    plan.route("crew-a").breaks[0] = PlannedBreak(start=t("08:00"), end=t("08:45"))
    assert codes(problem, plan) == set()


def test_break_that_cannot_fit_the_shift_is_not_expected(problem, plan):
    problem.agents[1].breaks = [Break(window=TimeWindow(start="17:00", end="19:00"), duration_min=30)]
    assert codes(problem, plan) == set()


def test_break_on_the_way_lengthens_the_leg(problem, plan):
    problem.agents[0].breaks[0].window.start = dt.time(10, 30)
    v3 = stop_of(plan, "v3")
    plan.route("crew-a").breaks[0] = PlannedBreak(start=t("11:00"), end=t("11:45"))
    v3.arrival, v3.wait_s = t("11:53"), 37 * 60  # 11:00 + 45 min break + 8 min travel
    assert codes(problem, plan) == set()
    v3.arrival, v3.wait_s = t("11:30"), 60 * 60  # as if there were no break
    assert codes(problem, plan) == {"arrival_too_early"}


def test_wrong_travel_s(plan):
    stop_of(plan, "v1").travel_s = 240
    plan.summary.travel_s -= 60
    report = check_plan(PROBLEM, plan, PLANE)
    assert report.codes == {"travel_time"}
    assert "300" in report.violations[0].message


def test_wrong_distance(plan):
    stop_of(plan, "v2").distance_m = 51
    plan.summary.distance_m += 1
    assert codes(PROBLEM, plan) == {"travel_distance"}


def test_wrong_end_travel(plan):
    plan.route("crew-b").end_travel_s = 200
    plan.summary.travel_s -= 100
    assert codes(PROBLEM, plan) == {"travel_time"}


def test_skill_missing(problem, plan):
    problem.visits[0].skills = ["sme"]
    assert codes(problem, plan) == {"skill_missing"}


def test_crew_too_small(problem, plan):
    problem.visits[3].crew_size = 2  # v4 with the one-person crew-b
    assert codes(problem, plan) == {"crew_too_small"}


def test_max_visits_exceeded(problem, plan):
    problem.agents[0].max_visits = 2
    assert codes(problem, plan) == {"max_visits"}


def test_visit_planned_twice(plan):
    b, c = plan.route("crew-b"), plan.route("crew-c")
    c.stops = [s.model_copy(deep=True) for s in b.stops]
    c.start, c.end, c.end_travel_s, c.end_distance_m = b.start, b.end, b.end_travel_s, b.end_distance_m
    plan.summary.travel_s += 600
    plan.summary.distance_m += 100
    plan.summary.crews_used += 1
    report = check_plan(PROBLEM, plan, PLANE)
    assert report.codes == {"visit_duplicated"}
    assert report.violations[0].visit_id == "v4"


def test_visit_planned_and_unassigned(plan):
    plan.unassigned.append(Unassigned(visit_id="v4", code="lower_priority", reason="x"))
    assert codes(PROBLEM, plan) == {"visit_duplicated"}


def test_visit_missing_entirely(plan):
    plan.unassigned = []
    report = check_plan(PROBLEM, plan, PLANE)
    assert report.codes == {"visit_missing"}
    assert report.violations[0].visit_id == "v5"


def test_unknown_visit(plan):
    plan.unassigned.append(Unassigned(visit_id="v9", code="lower_priority", reason="x"))
    assert codes(PROBLEM, plan) == {"visit_unknown"}


def test_unknown_and_duplicated_agent(plan):
    plan.route("crew-c").agent_id = "crew-z"
    assert codes(PROBLEM, plan) == {"agent_unknown"}
    plan.routes[2].agent_id = "crew-b"
    assert codes(PROBLEM, plan) == {"agent_duplicated"}


def test_route_past_shift_end(problem, plan):
    problem.agents[0].shift.end = dt.time(13, 0)
    assert codes(problem, plan) == {"route_after_shift"}


def test_route_before_shift_start(problem, plan):
    problem.agents[1].shift.start = dt.time(8, 1)
    assert codes(problem, plan) == {"route_before_shift"}


def test_hard_visit_dropped(problem, plan):
    problem.visits[4].required = True
    report = check_plan(problem, plan, PLANE)
    assert report.codes == {"hard_visit_dropped"}
    plan.unassigned[0].code = "required_infeasible"
    assert codes(problem, plan) == set()
    plan.unassigned[0].code = "no_skill"  # a specific reason it cannot be served is fine too
    assert codes(problem, plan) == set()


def test_appointment_counts_as_hard(problem, plan):
    problem.visits[4].appointment = TimeWindow(start="14:00", end="15:00")
    assert codes(problem, plan) == {"hard_visit_dropped"}


# --------------------------------------------------------------------------- #
# The other rules
# --------------------------------------------------------------------------- #
def test_route_end_too_early(plan):
    plan.route("crew-a").end = t("13:05")
    assert codes(PROBLEM, plan) == {"route_end_too_early"}


def test_route_end_counts_a_break_after_the_last_visit(problem, plan):
    problem.agents[1].breaks = [Break(window=TimeWindow(start="08:25", end="09:00"), duration_min=10)]
    route = plan.route("crew-b")
    route.breaks = [PlannedBreak(start=t("08:25"), end=t("08:35"))]
    route.end = t("08:40")
    assert codes(problem, plan) == set()
    route.end = t("08:35")  # 08:25 + 10 min break + 5 min travel = 08:40
    assert codes(problem, plan) == {"route_end_too_early"}


def test_start_before_arrival(plan):
    v2 = stop_of(plan, "v2")
    v2.arrival, v2.wait_s = t("10:05"), 0
    assert "start_before_arrival" in codes(PROBLEM, plan)


def test_wait_mismatch(plan):
    stop_of(plan, "v2").wait_s = 0
    assert codes(PROBLEM, plan) == {"wait_mismatch"}


def test_service_duration(plan):
    stop_of(plan, "v1").end = t("09:20")
    assert codes(PROBLEM, plan) == {"service_duration"}


def test_one_second_of_rounding_is_tolerated(plan):
    stop_of(plan, "v1").end = t("09:30:01")
    plan.route("crew-a").end = t("13:05:59")
    assert codes(PROBLEM, plan) == set()


def test_slack_inconsistent(plan):
    stop_of(plan, "v1").latest_start = t("08:59")
    assert codes(PROBLEM, plan) == {"slack_inconsistent"}


def test_pinned_agent(problem, plan):
    problem.visits[0].pinned_agent = "crew-b"
    assert codes(problem, plan) == {"pinned_agent"}


def test_capacity(problem, plan):
    problem.agents[0].capacity = 1
    problem.visits[0].load = 2
    assert codes(problem, plan) == {"capacity"}


def test_max_work(problem, plan):
    problem.agents[0].max_work_min = 240  # the route spans 08:55–13:06, 251 min
    assert codes(problem, plan) == {"max_work"}


def test_address_unusable(problem, plan):
    problem.visits[0].addresses[0].usable = False
    assert codes(problem, plan) == {"address_unusable"}


def test_address_index_invalid(plan):
    stop_of(plan, "v4").address_index = 1
    assert codes(PROBLEM, plan) == {"address_invalid"}


def test_address_kind_mismatch(plan):
    stop_of(plan, "v4").address_kind = "home"
    assert codes(PROBLEM, plan) == {"address_mismatch"}


def test_location_mismatch(problem, plan):
    problem.visits[3].addresses[0].location = Location(lat=5.00001, lon=0)
    assert codes(problem, plan) == {"location_mismatch"}


def test_location_not_compared_for_other_datums(problem, plan):
    problem.visits[3].addresses[0].location = Location(lat=5.3, lon=0.2, crs="gcj02")
    assert codes(problem, plan) == set()


def test_terminal_and_travel_mode(problem, plan):
    plan.route("crew-c").travel_mode = "walk"
    assert codes(problem, plan) == {"travel_mode_mismatch"}
    plan.route("crew-c").travel_mode = "drive"
    problem.agents[2].start = Place(location=pt(0, 1))
    assert codes(problem, plan) == {"terminal_mismatch"}


def test_open_end(problem, plan):
    problem.agents[1].open_end = True
    route = plan.route("crew-b")
    assert codes(problem, plan) == {"terminal_mismatch"}
    route.end_location, route.end_travel_s, route.end_distance_m, route.end = None, 0, 0, t("08:25")
    plan.summary.travel_s -= 300
    plan.summary.distance_m -= 50
    assert codes(problem, plan) == set()


def test_summary_mismatch(plan):
    plan.summary.visits_planned = 5
    plan.summary.priority_planned = 0
    report = check_plan(PROBLEM, plan, PLANE)
    assert report.codes == {"summary_mismatch"}
    assert len(report.violations) == 2


def test_plan_for_another_day(plan):
    plan.date = dt.date(2026, 12, 2)
    assert codes(PROBLEM, plan) == {"plan_mismatch"}


def test_unreachable_leg(plan):
    class Cut:
        def matrix(self, points, mode):
            m = PLANE.matrix(points, mode)
            reach = np.ones((m.size, m.size), dtype=bool)
            reach[0, 1] = False
            return TravelMatrix(m.durations, m.distances, reach)

    report = check_plan(PROBLEM, plan, Cut())
    assert report.codes == {"unreachable_leg"}
    # the first leg of every route, including the empty route's start → end
    assert {v.agent_id for v in report.violations} == {"crew-a", "crew-b", "crew-c"}


def test_empty_route_only_needs_to_start_in_the_shift(problem, plan):
    problem.agents[2].shift.end = dt.time(7, 0)  # nonsensical, but nothing to check
    problem.agents[2].shift.start = dt.time(6, 0)
    assert codes(problem, plan) == set()
    plan.route("crew-c").start = t("05:00")
    assert codes(problem, plan) == {"route_before_shift"}


# --------------------------------------------------------------------------- #
# Reporting
# --------------------------------------------------------------------------- #
def test_raise_if_invalid_lists_every_violation(problem, plan):
    problem.visits[0].skills = ["sme"]
    plan.unassigned = []
    report = check_plan(problem, plan, PLANE)
    assert not report.ok
    with pytest.raises(PlanInvalid) as info:
        report.raise_if_invalid()
    assert isinstance(info.value, AssertionError)
    assert [v.code for v in info.value.violations] == ["visit_missing", "skill_missing"]
    text = str(info.value)
    assert "2 rule(s)" in text and "visit_missing" in text and "skill_missing (agent crew-a, visit v1)" in text


def test_report_helpers():
    report = CheckReport([Violation("max_visits", "crew-a", None, "too many")])
    assert not report.ok and report.codes == {"max_visits"}
    assert report.of("max_visits")[0].agent_id == "crew-a"
    assert str(report) == "max_visits (agent crew-a): too many"


def test_checker_does_not_import_the_engine():
    import ast
    import inspect

    import solver.check

    tree = ast.parse(inspect.getsource(solver.check))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    engine = ("solver.engine", "solver.search", "solver.solve", "solver.compile", "solver.timing", "ortools")
    assert not any(m and m.startswith(engine) for m in imported), imported


# --------------------------------------------------------------------------- #
# Against the engine
# --------------------------------------------------------------------------- #
def _solve():
    try:
        from solver.solve import solve
    except ImportError:  # pragma: no cover - engine not there yet
        pytest.skip("solver.solve is not available")
    return solve


def test_engine_plan_passes_the_checker(problem):
    solve = _solve()
    problem.options.time_limit_s = 2
    problem.options.max_iterations = 10
    plan = solve(problem, PLANE)
    check_plan(problem, plan, PLANE).raise_if_invalid()
    planned = {s.visit_id for r in plan.routes for s in r.stops}
    assert {"v1", "v2", "v3", "v4"} <= planned


def test_engine_plan_with_breaks_and_a_busy_day_passes_the_checker():
    solve = _solve()
    visits = []
    for i in range(14):
        x, y = (i * 7) % 13 - 6, (i * 5) % 11 - 5
        windows = [window("09:00", "12:00")] if i % 3 == 0 else [window("13:00", "16:00")] if i % 3 == 1 else []
        visits.append({"id": f"v{i:02d}", "priority": 10 + 6 * i, "duration_min": 20 + (i % 3) * 10,
                       "crew_size": 2 if i % 4 == 0 else 1,
                       "addresses": [{**place(x, y), "time_windows": windows}]})
    visits[5]["appointment"] = window("14:00", "15:00")
    agents = [
        {"id": f"crew-{k}", "members": ["A", "B"][: 1 + k % 2], "shift": window("08:30", "17:30"),
         "breaks": [{"window": window("11:30", "13:30"), "duration_min": 45}],
         "start": place(0, 0), "max_visits": 5}
        for k in range(3)
    ]
    problem = Problem.model_validate({"date": DATE.isoformat(), "visits": visits, "agents": agents,
                                      "options": {"time_limit_s": 2, "rule_set": "none",
                                                  "max_iterations": 10}})
    plan = solve(problem, PLANE)
    check_plan(problem, plan, PLANE).raise_if_invalid()
    assert any(r.breaks for r in plan.routes if r.stops)
