"""Jurisdiction rule sets from config/rules applied by the solver."""

from __future__ import annotations

import shutil

import pytest
from pydantic import ValidationError

from solver import solve
from solver.check import check_plan
from solver.config import config_dir
from solver.model import Problem
from solver.rules import available_rule_sets, load_rule_set
from tests.factories import PLANE, crew, minutes, problem, visit


def solved(p):
    plan = solve(p, PLANE)
    check_plan(p, plan, PLANE).raise_if_invalid()
    return plan


def codes(plan):
    return {u.visit_id: u.code for u in plan.unassigned}


def test_shipped_rule_sets_load():
    assert {"cn-cba-2026", "us-fdcpa", "in-rbi-2022"} <= set(available_rule_sets())
    cn = load_rule_set("cn-cba-2026")
    assert cn.min_crew_size_home == 2 and cn.visiting_hours.end.hour == 22


def test_unknown_rule_set_is_a_validation_error_on_the_field():
    with pytest.raises(ValidationError) as info:
        problem([visit("v", 1)], [crew("c")], rule_set="mars")
    (error,) = info.value.errors()
    assert error["loc"] == ("options", "rule_set") and "unknown rule set 'mars'" in error["msg"]


def test_legal_hours_cut_the_visit_window():
    # borrower free 21:30-23:00, but no field visit after 22:00 in China
    v = visit("late", 5, windows=[("21:30", "23:00")], duration_min=30)
    duo = crew("duo", members=["A", "B"], shift=("20:00", "23:59"))
    plan = solved(problem([v], [duo], rule_set="cn-cba-2026"))
    (stop,) = plan.route("duo").stops
    assert 21 * 60 + 30 <= minutes(stop.start) <= 22 * 60
    too_late = visit("night", 5, windows=[("22:30", "23:30")])
    plan = solved(problem([too_late], [duo], rule_set="cn-cba-2026"))
    assert codes(plan) == {"night": "outside_hours"}
    assert "cn-cba-2026" in plan.unassigned[0].reason


def test_legal_hours_are_read_in_the_borrowers_time_zone():
    # plan in New York; the borrower lives in Chicago (one hour behind), where
    # 08:00 is 09:00 in New York: the visit cannot start before 09:00 NY time
    v = visit("chi", 5, windows=[("08:00", "09:30")], timezone="America/Chicago")
    p = problem([v], [crew("c", shift=("07:00", "12:00"))], rule_set="us-fdcpa")
    p = p.model_copy(update={"timezone": "America/New_York"})
    plan = solved(p)
    (stop,) = plan.route("c").stops
    assert stop.start.astimezone(p.tz).hour == 9 and stop.start.astimezone(p.tz).minute <= 30


def test_home_visits_need_two_collectors_under_the_china_rules():
    home_only = visit("home", 5)
    home_or_work = {"id": "either", "duration_min": 20, "addresses": [
        {"location": {"lat": 0, "lon": 6}, "kind": "home"},
        {"location": {"lat": 0, "lon": 7}, "kind": "work"}]}
    solo = crew("solo", members=["A"])
    plan = solved(problem([home_only, home_or_work], [solo], rule_set="cn-cba-2026"))
    assert codes(plan) == {"home": "crew_too_small"}
    assert plan.route("solo").stops[0].address_kind == "work"
    plan = solved(problem([home_only], [solo, crew("duo", members=["B", "C"], x=50)], rule_set="cn-cba-2026"))
    assert plan.route("duo").stops[0].visit_id == "home"
    # without the rule set a crew of one may go
    plan = solved(problem([home_only], [solo]))
    assert plan.route("solo").stops[0].visit_id == "home"


def test_frequency_limit_counts_the_history():
    visits = [visit("v1", 5, case_id="C1"), visit("v2", 6, case_id="C2")]
    p = problem(visits, [crew("duo", members=["A", "B"])], rule_set="cn-cba-2026")
    # C1 visited twice in the last week (limit 2 per 7 days); C2 twice but 10+ days ago
    p = Problem.model_validate({**p.model_dump(), "history": [
        {"case_id": "C1", "at": "2026-11-28T10:00:00+08:00"},
        {"case_id": "C1", "at": "2026-11-30T15:00:00+08:00"},
        {"case_id": "C2", "at": "2026-11-18T10:00:00+08:00"},
        {"case_id": "C2", "at": "2026-11-20T10:00:00+08:00"},
        {"case_id": "C2", "at": "2026-11-29T10:00:00+08:00", "kind": "call"},
    ]})
    plan = solved(p)
    assert codes(plan) == {"v1": "frequency_limit"}
    assert "C1 already had 2 field visit(s) in the last 7 days" in plan.unassigned[0].reason
    assert [s.visit_id for s in plan.route("duo").stops] == ["v2"]


def test_rule_set_forbidding_work_contact(tmp_path, monkeypatch):
    config = tmp_path / "config"
    shutil.copytree(config_dir(), config)
    (config / "rules" / "no-work.toml").write_text(
        'description = "no contact at work"\nwork_contact = false\nmin_crew_size_home = 1\n'
        '[source]\nname = "Test policy"\ndate = "2026-01-01"\n'
        '[source.articles]\nwork_contact = "art. 7"\n', encoding="utf-8")
    monkeypatch.setenv("DOORSTEP_CONFIG_DIR", str(config))
    either = {"id": "either", "addresses": [
        {"location": {"lat": 0, "lon": 40}, "kind": "home", "time_windows": [{"start": "18:00", "end": "20:00"}]},
        {"location": {"lat": 0, "lon": 5}, "kind": "work"}]}
    work_only = {"id": "work", "addresses": [{"location": {"lat": 0, "lon": 5}, "kind": "work"}]}
    plan = solved(problem([either, work_only], [crew("c", shift=("08:00", "21:00"))], rule_set="no-work"))
    assert plan.route("c").stops[0].address_kind == "home"
    assert codes(plan) == {"work": "no_usable_address"}
    assert "no contact at work" in plan.unassigned[0].reason
    assert "rule set no-work, work_contact (Test policy, art. 7, 2026-01-01)" in plan.unassigned[0].reason


def test_checker_catches_each_rule_broken(tmp_path, monkeypatch):
    """A plan made without the rules, checked against a problem with them."""
    from solver.model import Problem as P

    v = {"id": "v", "case_id": "C9", "addresses": [{"location": {"lat": 0, "lon": 5}, "kind": "home",
                                                     "time_windows": [{"start": "22:10", "end": "23:00"}]}]}
    free = problem([v], [crew("solo", members=["A"], shift=("21:00", "23:59"))])
    plan = solved(free)
    ruled = P.model_validate({**free.model_dump(), "options": {**free.options.model_dump(),
                                                                "rule_set": "cn-cba-2026"},
                              "history": [{"case_id": "C9", "at": "2026-11-30T10:00:00+08:00"},
                                          {"case_id": "C9", "at": "2026-11-29T10:00:00+08:00"}]})
    report = check_plan(ruled, plan, PLANE)
    assert {"outside_legal_hours", "crew_too_small", "frequency_exceeded"} <= report.codes
    # a visit-level window is enforced too
    tight = P.model_validate({**free.model_dump(), "visits": [{**v, "time_windows": [
        {"start": "22:30", "end": "23:00"}]}]})
    assert minutes(plan.route("solo").stops[0].start) == 22 * 60 + 10
    assert "window_missed" in check_plan(tight, plan, PLANE).codes


def test_visit_level_windows_intersect_every_address():
    v = {"id": "v", "time_windows": [{"start": "15:00", "end": "16:00"}], "addresses": [
        {"location": {"lat": 0, "lon": 5}, "kind": "home", "time_windows": [{"start": "09:00", "end": "15:30"}]},
        {"location": {"lat": 0, "lon": 6}, "kind": "work", "time_windows": [{"start": "09:00", "end": "12:00"}]}]}
    plan = solved(problem([v], [crew("c")]))
    (stop,) = plan.route("c").stops
    assert stop.address_kind == "home" and 15 * 60 <= minutes(stop.start) <= 15 * 60 + 30


def test_no_rule_set_named_plans_under_the_default_rules():
    """Regression (issue 13): a day sent without a rule set used to plan a
    visit whose only window is 22:30-23:30."""
    night = visit("night", 5, windows=[("22:30", "23:30")])
    duo = crew("duo", members=["A", "B"], shift=("20:00", "23:59"))
    bare = Problem.model_validate({"date": "2026-12-01", "visits": [night], "agents": [duo]})
    assert bare.options.rule_set == "cn-cba-2026"  # [planning] rule_set of config/defaults.toml
    plan = solved(bare)
    assert codes(plan) == {"night": "outside_hours"}
    assert plan.rule_set == "cn-cba-2026"
    assert "visiting_hours (China Banking Association" in plan.unassigned[0].reason
    # null is "not named" too; only the explicit "none" turns the rules off
    assert solved(problem([night], [duo], rule_set=None)).unassigned[0].code == "outside_hours"
    free = solved(problem([night], [duo], rule_set="none"))
    assert [s.visit_id for s in free.route("duo").stops] == ["night"] and free.rule_set == "none"


def test_configured_default_rule_set_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("DOORSTEP_PLANNING_RULE_SET", "us-fdcpa")
    assert Problem.model_validate({"date": "2026-12-01", "agents": [crew("c")]}).options.rule_set == "us-fdcpa"


@pytest.mark.parametrize("name", ["cn-cba-2026", "us-fdcpa", "in-rbi-2022"])
def test_every_shipped_rule_set_cites_its_source_for_each_rule(name):
    rules = load_rule_set(name)
    assert rules.source.name and rules.source.date
    assert "visiting_hours" in rules.source.articles and "frequency" in rules.source.articles


def test_refusals_name_the_rule_and_its_source():
    solo = crew("solo", members=["A"])
    plan = solved(problem([visit("home", 5)], [solo], rule_set="cn-cba-2026"))
    assert plan.unassigned[0].code == "crew_too_small"
    assert "rule set cn-cba-2026, min_crew_size_home (China Banking Association" in plan.unassigned[0].reason
    history = [{"case_id": "C1", "at": f"2026-11-{day}T10:00:00+08:00"} for day in (27, 28, 29, 30)]
    p = problem([visit("v", 5, case_id="C1")], [crew("c")], rule_set="us-fdcpa")
    p = Problem.model_validate({**p.model_dump(), "history": history})
    plan = solved(p)
    assert plan.unassigned[0].code == "frequency_limit"
    assert "12 CFR 1006.14(b)(2)" in plan.unassigned[0].reason
