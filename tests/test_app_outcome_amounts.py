"""A recorder's own outcome answer follows ``[visibility] amounts``
(config/cases.toml): a role not listed gets the amount, the instalment
amounts and the follow-up visit's overdue amount as null — in the first
answer and in its Idempotency-Key replay — while the stored record keeps
them for the case. Real HTTP, real SQLite store, real solve."""

from __future__ import annotations

from tests.jsonvalues import shown_values

DAY = "2026-12-01"
CASE = "CASE-A"


def test_an_agent_not_listed_sees_no_amount_in_its_own_outcome_answer(make_app, payload, tmp_path):
    from app.auth import create_token

    config = tmp_path / "cases.toml"
    config.write_text('[visibility]\namounts = ["dispatcher"]\n', encoding="utf-8")
    app = make_app(CASES_CONFIG=str(config))
    client = app.test_client()
    body = payload()
    for visit in body["visits"][:2]:
        visit["case_id"] = CASE
        visit["case"] = {"days_past_due": 90, "overdue_amount": 20000, "currency": "CNY"}
    created = client.post("/v1/plans?wait=60", json=body)
    assert created.status_code == 201, created.get_json()
    crews = {s["visit_id"]: r["agent_id"] for r in created.get_json()["plan"]["routes"] for s in r["stops"]}
    store = app.extensions["doorstep"].store
    first, second = (v["id"] for v in body["visits"][:2])
    agent = app.test_client(token=create_token(store, "agent", crews[first]))

    promise = {"date": DAY, "status": "completed", "result": "promise_to_pay", "amount": 500, "currency": "CNY",
               "promised_date": "2026-12-05"}
    answered = agent.post(f"/v1/visits/{first}/outcome", json=promise, headers={"Idempotency-Key": "k-1"})
    assert answered.status_code == 201, answered.get_json()
    shown = answered.get_json()
    assert shown["amount"] is None and shown["currency"] == "CNY" and shown["result"] == "promise_to_pay"
    [followup] = shown["followups"]  # the check of the promise: a visit carrying the case
    assert followup["visit"]["case"]["overdue_amount"] is None and followup["date"] == "2026-12-06"
    assert not shown_values(shown, 500, 20000)  # values, not digits: ids and timestamps may hold "500"
    replayed = agent.post(f"/v1/visits/{first}/outcome", json=promise, headers={"Idempotency-Key": "k-1"})
    assert replayed.status_code == 201 and replayed.get_json() == shown

    # the case keeps the promised amount (a dispatcher sees it), and the follow-up list shows it to him
    history = client.get(f"/v1/cases/{CASE}/history").get_json()
    assert [p["amount"] for p in history["promises"]] == [500]
    [listed] = client.get("/v1/followups?date=2026-12-06").get_json()["followups"]
    assert listed["visit"]["case"]["overdue_amount"] == 20000

    # instalments of an agreed plan: dates shown, amounts not; a dispatcher recording sees them all
    plan = {"date": DAY, "status": "completed", "result": "plan_agreed", "amount": 900, "currency": "CNY",
            "instalments": [{"date": "2026-12-10", "amount": 300}, {"date": "2027-01-10", "amount": 600}]}
    crew = app.test_client(token=create_token(store, "agent", crews[second]))
    agreed = crew.post(f"/v1/visits/{second}/outcome", json=plan).get_json()
    assert agreed["amount"] is None
    assert [(i["date"], i["amount"]) for i in agreed["instalments"]] == [("2026-12-10", None), ("2027-01-10", None)]
    third = next(v["id"] for v in body["visits"][2:] if v["id"] in crews)
    by_dispatcher = client.post(f"/v1/visits/{third}/outcome", json={**plan, "amount": 700}).get_json()
    assert by_dispatcher["amount"] == 700 and by_dispatcher["instalments"][1]["amount"] == 600
