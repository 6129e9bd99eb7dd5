"""The visit record of an outcome: who was met, attitude, willingness and
ability, hardship, a new address or phone, the new results (dispute, moved,
third_party, incident) and proof of visit (position, geo_mismatch). Real HTTP
on both stores."""

from __future__ import annotations

import json
import math

import pytest

from solver.geo.coords import wgs84_to_gcj02

DAY = "2026-12-01"
PHONE = "13912345678"


@pytest.fixture(params=["sqlite", "redis"])
def app(request, make_app):
    return make_app(redis=request.param == "redis")


@pytest.fixture
def stops(client, payload):
    body = payload()
    for visit in body["visits"]:
        visit["case"] = {"days_past_due": 90, "overdue_amount": 20000, "currency": "CNY",
                         "last_contact": "2026-11-30"}
    response = client.post("/v1/plans?wait=60", json=body)
    assert response.status_code == 201, response.get_json()
    return {s["visit_id"]: (r["agent_id"], s["location"]) for r in response.get_json()["plan"]["routes"]
            for s in r["stops"]}


def _post(client, visit, **body):
    return client.post(f"/v1/visits/{visit}/outcome", json={"date": DAY, **body})


def _north(location, metres):
    return {"lat": location["lat"] + metres / 111_195.0, "lon": location["lon"]}


def test_the_visit_record_is_answered_kept_and_evented_without_personal_data(client, client_as, stops):
    crew, point = stops["v0"]
    arrived = _post(client, "v0", status="arrived", position={**_north(point, 30), "accuracy_m": 12})
    assert arrived.status_code == 201, arrived.get_json()
    arrived = arrived.get_json()
    assert arrived["geo_mismatch"] is False and math.isclose(arrived["distance_m"], 30, abs_tol=1)
    assert arrived["position"]["accuracy_m"] == 12 and arrived["met"] is None

    done = _post(client, "v0", status="completed", result="promise_to_pay", amount=500, currency="CNY",
                 promised_date="2026-12-08", met="borrower", attitude="cooperative", willingness=4, ability=2,
                 hardship="unemployment", hardship_note="laid off in October", income_note="none since October",
                 expense_note="rent 3000", new_phone=PHONE, new_address="Changning road 8",
                 position={**_north(point, 450), "accuracy_m": 20})
    assert done.status_code == 201, done.get_json()
    body = done.get_json()
    assert (body["met"], body["attitude"], body["willingness"], body["ability"], body["hardship"]) == \
        ("borrower", "cooperative", 4, 2, "unemployment")
    assert body["contact_updated"] is True and body["geo_mismatch"] is True and body["distance_m"] > 400
    assert PHONE not in json.dumps(body)  # the answer does not echo personal data

    events = [e for e in client.get("/v1/events").get_json()["events"] if e["type"] == "outcome.recorded"]
    assert [e["data"]["geo_mismatch"] for e in events] == [False, True]
    last = events[-1]["data"]
    assert (last["met"], last["willingness"], last["ability"], last["contact_updated"]) == ("borrower", 4, 2, True)
    text = json.dumps(events)
    assert PHONE not in text and "Changning" not in text and "laid off" not in text and "rent" not in text

    # the case's history keeps the record: personal data for the crew, not for other systems
    case = "CASE-000"
    mine = client_as("agent", crew).get(f"/v1/cases/{case}/history").get_json()["entries"]
    completed = next(e["details"] for e in mine if e["type"] == "outcome" and e["details"]["status"] == "completed")
    assert (completed["new_phone"], completed["new_address"], completed["hardship_note"]) == \
        (PHONE, "Changning road 8", "laid off in October")
    assert completed["geo_mismatch"] is True and completed["willingness"] == 4
    system = client_as("system").get(f"/v1/cases/{case}/history").get_json()["entries"]
    hidden = next(e["details"] for e in system if e["type"] == "outcome" and e["details"]["status"] == "completed")
    assert hidden["new_phone"] is None and hidden["income_note"] is None and hidden["note"] is None
    assert hidden["geo_mismatch"] is True and hidden["attitude"] == "cooperative"


def test_positions_in_gcj02_are_converted_and_the_distance_is_configuration(make_app, payload, tmp_path, request):
    config = tmp_path / "cases.toml"
    config.write_text("[proof]\ngeo_mismatch_m = 1000\n", encoding="utf-8")
    client = make_app(CASES_CONFIG=str(config)).test_client()
    plan = client.post("/v1/plans?wait=60", json=payload()).get_json()["plan"]
    stop = next(s for r in plan["routes"] for s in r["stops"])
    lat, lon = wgs84_to_gcj02(stop["location"]["lat"], stop["location"]["lon"])
    same = _post(client, stop["visit_id"], status="arrived", position={"lat": lat, "lon": lon, "crs": "gcj02"})
    assert same.status_code == 201 and same.get_json()["distance_m"] < 5 and not same.get_json()["geo_mismatch"]
    far = _post(client, stop["visit_id"], status="completed", result="refused",
                position=_north(stop["location"], 600)).get_json()
    assert far["geo_mismatch"] is False and 550 < far["distance_m"] < 650  # within 1000 m here


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "completed", "result": "refused", "willingness": 6}, "willingness"),
        ({"status": "completed", "result": "refused", "ability": 0}, "ability"),
        ({"status": "completed", "result": "refused", "attitude": "angry"}, "attitude"),
        ({"status": "completed", "result": "refused", "met": "neighbour"}, "met"),
        ({"status": "arrived", "attitude": "hostile"}, "attitude"),
        ({"status": "completed", "result": "paid", "amount": 5, "met": "nobody"}, "met"),
        ({"status": "completed", "result": "moved", "amount": 5}, "amount"),
        ({"status": "arrived", "position": {"lat": 95, "lon": 121}}, "position.lat"),
        ({"status": "arrived", "position": {"lat": 31, "lon": 121, "accuracy_m": -1}}, "position.accuracy_m"),
        ({"status": "completed", "result": "refused", "new_phone": ""}, "new_phone"),
    ],
)
def test_a_bad_visit_record_is_422_naming_the_field(client, body, field):
    response = _post(client, "v0", **body)
    assert response.status_code == 422, response.get_json()
    errors = response.get_json()["errors"]
    assert any(e["field"] == field or field in e["message"] for e in errors), errors


def test_the_new_results_flag_revisit_and_reach_screening(client, stops):
    assert _post(client, "v1", status="completed", result="moved", met="family", new_address="Far away 1"
                 ).status_code == 201
    assert _post(client, "v2", status="completed", result="third_party", met="colleague").status_code == 201
    assert _post(client, "v3", status="completed", result="dispute", met="borrower", attitude="hostile"
                 ).status_code == 201
    assert _post(client, "v4", status="completed", result="incident", met="borrower", attitude="hostile"
                 ).status_code == 201
    flags = {f["rule"]: f for f in client.get(f"/v1/followups?date={DAY}").get_json()["followups"]}
    assert {k: f["flag"] for k, f in flags.items()} == {"moved": "moved", "dispute": "dispute",
                                                       "incident": "incident"}
    [revisit] = client.get("/v1/followups?date=2026-12-03").get_json()["followups"]
    assert (revisit["rule"], revisit["visit"]["id"]) == ("third_party", "v2-fu-20261203")

    # a dispute keeps the case from screening; an incident sends it to a crew of two
    visits = [{"id": f"s{i}", "case_id": f"CASE-{i:03d}", "addresses": [{"text": "Road"}],
               "case": {"days_past_due": 90, "overdue_amount": 20000}} for i in (3, 4)]
    screened = client.post("/v1/screening", json={"date": "2026-12-02", "visits": visits}).get_json()
    results = {r["visit_id"]: r for r in screened["results"]}
    assert results["s3"]["code"] == "risk_flag" and "dispute" in results["s3"]["reason"]
    [sent] = screened["visits"]
    assert sent["id"] == "s4" and sent["crew_size"] == 2 and "incident" in sent["case"]["risk_flags"]
