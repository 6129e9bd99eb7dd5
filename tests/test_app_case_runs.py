"""The runs around collection cases, on both stores: the safety sweep
(safety.overdue once per visit, with a controlled clock), the promise check
from the command line (``doorstep promises check``), amounts in events and
answers as config/cases.toml allows each role, and an incident sending the
case's next visits to two collectors."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner

from app.cases import load_config
from app.cli import main
from app.safety import sweep
from tests.conftest import REDIS_URL
from tests.jsonvalues import shown_values

DAY = "2026-12-01"
CASE = "CASE-K"
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture(params=["sqlite", "redis"])
def app(request, make_app):
    return make_app(redis=request.param == "redis")


@pytest.fixture
def plan(client, payload):
    """The test day, v0 and v1 on one case (CASE-K) for crew-a."""
    body = payload()
    body["visits"][0]["case_id"] = body["visits"][1]["case_id"] = CASE
    body["visits"][0]["pinned_agent"] = body["visits"][1]["pinned_agent"] = "crew-a"
    body["visits"][0]["case"] = {"days_past_due": 45, "overdue_amount": 10000, "currency": "CNY",
                                 "last_contact": "2026-11-30"}
    response = client.post("/v1/plans?wait=60", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["plan"]


def _outcome(client, visit, **body):
    response = client.post(f"/v1/visits/{visit}/outcome", json={"date": DAY, **body})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _events(client, kind):
    return [e["data"] for e in client.get("/v1/events?limit=1000").get_json()["events"] if e["type"] == kind]


def _store_args(app):
    if app.config.get("STORE") == "redis":
        return ["--redis-url", REDIS_URL, "--prefix", app.config["REDIS_PREFIX"]]
    return ["--data-dir", app.config["DATA_DIR"]]


def _stop(plan, visit_id):
    return next(s for r in plan["routes"] for s in r["stops"] if s["visit_id"] == visit_id)


def test_an_arrival_without_completion_is_reported_overdue_once(app, client, plan):
    store = app.extensions["doorstep"].store
    rules = load_config().safety
    stop = _stop(plan, "v0")
    duration = dt.datetime.fromisoformat(stop["end"]) - dt.datetime.fromisoformat(stop["start"])
    arrived = dt.datetime(2026, 12, 1, 9, 5, tzinfo=SHANGHAI)
    _outcome(client, "v0", status="arrived", at=arrived.isoformat())
    _outcome(client, "v1", status="arrived", at=arrived.isoformat())
    _outcome(client, "v1", status="completed", result="refused", at=(arrived + dt.timedelta(minutes=20)).isoformat())
    due_by = arrived + duration + dt.timedelta(minutes=rules.overdue_margin_min)

    assert sweep(store, rules, due_by - dt.timedelta(minutes=1), [DAY]) == []  # not yet
    [event] = sweep(store, rules, due_by + dt.timedelta(minutes=5), [DAY])
    assert event.type == "safety.overdue"
    data = event.data
    assert (data["visit_id"], data["case_id"], data["agent_id"], data["overdue_min"]) == ("v0", CASE, "crew-a", 5)
    assert data["due_by"] == due_by.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    assert data["reported_by"]["role"] == "dispatcher"
    # later sweeps, a read of the events and the command line do not report it again
    assert sweep(store, rules, due_by + dt.timedelta(hours=2), [DAY]) == []
    result = CliRunner().invoke(main, ["safety", "check", "--at", (due_by + dt.timedelta(hours=3)).isoformat(),
                                       "--date", DAY, *_store_args(app)])
    assert result.exit_code == 0, result.output
    assert "0 safety.overdue event(s) emitted" in result.output
    assert [d["visit_id"] for d in _events(client, "safety.overdue")] == ["v0"]


def test_the_command_line_reports_overdue_visits(app, client, plan):
    arrived = dt.datetime(2026, 12, 1, 9, 0, tzinfo=SHANGHAI)
    _outcome(client, "v0", status="arrived", at=arrived.isoformat())
    later = (arrived + dt.timedelta(hours=4)).isoformat()
    result = CliRunner().invoke(main, ["safety", "check", "--at", later, "--date", DAY, *_store_args(app)])
    assert result.exit_code == 0, result.output
    assert "overdue  2026-12-01  v0" in result.output and "1 safety.overdue event(s) emitted" in result.output
    again = CliRunner().invoke(main, ["safety", "check", "--at", later, "--date", DAY, *_store_args(app)])
    assert "0 safety.overdue event(s) emitted" in again.output
    assert len(_events(client, "safety.overdue")) == 1
    bad = CliRunner().invoke(main, ["safety", "check", "--at", "2026-12-01T10:00", *_store_args(app)])
    assert bad.exit_code == 2 and "--at" in bad.output


def test_the_promise_check_command_breaks_once_revisits_and_escalates(app, client, plan):
    _outcome(client, "v0", status="completed", result="promise_to_pay", amount=500, currency="CNY",
             promised_date="2026-12-05")
    _outcome(client, "v1", status="completed", result="promise_to_pay", amount=300, currency="CNY",
             promised_date="2026-12-07")

    def check(day):
        result = CliRunner().invoke(main, ["promises", "check", "--date", day, "--json", *_store_args(app)])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    first = check("2026-12-06")
    assert [(b["case_id"], b["due"], b["case_status"]) for b in first["broken"]] == [(CASE, "2026-12-05", "open")]
    assert first["followups"] == 1 and first["escalated"] == []
    [revisit] = client.get("/v1/followups?date=2026-12-07").get_json()["followups"]
    assert revisit["rule"] == "broken_promise" and revisit["visit"]["case_id"] == CASE
    assert check("2026-12-06")["broken"] == []  # run twice: nothing breaks twice

    second = check("2026-12-09")  # the second broken promise reaches the escalation rule (config/cases.toml)
    assert [b["due"] for b in second["broken"]] == ["2026-12-07"] and second["escalated"] == [CASE]
    assert check("2026-12-20")["broken"] == []
    history = client.get(f"/v1/cases/{CASE}/history").get_json()
    assert history["case"]["broken_promises"] == 2 and history["case"]["status"] == "legal_review"
    assert [d["promise_id"] for d in _events(client, "promise.broken")] == \
        [p["promise_id"] for p in history["promises"] if p["status"] == "broken"]
    # screening weighs the broken promises and no longer sends the escalated case
    screened = client.post("/v1/screening", json={"date": "2026-12-21", "visits": [
        {"id": "s0", "case_id": CASE, "addresses": [{"text": "Road"}],
         "case": {"days_past_due": 60, "overdue_amount": 10000}}]}).get_json()
    assert screened["results"][0]["code"] == "escalated"


def test_amounts_in_events_and_answers_follow_the_configuration(make_app, payload, tmp_path, client_as):
    hidden = tmp_path / "hidden.toml"
    hidden.write_text('[visibility]\namounts = ["dispatcher"]\n', encoding="utf-8")
    app = make_app(CASES_CONFIG=str(hidden))
    client = app.test_client()
    body = payload()
    body["visits"][0]["case_id"] = CASE
    assert client.post("/v1/plans?wait=60", json=body).status_code == 201
    _outcome(client, "v0", status="completed", result="promise_to_pay", amount=500, currency="CNY",
             promised_date="2026-12-05")
    paid = client.post("/v1/payments", json={"payment_id": "P-1", "case_id": CASE, "amount": 500,
                                             "currency": "CNY", "received_on": "2026-12-04"})
    assert paid.status_code == 201 and paid.get_json()["amount"] == 500  # a dispatcher sees it
    for kind in ("outcome.recorded", "promise.made", "payment.received", "promise.kept"):
        [data] = _events(client, kind)
        assert data["amount"] is None, kind  # events go to other systems: not listed
    assert not shown_values(_events(client, "payment.received"), 500)  # values: event ids may hold "500"

    from app.auth import create_token

    store = app.extensions["doorstep"].store
    system = app.test_client(token=create_token(store, "system"))
    history = system.get(f"/v1/cases/{CASE}/history").get_json()
    assert history["case"]["paid_total"] is None and history["promises"][0]["amount"] is None
    assert all(e["details"].get("amount") is None for e in history["entries"])
    crew = next(r["agent_id"] for r in client.get(f"/v1/plans/{DAY}").get_json()["plan"]["routes"]
                if any(s["visit_id"] == "v0" for s in r["stops"]))
    agent = app.test_client(token=create_token(store, "agent", crew))
    assert agent.get(f"/v1/cases/{CASE}/history").get_json()["promises"][0]["paid"] is None  # not listed either
    assert client.get(f"/v1/cases/{CASE}/history").get_json()["promises"][0]["paid"] == 500

    shown = tmp_path / "shown.toml"
    shown.write_text('[visibility]\namounts = ["dispatcher", "agent", "system"]\n', encoding="utf-8")
    other = make_app(CASES_CONFIG=str(shown), DATA_DIR=str(tmp_path / "other")).test_client()
    assert other.post("/v1/plans?wait=60", json=body).status_code == 201
    _outcome(other, "v0", status="completed", result="paid", amount=120, currency="CNY")
    [data] = _events(other, "outcome.recorded")
    assert data["amount"] == 120


def test_an_incident_sends_the_next_visits_of_the_case_to_two_collectors(client, plan, payload):
    _outcome(client, "v0", status="completed", result="incident", met="borrower", attitude="hostile")
    body = payload()
    body["date"] = "2026-12-02"
    body["visits"][0]["case_id"] = CASE
    body["visits"][3]["case_id"] = "CASE-OTHER"
    created = client.post("/v1/plans?wait=60", json=body)
    assert created.status_code == 201, created.get_json()
    # both crews have two members: v0 is planned, with a crew of two
    stops = {s["visit_id"] for r in created.get_json()["plan"]["routes"] for s in r["stops"]}
    assert "v0" in stops

    # a broken promise of the case is revisited by two as well
    _outcome(client, "v1", status="completed", result="promise_to_pay", amount=100, currency="CNY",
             promised_date="2026-12-05")
    assert len(client.post("/v1/promises/check", json={"date": "2026-12-06"}).get_json()["broken"]) == 1
    [revisit] = client.get("/v1/followups?date=2026-12-07").get_json()["followups"]
    assert revisit["visit"]["case_id"] == CASE and revisit["visit"]["crew_size"] == 2

    # without rules asking two collectors for every home visit, crews of one take the others, not v0
    single = payload()
    single["date"] = "2026-12-03"
    single["options"]["rule_set"] = "none"
    single["visits"][0]["case_id"] = CASE
    for agent in single["agents"]:
        agent["members"] = agent["members"][:1]
    alone = client.post("/v1/plans?wait=60", json=single).get_json()["plan"]
    assert "v0" in {u["visit_id"] for u in alone["unassigned"]}
    assert "v1" in {s["visit_id"] for r in alone["routes"] for s in r["stops"]}


def test_the_deliverer_and_a_reader_of_events_sweep_on_their_own(make_app, payload):
    """Wired in: today's plan, a crew arrived three hours ago (real clock)."""
    today = dt.datetime.now(dt.UTC).date().isoformat()
    app = make_app(WEBHOOK_URL="http://127.0.0.1:9/hook", WEBHOOK_DELIVERER="none", WEBHOOK_TIMEOUT_S=0.2)
    client = app.test_client()
    body = payload()
    body["date"] = today
    assert client.post("/v1/plans?wait=60", json=body).status_code == 201
    three_hours_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)).isoformat()
    visit = client.get(f"/v1/plans/{today}").get_json()["plan"]["routes"][0]["stops"][0]["visit_id"]
    response = client.post(f"/v1/visits/{visit}/outcome", json={"date": today, "status": "arrived",
                                                                 "at": three_hours_ago})
    assert response.status_code == 201, response.get_json()
    deliverer = app.extensions["doorstep"].webhook.deliverer
    deliverer.run_once()  # the periodic sweep runs first, then the event goes to the outbox
    store = app.extensions["doorstep"].store
    [event] = [e for e in store.list_events() if e.type == "safety.overdue"]
    assert event.data["visit_id"] == visit and event.data["date"] == today
    assert any(d.event_type == "safety.overdue" for d in store.list_deliveries())
    deliverer.run_once()  # not due again for sweep_every_s, and never twice per visit anyway
    assert [d["visit_id"] for d in _events(client, "safety.overdue")] == [visit]  # the read sweeps: still one

    reader = make_app(DATA_DIR=str(app.config["DATA_DIR"]))  # no deliverer: the read of events sweeps
    planned = {s["visit_id"] for r in client.get(f"/v1/plans/{today}").get_json()["plan"]["routes"]
               for s in r["stops"]}
    other = next(v["id"] for v in body["visits"] if v["id"] in planned and v["id"] != visit)
    assert client.post(f"/v1/visits/{other}/outcome", json={"date": today, "status": "arrived",
                                                            "at": three_hours_ago}).status_code == 201
    assert sorted(d["visit_id"] for d in _events(reader.test_client(), "safety.overdue")) == sorted([visit, other])
