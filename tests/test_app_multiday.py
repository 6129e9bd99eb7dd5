"""POST /v1/plans with dates, drafts (?publish=false) and plan sets
(GET /v1/plan-sets/{id}, POST /v1/plan-sets/{id}/publish): real HTTP through
Flask's test client, real SQLite and Redis, real solver runs (searches of 10 iterations)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from app.api.day_schemas import PlanSetCreated, PlanSetView
from solver.check import check_plan
from solver.model import Plan, Problem
from solver.travel import StraightLineTravel

DAY1, DAY2, DAY3 = "2026-12-01", "2026-12-02", "2026-12-03"
WAIT = 90


def _days(payload, dates=(DAY1, DAY2, DAY3), max_visits: int | None = 1) -> dict[str, Any]:
    body = payload()
    del body["date"]
    body["dates"] = list(dates)
    body["options"] = {"time_limit_s": 1, "threads": 1, "max_iterations": 10}
    for agent in body["agents"]:
        agent["max_visits"] = max_visits
    return body


def _planned(plan: dict[str, Any]) -> dict[str, str]:
    return {s["visit_id"]: r["agent_id"] for r in plan["routes"] for s in r["stops"]}


def _create(client, body, query: str = "") -> dict[str, Any]:
    response = client.post(f"/v1/plans?wait={WAIT}{query}", json=body)
    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    PlanSetCreated.model_validate(created)  # the documented contract
    assert response.headers["Location"] == created["links"]["plan_set"] == f"/v1/plan-sets/{created['job_id']}"
    return created


@pytest.fixture(params=["sqlite", "redis"])
def store_app(request, make_app):
    return make_app(redis=request.param == "redis")


def test_three_dates_carry_what_day_one_cannot_make_and_publish_each_date(store_app, payload):
    client = store_app.test_client()
    body = _days(payload)  # two crews of at most one visit a day, six visits: 2 + 2 + 2
    body["visits"][5]["due_by"] = DAY1  # the lowest in the list, due on day 1
    body["visits"][5]["priority"] = 1
    created = _create(client, body)
    view = created["plan_set"]
    assert (view["status"], view["dates"]) == ("published", [DAY1, DAY2, DAY3])
    per_day = [_planned(day["plan"]) for day in view["days"]]
    assert [len(p) for p in per_day] == [2, 2, 2]
    assert sorted(v for p in per_day for v in p) == sorted(v["id"] for v in body["visits"])  # each once
    assert "v5" in per_day[0]  # due on day 1: planned on day 1 despite its priority
    assert view["unplanned"] == []
    for day, planned in zip(view["days"], per_day, strict=True):
        # each date is an ordinary published version: GET /v1/plans/{date} and itineraries work
        assert day["version"] == 1 and day["links"]["plan"] == f"/v1/plans/{day['date']}?version=1"
        current = client.get(f"/v1/plans/{day['date']}").get_json()
        assert current["version"] == 1 and _planned(current["plan"]) == planned
        problem_json = store_app.extensions["doorstep"].store.get_problem(day["date"], 1)
        report = check_plan(Problem.model_validate_json(problem_json), Plan.model_validate(current["plan"]),
                            StraightLineTravel())
        assert report.ok, report
        for visit_id, agent in planned.items():
            itinerary = client.get(f"/v1/agents/{agent}/itinerary?date={day['date']}").get_json()
            assert [s["visit_id"] for s in itinerary["stops"]] == [visit_id]
    job = client.get(f"/v1/jobs/{created['job_id']}").get_json()
    assert (job["kind"], job["status"], job["date"], job["version"]) == ("days", "succeeded", DAY1, 1)
    assert job["links"]["plan_set"] == created["links"]["plan_set"]
    assert client.get(created["links"]["plan_set"]).get_json() == view


def test_a_visit_that_cannot_be_made_by_its_due_date_is_reported_past_due(client, payload):
    body = _days(payload, max_visits=None)
    body["visits"][0]["addresses"][0]["time_windows"] = [{"start": "19:00", "end": "20:00"}]  # after every shift
    body["visits"][0]["due_by"] = DAY2
    view = _create(client, body)["plan_set"]
    [entry] = view["unplanned"]
    assert (entry["visit_id"], entry["code"], entry["details"]["due_by"]) == ("v0", "past_due", DAY2)
    # on day 2 it was required (its due date): the day's plan says why it could not be made
    day2 = view["days"][1]["plan"]
    assert any(u["visit_id"] == "v0" for u in day2["unassigned"])
    assert "v0" not in {u["visit_id"] for u in view["days"][2]["plan"]["unassigned"]}  # not a candidate on day 3


def test_a_followup_from_an_outcome_joins_its_date_with_its_collector(client, payload, client_as):
    day1 = payload()
    day1["options"] = {"time_limit_s": 1, "threads": 1, "max_iterations": 10}
    response = client.post(f"/v1/plans?wait={WAIT}", json=day1)
    assert response.status_code == 201, response.get_json()
    planned = _planned(response.get_json()["plan"])
    visit_id, collector = sorted(planned.items())[0]
    agent = client_as("agent", collector)
    outcome = agent.post(f"/v1/visits/{visit_id}/outcome",
                         json={"date": DAY1, "status": "completed", "result": "not_at_home"})
    assert outcome.status_code == 201, outcome.get_json()
    [followup] = outcome.get_json()["followups"]
    assert followup["date"] == DAY3  # config/followups.toml: not_at_home, 2 days later

    body = _days(payload, dates=(DAY2, DAY3), max_visits=None)
    body["visits"] = body["visits"][3:]  # a few other visits, not the follow-up's
    view = _create(client, body)["plan_set"]
    fu_visit = f"{visit_id}-fu-20261203"
    [considered] = view["followups"]
    assert considered["visit_id"] == fu_visit and considered["added"] is True
    assert considered["preferred_agents"] == [collector] and considered["collector_in_horizon"] is True
    day2, day3 = (_planned(d["plan"]) for d in view["days"])
    assert fu_visit not in day2  # a candidate only from its date
    assert day3[fu_visit] == collector  # made by the collector of the first visit
    # the itinerary of that date shows it to the collector
    stops = agent.get(f"/v1/agents/{collector}/itinerary?date={DAY3}").get_json()["stops"]
    assert fu_visit in [s["visit_id"] for s in stops]

    # planned again without the collector's crew: another crew takes it (a preference, not a rule)
    body["agents"] = [a for a in body["agents"] if a["id"] != collector]
    view = _create(client, body)["plan_set"]
    [considered] = view["followups"]
    assert considered["collector_in_horizon"] is False
    assert _planned(view["days"][1]["plan"])[fu_visit] != collector


def test_a_draft_is_not_current_nor_in_itineraries_until_published(store_app, payload):
    client = store_app.test_client()
    from app.auth import create_token

    store = store_app.extensions["doorstep"].store
    agent = store_app.test_client(token=create_token(store, "agent", "crew-a"))
    body = payload()
    body["options"] = {"time_limit_s": 1, "threads": 1, "max_iterations": 10}
    created = _create(client, body, "&publish=false")  # one date, kept as a draft
    draft_id = created["job_id"]
    view = created["plan_set"]
    assert view["status"] == "draft" and view["days"][0]["version"] is None
    assert view["links"]["publish"] == f"/v1/plan-sets/{draft_id}/publish"
    assert client.get(f"/v1/plans/{DAY1}").status_code == 404  # nothing published
    assert agent.get(f"/v1/agents/crew-a/itinerary?date={DAY1}").status_code == 404
    assert agent.get(f"/v1/plan-sets/{draft_id}").status_code == 403  # drafts are for dispatchers
    assert agent.post(f"/v1/plan-sets/{draft_id}/publish").status_code == 403
    assert client.get(f"/v1/jobs/{draft_id}").get_json()["version"] is None

    published = client.post(f"/v1/plan-sets/{draft_id}/publish")
    assert published.status_code == 200, published.get_json()
    after = PlanSetView.model_validate(published.get_json())
    assert after.status == "published" and after.days[0].version == 1 and after.published_at
    stops = agent.get(f"/v1/agents/crew-a/itinerary?date={DAY1}").get_json()["stops"]
    assert [s["visit_id"] for s in stops] == [s["visit_id"] for s in view["days"][0]["plan"]["routes"][0]["stops"]]
    current = client.get(f"/v1/plans/{DAY1}").get_json()
    assert current["reason"] == "draft" and current["plan"] == view["days"][0]["plan"]
    # publishing again publishes nothing more (a retry is safe)
    again = client.post(f"/v1/plan-sets/{draft_id}/publish")
    assert again.status_code == 200 and again.get_json()["days"][0]["version"] == 1
    assert [v["version"] for v in client.get(f"/v1/plans/{DAY1}/versions").get_json()["versions"]] == [1]
    types = [e["type"] for e in client.get("/v1/events").get_json()["events"]]
    assert types.count("plan.published") == 1


def test_a_stale_draft_is_refused_unless_forced(client, payload):
    body = payload()
    body["options"] = {"time_limit_s": 1, "threads": 1, "max_iterations": 10}
    draft = _create(client, body, "&publish=false")["job_id"]
    assert client.post(f"/v1/plans?wait={WAIT}", json=body).status_code == 201  # version 1 meanwhile
    refused = client.post(f"/v1/plan-sets/{draft}/publish")
    assert refused.status_code == 409 and refused.get_json()["error"] == "stale_draft"
    assert DAY1 in refused.get_json()["message"]
    assert client.get(f"/v1/plan-sets/{draft}").get_json()["status"] == "draft"
    forced = client.post(f"/v1/plan-sets/{draft}/publish?force=true")
    assert forced.status_code == 200 and forced.get_json()["days"][0]["version"] == 2
    assert client.post(f"/v1/plan-sets/{draft}/publish?force=maybe").status_code == 400


def test_an_unknown_plan_set_is_a_404(client):
    assert client.get("/v1/plan-sets/nope").status_code == 404
    assert client.post("/v1/plan-sets/nope/publish").status_code == 404


@pytest.mark.parametrize(
    ("dates", "needle"),
    [
        ([(dt.date(2026, 12, 1) + dt.timedelta(days=i)).isoformat() for i in range(8)], "at most 7"),
        ([DAY2, DAY1], "ascending"),
        ([DAY1, DAY2, DAY1], "distinct"),
        ([DAY1, "2026-12-32"], "date"),
        (["12/01/2026"], "date"),
        ([], "at least 1"),
        (DAY1, "list"),
    ],
)
def test_bad_dates_are_a_422_naming_the_field(client, payload, dates, needle):
    body = _days(payload)
    body["dates"] = dates
    response = client.post("/v1/plans", json=body)
    assert response.status_code == 422, response.get_json()
    errors = response.get_json()["errors"]
    assert errors and all(e["field"].split(".")[0] == "dates" for e in errors), errors
    assert any(needle in e["message"] for e in errors), errors
    assert client.get("/v1/plan-sets/x").status_code == 404  # and nothing was queued or stored


def test_date_and_dates_together_or_absolute_shifts_over_several_dates_are_a_422(client, payload):
    body = _days(payload)
    body["date"] = DAY1
    response = client.post("/v1/plans", json=body)
    assert response.status_code == 422 and response.get_json()["errors"][0]["field"] == "dates"
    body = _days(payload)
    body["agents"][0]["shift"] = {"start": f"{DAY1}T08:30:00+08:00", "end": f"{DAY1}T18:00:00+08:00"}
    response = client.post("/v1/plans", json=body)
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "agents.0.shift"


def test_only_dispatchers_plan_several_dates(client_as, payload):
    for role, agent in (("agent", "crew-a"), ("viewer", None)):
        try:
            caller = client_as(role, agent)
        except ValueError:
            continue  # no such role in this build
        assert caller.post("/v1/plans", json=_days(payload)).status_code == 403


def test_a_followup_of_a_case_at_risk_has_no_preferred_collector(client, payload, client_as):
    day1 = payload()
    day1["options"] = {"time_limit_s": 1, "threads": 1, "max_iterations": 10, "rule_set": "none"}
    day1["visits"][1]["case_id"] = day1["visits"][0]["case_id"]  # two visits of one case
    response = client.post(f"/v1/plans?wait={WAIT}", json=day1)
    assert response.status_code == 201, response.get_json()
    planned = _planned(response.get_json()["plan"])
    assert {"v0", "v1"} <= set(planned)
    for visit_id, result in (("v0", "not_at_home"), ("v1", "dispute")):  # a revisit, then a dispute on the case
        recorded = client_as("agent", planned[visit_id]).post(
            f"/v1/visits/{visit_id}/outcome", json={"date": DAY1, "status": "completed", "result": result})
        assert recorded.status_code == 201, recorded.get_json()
    body = _days(payload, dates=(DAY3,), max_visits=None)
    body["visits"] = []
    body["options"]["rule_set"] = "none"
    view = _create(client, body)["plan_set"]
    [considered] = view["followups"]
    assert considered["visit_id"] == "v0-fu-20261203" and considered["added"] is True
    assert considered["preferred_agents"] == []  # a dispute on the case: no preferred collector
    assert "v0-fu-20261203" in _planned(view["days"][0]["plan"])


def test_a_retried_request_with_its_idempotency_key_queues_nothing_more(store_app, payload):
    client = store_app.test_client()
    body = _days(payload, dates=(DAY1, DAY2))
    first = client.post(f"/v1/plans?wait={WAIT}&publish=false", json=body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 201, first.get_json()
    again = client.post(f"/v1/plans?wait={WAIT}&publish=false", json=body, headers={"Idempotency-Key": "k-1"})
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["job_id"] == first.get_json()["job_id"]
    assert again.get_json()["plan_set"] == first.get_json()["plan_set"]
    other = client.post(f"/v1/plans?wait={WAIT}", json=body, headers={"Idempotency-Key": "k-1"})  # publishes
    assert other.status_code == 409 and other.get_json()["error"] == "idempotency_key_reused"
    # a one-day plan too
    day = payload()
    day["options"] = {"time_limit_s": 1, "threads": 1, "max_iterations": 10}
    one = client.post(f"/v1/plans?wait={WAIT}", json=day, headers={"Idempotency-Key": "k-2"})
    assert one.status_code == 201, one.get_json()
    replayed = client.post(f"/v1/plans?wait={WAIT}", json=day, headers={"Idempotency-Key": "k-2"})
    assert replayed.status_code == 201 and replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.get_json()["version"] == one.get_json()["version"] == 1
    assert [v["version"] for v in client.get(f"/v1/plans/{DAY1}/versions").get_json()["versions"]] == [1]


def test_a_followup_of_an_escalated_case_is_left_out_with_the_reason(client, payload, client_as):
    day1 = payload()
    day1["options"] = {"time_limit_s": 1, "threads": 1, "max_iterations": 10, "rule_set": "none"}
    for visit in day1["visits"][1:3]:
        visit["case_id"] = day1["visits"][0]["case_id"]  # three visits of one case
    response = client.post(f"/v1/plans?wait={WAIT}", json=day1)
    assert response.status_code == 201, response.get_json()
    planned = _planned(response.get_json()["plan"])
    # a revisit, then two refusals: config/cases.toml escalates the case to legal_review
    for visit_id, result in (("v0", "not_at_home"), ("v1", "refused"), ("v2", "refused")):
        recorded = client_as("agent", planned[visit_id]).post(
            f"/v1/visits/{visit_id}/outcome", json={"date": DAY1, "status": "completed", "result": result})
        assert recorded.status_code == 201, recorded.get_json()
    body = _days(payload, dates=(DAY2, DAY3), max_visits=None)
    body["visits"] = body["visits"][3:]
    body["options"]["rule_set"] = "none"
    view = _create(client, body)["plan_set"]
    [considered] = view["followups"]
    assert considered["visit_id"] == "v0-fu-20261203" and considered["added"] is False
    assert "legal_review" in considered["reason"]
    assert all("v0-fu-20261203" not in _planned(d["plan"]) for d in view["days"])
