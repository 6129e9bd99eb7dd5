"""Case data on visits (amounts as the role allows) and POST /v1/screening,
through real HTTP on both stores; ``doorstep screen`` offline."""

from __future__ import annotations

import csv
import json

import pytest
from click.testing import CliRunner

from app.cli import main
from app.inputs import load_problem

DAY = "2026-12-01"
CASE = {"days_past_due": 75, "overdue_amount": 30000.0, "currency": "CNY", "broken_promises": 1,
        "last_contact": "2026-11-21", "risk_flags": ["agitated"], "recent_visits": []}


@pytest.fixture(params=["sqlite", "redis"])
def app(request, make_app):
    return make_app(redis=request.param == "redis")


def _with_cases(payload):
    body = payload()
    for i, visit in enumerate(body["visits"]):
        visit["case"] = {**CASE, "days_past_due": 40 + 10 * i}
    return body


def _stop(client, crew, visit_id=None):
    stops = client.get(f"/v1/agents/{crew}/itinerary?date={DAY}").get_json()["stops"]
    return stops if visit_id is None else next(s for s in stops if s["visit_id"] == visit_id)


# --------------------------------------------------------------------------- #
# Case data
# --------------------------------------------------------------------------- #
def test_the_case_reaches_the_itinerary_with_amounts_as_the_role_allows(app, client, client_as, payload):
    planned = client.post("/v1/plans?wait=60", json=_with_cases(payload))
    assert planned.status_code == 201, planned.get_json()
    plan = planned.get_json()["plan"]
    route = next(r for r in plan["routes"] if r["stops"])
    crew, visit_id = route["agent_id"], route["stops"][0]["visit_id"]
    index = int(visit_id[1:])

    mine = _stop(client, crew, visit_id)  # dispatcher
    assert mine["case"] == {**CASE, "days_past_due": 40 + 10 * index}
    agent = _stop(client_as("agent", crew), crew, visit_id)  # the crew at the door: default config shows amounts
    assert agent["case"]["overdue_amount"] == 30000 and agent["case"]["risk_flags"] == ["agitated"]
    system = _stop(client_as("system"), crew, visit_id)
    assert system["case"]["overdue_amount"] is None  # system is not listed in config/cases.toml
    assert system["case"]["days_past_due"] == 40 + 10 * index and system["borrower"] is None

    # the dispatcher page's day view redacts the same way
    day = client_as("system").get(f"/web/api/days/{DAY}").get_json()
    assert {v["case"]["overdue_amount"] for v in day["problem"]["visits"]} == {None}
    day = client.get(f"/web/api/days/{DAY}").get_json()
    assert {v["case"]["overdue_amount"] for v in day["problem"]["visits"]} == {30000}


def test_which_roles_see_amounts_is_configuration(make_app, payload, tmp_path, request):
    config = tmp_path / "cases.toml"
    config.write_text('[visibility]\namounts = ["dispatcher", "system"]\n', encoding="utf-8")
    app = make_app(redis=True, CASES_CONFIG=str(config))
    from app.auth import create_token

    client = app.test_client()
    assert client.post("/v1/plans?wait=60", json=_with_cases(payload)).status_code == 201
    crew = "crew-a"
    agent = app.test_client(token=create_token(app.extensions["doorstep"].store, "agent", crew))
    system = app.test_client(token=create_token(app.extensions["doorstep"].store, "system"))
    stops = _stop(agent, crew)
    assert stops and all(s["case"]["overdue_amount"] is None for s in stops)
    assert all(s["case"]["overdue_amount"] == 30000 for s in _stop(system, crew))


def test_follow_ups_hide_amounts_from_roles_without_the_right(client, client_as, payload):
    plan = client.post("/v1/plans?wait=60", json=_with_cases(payload)).get_json()["plan"]
    visit = plan["routes"][0]["stops"][0]["visit_id"] if plan["routes"][0]["stops"] else \
        plan["routes"][1]["stops"][0]["visit_id"]
    done = client.post(f"/v1/visits/{visit}/outcome", json={"date": DAY, "status": "completed",
                                                            "result": "not_at_home"})
    assert done.status_code == 201
    as_dispatcher = client.get("/v1/followups?date=2026-12-03").get_json()["followups"]
    as_system = client_as("system").get("/v1/followups?date=2026-12-03").get_json()["followups"]
    assert as_dispatcher[0]["visit"]["case"]["overdue_amount"] == 30000
    assert as_system[0]["visit"]["case"]["overdue_amount"] is None


@pytest.mark.parametrize(
    ("case", "field"),
    [
        ({"days_past_due": -1}, "visits.0.case.days_past_due"),
        ({"currency": "yuan"}, "visits.0.case.currency"),
        ({"overdue_amount": -5}, "visits.0.case.overdue_amount"),
        ({"risk_flags": ["Has Spaces"]}, "visits.0.case.risk_flags.0"),
        ({"last_contact": "1900-01-01"}, "visits.0.case.last_contact"),
        ({"colour": "red"}, "visits.0.case.colour"),
    ],
)
def test_bad_case_data_is_422_naming_the_field(client, payload, case, field):
    body = payload()
    body["visits"][0]["case"] = case
    response = client.post("/v1/screening", json={"date": DAY, "visits": body["visits"]})
    assert response.status_code == 422, response.get_json()
    assert field in [e["field"] for e in response.get_json()["errors"]]


# --------------------------------------------------------------------------- #
# POST /v1/screening
# --------------------------------------------------------------------------- #
def _cases(payload):
    visits = payload()["visits"]
    cases = [
        {"days_past_due": 90, "overdue_amount": 20000, "last_contact": "2026-11-30"},   # 45 + 10 = 55
        {"days_past_due": 10, "overdue_amount": 1000, "last_contact": "2026-11-30"},    # 10.5: below
        {"days_past_due": 120, "risk_flags": ["complaint"]},                            # excluded
        {"days_past_due": 45, "overdue_amount": 30000, "broken_promises": 1,
         "last_contact": "2026-11-30"},                                                 # 25 + 15 + 10 = 50
        {"days_past_due": 70, "recent_visits": ["2026-11-10", "2026-11-28"]},           # visited too often
    ]
    for visit, case in zip(visits, cases):
        visit["case"] = case
    visits[5].pop("case", None)  # no case data
    return visits


def test_screening_sends_visits_with_priority_and_breakdown_or_the_reason(client, client_as, payload):
    response = client.post("/v1/screening", json={"date": DAY, "visits": _cases(payload)})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["date"], body["threshold"], body["sent"], body["excluded"]) == (DAY, 40, 2, 4)
    assert [(v["id"], v["priority"]) for v in body["visits"]] == [("v0", 55), ("v3", 50)]
    results = {r["visit_id"]: r for r in body["results"]}
    assert [r["visit_id"] for r in body["results"]] == [f"v{i}" for i in range(6)]
    assert {c["name"]: c["points"] for c in results["v0"]["score"]["components"]} == \
        {"bucket": 45, "amount": 10, "broken_promises": 0, "last_contact": 0}
    assert results["v0"]["sent"] and results["v0"]["priority"] == 55 and results["v0"]["code"] is None
    assert (results["v1"]["code"], results["v1"]["score"]["total"]) == ("below_threshold", 10.5)
    assert results["v2"]["code"] == "risk_flag" and "complaint" in results["v2"]["reason"]
    assert results["v4"]["code"] == "visited_too_often"
    assert results["v5"]["code"] == "no_case_data"

    # the visits sent are a plan's visits as they are
    problem = {**payload(), "visits": body["visits"]}
    planned = client.post("/v1/plans?wait=60", json=problem)
    assert planned.status_code == 201, planned.get_json()
    assert planned.get_json()["plan"]["summary"]["priority_total"] == 105

    # who may screen
    assert client_as("system").post("/v1/screening", json={"date": DAY, "visits": _cases(payload)}).status_code == 200
    refused = client_as("agent", "crew-a").post("/v1/screening", json={"date": DAY, "visits": _cases(payload)})
    assert refused.status_code == 403 and refused.get_json()["error"] == "forbidden"


def test_screening_weights_come_from_configuration(make_app, payload, tmp_path):
    config = tmp_path / "screening.toml"
    config.write_text("threshold = 10\n[buckets]\nM1 = 12\n", encoding="utf-8")
    client = make_app(SCREENING_CONFIG=str(config)).test_client()
    body = client.post("/v1/screening", json={"date": DAY, "visits": _cases(payload)}).get_json()
    assert "v1" in [v["id"] for v in body["visits"]] and body["threshold"] == 10


def test_screening_refuses_what_is_not_a_request(client):
    assert client.post("/v1/screening", json={"date": DAY, "visits": []}).status_code == 422
    assert client.post("/v1/screening", data="x", content_type="text/plain").status_code == 415
    missing = client.post("/v1/screening", json={"visits": [{"id": "a", "addresses": [{"text": "x"}]}]})
    assert missing.status_code == 422 and "date" in [e["field"] for e in missing.get_json()["errors"]]


# --------------------------------------------------------------------------- #
# doorstep screen
# --------------------------------------------------------------------------- #
CASES_CSV = """id,case_id,duration_min,address,lat,lon,windows,borrower_name,borrower_phone,\
days_past_due,overdue_amount,currency,broken_promises,last_contact,risk_flags,recent_visits
V1,C-1,30,Road 1,31.2210,121.4640,09:00-11:00,Name One,13800000001,75,30000,CNY,1,2026-11-21,agitated,
V2,C-2,30,Road 2,31.2250,121.4700,,,,20,2000,CNY,0,2026-11-28,,
V3,C-3,30,Road 3,31.2300,121.4780,,,,90,50000,CNY,0,,dispute,
V4,C-4,30,Road 4,31.2350,121.4820,,,,45,10000,CNY,2,2026-11-10,,2026-11-20;2026-11-25
V5,C-5,20,Road 5a,31.2330,121.4740,10:00-12:00,,,61,,,0,,,
V5,C-5,,Road 5b,31.2380,121.4660,18:00-20:00,,,,,,,,,
"""
AGENTS_CSV = """id,members,shift,start_address,start_lat,start_lon
crew-a,A1;A2,08:30-20:30,Branch A,31.2300,121.4740
"""


def test_screen_writes_visits_for_doorstep_plan(tmp_path):
    (tmp_path / "cases.csv").write_text(CASES_CSV, encoding="utf-8")
    (tmp_path / "agents.csv").write_text(AGENTS_CSV, encoding="utf-8")
    out, excluded = tmp_path / "visits.csv", tmp_path / "excluded.csv"
    result = CliRunner().invoke(main, ["screen", str(tmp_path / "cases.csv"), "--date", DAY, "--out", str(out),
                                       "--excluded", str(excluded)])
    assert result.exit_code == 0, result.output
    assert "Name One" not in result.stdout and "13800000001" not in result.stdout and "30000" not in result.stdout
    assert "bucket=45 amount=15 broken_promises=10 last_contact=3" in result.stdout  # V1: 73
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    # V5: 45 (M3+) + 15 (never contacted)
    assert [(r["id"], r["priority"]) for r in rows] == [("V1", "73"), ("V5", "60"), ("V5", "")]
    assert rows[0]["borrower_name"] == "Name One" and rows[0]["risk_flags"] == "agitated"
    assert [r["address"] for r in rows[1:]] == ["Road 5a", "Road 5b"]
    skipped = {r["visit_id"]: r["code"] for r in csv.DictReader(excluded.open(encoding="utf-8"))}
    assert skipped == {"V2": "below_threshold", "V3": "risk_flag", "V4": "visited_too_often"}

    problem = load_problem([out, tmp_path / "agents.csv"], date=DAY)
    assert [(v.id, v.priority, len(v.addresses)) for v in problem.visits] == [("V1", 73, 1), ("V5", 60, 2)]
    assert problem.visits[0].case is not None and problem.visits[0].case.overdue_amount == 30000
    planned = CliRunner().invoke(main, ["plan", str(out), str(tmp_path / "agents.csv"), "--date", DAY,
                                        "--time-limit", "1", "--max-iterations", "10", "--travel", "straight", "--out",
                                        str(tmp_path / "plan.json")])
    assert planned.exit_code == 0, planned.output
    plan = json.loads((tmp_path / "plan.json").read_text(encoding="utf-8"))
    assert plan["summary"]["visits_total"] == 2


def test_screen_names_the_line_of_bad_case_data(tmp_path):
    bad = CASES_CSV.replace("V2,C-2,30,Road 2,31.2250,121.4700,,,,20,2000,CNY",
                            "V2,C-2,30,Road 2,31.2250,121.4700,,,,20,2000,yuan")
    (tmp_path / "cases.csv").write_text(bad, encoding="utf-8")
    result = CliRunner().invoke(main, ["screen", str(tmp_path / "cases.csv"), "--date", DAY,
                                       "--out", str(tmp_path / "v.csv")])
    assert result.exit_code == 2
    assert "cases.csv line 3" in result.output and "case.currency" in result.output
    (tmp_path / "cases.csv").write_text(CASES_CSV.replace(",75,", ",many,"), encoding="utf-8")
    result = CliRunner().invoke(main, ["screen", str(tmp_path / "cases.csv"), "--date", DAY])
    assert result.exit_code == 2 and "line 2, column days_past_due" in result.output
