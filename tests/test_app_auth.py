"""Bearer tokens and roles: dispatcher, agent (bound to a crew), system."""

from __future__ import annotations

import hashlib
import logging

import pytest

from app.auth import create_token, hash_token

DAY = "2026-12-01"


@pytest.fixture
def planned(client, payload):
    response = client.post("/v1/plans?wait=60", json=payload())
    assert response.status_code == 201, response.get_json()
    return response.get_json()["plan"]


def _crew_of(plan, visit_id: str) -> str:
    return next(r["agent_id"] for r in plan["routes"] if any(s["visit_id"] == visit_id for s in r["stops"]))


def _a_visit_of(plan, agent_id: str) -> str:
    return next(r["stops"][0]["visit_id"] for r in plan["routes"] if r["agent_id"] == agent_id)


def test_requests_without_a_valid_token_are_401(app, payload):
    anonymous = app.test_client(token="")
    for method, path in (("get", f"/v1/plans/{DAY}"), ("post", "/v1/plans"), ("get", "/v1/jobs/x"),
                         ("get", f"/v1/agents/crew-a/itinerary?date={DAY}"), ("get", "/v1/events")):
        response = getattr(anonymous, method)(path)
        assert response.status_code == 401, path
        assert response.get_json()["error"] == "unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = app.test_client(token="ds_not-a-real-token").get(f"/v1/plans/{DAY}")
    assert wrong.status_code == 401
    basic = app.test_client(token="")
    basic.environ_base["HTTP_AUTHORIZATION"] = "Basic dXNlcjpwYXNz"
    assert basic.get(f"/v1/plans/{DAY}").status_code == 401
    # the contract and the docs page are public
    assert anonymous.get("/v1/openapi.json").status_code == 200
    assert anonymous.get("/v1/docs").status_code == 200


def test_tokens_are_random_and_stored_only_as_sha256(app):
    store = app.extensions["doorstep"].store
    tokens = {create_token(store, "system") for _ in range(5)}
    assert len(tokens) == 5
    for token in tokens:
        assert token.startswith("ds_") and len(token) >= 40
        record = store.get_token(hashlib.sha256(token.encode()).hexdigest())
        assert record is not None and record.role == "system" and record.token_hash == hash_token(token)
        assert store.get_token(token) is None  # never stored in clear
    with pytest.raises(ValueError):
        create_token(store, "agent")  # an agent token needs its crew
    with pytest.raises(ValueError):
        create_token(store, "root")
    revoked = create_token(store, "dispatcher")
    assert app.test_client(token=revoked).get("/v1/jobs/x").status_code == 404
    store.delete_token(hash_token(revoked))
    assert app.test_client(token=revoked).get("/v1/jobs/x").status_code == 401


def test_agent_a_cannot_read_or_write_agent_b_data(client_as, planned):
    a, b = "crew-a", "crew-b"
    as_a = client_as("agent", a)
    own = as_a.get(f"/v1/agents/{a}/itinerary?date={DAY}")
    assert own.status_code == 200 and own.get_json()["agent_id"] == a
    assert all(s["borrower"] and s["borrower"]["phone"] for s in own.get_json()["stops"])  # contact of own visits

    other = as_a.get(f"/v1/agents/{b}/itinerary?date={DAY}")
    assert other.status_code == 403 and other.get_json()["error"] == "forbidden"
    assert "Borrower" not in other.get_data(as_text=True)
    for fmt in ("?format=geojson", "?format=ics"):
        assert as_a.get(f"/v1/agents/{b}/itinerary?date={DAY}{fmt.replace('?', '&')}").status_code == 403
    assert as_a.get(f"/v1/agents/{b}/itinerary?date={DAY}", headers={"Accept": "text/calendar"}).status_code == 403

    visit_of_b = _a_visit_of(planned, b)
    write = as_a.post(f"/v1/visits/{visit_of_b}/outcome", json={"date": DAY, "status": "arrived"})
    assert write.status_code == 403
    as_b = client_as("agent", b)
    assert as_b.post(f"/v1/visits/{visit_of_b}/outcome", json={"date": DAY, "status": "arrived"}).status_code == 201
    # agents see neither plans, jobs, events, follow-ups nor slots
    for method, path in (("get", f"/v1/plans/{DAY}"), ("get", f"/v1/plans/{DAY}/versions"), ("get", "/v1/events"),
                         ("get", f"/v1/followups?date={DAY}"), ("post", "/v1/plans"), ("post", "/v1/slots/offers"),
                         ("post", f"/v1/plans/{DAY}/reoptimize")):
        assert getattr(as_a, method)(path).status_code == 403, path


def test_system_sees_itineraries_without_borrower_contact_unless_configured(make_app, payload):
    from app.auth import create_token

    for sees_pii in (False, True):
        app = make_app(SYSTEM_SEES_PII=sees_pii)
        client = app.test_client()
        assert client.post("/v1/plans?wait=60", json=payload()).status_code == 201
        system = app.test_client(token=create_token(app.extensions["doorstep"].store, "system"))
        it = system.get(f"/v1/agents/crew-a/itinerary?date={DAY}").get_json()
        assert it["stops"]
        if sees_pii:
            assert all(s["borrower"] is not None for s in it["stops"])
        else:
            assert all(s["borrower"] is None for s in it["stops"])
            ics = system.get(f"/v1/agents/crew-a/itinerary?date={DAY}&format=ics").get_data(as_text=True)
            assert "Borrower" not in ics and "1380000" not in ics
        assert system.get(f"/v1/plans/{DAY}").status_code == 200
        assert system.get("/v1/events").status_code == 200
        # outcomes are for crews and dispatchers
        visit = it["stops"][0]["visit_id"]
        assert system.post(f"/v1/visits/{visit}/outcome", json={"date": DAY, "status": "arrived"}).status_code == 403
        app.extensions["doorstep"].close()


def test_auth_can_be_turned_off_for_local_use(make_app):
    app = make_app(AUTH=False)
    assert app.test_client(token="").get("/v1/jobs/nope").status_code == 404


def test_no_borrower_data_in_logs_through_plan_itinerary_and_outcome(client, payload, caplog):
    body = payload()
    with caplog.at_level(logging.DEBUG):
        plan = client.post("/v1/plans?wait=60", json=body).get_json()["plan"]
        for agent in ("crew-a", "crew-b"):
            client.get(f"/v1/agents/{agent}/itinerary?date={DAY}")
            client.get(f"/v1/agents/{agent}/itinerary?date={DAY}&format=ics")
        visit = plan["routes"][0]["stops"][0]["visit_id"]
        client.post(f"/v1/visits/{visit}/outcome", json={"date": DAY, "status": "arrived"})
        client.post(f"/v1/visits/{visit}/outcome",
                    json={"date": DAY, "status": "completed", "result": "promise_to_pay", "amount": 1200,
                          "promised_date": "2026-12-05", "note": "Borrower 0 will pay at 13800000000"})
        client.post("/v1/plans", json={**body, "visits": [{**body["visits"][0], "duration_min": -1}]})  # 422
    assert "outcome" in caplog.text and "job" in caplog.text  # the logs did record things
    for v in body["visits"]:
        assert v["borrower"]["name"] not in caplog.text
        assert v["borrower"]["phone"] not in caplog.text
