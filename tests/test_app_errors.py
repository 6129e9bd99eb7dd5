"""Bad requests get JSON errors naming the field; nothing answers HTML."""

from __future__ import annotations

import logging

import pytest


def _errors(response) -> dict[str, str]:
    assert response.status_code == 422, response.get_json()
    body = response.get_json()
    assert body["error"] == "validation_error"
    return {e["field"]: e["message"] for e in body["errors"]}


def test_window_ending_before_it_starts_names_the_window(client, payload):
    body = payload()
    body["visits"][0]["addresses"][0]["time_windows"][0] = {"start": "11:00", "end": "09:00"}
    errors = _errors(client.post("/v1/plans", json=body))
    assert list(errors) == ["visits.0.addresses.0.time_windows.0"]
    assert "before" in errors["visits.0.addresses.0.time_windows.0"]


def test_duplicate_visit_ids_and_unknown_skills_are_split_per_field(client, payload):
    body = payload()
    body["visits"][1]["id"] = "v0"
    body["visits"][3]["skills"] = ["lang:zh", "juggling"]
    errors = _errors(client.post("/v1/plans", json=body))
    assert set(errors) == {"visits", "visits.3.skills"}
    assert "duplicate" in errors["visits"] and "'v0'" in errors["visits"]
    assert "juggling" in errors["visits.3.skills"] and "lang:zh" not in errors["visits.3.skills"]


def test_empty_agents_names_agents(client, payload):
    body = payload()
    body["agents"] = []
    assert list(_errors(client.post("/v1/plans", json=body))) == ["agents"]


def test_unknown_skill_names_the_visit(client, payload):
    body = payload()
    body["visits"][2]["skills"] = ["telepathy"]
    errors = _errors(client.post("/v1/plans", json=body))
    assert list(errors) == ["visits.2.skills"]
    assert "telepathy" in errors["visits.2.skills"]


def test_a_bad_time_is_one_error_for_the_field(client, payload):
    body = payload()
    body["agents"][1]["shift"]["end"] = "25:00"
    errors = _errors(client.post("/v1/plans", json=body))
    assert list(errors) == ["agents.1.shift.end"]


def test_agent_level_messages_name_the_sub_field(client, payload):
    body = payload()
    body["agents"][0]["breaks"] = [{"window": {"start": "08:30", "end": "18:00"}, "duration_min": 480}] * 2
    errors = _errors(client.post("/v1/plans", json=body))
    assert list(errors) == ["agents.0.breaks"]


def test_validation_errors_do_not_echo_the_input(client, payload):
    body = payload()
    body["visits"][0]["borrower"]["phone"] = "x" * 60  # too long: the value must not come back
    response = client.post("/v1/plans", json=body)
    errors = _errors(response)
    assert list(errors) == ["visits.0.borrower.phone"]
    assert "x" * 60 not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        ('{"date": "2026-12-01", ', "application/json"),
        ('{"date": "2026-12-01"}' + "]" * 3, "application/json"),
        ("", "application/json"),
        ("[1, 2]", "application/json"),
        ('{"date": NaN}', "application/json"),
        (b"\xff\xfe", "application/json"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_a_400(client, data, content_type):
    response = client.post("/v1/plans", data=data, content_type=content_type)
    assert response.status_code == 400
    assert response.is_json
    assert response.get_json()["error"] == "invalid_json"


def test_unknown_job_is_a_json_404(client):
    response = client.get("/v1/jobs/does-not-exist")
    assert response.status_code == 404
    assert response.get_json() == {"error": "not_found", "message": "no job 'does-not-exist'"}


def test_unknown_route_and_wrong_method_answer_json(client):
    missing = client.get("/nowhere")
    assert missing.status_code == 404 and missing.get_json()["error"] == "not_found"
    wrong = client.get("/v1/plans")
    assert wrong.status_code == 405 and wrong.get_json()["error"] == "method_not_allowed"
    assert "POST" in wrong.headers["Allow"]


def test_an_unexpected_error_is_a_json_500_without_traceback_or_message_in_the_log(app, monkeypatch, caplog):
    store = app.extensions["doorstep"].store
    secret = "borrower phone 13912345678"

    def broken(job_id):
        raise RuntimeError(secret)

    monkeypatch.setattr(store, "get_job", broken)
    with caplog.at_level(logging.ERROR):
        response = app.test_client().get("/v1/jobs/abc")
    assert response.status_code == 500
    assert response.get_json() == {"error": "internal_error", "message": "internal server error"}
    assert "Traceback" not in response.get_data(as_text=True)
    assert "/v1/jobs/abc" in caplog.text and "RuntimeError" in caplog.text
    assert secret not in caplog.text


def test_a_message_with_a_semicolon_but_no_field_parts_stays_whole(client, payload):
    body = payload()
    body["agents"][0]["shift"]["start"] = "08:30+08:00"
    errors = _errors(client.post("/v1/plans", json=body))
    assert list(errors) == ["agents.0.shift.start"]
    assert errors["agents.0.shift.start"].endswith("give it without an offset")


def test_garbage_on_every_endpoint_is_a_4xx_json_never_a_500(client, payload):
    assert client.post("/v1/plans?wait=60", json=payload()).status_code == 201
    day = "2026-12-01"
    bodies = [None, "[]", "{}", '{"date": "nonsense"}', '{"date": "2026-12-01", "visit": 3}',
              '{"date": "2026-12-01", "status": "completed", "result": "paid", "amount": "lots"}',
              '{"now": "yesterday"}', '{"date": "2026-12-01", "visit": {"id": "x", "addresses": []}}',
              '{"date": "2026-12-01", "visit": {"id": "x", "addresses": [{"text": "x"}]}, "offer": {}}']
    posts = ["/v1/plans", "/v1/plans?wait=-1", f"/v1/plans/{day}/reoptimize", "/v1/plans/x/reoptimize",
             "/v1/visits/v0/outcome", "/v1/visits/%00/outcome", "/v1/slots/offers", "/v1/slots/bookings"]
    for path in posts:
        for body in bodies:
            response = client.post(path, data=body, content_type="application/json")
            assert 400 <= response.status_code < 500, (path, body, response.status_code, response.get_data())
            assert response.is_json and response.get_json()["error"]
    gets = ["/v1/plans/x", f"/v1/plans/{day}?version=-3", "/v1/jobs/%ff", "/v1/agents/x/itinerary?date=2026-02-30",
            f"/v1/agents/crew-a/itinerary?date={day}&format=", "/v1/events?after=-1", "/v1/events?limit=abc",
            "/v1/followups?date=", "/v1/followups?date=2026-99-01"]
    for path in gets:
        response = client.get(path)
        assert 400 <= response.status_code < 500, (path, response.status_code)
        assert response.is_json


def test_a_key_reused_in_a_race_the_store_caught_is_a_409(make_app):
    # two requests with one Idempotency-Key race past the views' check: the
    # store keeps the first and raises IdempotencyMismatch for the second
    from app.store.base import IdempotencyMismatch

    app = make_app()

    def racing() -> None:
        raise IdempotencyMismatch("k-1")

    app.add_url_rule("/v1/_test/race", "race", racing, methods=["POST"])
    response = app.test_client().post("/v1/_test/race", json={})
    assert response.status_code == 409
    assert response.get_json()["error"] == "idempotency_key_reused"
