"""POST /v1/visits/<id>/outcome and GET /v1/followups: transitions,
idempotency, follow-up rules. Run on both stores."""

from __future__ import annotations

import threading

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


def _visit(plan, n: int = 0) -> str:
    return [s["visit_id"] for r in plan["routes"] for s in r["stops"]][n]


def _post(client, visit_id, body, key=None):
    headers = {"Idempotency-Key": key} if key else {}
    return client.post(f"/v1/visits/{visit_id}/outcome", json={"date": DAY, **body}, headers=headers)


def test_arrived_then_completed_then_nothing_more(client, plan):
    visit = _visit(plan)
    arrived = _post(client, visit, {"status": "arrived", "at": f"{DAY}T10:01:00+08:00"})
    assert arrived.status_code == 201, arrived.get_json()
    body = arrived.get_json()
    assert (body["visit_id"], body["status"], body["result"], body["followups"]) == (visit, "arrived", None, [])
    crew = next(r["agent_id"] for r in plan["routes"] if any(s["visit_id"] == visit for s in r["stops"]))
    assert body["agent_id"] == crew

    again = _post(client, visit, {"status": "arrived"})
    assert again.status_code == 409 and again.get_json()["error"] == "invalid_transition"
    assert "is arrived" in again.get_json()["message"]

    done = _post(client, visit, {"status": "completed", "result": "paid", "amount": 500, "currency": "CNY"})
    assert done.status_code == 201 and done.get_json()["amount"] == 500
    twice = _post(client, visit, {"status": "completed", "result": "refused"})
    assert twice.status_code == 409
    assert "completed (result paid)" in twice.get_json()["message"]
    late_arrival = _post(client, visit, {"status": "arrived"})
    assert late_arrival.status_code == 409

    stops = client.get(f"/v1/agents/{crew}/itinerary?date={DAY}").get_json()["stops"]
    mine = next(s for s in stops if s["visit_id"] == visit)
    assert (mine["status"], mine["result"]) == ("completed", "paid")


def test_completed_without_arrived_is_allowed(client, plan):
    response = _post(client, _visit(plan, 1), {"status": "completed", "result": "refused"})
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "completed"}, "result"),
        ({"status": "arrived", "result": "paid"}, "result"),
        ({"status": "completed", "result": "promise_to_pay", "promised_date": "2026-12-05"}, "amount"),
        ({"status": "completed", "result": "promise_to_pay", "amount": 100}, "promised_date"),
        ({"status": "completed", "result": "promise_to_pay", "amount": 100, "promised_date": "2026-11-01"},
         "promised_date"),
        ({"status": "completed", "result": "refused", "amount": 100}, "amount"),
        ({"status": "left"}, "status"),
        ({"status": "completed", "result": "paid", "amount": -5}, "amount"),
        ({"status": "arrived", "at": "2026-12-01T10:00:00"}, "at"),
        ({"status": "arrived", "colour": "red"}, "colour"),
    ],
)
def test_bad_outcomes_are_422_naming_the_field(client, body, field):
    response = _post(client, "v0", body)  # the body is checked before anything is looked up
    assert response.status_code == 422, response.get_json()
    assert field in [e["field"] for e in response.get_json()["errors"]]


def test_unknown_visits_and_dates_are_404(client, plan):
    assert _post(client, "nope", {"status": "arrived"}).status_code == 404
    other = client.post(f"/v1/visits/{_visit(plan)}/outcome", json={"date": "2026-12-02", "status": "arrived"})
    assert other.status_code == 404
    bad_key = client.post(f"/v1/visits/{_visit(plan)}/outcome", json={"date": DAY, "status": "arrived"},
                          headers={"Idempotency-Key": "x" * 300})
    assert bad_key.status_code == 400 and bad_key.get_json()["errors"][0]["field"] == "Idempotency-Key"


def test_idempotency_key_replays_the_same_answer_and_refuses_another_body(client, plan):
    visit = _visit(plan)
    body = {"status": "completed", "result": "not_at_home"}
    first = _post(client, visit, body, key="key-1")
    assert first.status_code == 201
    second = _post(client, visit, body, key="key-1")
    assert second.status_code == 201 and second.get_json() == first.get_json()
    assert second.headers.get("Idempotent-Replayed") == "true"
    other = _post(client, visit, {"status": "completed", "result": "refused"}, key="key-1")
    assert other.status_code == 409 and other.get_json()["error"] == "idempotency_key_reused"
    # one outcome, one follow-up, one event
    followups = client.get("/v1/followups?date=2026-12-03").get_json()["followups"]
    assert len(followups) == 1
    events = [e for e in client.get("/v1/events").get_json()["events"] if e["type"] == "outcome.recorded"]
    assert len(events) == 1


def test_concurrent_retries_with_one_key_record_once(app, client, plan):
    visit = _visit(plan)
    barrier = threading.Barrier(3, timeout=30)
    codes = []

    def send() -> None:
        c = app.test_client()
        barrier.wait()
        codes.append(_post(c, visit, {"status": "arrived"}, key="retry-key").status_code)

    threads = [threading.Thread(target=send) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes.count(201) >= 1 and set(codes) <= {201, 409}
    store = app.extensions["doorstep"].store
    assert len(store.list_outcomes(DAY, visit)) == 1


def test_follow_up_rules_create_visits_and_flags(client, plan, payload):
    source = {v["id"]: v for v in payload()["visits"]}
    promise, away, wrong, paid = (_visit(plan, i) for i in range(4))
    r1 = _post(client, promise, {"status": "completed", "result": "promise_to_pay", "amount": 1200,
                                 "promised_date": "2026-12-05"})
    assert r1.status_code == 201
    (followup,) = r1.get_json()["followups"]
    assert (followup["kind"], followup["date"], followup["rule"]) == ("visit", "2026-12-06", "promise_to_pay")
    assert followup["visit"]["case_id"] == source[promise]["case_id"]
    assert followup["visit"]["priority"] == source[promise]["priority"]
    assert followup["visit"]["id"] != promise and followup["visit"]["appointment"] is None

    r2 = _post(client, away, {"status": "completed", "result": "not_at_home"})
    (revisit,) = r2.get_json()["followups"]
    assert (revisit["date"], revisit["priority"]) == ("2026-12-03", source[away]["priority"] + 10)

    r3 = _post(client, wrong, {"status": "completed", "result": "wrong_address"})
    (flag,) = r3.get_json()["followups"]
    assert (flag["kind"], flag["flag"], flag["date"], flag["visit"]) == ("flag", "wrong_address", DAY, None)
    assert _post(client, paid, {"status": "completed", "result": "paid"}).get_json()["followups"] == []

    listed = client.get("/v1/followups?date=2026-12-06").get_json()
    assert [f["id"] for f in listed["followups"]] == [followup["id"]]
    assert listed["followups"][0]["source"]["visit_id"] == promise
    assert [f["flag"] for f in client.get(f"/v1/followups?date={DAY}").get_json()["followups"]] == ["wrong_address"]
    assert client.get("/v1/followups?date=2026-12-04").get_json()["followups"] == []
    assert client.get("/v1/followups").status_code == 400
    # a follow-up visit is ready to be planned on its date
    day = payload()
    day["date"] = "2026-12-06"
    day["visits"] = [listed["followups"][0]["visit"]]
    assert client.post("/v1/plans?wait=60", json=day).status_code == 201


def test_follow_up_rules_come_from_a_toml_file(make_app, tmp_path, payload):
    rules = tmp_path / "rules.toml"
    rules.write_text('[refused]\naction = "visit"\nfrom = "visit_date"\ndays = 7\npriority_delta = -20\n'
                     'purpose = "second attempt"\n', encoding="utf-8")
    app = make_app(FOLLOWUP_RULES=str(rules))
    client = app.test_client()
    plan = client.post("/v1/plans?wait=60", json=payload()).get_json()["plan"]
    (f,) = _post(client, _visit(plan), {"status": "completed", "result": "refused"}).get_json()["followups"]
    assert (f["date"], f["purpose"]) == ("2026-12-08", "second attempt")
    assert _post(client, _visit(plan, 1), {"status": "completed", "result": "not_at_home"}).get_json()["followups"] == []

    rules.write_text('[paid]\naction = "visit"\nfrom = "promised_date"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="paid"):
        make_app(FOLLOWUP_RULES=str(rules))
