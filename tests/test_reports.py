"""Reports (GET /v1/reports, app.reports): a day planned by the real solver,
outcomes, promises and payments recorded through the API, then the report's
figures per crew, branch and overdue bucket checked against numbers the test
computes from what it sent and from the published plan. Both stores."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from typing import Any

import pytest

from app.reports import NONE, RESULTS, TOTAL

DAY = "2026-12-01"
FROM, TO = "2026-11-30", "2026-12-05"
#: Days past due of v0..v6 (None: no case data).
OVERDUE = [10, 40, 75, 5, 0, None, 100]
BUCKETS = ["M1", "M2", "M3+", "M1", "M0", NONE, "M3+"]
#: config/reports.toml of these tests: crew-b is in branch North with its own hourly rate.
RATES = {"crew-a": (100.0, 2.0), "crew-b": (80.0, 2.0)}
BRANCH = {"crew-a": "Branch A", "crew-b": "North"}
REPORTS_TOML = """
roles = ["dispatcher", "system"]
max_days = 31
[rates]
hourly = 100.0
per_km = 2.0
currency = "CNY"
[crews.crew-b]
branch = "North"
hourly = 80.0
"""


@pytest.fixture(params=["sqlite", "redis"])
def app(request, make_app, tmp_path):
    config = tmp_path / "reports.toml"
    config.write_text(REPORTS_TOML, encoding="utf-8")
    return make_app(redis=request.param == "redis", REPORTS_CONFIG=str(config))


def _outcome(client: Any, visit: str, **body: Any) -> None:
    response = client.post(f"/v1/visits/{visit}/outcome", json={"date": DAY, **body})
    assert response.status_code == 201, response.get_json()


def _pay(client: Any, payment_id: str, case_id: str, amount: float, received_on: str) -> None:
    response = client.post("/v1/payments", json={"payment_id": payment_id, "case_id": case_id, "amount": amount,
                                                 "currency": "CNY", "received_on": received_on})
    assert response.status_code == 201, response.get_json()


@pytest.fixture
def seeded(client, payload) -> dict[str, Any]:
    """The test day: v0, v1, v4 pinned to crew-a, v2, v3, v5 to crew-b, and v6
    (a night window) that the default rule set's visiting hours leave out.
    crew-a: v0 promise 300 due 12-02 (borrower met), v1 not at home, v4
    promise 200 due 12-20; crew-b: v2 refused (family met), v3 arrived only.
    Payments: 300 on v0's case on 12-02 (keeps its promise), 50 on v2's case
    on 12-03, 70 on v2's case on 11-30 (before the visit: not counted) and 40
    on 12-09 (after the period: not counted)."""
    body = payload()
    body["visits"].append({**body["visits"][5], "id": "v6", "case_id": "CASE-006",
                           "addresses": [{**body["visits"][5]["addresses"][0],
                                          "time_windows": [{"start": "22:30", "end": "23:00"}]}]})
    for i, visit in enumerate(body["visits"]):
        if OVERDUE[i] is not None:
            visit["case"] = {"days_past_due": OVERDUE[i], "overdue_amount": 5000, "currency": "CNY"}
        if i < 6:
            visit["pinned_agent"] = "crew-a" if i in (0, 1, 4) else "crew-b"
    for agent in body["agents"]:
        agent["shift"]["end"] = "23:59"
    response = client.post("/v1/plans?wait=120", json=body)
    assert response.status_code == 201, response.get_json()
    plan = response.get_json()["plan"]
    crews = {s["visit_id"]: r["agent_id"] for r in plan["routes"] for s in r["stops"]}
    assert set(crews) == {f"v{i}" for i in range(6)}, plan["unassigned"]
    assert [(u["visit_id"], u["code"]) for u in plan["unassigned"]] == [("v6", "outside_hours")]

    _outcome(client, "v0", status="completed", result="promise_to_pay", amount=300, currency="CNY",
             promised_date="2026-12-02", met="borrower")
    _outcome(client, "v1", status="completed", result="not_at_home")
    _outcome(client, "v4", status="completed", result="promise_to_pay", amount=200, currency="CNY",
             promised_date="2026-12-20")
    _outcome(client, "v2", status="completed", result="refused", met="family")
    _outcome(client, "v3", status="arrived")
    _pay(client, "pay-1", "CASE-000", 300, "2026-12-02")
    _pay(client, "pay-2", "CASE-002", 50, "2026-12-03")
    _pay(client, "pay-0", "CASE-002", 70, "2026-11-30")
    _pay(client, "pay-3", "CASE-002", 40, "2026-12-09")
    return plan


def _route_figures(plan: dict[str, Any], group_of_stop: Any) -> dict[str, dict[str, float]]:
    """Hours, km and cost per group from the published routes (shared equally among stops)."""
    out: dict[str, dict[str, float]] = defaultdict(lambda: {"hours": 0.0, "km": 0.0, "cost": 0.0})
    for route in plan["routes"]:
        start, end = (dt.datetime.fromisoformat(route[k]) for k in ("start", "end"))
        hours = (end - start).total_seconds() / 3600
        km = (sum(s["distance_m"] for s in route["stops"]) + route["end_distance_m"]) / 1000
        hourly, per_km = RATES[route["agent_id"]]
        for stop in route["stops"]:
            share = 1 / len(route["stops"])
            figures = out[group_of_stop(route["agent_id"], stop["visit_id"])]
            figures["hours"] += hours * share
            figures["km"] += km * share
            figures["cost"] += (hours * hourly + km * per_km) * share
    return out


def _get(client: Any, group_by: str, **extra: str) -> Any:
    return client.get("/v1/reports", query_string={"from": FROM, "to": TO, "group_by": group_by, **extra})


def _results(**counts: int) -> dict[str, int]:
    return {result: counts.get(result, 0) for result in RESULTS}


def test_figures_per_crew_branch_and_bucket(client, seeded):
    plan = seeded
    routes = _route_figures(plan, lambda crew, _visit: crew)
    body = _get(client, "crew").get_json()
    by_crew = {line["group"]: line for line in body["groups"]}
    assert body["days_planned"] == 1 and body["currency"] == "CNY" and body["amounts_visible"] is True
    assert set(by_crew) == {"crew-a", "crew-b", NONE}

    a = by_crew["crew-a"]
    assert (a["visits_planned"], a["visits_made"], a["visits_completed"], a["contacts"]) == (3, 3, 3, 2)
    assert a["contact_rate"] == round(2 / 3, 4)  # v0 met the borrower, v4 promised (met not recorded), v1 nobody
    assert a["results"] == _results(promise_to_pay=2, not_at_home=1)
    assert (a["promises_made"], a["promised_amount"], a["promises_due"], a["promises_kept"]) == (2, 500.0, 1, 1)
    assert a["promise_kept_rate"] == 1.0
    assert (a["payments"], a["recovered_amount"]) == (1, 300.0)
    for name in ("hours", "km", "cost"):
        assert a[name] == pytest.approx(routes["crew-a"][name], abs=0.011), name
    assert a["cost_per_visit"] == pytest.approx(routes["crew-a"]["cost"] / 3, abs=0.011)
    assert a["cost_per_recovered"] == pytest.approx(routes["crew-a"]["cost"] / 300, abs=1e-3)
    assert a["compliance_exceptions"] == 0

    b = by_crew["crew-b"]
    assert (b["visits_planned"], b["visits_made"], b["visits_completed"], b["contacts"]) == (3, 2, 1, 1)
    assert b["contact_rate"] == 0.5
    assert b["results"] == _results(refused=1)
    assert (b["promises_made"], b["promised_amount"], b["promise_kept_rate"]) == (0, 0.0, None)
    assert (b["payments"], b["recovered_amount"]) == (1, 50.0)  # 70 before the visit and 40 after `to` left out
    assert b["cost"] == pytest.approx(routes["crew-b"]["cost"], abs=0.011)
    assert b["cost_per_visit"] == pytest.approx(routes["crew-b"]["cost"] / 2, abs=0.011)

    none = by_crew[NONE]  # v6: no crew, refused by the rule set's visiting hours
    assert (none["visits_planned"], none["compliance_exceptions"], none["exceptions_by_rule"]) == (
        0, 1, {"visiting_hours": 1})
    assert none["cost_per_visit"] is None and none["hours"] == 0

    total = body["total"]
    assert total["group"] == TOTAL
    assert (total["visits_planned"], total["visits_made"], total["contacts"], total["payments"]) == (6, 5, 3, 2)
    assert total["contact_rate"] == 0.6 and total["recovered_amount"] == 350.0
    assert total["cost"] == pytest.approx(routes["crew-a"]["cost"] + routes["crew-b"]["cost"], abs=0.011)
    assert total["compliance_exceptions"] == 1

    by_branch = {line["group"]: line for line in _get(client, "branch").get_json()["groups"]}
    assert set(by_branch) == {"Branch A", "North", NONE}
    for crew, branch in BRANCH.items():
        assert {k: v for k, v in by_branch[branch].items() if k != "group"} == \
               {k: v for k, v in by_crew[crew].items() if k != "group"}

    bucket_of = {f"v{i}": bucket for i, bucket in enumerate(BUCKETS)}
    shares = _route_figures(plan, lambda _crew, visit: bucket_of[visit])
    by_bucket = {line["group"]: line for line in _get(client, "bucket").get_json()["groups"]}
    assert set(by_bucket) == {"M0", "M1", "M2", "M3+", NONE}
    m1, m3 = by_bucket["M1"], by_bucket["M3+"]
    assert (m1["visits_planned"], m1["visits_made"], m1["contacts"]) == (2, 2, 1)  # v0 (met), v3 (arrived)
    assert (m1["promised_amount"], m1["recovered_amount"]) == (300.0, 300.0)
    assert (m3["visits_planned"], m3["contacts"], m3["recovered_amount"], m3["compliance_exceptions"]) == (1, 1, 50.0, 1)
    assert by_bucket["M0"]["promises_made"] == 1 and by_bucket["M0"]["promises_due"] == 0  # v4: due 12-20
    assert by_bucket["M2"]["results"] == _results(not_at_home=1)
    for bucket, figures in shares.items():
        assert by_bucket[bucket]["hours"] == pytest.approx(figures["hours"], abs=0.011), bucket
        assert by_bucket[bucket]["cost"] == pytest.approx(figures["cost"], abs=0.011), bucket
    assert by_bucket[NONE]["visits_planned"] == 1  # v5: no case data


def test_csv_export_reads_back_as_the_json(client, seeded):
    report = _get(client, "crew").get_json()
    for response in (_get(client, "crew", format="csv"),
                     client.get("/v1/reports", query_string={"from": FROM, "to": TO},
                                headers={"Accept": "text/csv"})):
        assert response.status_code == 200
        assert response.mimetype == "text/csv"
        assert "attachment" in response.headers["Content-Disposition"]
        rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
        assert [r["crew"] for r in rows] == [line["group"] for line in report["groups"]] + [TOTAL]
        for row, line in zip(rows, [*report["groups"], report["total"]]):
            assert int(row["visits_made"]) == line["visits_made"]
            assert float(row["cost"]) == line["cost"]
            assert int(row["result_promise_to_pay"]) == line["results"]["promise_to_pay"]
            assert row["contact_rate"] == ("" if line["contact_rate"] is None else str(line["contact_rate"]))
            assert float(row["recovered_amount"]) == line["recovered_amount"]


def test_roles_without_amounts_see_none_and_agents_none_at_all(client, client_as, seeded):
    system = client_as("system")  # config/cases.toml: amounts for dispatchers and agents only
    body = system.get("/v1/reports", query_string={"from": FROM, "to": TO}).get_json()
    assert body["amounts_visible"] is False
    crew_a = next(line for line in body["groups"] if line["group"] == "crew-a")
    assert crew_a["promised_amount"] is None and crew_a["recovered_amount"] is None
    assert crew_a["cost_per_recovered"] is None and crew_a["promises_kept"] == 1 and crew_a["cost"] > 0
    rows = list(csv.DictReader(io.StringIO(system.get("/v1/reports", query_string={
        "from": FROM, "to": TO, "format": "csv"}).get_data(as_text=True))))
    assert rows[-1]["recovered_amount"] == "" and rows[-1]["visits_made"] == "5"
    agent = client_as("agent", "crew-a").get("/v1/reports", query_string={"from": FROM, "to": TO})
    assert agent.status_code == 403 and agent.get_json()["error"] == "forbidden"


@pytest.mark.parametrize(("query", "field"), [
    ({"to": TO}, "from"),
    ({"from": "2026-12-05", "to": "2026-12-01"}, "to"),
    ({"from": "2026-11-01", "to": "2026-12-31"}, "to"),  # 61 days: max_days is 31 here
    ({"from": FROM, "to": "2026-02-30"}, "to"),
    ({"from": FROM, "to": TO, "group_by": "agent"}, "group_by"),
    ({"from": FROM, "to": TO, "format": "xlsx"}, "format"),
    ({"from": FROM, "to": TO, "colour": "red"}, "colour"),
])
def test_bad_parameters_are_422_naming_the_field(client, query, field):
    response = client.get("/v1/reports", query_string=query)
    assert response.status_code == 422, response.get_json()
    assert [e["field"] for e in response.get_json()["errors"]] == [field]


def test_an_empty_period_and_unacceptable_types(client):
    body = client.get("/v1/reports", query_string={"from": FROM, "to": TO}).get_json()
    assert body["groups"] == [] and body["days_planned"] == 0
    assert body["total"]["visits_planned"] == 0 and body["total"]["contact_rate"] is None
    refused = client.get("/v1/reports", query_string={"from": FROM, "to": TO}, headers={"Accept": "application/xml"})
    assert refused.status_code == 406
    assert client.get("/v1/reports", query_string={"from": FROM, "to": TO, "format": "csv"},
                      headers={"Accept": "application/json"}).status_code == 406


def test_readers_follow_the_configuration(make_app, tmp_path):
    config = tmp_path / "dispatchers-only.toml"
    config.write_text('roles = ["dispatcher"]\n', encoding="utf-8")
    app = make_app(REPORTS_CONFIG=str(config))
    from app.auth import create_token

    system = app.test_client(token=create_token(app.extensions["doorstep"].store, "system"))
    assert system.get("/v1/reports", query_string={"from": FROM, "to": TO}).status_code == 403
    assert app.test_client().get("/v1/reports", query_string={"from": FROM, "to": TO}).status_code == 200
    config.write_text('roles = ["agent"]\n', encoding="utf-8")
    from app.reports import load_config

    with pytest.raises(ValueError, match="roles"):
        load_config(config)


def test_the_store_reads_a_period_in_one_go(app):
    store = app.extensions["doorstep"].store
    store.publish_plan("2026-12-02", '{"p": 1}', '{"q": 1}', meta={"job": "a"})
    store.publish_plan("2026-12-02", '{"p": 2}', '{"q": 2}')
    store.publish_plan("2026-12-04", '{"p": 3}', '{"q": 3}')
    days = store.current_days(["2026-12-01", "2026-12-02", "2026-12-03", "2026-12-04"])
    assert sorted(days) == ["2026-12-02", "2026-12-04"]
    stored, problem = days["2026-12-02"]
    assert (stored.version, stored.plan_json, problem, stored.meta) == (2, '{"p": 2}', '{"q": 2}', {})
    assert store.current_days([]) == {}
    assert store.list_case_entries_many(["nope"]) == {}


def test_the_report_is_in_the_openapi_document_as_served(client):
    document = client.get("/v1/openapi.json").get_json()
    op = document["paths"]["/v1/reports"]["get"]
    assert [p["name"] for p in op["parameters"]] == ["from", "to", "group_by", "format"]
    assert op["parameters"][2]["schema"]["enum"] == ["crew", "branch", "bucket"]
    assert set(op["responses"]["200"]["content"]) == {"application/json", "text/csv"}
    assert {"403", "406", "422"} <= set(op["responses"])
    view = document["components"]["schemas"]["ReportView"]
    served = client.get("/v1/reports", query_string={"from": FROM, "to": TO}).get_json()
    assert set(view["properties"]) == set(served) and set(view["required"]) <= set(served)
    line = document["components"]["schemas"]["ReportLine"]
    assert set(line["properties"]) == set(served["total"])


def test_csv_group_names_are_never_formulas():
    from app.reports import Figures, to_csv

    lines = [Figures().as_dict("=HYPERLINK(\"x\")"), Figures().as_dict("@crew"), Figures().as_dict("crew-a")]
    report = {"group_by": "branch", "groups": lines, "total": Figures().as_dict(TOTAL)}
    rows = list(csv.reader(io.StringIO(to_csv(report))))
    assert [r[0] for r in rows] == ["branch", "'=HYPERLINK(\"x\")", "'@crew", "crew-a", TOTAL]
    assert rows[1][1:4] == ["0", "0", "0"] and rows[1][5] == ""  # no visits: no contact rate


def test_a_replanned_day_counts_the_visits_it_closed(client, payload):
    body = payload()
    for i, visit in enumerate(body["visits"]):
        visit["pinned_agent"] = "crew-a" if i in (0, 1, 4) else "crew-b"
    assert client.post("/v1/plans?wait=120", json=body).status_code == 201
    _outcome(client, "v0", status="completed", result="refused", met="borrower")
    replanned = client.post(f"/v1/plans/{DAY}/reoptimize?wait=120",
                            json={"now": f"{DAY}T12:00:00+08:00", "completed": ["v0"], "cancelled": ["v1"]})
    assert replanned.status_code == 201, replanned.get_json()
    stops = {s["visit_id"] for r in replanned.get_json()["plan"]["routes"] for s in r["stops"]}
    assert "v0" not in stops and "v1" not in stops
    lines = {line["group"]: line for line in _get(client, "crew").get_json()["groups"]}
    # v0 left the current version as done and still counts for crew-a; cancelled v1 counts no more
    assert (lines["crew-a"]["visits_planned"], lines["crew-a"]["visits_made"], lines["crew-a"]["contacts"]) == (2, 1, 1)
    assert lines["crew-a"]["results"]["refused"] == 1
    left = {u["visit_id"] for u in replanned.get_json()["plan"]["unassigned"]}
    assert left == {"v3"}  # its window (09:30-10:30) has passed at noon: the day as last planned has no v3
    assert lines["crew-b"]["visits_planned"] == 2
