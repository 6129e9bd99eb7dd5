"""Compliance on by default in the service (issue 13): the configured rule set
applies when a request names none, the plan says which one it applied, and
frequency limits count the visits recorded through outcomes. Both stores."""

from __future__ import annotations

import datetime as dt

import pytest

DAY = dt.date(2026, 12, 1)


@pytest.fixture(params=["sqlite", "redis"])
def app(request, make_app):
    return make_app(redis=request.param == "redis")


def _plan(client, body):
    response = client.post("/v1/plans?wait=120", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["plan"]


def _one_visit_day(payload, day: dt.date):
    body = payload()
    body["date"] = day.isoformat()
    body["visits"] = body["visits"][:1]  # v0 of case CASE-000, 09:00-11:00
    return body


def test_a_night_window_is_left_out_when_no_rule_set_is_named(client, payload):
    body = payload()
    assert "rule_set" not in body["options"]
    body["visits"][1]["addresses"][0]["time_windows"] = [{"start": "22:30", "end": "23:00"}]
    for agent in body["agents"]:
        agent["shift"]["end"] = "23:59"
    plan = _plan(client, body)
    assert plan["rule_set"] == "cn-cba-2026"
    left = {u["visit_id"]: u for u in plan["unassigned"]}
    assert left["v1"]["code"] == "outside_hours" and "visiting_hours" in left["v1"]["reason"]
    body["options"]["rule_set"] = "none"
    free = _plan(client, body)
    assert free["rule_set"] == "none"
    assert "v1" in {s["visit_id"] for r in free["routes"] for s in r["stops"]}


def test_two_recorded_visits_this_week_refuse_a_third(client, payload):
    """Regression (issue 13): the limit counted only the history a caller sent."""
    for back in (3, 1):
        day = DAY - dt.timedelta(days=back)
        plan = _plan(client, _one_visit_day(payload, day))
        assert [s["visit_id"] for r in plan["routes"] for s in r["stops"]] == ["v0"]
        done = client.post("/v1/visits/v0/outcome",
                           json={"date": day.isoformat(), "status": "completed", "result": "refused"})
        assert done.status_code == 201, done.get_json()
    plan = _plan(client, _one_visit_day(payload, DAY))
    (left,) = plan["unassigned"]
    assert left["visit_id"] == "v0" and left["code"] == "frequency_limit"
    assert "already had 2 field visit(s) in the last 7 days" in left["reason"]
    assert "rule set cn-cba-2026, frequency" in left["reason"]
    # a week later the two visits are out of the period
    later = _plan(client, _one_visit_day(payload, DAY + dt.timedelta(days=6)))
    assert later["unassigned"] == []


def test_an_arrival_without_completion_counts_and_other_cases_do_not(client, payload):
    day = DAY - dt.timedelta(days=2)
    body = payload()
    body["date"] = day.isoformat()
    _plan(client, body)
    assert client.post("/v1/visits/v0/outcome", json={"date": day.isoformat(), "status": "arrived"}).status_code == 201
    body = _one_visit_day(payload, DAY)
    body["history"] = [{"case_id": "CASE-000", "at": f"{DAY - dt.timedelta(days=1)}T15:00:00+08:00"}]
    body["visits"].append(payload()["visits"][3])  # v3, case CASE-003: never visited
    plan = _plan(client, body)
    assert {u["visit_id"]: u["code"] for u in plan["unassigned"]} == {"v0": "frequency_limit"}


def test_csv_rule_set_column_and_field(client):
    visits = ("id,case_id,address,lat,lon,windows,rule_set\n"
              "N1,C-1,Test road 1,31.2210,121.4640,22:30-23:30,\n")
    agents = "id,members,shift,start_lat,start_lon\ncrew-a,A1;A2,20:00-23:59,31.2300,121.4740\n"
    body = {"visits_csv": visits, "agents_csv": agents, "date": DAY.isoformat()}
    problem = client.post("/web/api/problem-from-csv", json=body).get_json()
    assert problem["options"]["rule_set"] == "cn-cba-2026"
    named = client.post("/web/api/problem-from-csv",
                        json={**body, "visits_csv": visits.replace(",\n", ",none\n")}).get_json()
    assert named["options"]["rule_set"] == "none"
    assert client.post("/web/api/problem-from-csv",
                       json={**body, "rule_set": "us-fdcpa"}).get_json()["options"]["rule_set"] == "us-fdcpa"
    clash = visits + "N2,C-2,Test road 2,31.2250,121.4700,,us-fdcpa\n"
    clash = clash.replace("23:30,\n", "23:30,none\n")
    refused = client.post("/web/api/problem-from-csv", json={**body, "visits_csv": clash})
    assert refused.status_code == 422
    assert "line 3, column rule_set" in refused.get_json()["errors"][0]["message"]
    assert "Rule set" in client.get("/web/dispatcher").get_data(as_text=True)
