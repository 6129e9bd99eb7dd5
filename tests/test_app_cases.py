"""Promises, payments and escalation around the visits: POST /v1/payments,
POST /v1/promises/check, GET /v1/cases/{id}/history, and what outcomes
enter in their case. Real HTTP on both stores."""

from __future__ import annotations

import json
import threading

import pytest

DAY = "2026-12-01"
CASE = "CASE-K"


@pytest.fixture(params=["sqlite", "redis"])
def app(request, make_app):
    return make_app(redis=request.param == "redis")


@pytest.fixture
def plan(client, payload):
    """The test day with v0 and v1 on one case (CASE-K), both for crew-a, v0 with case data."""
    body = payload()
    body["visits"][0]["case_id"] = body["visits"][1]["case_id"] = CASE
    body["visits"][0]["pinned_agent"] = body["visits"][1]["pinned_agent"] = "crew-a"  # crew-b has no stop of it
    body["visits"][0]["case"] = {"days_past_due": 45, "overdue_amount": 10000, "currency": "CNY",
                                 "last_contact": "2026-11-30"}
    response = client.post("/v1/plans?wait=60", json=body)
    assert response.status_code == 201, response.get_json()
    planned = response.get_json()["plan"]
    crews = {s["visit_id"]: r["agent_id"] for r in planned["routes"] for s in r["stops"]}
    assert {"v0", "v1"} <= set(crews), planned["unassigned"]
    return crews


def _outcome(client, visit, **body):
    response = client.post(f"/v1/visits/{visit}/outcome", json={"date": DAY, **body})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _promise(client, visit, amount, due, **extra):
    return _outcome(client, visit, status="completed", result="promise_to_pay", amount=amount, currency="CNY",
                    promised_date=due, **extra)


def _pay(client, payment_id, amount, received_on, key=None, case_id=CASE, **extra):
    headers = {"Idempotency-Key": key} if key else {}
    return client.post("/v1/payments", headers=headers, json={
        "payment_id": payment_id, "case_id": case_id, "amount": amount, "currency": "CNY",
        "received_on": received_on, **extra})


def _events(client, kind):
    return [e["data"] for e in client.get("/v1/events?limit=1000").get_json()["events"] if e["type"] == kind]


def test_payments_keep_the_promise_and_the_history_tells_it_in_order(client, plan):
    _outcome(client, "v0", status="arrived", at=f"{DAY}T09:05:00+08:00")
    made = _promise(client, "v0", 1000, "2026-12-05", at=f"{DAY}T09:40:00+08:00", note="pays after salary")

    first = _pay(client, "P-1", 600, "2026-12-03", at="2026-12-03T10:00:00+08:00", reference="BANK-REF-1")
    assert first.status_code == 201, first.get_json()
    body = first.get_json()
    assert (body["case_id"], body["amount"], body["case_status"], body["broken_promises"]) == (CASE, 600, "open", 0)
    [promise] = body["promises"]
    assert (promise["status"], promise["paid"], promise["amount"], promise["due"]) == ("open", 600, 1000, "2026-12-05")
    assert promise["outcome_id"] == made["outcome_id"] and promise["visit_id"] == "v0"
    assert body["actor"]["role"] == "dispatcher" and body["followups"] == []

    second = _pay(client, "P-2", 400, "2026-12-05").get_json()
    assert second["promises"][0]["status"] == "kept" and second["promises"][0]["paid"] == 1000
    kept = _events(client, "promise.kept")
    assert [(e["case_id"], e["promise_id"]) for e in kept] == [(CASE, promise["promise_id"])]
    assert [e["payment_id"] for e in _events(client, "payment.received")] == ["P-1", "P-2"]

    history = client.get(f"/v1/cases/{CASE}/history")
    assert history.status_code == 200, history.get_json()
    history = history.get_json()
    assert [e["type"] for e in history["entries"]] == ["outcome", "outcome", "promise", "payment", "payment",
                                                       "promise_kept"]
    ats = [e["at"] for e in history["entries"]]
    assert ats == sorted(ats) and ats[:3] == ["2026-12-01T01:05:00.000Z"] + ["2026-12-01T01:40:00.000Z"] * 2
    assert ats[3:] == ["2026-12-03T02:00:00.000Z"] + ["2026-12-05T00:00:00.000Z"] * 2
    outcome = history["entries"][1]["details"]
    assert (outcome["result"], outcome["amount"], outcome["note"], outcome["agent_id"]) == \
        ("promise_to_pay", 1000, "pays after salary", plan["v0"])
    assert history["entries"][3]["details"]["reference"] == "BANK-REF-1"
    assert history["case"] == {"case_id": CASE, "status": "open", "counts": {"promise_to_pay": 1},
                               "broken_promises": 0, "open_promises": 0, "payments": 2, "paid_total": 1000,
                               "currency": "CNY", "agents": [plan["v0"]]}
    assert [p["status"] for p in history["promises"]] == ["kept"]


def test_payments_are_idempotent_and_never_counted_twice(client, client_as, plan):
    _promise(client, "v0", 500, "2026-12-05")
    first = _pay(client, "P-1", 500, "2026-12-02", key="pay-1")
    assert first.status_code == 201
    again = _pay(client, "P-1", 500, "2026-12-02", key="pay-1")
    assert again.status_code == 201 and again.get_json() == first.get_json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    other = _pay(client, "P-9", 5, "2026-12-02", key="pay-1")
    assert other.status_code == 409 and other.get_json()["error"] == "idempotency_key_reused"
    twice = _pay(client, "P-1", 500, "2026-12-02", key="pay-2")
    assert twice.status_code == 409 and twice.get_json()["error"] == "duplicate_payment"
    assert _pay(client, "P-1", 500, "2026-12-02").status_code == 409  # without a key too
    case = client.get(f"/v1/cases/{CASE}/history").get_json()["case"]
    assert (case["payments"], case["paid_total"]) == (1, 500)
    assert len(_events(client, "payment.received")) == 1

    assert _pay(client_as("system"), "P-3", 10, "2026-12-02").status_code == 201
    refused = _pay(client_as("agent", plan["v0"]), "P-4", 10, "2026-12-02")
    assert refused.status_code == 403 and refused.get_json()["error"] == "forbidden"
    bad = client.post("/v1/payments", json={"payment_id": "P-5", "case_id": CASE, "amount": 0,
                                            "received_on": "2026-12-02"})
    assert bad.status_code == 422 and [e["field"] for e in bad.get_json()["errors"]] == ["amount"]


def test_a_payment_for_a_case_without_visits_is_kept_in_its_history(client):
    assert _pay(client, "P-1", 80, "2026-12-02", case_id="CASE-NEW").status_code == 201
    history = client.get("/v1/cases/CASE-NEW/history").get_json()
    assert [e["type"] for e in history["entries"]] == ["payment"] and history["case"]["agents"] == []


def test_broken_promises_raise_the_score_revisit_and_escalate(client, plan):
    _promise(client, "v0", 1000, "2026-12-02")
    # screening before: 25 (M2) + 5 (10000) = 30, below the threshold
    case = {"days_past_due": 45, "overdue_amount": 10000, "currency": "CNY", "last_contact": "2026-11-30"}
    visit = {"id": "s1", "case_id": CASE, "addresses": [{"text": "Road", "location": {"lat": 31.23, "lon": 121.47}}],
             "case": case}
    before = client.post("/v1/screening", json={"date": "2026-12-04", "visits": [visit]}).get_json()
    assert before["results"][0]["code"] == "below_threshold" and before["results"][0]["score"]["total"] == 30

    checked = client.post("/v1/promises/check", json={"date": "2026-12-04"})
    assert checked.status_code == 200, checked.get_json()
    checked = checked.get_json()
    assert (checked["cases_checked"], checked["escalated"], checked["followups"]) == (1, [], 1)
    assert [(b["case_id"], b["due"], b["case_status"]) for b in checked["broken"]] == [(CASE, "2026-12-02", "open")]
    assert client.post("/v1/promises/check", json={"date": "2026-12-04"}).get_json()["broken"] == []  # once

    [revisit] = client.get("/v1/followups?date=2026-12-05").get_json()["followups"]
    assert (revisit["rule"], revisit["kind"], revisit["visit"]["id"]) == ("broken_promise", "visit", "v0-bp-20261205")
    assert revisit["source"]["agent_id"] == plan["v0"] and revisit["source"]["result"] == "broken_promise"
    assert revisit["priority"] == 40 == revisit["visit"]["priority"]  # 25 + 5 + one broken promise 10
    assert revisit["visit"]["case"]["broken_promises"] == 1
    assert [e["case_id"] for e in _events(client, "promise.broken")] == [CASE]

    after = client.post("/v1/screening", json={"date": "2026-12-04", "visits": [visit]}).get_json()
    assert after["results"][0]["sent"] and after["visits"][0]["priority"] == 40

    # a second promise on the case's other visit, unpaid when a late payment comes: escalation
    _promise(client, "v1", 300, "2026-12-03")
    late = _pay(client, "P-1", 50, "2026-12-06").get_json()
    assert (late["case_status"], late["broken_promises"], late["followups"]) == ("legal_review", 2, [])
    assert [(e["case_id"], e["status"], e["on"], e["count"]) for e in _events(client, "case.escalated")] == \
        [(CASE, "legal_review", "broken_promise", 2)]
    excluded = client.post("/v1/screening", json={"date": "2026-12-07", "visits": [visit]}).get_json()
    assert excluded["results"][0]["code"] == "escalated" and excluded["visits"] == []
    types = [e["type"] for e in client.get(f"/v1/cases/{CASE}/history").get_json()["entries"]]
    assert types.count("promise_broken") == 2 and types.count("followup") == 1 and "escalation" in types


def test_two_refusals_escalate_to_legal_review(client, plan):
    _outcome(client, "v0", status="completed", result="refused")
    assert client.get(f"/v1/cases/{CASE}/history").get_json()["case"]["status"] == "open"
    _outcome(client, "v1", status="completed", result="refused")
    history = client.get(f"/v1/cases/{CASE}/history").get_json()
    assert history["case"]["status"] == "legal_review" and history["case"]["counts"] == {"refused": 2}
    assert history["entries"][-1]["type"] == "escalation"
    assert history["entries"][-1]["details"] == {"status": "legal_review", "on": "refused", "count": 2}
    assert [(e["case_id"], e["on"]) for e in _events(client, "case.escalated")] == [(CASE, "refused")]


def test_history_is_for_the_crew_that_visited_and_amounts_as_the_role_allows(client, client_as, plan, payload):
    _promise(client, "v0", 700, "2026-12-05", note="lost his job in October")
    crew = plan["v0"]
    other = next(a["id"] for a in payload()["agents"] if a["id"] != crew)

    mine = client_as("agent", crew).get(f"/v1/cases/{CASE}/history")
    assert mine.status_code == 200
    outcome = mine.get_json()["entries"][0]["details"]
    assert outcome["amount"] == 700 and outcome["note"] == "lost his job in October"
    refused = client_as("agent", other).get(f"/v1/cases/{CASE}/history")
    assert refused.status_code == 403 and "own crew" in refused.get_json()["message"]

    system = client_as("system").get(f"/v1/cases/{CASE}/history").get_json()
    assert system["entries"][0]["details"]["amount"] is None and system["entries"][0]["details"]["note"] is None
    assert system["promises"][0]["amount"] is None and system["case"]["paid_total"] is None
    assert system["promises"][0]["due"] == "2026-12-05"
    assert client.get("/v1/cases/nope/history").status_code == 404


def test_payments_at_the_same_time_are_all_counted(app, client, plan):
    _promise(client, "v0", 1000, "2026-12-05")
    barrier = threading.Barrier(4, timeout=30)
    codes: list[int] = []

    def send(n: int) -> None:
        c = app.test_client()
        barrier.wait()
        codes.append(_pay(c, f"P-{n}", 250, "2026-12-02").status_code)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [201] * 4
    history = client.get(f"/v1/cases/{CASE}/history").get_json()
    assert (history["case"]["payments"], history["case"]["paid_total"]) == (4, 1000)
    assert [p["status"] for p in history["promises"]] == ["kept"]


def test_an_outcome_enters_its_case_once_when_retried(client, plan):
    body = {"date": DAY, "status": "completed", "result": "promise_to_pay", "amount": 200, "currency": "CNY",
            "promised_date": "2026-12-04"}
    for _ in range(3):
        response = client.post("/v1/visits/v0/outcome", json=body, headers={"Idempotency-Key": "o-1"})
        assert response.status_code == 201
    history = client.get(f"/v1/cases/{CASE}/history").get_json()
    assert [e["type"] for e in history["entries"]] == ["outcome", "promise"]
    assert history["case"]["counts"] == {"promise_to_pay": 1} and len(history["promises"]) == 1
    assert [e["case_id"] for e in _events(client, "promise.made")] == [CASE]


def test_the_case_endpoints_are_in_the_openapi_document(client):
    from app.api import case_schemas

    document = client.get("/v1/openapi.json").get_json()
    expected = {
        ("/v1/screening", "post"): (case_schemas.ScreeningRequest, "200", case_schemas.ScreeningView),
        ("/v1/payments", "post"): (case_schemas.PaymentRequest, "201", case_schemas.PaymentView),
        ("/v1/promises/check", "post"): (case_schemas.PromiseCheckRequest, "200", case_schemas.PromiseCheckView),
        ("/v1/cases/{case_id}/history", "get"): (None, "200", case_schemas.CaseHistory),
    }
    for (path, method), (request_model, status, response_model) in expected.items():
        op = document["paths"][path][method]
        assert op["tags"] == ["cases"]
        if request_model is not None:
            ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith("/" + request_model.__name__)
        ref = op["responses"][status]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/" + response_model.__name__), path
    payments = document["paths"]["/v1/payments"]["post"]
    assert "Idempotency-Key" in {p["name"] for p in payments["parameters"]} and "409" in payments["responses"]
    stop = document["components"]["schemas"]["ItineraryStop"]["properties"]["case"]
    assert "CaseInfo" in json.dumps(stop)
    case_info = document["components"]["schemas"]["CaseInfo"]["properties"]
    assert {"days_past_due", "overdue_amount", "currency", "broken_promises", "last_contact", "risk_flags",
            "recent_visits"} == set(case_info)


def test_a_plan_agreed_in_instalments_checks_each_due_date(client, plan):
    agreed = _outcome(client, "v0", status="completed", result="plan_agreed", currency="CNY", amount=900,
                      instalments=[{"date": "2026-12-10", "amount": 300}, {"date": "2027-01-10", "amount": 300},
                                   {"date": "2027-02-10", "amount": 300}])
    assert [i["date"] for i in agreed["instalments"]] == ["2026-12-10", "2027-01-10", "2027-02-10"]
    paid = _pay(client, "P-1", 300, "2026-12-09").get_json()
    assert [(p["kind"], p["due"], p["status"]) for p in paid["promises"]] == [
        ("instalment", "2026-12-10", "kept"), ("instalment", "2027-01-10", "open"),
        ("instalment", "2027-02-10", "open")]
    checked = client.post("/v1/promises/check", json={"date": "2027-01-11"}).get_json()
    assert [(b["case_id"], b["due"]) for b in checked["broken"]] == [(CASE, "2027-01-10")]
    assert checked["followups"] == 1
    history = client.get(f"/v1/cases/{CASE}/history").get_json()
    assert [p["status"] for p in history["promises"]] == ["kept", "broken", "open"]
    assert history["case"]["broken_promises"] == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"result": "refused", "instalments": [{"date": "2026-12-10", "amount": 1}]}, "only with result plan_agreed"),
        ({"result": "plan_agreed", "instalments": [{"date": "2026-11-10", "amount": 1}]}, "before the visit date"),
        ({"result": "plan_agreed", "instalments": [{"date": "2026-12-10", "amount": 1},
                                                   {"date": "2026-12-10", "amount": 1}]}, "must increase"),
        ({"result": "plan_agreed", "instalments": [{"date": "2026-12-10", "amount": 0}]}, "instalments.0.amount"),
    ],
)
def test_bad_instalments_are_422(client, body, message):
    response = client.post("/v1/visits/v0/outcome", json={"date": DAY, "status": "completed", **body})
    assert response.status_code == 422
    assert message in json.dumps(response.get_json())


def test_one_payment_sent_twice_at_once_with_its_key_is_counted_once(app, client, plan):
    barrier = threading.Barrier(3, timeout=30)
    answers: list[tuple[int, dict]] = []

    def send() -> None:
        c = app.test_client()
        barrier.wait()
        response = _pay(c, "P-1", 100, "2026-12-02", key="same")
        answers.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=send) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [code for code, _ in answers] == [201] * 3
    assert len({json.dumps(body, sort_keys=True) for _, body in answers}) == 1
    assert client.get(f"/v1/cases/{CASE}/history").get_json()["case"]["payments"] == 1


def test_a_crew_with_a_stop_of_the_case_reads_its_history_before_visiting(client, client_as, plan, payload):
    assert _pay(client, "P-1", 50, "2026-11-28").status_code == 201  # the case exists; nobody visited yet
    crew = plan["v0"]
    others = [a["id"] for a in payload()["agents"] if a["id"] not in {plan["v0"], plan["v1"]}]
    agent = client_as("agent", crew)
    assert agent.get(f"/v1/cases/{CASE}/history?date=2026-12-02").status_code == 403  # no plan that day
    allowed = agent.get(f"/v1/cases/{CASE}/history?date={DAY}")
    assert allowed.status_code == 200 and [e["type"] for e in allowed.get_json()["entries"]] == ["payment"]
    for other in others:  # a crew without a stop of the case
        assert client_as("agent", other).get(f"/v1/cases/{CASE}/history?date={DAY}").status_code == 403
    bad = agent.get(f"/v1/cases/{CASE}/history?date=tomorrow")
    assert bad.status_code == 400 and bad.get_json()["errors"][0]["field"] == "date"
