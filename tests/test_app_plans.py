"""POST /v1/plans, GET /v1/jobs/<id>, GET /v1/plans/<date>[/versions]: real
HTTP through Flask's test client, real SQLite, real solver runs."""

from __future__ import annotations

import datetime as dt
import logging
import time

import pytest

DAY = "2026-12-01"  # the date of the conftest payload

WAIT = 60  # generous: a solve takes about its 1 s time limit


def _at(day: str, hhmm: str) -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T{hhmm}:00+08:00")


def _publish(client, body) -> dict:
    response = client.post(f"/v1/plans?wait={WAIT}", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _poll(client, job_id: str, timeout_s: float = WAIT) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        response = client.get(f"/v1/jobs/{job_id}")
        assert response.status_code == 200
        job = response.get_json()
        if job["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def test_post_with_wait_returns_a_plan_that_keeps_every_window(client, payload):
    body = payload()
    result = _publish(client, body)
    assert result["status"] == "succeeded" and result["version"] == 1
    plan = result["plan"]
    assert plan["date"] == DAY
    visits = {v["id"]: v for v in body["visits"]}
    planned = [stop for route in plan["routes"] for stop in route["stops"]]
    assert sorted(s["visit_id"] for s in planned) == sorted(visits)  # an easy day: everything fits
    assert plan["unassigned"] == []
    for route in plan["routes"]:
        shift = next(a["shift"] for a in body["agents"] if a["id"] == route["agent_id"])
        previous_end = dt.datetime.fromisoformat(route["start"])
        assert previous_end >= _at(DAY, shift["start"])
        for stop in route["stops"]:
            visit = visits[stop["visit_id"]]
            window = visit["addresses"][stop["address_index"]]["time_windows"][0]
            arrival, start, end = (dt.datetime.fromisoformat(stop[k]) for k in ("arrival", "start", "end"))
            assert previous_end + dt.timedelta(seconds=stop["travel_s"]) <= arrival
            assert arrival <= start
            assert _at(DAY, window["start"]) <= start <= _at(DAY, window["end"])
            assert end - start == dt.timedelta(minutes=visit["duration_min"])
            previous_end = end
        assert dt.datetime.fromisoformat(route["end"]) <= _at(DAY, shift["end"])


def test_post_without_wait_returns_202_and_the_job_can_be_polled(client, payload):
    response = client.post("/v1/plans", json=payload())
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] in ("queued", "running")
    assert body["links"]["job"] == f"/v1/jobs/{body['job_id']}"
    assert response.headers["Location"] == body["links"]["job"]

    job = _poll(client, body["job_id"])
    assert job["status"] == "succeeded", job
    assert job["version"] == 1 and job["error"] is None
    assert (job["progress"]["stage"], job["progress"]["fraction"]) == ("done", 1.0)
    assert job["progress"]["best_cost"] is not None  # the solver's objective
    assert (job["kind"], job["runner"]) == ("plan", "process")  # embedded: a child process per job
    assert (job["visits"], job["agents"]) == (6, 2)
    assert job["links"]["plan"] == f"/v1/plans/{DAY}?version=1"
    plan = client.get(job["links"]["plan"])
    assert plan.status_code == 200 and plan.get_json()["version"] == 1


def test_wait_shorter_than_the_solve_gives_the_202_body(client, payload):
    body = payload()
    body["options"].update(time_limit_s=2, max_iterations=None)  # searches its whole time limit
    response = client.post("/v1/plans?wait=0.2", json=body)
    assert response.status_code == 202
    assert response.get_json()["status"] in ("queued", "running")
    assert _poll(client, response.get_json()["job_id"])["status"] == "succeeded"


@pytest.mark.parametrize("wait", ["0", "-1", "301", "abc", "nan", ""])
def test_bad_wait_is_a_400_naming_wait(client, payload, wait):
    response = client.post(f"/v1/plans?wait={wait}", json=payload())
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "bad_request"
    assert [e["field"] for e in body["errors"]] == ["wait"]


def test_publishing_twice_keeps_both_versions_and_the_second_is_current(client, payload):
    first = _publish(client, payload())
    second_body = payload()
    second_body["visits"] = second_body["visits"][:4]
    second = _publish(client, second_body)
    assert (first["version"], second["version"]) == (1, 2)

    versions = client.get(f"/v1/plans/{DAY}/versions").get_json()
    assert versions["current_version"] == 2
    assert [v["version"] for v in versions["versions"]] == [1, 2]
    assert [v["job_id"] for v in versions["versions"]] == [first["job_id"], second["job_id"]]
    assert [v["summary"]["visits_total"] for v in versions["versions"]] == [6, 4]

    current = client.get(f"/v1/plans/{DAY}").get_json()
    assert current["version"] == 2 and current["current"] is True
    assert current["plan"] == second["plan"]
    old = client.get(f"/v1/plans/{DAY}?version=1").get_json()
    assert old["version"] == 1 and old["current"] is False and old["current_version"] == 2
    assert old["plan"] == first["plan"]

    assert client.get(f"/v1/plans/{DAY}?version=3").status_code == 404
    bad = client.get(f"/v1/plans/{DAY}?version=zero")
    assert bad.status_code == 400 and bad.get_json()["errors"][0]["field"] == "version"


@pytest.mark.parametrize("path", ["/v1/plans/2026-13-01", "/v1/plans/tomorrow", "/v1/plans/20261201/versions"])
def test_bad_date_is_a_400_naming_date(client, path):
    response = client.get(path)
    assert response.status_code == 400
    assert response.get_json()["errors"][0]["field"] == "date"


def test_no_plan_for_a_date_is_a_json_404(client):
    for path in (f"/v1/plans/{DAY}", f"/v1/plans/{DAY}/versions"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.get_json()["error"] == "not_found"


def test_a_failed_solve_fails_the_job_and_keeps_the_previous_plan_current(make_app, client, payload, caplog):
    from tests.faults import EXPLOSION

    first = _publish(client, payload())
    visit = payload()["visits"][1]
    assert visit["borrower"]["name"] in EXPLOSION and visit["borrower"]["phone"] in EXPLOSION
    # the same data, served by an app whose job processes' solver raises (tests/faults.py)
    broken = make_app(TRAVEL="tests.faults:exploding_solver").test_client()
    with caplog.at_level(logging.INFO):
        response = broken.post(f"/v1/plans?wait={WAIT}", json=payload())
    assert response.status_code == 200  # finished in time, without a plan
    failed = response.get_json()
    assert failed["status"] == "failed" and failed["version"] is None
    assert "engine exploded" in failed["error"] and failed["error_code"] == "job_error"

    job = client.get(f"/v1/jobs/{failed['job_id']}").get_json()
    assert job["status"] == "failed" and job["error"].startswith("RuntimeError: engine exploded")
    assert "plan" not in job["links"]

    current = client.get(f"/v1/plans/{DAY}").get_json()
    assert current["version"] == 1 and current["plan"] == first["plan"]
    assert [v["version"] for v in client.get(f"/v1/plans/{DAY}/versions").get_json()["versions"]] == [1]
    # the failure is logged with the job id, never with the message (it may quote personal data)
    logged = caplog.text
    assert failed["job_id"] in logged
    assert visit["borrower"]["phone"] not in logged and visit["borrower"]["name"] not in logged


def test_the_checker_keeps_an_invalid_plan_from_being_published(make_app, payload):
    # job processes whose solver reverses a route (tests/faults.py): the checker must refuse the plan
    client = make_app(TRAVEL="tests.faults:reversing_solver").test_client()
    response = client.post(f"/v1/plans?wait={WAIT}", json=payload())
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "failed" and body["error"].startswith("PlanInvalid")
    assert client.get(f"/v1/plans/{DAY}").status_code == 404
