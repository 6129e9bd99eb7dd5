"""Contract fuzzing: schemathesis against the served OpenAPI document.

The document is read from ``GET /v1/openapi.json`` of a real app (SQLite
store, straight-line travel, the real solver) and every operation is called
through WSGI with a dispatcher token: examples generated from the schema
(valid and invalid ones, a bounded number per operation, deterministic, no
shrinking), then a curated pass of requests that succeed (a plan, its
versions, the itinerary in its three representations, offers, a booking, an
outcome, follow-ups, events). Every answer must pass schemathesis's checks:
not a server error, a documented status, a documented content type, a body
valid against the documented schema. Plans stay cheap: the solver's time
limit, its iterations and ``?wait`` are cut down in every generated request.
"""

from __future__ import annotations

import copy
import functools
import os
import time
from collections import Counter
from typing import Any

import pytest

from tests.conftest import _PAYLOAD

# schemathesis and Hypothesis are imported by the test, not here: every xdist worker imports every test
# module to collect it, and these two cost each 0.3 s of CPU, three workers of four for nothing.


@functools.cache
def checks() -> list[Any]:
    """schemathesis's checks every answer must pass."""
    from schemathesis.checks import (
        content_type_conformance,
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
    )

    return [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


#: Generated examples per operation (valid and invalid ones together);
#: ``DOORSTEP_FUZZ_EXAMPLES=200`` digs deeper locally. The fuzz is bounded by its example
#: count, never by a timed assertion; it prints how long it took.
MAX_EXAMPLES = int(os.environ.get("DOORSTEP_FUZZ_EXAMPLES", "15"))
#: Operations whose body carries a list of visits get a third of that: Hypothesis takes 0.15-0.5 s of
#: CPU to draw one of their bodies (nested lists, up to 25 kB of JSON) against ~0.02 s for the other
#: operations; at 15 examples these three were 8.5 of the fuzz's 14 s. Their fields are fuzzed one by
#: one by the other operations that share the schemas (a visit in offers and bookings) and by
#: ``tests/test_app_hardening.py``; ``DOORSTEP_FUZZ_EXAMPLES`` raises both counts.
VISIT_LIST_BODIES = {"POST /v1/plans", "POST /v1/screening", "POST /v1/plans/{date}/reoptimize"}
DAY = "2026-12-01"


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Any:
    """(app, dispatcher token, schema): one app for the module, with a plan of DAY."""
    schemathesis = pytest.importorskip("schemathesis")
    from app import create_app
    from app.auth import create_token
    from solver.travel import StraightLineTravel

    app = create_app({"DATA_DIR": str(tmp_path_factory.mktemp("fuzz") / "data"), "TRAVEL": StraightLineTravel()})
    token = create_token(app.extensions["doorstep"].store, "dispatcher")
    client = app.test_client()
    planned = client.post("/v1/plans?wait=60", json=_PAYLOAD, headers={"Authorization": f"Bearer {token}"})
    assert planned.status_code == 201, planned.get_json()
    schema = schemathesis.openapi.from_wsgi("/v1/openapi.json", app)
    yield app, token, schema
    app.extensions["doorstep"].close()


#: Ids of the planned day, put in every other generated request so that the fuzz reaches past 404s.
_KNOWN = {"date": DAY, "agent_id": "crew-a", "visit_id": "v0"}


def _aim(case: Any, n: int) -> None:
    """Every other example: the path's ids and the query's date name the planned day."""
    if n % 2:
        return
    for name, value in _KNOWN.items():
        if isinstance(case.path_parameters, dict) and name in case.path_parameters:
            case.path_parameters[name] = value
        if isinstance(case.query, dict) and name in case.query:
            case.query[name] = value


def _cheap(case: Any, token: str) -> None:
    """The dispatcher token, a short ?wait, and a tiny solver time limit."""
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
    if isinstance(case.query, dict) and isinstance(case.query.get("wait"), (int, float)):
        case.query["wait"] = min(case.query["wait"], 0.2) if case.query["wait"] > 0 else case.query["wait"]
    options = case.body.get("options") if isinstance(case.body, dict) else None
    if isinstance(options, dict) and isinstance(options.get("time_limit_s"), (int, float)):
        options["time_limit_s"] = 0.1
        options["max_iterations"] = 10


def _check(case: Any, failures: list[str], statuses: Counter[tuple[str, int]]) -> None:
    response = case.call()
    statuses[(case.operation.label, response.status_code)] += 1
    try:
        case.validate_response(response, checks=checks())
    except Exception as exc:  # a failed check (a FailureGroup): collect, report all
        failures.append(f"{case.operation.label} -> {response.status_code}: {str(exc)[:1500]}")


def test_every_answer_conforms_to_the_document(served):
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis import GenerationMode

    app, token, schema = served
    started = time.perf_counter()
    failures: list[str] = []
    statuses: Counter[tuple[str, int]] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    assert {operation.label for operation in operations} >= VISIT_LIST_BODIES

    for operation in operations:
        strategy = (operation.as_strategy(generation_mode=GenerationMode.POSITIVE)
                    | operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))

        examples = iter(range(10**6))

        examples_here = max(1, MAX_EXAMPLES // 3) if operation.label in VISIT_LIST_BODIES else MAX_EXAMPLES

        @settings(max_examples=examples_here, derandomize=True, deadline=None, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def fuzz(case: Any) -> None:
            _aim(case, next(examples))  # noqa: B023 - called right here, within this operation's loop turn
            _cheap(case, token)
            _check(case, failures, statuses)

        fuzz()

    # requests that succeed, so that 2xx bodies are checked against their schemas too
    visit = {"id": "fuzz-new", "duration_min": 20,
             "addresses": [{"text": "Fuzz road", "location": {"lat": 31.228, "lon": 121.47}}]}
    find = {op.label: op for op in operations}
    curated = [
        ("GET /v1/plans/{date}", {"path_parameters": {"date": DAY}}),
        ("GET /v1/plans/{date}", {"path_parameters": {"date": DAY}, "query": {"version": 1}}),
        ("GET /v1/plans/{date}/versions", {"path_parameters": {"date": DAY}}),
        ("GET /v1/agents/{agent_id}/itinerary", {"path_parameters": {"agent_id": "crew-a"}, "query": {"date": DAY}}),
        ("GET /v1/agents/{agent_id}/itinerary",
         {"path_parameters": {"agent_id": "crew-a"}, "query": {"date": DAY, "format": "geojson"}}),
        ("GET /v1/agents/{agent_id}/itinerary",
         {"path_parameters": {"agent_id": "crew-b"}, "query": {"date": DAY, "format": "ics"}}),
        ("GET /v1/agents/{agent_id}/itinerary",
         {"path_parameters": {"agent_id": "crew-a"}, "query": {"date": DAY}, "headers": {"Accept": "image/png"}}),
        ("POST /v1/slots/offers", {"body": {"date": DAY, "visit": visit, "max_offers": 2}, "media_type": "application/json"}),
        ("POST /v1/visits/{visit_id}/outcome", {"path_parameters": {"visit_id": "v3"}, "media_type": "application/json",
                                               "body": {"date": DAY, "status": "arrived"}}),
        ("GET /v1/followups", {"query": {"date": DAY}}),
        ("GET /v1/events", {"query": {"limit": 5}}),
        ("POST /v1/plans", {"query": {"wait": 30}, "body": copy.deepcopy(_PAYLOAD), "media_type": "application/json"}),
        # the case endpoints (issue 15): screening, a payment, a promise check, the case's history
        ("POST /v1/screening", {"media_type": "application/json", "body": {"date": DAY, "visits": [
            {**visit, "case_id": "FUZZ-1", "case": {"days_past_due": 90, "overdue_amount": 50000, "currency": "CNY"}},
            {**visit, "id": "fuzz-2", "case": {"days_past_due": 3, "risk_flags": ["dispute"]}}]}}),
        ("POST /v1/payments", {"media_type": "application/json", "headers": {"Idempotency-Key": "fuzz-pay"},
                               "body": {"payment_id": "FP-1", "case_id": "FUZZ-1", "amount": 100,
                                        "currency": "CNY", "received_on": DAY}}),
        ("POST /v1/promises/check", {"media_type": "application/json", "body": {"date": DAY}}),
        ("GET /v1/cases/{case_id}/history", {"path_parameters": {"case_id": "FUZZ-1"}}),
        # reports over the planned day, as JSON and as CSV
        ("GET /v1/reports", {"query": {"from": DAY, "to": DAY, "group_by": "bucket"}}),
        ("GET /v1/reports", {"query": {"from": DAY, "to": DAY, "format": "csv"}}),
    ]
    for label, parts in curated:
        case = find[label].Case(**parts)
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}  # ?wait kept: the plan is published
        _check(case, failures, statuses)
    # a job the fuzz queued may still publish a version of the day: offer and book again then (409 plan_changed)
    for _ in range(5):
        offers = app.test_client().post("/v1/slots/offers", json={"date": DAY, "visit": visit},
                                        headers={"Authorization": f"Bearer {token}"}).get_json()
        booking = find["POST /v1/slots/bookings"].Case(
            body={"date": DAY, "visit": visit, "offer": offers["offers"][0], "version": offers["version"]},
            media_type="application/json")
        _cheap(booking, token)
        _check(booking, failures, statuses)
        if statuses[("POST /v1/slots/bookings", 201)]:
            break
        time.sleep(0.5)
    events = find["GET /v1/events"].Case(query={})
    _cheap(events, token)
    _check(events, failures, statuses)

    elapsed = time.perf_counter() - started
    print(f"contract fuzz: {sum(statuses.values())} requests in {elapsed:.1f} s; statuses {dict(statuses)}")
    assert not failures, f"{len(failures)} answer(s) outside the document:\n" + "\n\n".join(failures[:10])
    assert not [key for key in statuses if key[1] >= 500], statuses
    successes = {label for (label, status), n in statuses.items() if status < 300}
    assert {"GET /v1/plans/{date}", "GET /v1/agents/{agent_id}/itinerary", "POST /v1/slots/offers",
            "POST /v1/slots/bookings", "POST /v1/visits/{visit_id}/outcome", "POST /v1/plans"} <= successes
    assert {"POST /v1/screening", "POST /v1/payments", "POST /v1/promises/check",
            "GET /v1/cases/{case_id}/history"} <= successes
