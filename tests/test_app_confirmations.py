"""The borrower's answer to a slot (issue 13): POST /v1/visits/<id>/contact,
its history, the events a gateway sends from, a declined slot freed on
re-planning, and "on the way" when the crew departs. Both stores."""

from __future__ import annotations

import datetime as dt
import json

import pytest

DAY = "2026-12-01"


@pytest.fixture(params=["sqlite", "redis"])
def app(request, make_app):
    return make_app(redis=request.param == "redis")


@pytest.fixture
def plan(client, payload):
    response = client.post("/v1/plans?wait=60", json=payload())
    assert response.status_code == 201, response.get_json()
    return response.get_json()["plan"]


def _stops(plan):
    return {s["visit_id"]: (r["agent_id"], s) for r in plan["routes"] for s in r["stops"]}


def _contact(client, visit_id, result, channel="phone", key=None, **extra):
    headers = {"Idempotency-Key": key} if key else {}
    return client.post(f"/v1/visits/{visit_id}/contact",
                       json={"date": DAY, "channel": channel, "result": result, **extra}, headers=headers)


def _events(client, type_):
    return [e for e in client.get("/v1/events?limit=1000").get_json()["events"] if e["type"] == type_]


def test_proposed_then_confirmed_with_events_a_gateway_can_send(client, plan, payload):
    visit_id, (crew, stop) = next(iter(_stops(plan).items()))
    proposed = _contact(client, visit_id, "proposed", "sms", at=f"{DAY}T08:05:00+08:00")
    assert proposed.status_code == 201, proposed.get_json()
    body = proposed.get_json()
    assert (body["state"], body["agent_id"], body["channel"]) == ("proposed", crew, "sms")
    assert body["slot"] == {"start": stop["slot"]["start"], "end": stop["slot"]["end"]}
    confirmed = _contact(client, visit_id, "confirmed", note="called back, will be home")
    assert confirmed.status_code == 201 and confirmed.get_json()["state"] == "confirmed"

    (event,) = _events(client, "slot.proposed")
    data = event["data"]
    case = next(v["case_id"] for v in payload()["visits"] if v["id"] == visit_id)
    assert (data["visit_id"], data["case_id"], data["agent_id"], data["crew_size"]) == (visit_id, case, crew, 2)
    assert data["slot"]["start"] == stop["slot"]["start"] and data["channel"] == "sms"
    assert data["timezone"] == "Asia/Shanghai" and data["actor"]["role"] == "dispatcher"
    assert _events(client, "slot.confirmed")[0]["data"]["state"] == "confirmed"
    # no borrower contact in any event: the gateway looks the case up in the bank's system
    text = json.dumps(client.get("/v1/events?limit=1000").get_json())
    for visit in payload()["visits"]:
        assert visit["borrower"]["phone"] not in text and visit["borrower"]["name"] not in text
    assert "called back" not in text

    history = client.get(f"/v1/visits/{visit_id}/contacts?date={DAY}").get_json()
    assert history["state"] == "confirmed" and [a["result"] for a in history["attempts"]] == ["proposed", "confirmed"]
    assert history["attempts"][0]["at"].startswith(f"{DAY}T08:05:00")
    listing = {c["visit_id"]: c for c in client.get(f"/v1/confirmations?date={DAY}").get_json()["confirmations"]}
    assert listing[visit_id]["state"] == "confirmed" and listing[visit_id]["attempts"] == 2
    assert {c["state"] for v, c in listing.items() if v != visit_id} == {None}


def test_transitions_idempotency_and_roles(client, client_as, plan):
    stops = _stops(plan)
    visit_id, (crew, _) = next(iter(stops.items()))
    other_crew = next(c for c, _ in stops.values() if c != crew)
    assert _contact(client, visit_id, "no_answer", "wechat", key="k1").status_code == 201
    replay = _contact(client, visit_id, "no_answer", "wechat", key="k1")
    assert replay.status_code == 201 and replay.headers.get("Idempotent-Replayed") == "true"
    reused = _contact(client, visit_id, "confirmed", key="k1")
    assert reused.status_code == 409 and reused.get_json()["error"] == "idempotency_key_reused"
    assert len(_events(client, "slot.no_answer")) == 1
    assert _contact(client, visit_id, "confirmed").status_code == 201
    refused = _contact(client, visit_id, "no_answer")
    assert refused.status_code == 409 and refused.get_json()["error"] == "invalid_transition"
    assert "is confirmed" in refused.get_json()["message"]
    # the crew records its own stops only; another system (a gateway) may record any
    assert _contact(client_as("agent", crew), visit_id, "declined", "visit").status_code == 201
    assert _contact(client_as("agent", other_crew), visit_id, "proposed").status_code == 403
    assert _contact(client_as("system"), visit_id, "proposed", "sms").status_code == 201
    bad = _contact(client, visit_id, "maybe")
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "result"
    assert _contact(client, "nope", "proposed").status_code == 404


def test_a_declined_slot_is_freed_on_re_planning(app, client, plan):
    stops = _stops(plan)
    declined, kept = list(stops)[:2]
    assert _contact(client, declined, "declined").status_code == 201
    assert _contact(client, kept, "confirmed").status_code == 201
    response = client.post(f"/v1/plans/{DAY}/reoptimize?wait=60", json={"now": f"{DAY}T08:00:00+08:00"})
    assert response.status_code == 201, response.get_json()
    from solver.model import Problem

    rest = Problem.model_validate_json(app.extensions["doorstep"].store.get_problem(DAY, 2))
    assert rest.visit(declined).appointment is None  # no promise left to keep
    promised = rest.visit(kept).appointment
    slot = stops[kept][1]["slot"]
    assert promised is not None and promised.start == dt.datetime.fromisoformat(slot["start"])


def test_departing_sends_on_the_way_only_inside_legal_hours(client, plan):
    stops = list(_stops(plan).items())
    (first, (crew, stop)), (second, _) = stops[0], stops[1]
    left = dt.datetime.fromisoformat(stop["slot"]["start"]) - dt.timedelta(seconds=stop["travel_s"])
    departed = client.post(f"/v1/visits/{first}/outcome",
                           json={"date": DAY, "status": "departed", "at": left.isoformat()})
    assert departed.status_code == 201, departed.get_json()
    (event,) = _events(client, "slot.on_the_way")
    data = event["data"]
    assert data["visit_id"] == first and data["agent_id"] == crew and data["late"] is False
    eta = left + dt.timedelta(seconds=stop["travel_s"])
    assert dt.datetime.fromisoformat(data["updated_slot"]["start"]) == eta
    assert dt.datetime.fromisoformat(data["updated_slot"]["end"]) == eta + dt.timedelta(minutes=15)
    assert client.post(f"/v1/visits/{first}/outcome", json={"date": DAY, "status": "arrived"}).status_code == 201
    # 22:30 in Shanghai: recorded, but no message may reach the borrower (cn-cba-2026: 08:00-22:00)
    night = client.post(f"/v1/visits/{second}/outcome",
                        json={"date": DAY, "status": "departed", "at": f"{DAY}T22:30:00+08:00"})
    assert night.status_code == 201
    assert len(_events(client, "slot.on_the_way")) == 1
    again = client.post(f"/v1/visits/{second}/outcome", json={"date": DAY, "status": "departed"})
    assert again.status_code == 409
