"""Imprecise geocodes are not routed blindly: a visit whose usable addresses are
only found at district level is left out as ``geocode_imprecise`` until a
dispatcher confirms a point, and ``doorstep plan`` prints every flag."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner

from app.cli import main
from solver import solve
from solver.check import check_plan
from solver.config import config_dir
from solver.geo.network import load_bundled_network
from solver.geo.results import meets_precision, min_precision_rank
from solver.model import Plan, Unassigned
from tests.factories import problem

NO_SUCH_ROAD = "上海市黄浦区不存在路999号"
NOT_IN_EXTRACT = "上海市黄浦区南京东路300号"
PRECISE = "上海市黄浦区西藏中路120号"

VISITS_CSV = f"""id,case_id,priority,duration_min,address,kind,borrower_name,borrower_phone
ghost,C-1,60,30,{NO_SUCH_ROAD},home,Zhang San,13800000001
nanjing,C-2,60,30,{NOT_IN_EXTRACT},home,Li Si,13800000002
xizang,C-3,60,30,{PRECISE},home,Wang Wu,13800000003
"""
AGENTS_CSV = """id,members,shift,start_address,start_lat,start_lon,travel_mode
crew-a,A1;A2,08:30-18:00,Branch A,31.2305,121.4737,ebike
"""


def _plan(tmp_path, *extra: str):
    (tmp_path / "visits.csv").write_text(VISITS_CSV, encoding="utf-8")
    (tmp_path / "agents.csv").write_text(AGENTS_CSV, encoding="utf-8")
    out = tmp_path / "plan.json"
    result = CliRunner().invoke(main, ["plan", str(tmp_path / "visits.csv"), str(tmp_path / "agents.csv"),
                                       "--date", "2026-12-01", "--time-limit", "1", "--max-iterations", "10",
                                       "--out", str(out), *extra])
    assert result.exit_code == 0, result.output
    return result, Plan.model_validate_json(out.read_text(encoding="utf-8"))


def test_plan_leaves_out_district_level_addresses_and_prints_the_flags(tmp_path):
    result, plan = _plan(tmp_path)
    planned = {s.visit_id for r in plan.routes for s in r.stops}
    assert planned == {"xizang"}
    codes = {u.visit_id: u for u in plan.unassigned}
    for visit_id in ("ghost", "nanjing"):
        entry = codes[visit_id]
        assert entry.code == "geocode_imprecise"
        assert "district level" in entry.reason and "location" in entry.reason  # says how to confirm
        assert entry.details["min_precision"] == "street"
        assert entry.details["addresses"][0]["address_index"] == 0
        assert entry.details["addresses"][0]["precision"] == "district"
    # the summary lists them with the code; stderr lists every flag with visit id and address index
    assert "geocode_imprecise" in result.stdout
    flags = [line.strip() for line in result.stderr.splitlines() if line.strip().startswith("flag ")]
    assert any(line.startswith(f'flag geocode_low_confidence: visit ghost address 0 "{NO_SUCH_ROAD}"')
               and "left out" in line for line in flags), result.stderr
    assert any(line.startswith(f'flag geocode_low_confidence: visit nanjing address 0 "{NOT_IN_EXTRACT}"')
               for line in flags), result.stderr
    assert len(flags) == len(plan.flags)
    # never borrower names or phone numbers
    for secret in ("Zhang San", "Li Si", "Wang Wu", "1380000000"):
        assert secret not in result.output


def test_with_min_precision_district_they_are_planned(tmp_path):
    result, plan = _plan(tmp_path, "--min-precision", "district")
    planned = {s.visit_id for r in plan.routes for s in r.stops}
    assert planned == {"ghost", "nanjing", "xizang"}
    assert not plan.unassigned
    # still flagged for the dispatcher, and printed
    assert {f.visit_id for f in plan.flags if f.code == "geocode_low_confidence"} == {"ghost", "nanjing"}
    assert "flag geocode_low_confidence: visit ghost address 0" in result.stderr


def test_the_configuration_sets_the_policy(tmp_path, monkeypatch):
    config = tmp_path / "config"
    shutil.copytree(config_dir(), config)
    text = (config / "defaults.toml").read_text(encoding="utf-8")
    (config / "defaults.toml").write_text(text.replace('min_precision = "street"', 'min_precision = "district"'),
                                          encoding="utf-8")
    monkeypatch.setenv("DOORSTEP_CONFIG_DIR", str(config))
    _, plan = _plan(tmp_path)
    assert {s.visit_id for r in plan.routes for s in r.stops} == {"ghost", "nanjing", "xizang"}


BRANCH = {"location": {"lat": 31.2305, "lon": 121.4737}}
CREW = {"id": "c", "shift": {"start": "08:00", "end": "18:00"}, "start": BRANCH, "travel_mode": "ebike"}


def test_a_precise_work_address_is_planned_when_home_is_imprecise():
    network = load_bundled_network()
    visits = [{"id": "v", "addresses": [{"text": NOT_IN_EXTRACT, "kind": "home"},
                                        {"text": PRECISE, "kind": "work"}]}]
    p = problem(visits, [CREW], time_limit_s=1)
    plan = solve(p, network)
    check_plan(p, plan, network).raise_if_invalid()
    stops = plan.route("c").stops
    assert [(s.visit_id, s.address_index, s.address_kind) for s in stops] == [("v", 1, "work")]
    flag = next(f for f in plan.flags if f.visit_id == "v")
    assert (flag.address_index, flag.details["precision"], flag.details["left_out"]) == (0, "district", True)


def test_a_dispatcher_confirms_a_point_by_sending_the_location():
    network = load_bundled_network()
    confirmed = {"text": NO_SUCH_ROAD, "location": {"lat": 31.2330, "lon": 121.4790}}
    p = problem([{"id": "v", "addresses": [confirmed]}], [CREW], time_limit_s=1)
    plan = solve(p, network)
    check_plan(p, plan, network).raise_if_invalid()
    assert [s.visit_id for s in plan.route("c").stops] == ["v"]
    assert not plan.flags  # a given location is exact: nothing to confirm

    # the checker knows a located visit cannot be imprecise
    forged = plan.model_copy(deep=True)
    forged.routes[0].stops.clear()
    forged.unassigned.append(Unassigned(visit_id="v", code="geocode_imprecise", reason="forged"))
    report = check_plan(p, forged, network)
    assert "imprecise_but_located" in report.codes


def test_a_hard_visit_with_an_imprecise_address_is_left_out_with_the_reason():
    network = load_bundled_network()
    p = problem([{"id": "v", "required": True, "addresses": [{"text": NO_SUCH_ROAD}]}], [CREW], time_limit_s=1)
    plan = solve(p, network)
    report = check_plan(p, plan, network)
    assert report.ok, report
    assert [(u.visit_id, u.code) for u in plan.unassigned] == [("v", "geocode_imprecise")]


@pytest.mark.parametrize(("precision", "level", "ok"), [
    ("exact", "rooftop", True), ("street", "house", False), ("intersection", "street", True),
    ("district", "street", False), ("district", "district", True), ("district", "city", True),
])
def test_precision_levels(precision, level, ok):
    assert meets_precision(precision, level) is ok


def test_an_unknown_level_is_refused():
    with pytest.raises(ValueError, match="unknown min_precision 'building'"):
        min_precision_rank("building")
    p = problem([{"id": "v", "addresses": [{"text": PRECISE}]}], [CREW], time_limit_s=1)
    with pytest.raises(ValueError, match="unknown min_precision"):
        solve(p, load_bundled_network(), min_precision="building")


def test_through_the_api_a_dispatcher_confirms_the_point(client, payload):
    body = payload()
    body["visits"][0]["addresses"] = [{"text": NOT_IN_EXTRACT}]
    response = client.post("/v1/plans?wait=60", json=body)
    assert response.status_code == 201, response.get_json()
    plan = response.get_json()["plan"]
    (entry,) = [u for u in plan["unassigned"] if u["visit_id"] == "v0"]
    assert entry["code"] == "geocode_imprecise" and "location" in entry["reason"]

    body["visits"][0]["addresses"] = [{"text": NOT_IN_EXTRACT, "location": {"lat": 31.2365, "lon": 121.4800}}]
    plan = client.post("/v1/plans?wait=60", json=body).get_json()["plan"]
    assert "v0" in {s["visit_id"] for r in plan["routes"] for s in r["stops"]}
    assert not [f for f in plan["flags"] if f["visit_id"] == "v0"]
