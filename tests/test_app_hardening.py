"""Hostile and careless input (issue 11): every bad request answers 4xx with a
JSON error naming the field and the reason, or works; nothing answers 500,
HTML, or no response at all, and nothing reaches OR-Tools that aborts it."""

from __future__ import annotations

import json
from multiprocessing.connection import Connection
from urllib.parse import quote

import pytest

from tests.forked import run_forked

DAY = "2026-12-01"

#: The request of the issue: a crew whose shift is two days before the plan date.
OFF_DAY_SHIFT = {
    "date": DAY,
    "agents": [{"id": "c1", "shift": {"start": "2026-11-29T08:00:00+08:00", "end": "2026-11-29T17:00:00+08:00"},
                "start": {"location": {"lat": 31.23, "lon": 121.47}}}],
    "visits": [{"id": "v1", "duration_min": 30, "addresses": [{"location": {"lat": 31.231, "lon": 121.471}}]}],
    "options": {"time_limit_s": 0.5},
}


def _error(response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.get_data()[:500])
    assert response.is_json, response.content_type
    body = response.get_json()
    assert body["error"] and body["message"]
    return body


def _fields(response) -> dict[str, str]:
    body = _error(response, 422)
    assert body["error"] == "validation_error"
    return {e["field"]: e["message"] for e in body["errors"]}


@pytest.fixture
def planned(client, payload):
    response = client.post("/v1/plans?wait=60", json=payload())
    assert response.status_code == 201, response.get_json()
    return response.get_json()


# --------------------------------------------------------------------------- #
# The probes of the issue
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("redis", [False, True])
def test_a_version_beyond_64_bits_is_a_404_naming_the_version(make_app, payload, redis):
    client = make_app(redis=redis).test_client()
    assert client.post("/v1/plans?wait=60", json=payload()).status_code == 201
    for huge in (2**53 - 1, 2**63 - 1, 2**63, 10**19):
        body = _error(client.get(f"/v1/plans/{DAY}?version={huge}"), 404)
        assert "version" in body["message"]
    body = _error(client.get(f"/v1/plans/{DAY}?version=99999999999999999999"), 404)
    assert "version" in body["message"] and "does not exist" in body["message"]
    body = _error(client.get(f"/v1/plans/{DAY}?version=" + "9" * 5000), 400)
    assert body["errors"][0]["field"] == "version" and "not an integer" in body["errors"][0]["message"]


def test_a_long_timezone_is_a_422_naming_timezone(client, payload):
    body = payload()
    body["timezone"] = "A" * 256
    errors = _fields(client.post("/v1/plans", json=body))
    assert list(errors) == ["timezone"] and "64 characters" in errors["timezone"]
    body["timezone"] = "Mars/Olympus_Mons"
    assert "unknown time zone" in _fields(client.post("/v1/plans", json=body))["timezone"]


def test_a_deeply_nested_body_is_a_400(client, payload):
    deep = '{"date": "2026-12-01", "options": ' + "[" * 5000 + "]" * 5000 + "}"
    body = _error(client.post("/v1/plans", data=deep, content_type="application/json"), 400)
    assert body["error"] == "invalid_json" and "nested more than 32 levels" in body["message"]
    # brackets inside strings do not count, and a normal problem is far from the limit
    normal = payload()
    normal["visits"][0]["purpose"] = "[{" * 90
    assert client.post("/v1/plans", json=normal).status_code == 202


def test_ics_works_for_a_chinese_crew_id(client, payload):
    body = payload()
    body["agents"][0]["id"] = "外访一组"
    assert client.post("/v1/plans?wait=60", json=body).status_code == 201
    response = client.get(f"/v1/agents/{quote('外访一组')}/itinerary?date={DAY}&format=ics")
    assert response.status_code == 200 and response.mimetype == "text/calendar"
    disposition = response.headers["Content-Disposition"]
    assert disposition.isascii()
    assert "filename*=UTF-8''doorstep-" + quote("外访一组") + "-2026-12-01.ics" in disposition
    assert 'filename="doorstep-_-2026-12-01.ics"' in disposition  # the ASCII fallback
    assert "外访一组" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("crew_id", "reason"),
    [
        ("crew\na", "control characters"),
        ("north/east", "'/'"),
        (" crew-a", "whitespace"),
        ("c" * 129, "at most 128 characters"),
        ("crew\u2028a", "control characters"),
    ],
)
def test_crew_ids_are_validated(client, payload, crew_id, reason):
    body = payload()
    body["agents"][0]["id"] = crew_id
    errors = _fields(client.post("/v1/plans", json=body))
    assert list(errors) == ["agents.0.id"] and reason in errors["agents.0.id"]


def test_visit_case_skill_and_member_ids_are_validated(client, payload):
    body = payload()
    body["visits"][0]["id"] = "v/0"
    body["visits"][1]["case_id"] = "CASE\x00"
    body["visits"][2]["skills"] = ["lang:zh "]
    body["agents"][1]["members"] = ["Agent\nB1"]
    errors = _fields(client.post("/v1/plans", json=body))
    assert set(errors) == {"visits.0.id", "visits.1.case_id", "visits.2.skills.0", "agents.1.members.0"}
    assert "'/'" in errors["visits.0.id"] and "U+0000" in errors["visits.1.case_id"]


def test_a_plan_date_out_of_range_is_a_422_naming_date(client, payload):
    for date in ("0001-01-01", "9999-12-31"):
        body = payload()
        body["date"] = date
        errors = _fields(client.post("/v1/plans?wait=30", json=body))
        assert list(errors) == ["date"] and "between 2000-01-01 and 2100-12-31" in errors["date"]


def test_echoed_input_is_clipped(client, payload):
    body = payload()
    body["visits"][0]["skills"] = ["s" * 120]  # a valid id, but no such skill
    response = client.post("/v1/plans", json=body)
    errors = _fields(response)
    assert "s" * 79 + "…" in errors["visits.0.skills"] and "s" * 81 not in response.get_data(as_text=True)
    body["visits"][0]["skills"] = ["s" * 10_000_000]  # 10 MB
    response = client.post("/v1/plans", json=body)
    assert _fields(response) == {"visits.0.skills.0": "String should have at most 128 characters"}
    assert len(response.get_data()) < 1000
    missing = client.get("/v1/jobs/" + "j" * 5000)
    assert _error(missing, 404)["message"] == "no job '" + "j" * 79 + "…'"


# --------------------------------------------------------------------------- #
# Shifts and windows off the plan's day (OR-Tools aborted the process)
# --------------------------------------------------------------------------- #
def test_a_shift_before_the_plan_date_is_a_422_naming_the_shift_start(client):
    errors = _fields(client.post("/v1/plans?wait=30", json=OFF_DAY_SHIFT))
    assert list(errors) == ["agents.0.shift.start"]
    assert "not on the plan date 2026-12-01" in errors["agents.0.shift.start"]


def _solve(problem: dict, out: Connection) -> None:
    """Validate ``problem`` and solve it with straight-line travel; send what came of it."""
    from pydantic import ValidationError

    from solver import solve
    from solver.model import Problem
    from solver.travel import StraightLineTravel

    try:
        valid = Problem.model_validate(problem)
    except ValidationError as exc:
        out.send({"invalid": [".".join(map(str, e["loc"])) + ": " + e["msg"] for e in exc.errors()]})
    else:
        out.send({"planned": solve(valid, StraightLineTravel()).summary.visits_planned})


def _solve_in_child(problem: dict) -> dict:
    """solver.solve on ``problem`` in a forked child: an OR-Tools abort kills only the child (a fresh
    interpreter did the same, and spent 0.8 s of CPU importing what the fork inherits)."""
    ((answer, code),) = run_forked(_solve, [(problem,)])
    assert code == 0 and answer is not None, f"the solving child ended with {code}"
    return dict(answer)


def test_the_solver_never_sees_a_shift_off_the_plan_date():
    answer = _solve_in_child(OFF_DAY_SHIFT)
    assert answer["invalid"] and "not on the plan date" in answer["invalid"][0]


def test_a_night_shift_may_cross_midnight():
    night = json.loads(json.dumps(OFF_DAY_SHIFT))
    night["agents"][0]["shift"] = {"start": "2026-12-01T20:00:00+08:00", "end": "2026-12-02T05:00:00+08:00"}
    night["visits"][0]["time_windows"] = [{"start": "2026-12-02T01:00:00+08:00", "end": "2026-12-02T03:00:00+08:00"}]
    # about crossing midnight, not about rules (cn-cba-2026, the default, forbids visits at 01:00)
    night.setdefault("options", {})["rule_set"] = "none"
    assert _solve_in_child(night) == {"planned": 1}


@pytest.mark.parametrize(
    ("where", "field"),
    [
        (("agents", 0, "shift"), "agents.0.shift.end"),
        (("visits", 0, "appointment"), "visits.0.appointment.start"),
        (("visits", 0, "time_windows"), "visits.0.time_windows.0.start"),
        (("visits", 0, "addresses", 0, "time_windows"), "visits.0.addresses.0.time_windows.0.start"),
        (("agents", 0, "breaks"), "agents.0.breaks.0.window.start"),
    ],
)
def test_datetimes_off_the_plan_day_name_their_field(client, where, field):
    body = json.loads(json.dumps(OFF_DAY_SHIFT))
    body["agents"][0]["shift"] = {"start": "2026-12-01T08:00:00+08:00", "end": "2026-12-01T17:00:00+08:00"}
    far = {"start": "2026-12-05T08:00:00+08:00", "end": "2026-12-05T09:00:00+08:00"}
    target = body
    for key in where[:-1]:
        target = target[key]
    if where[-1] == "shift":
        target["shift"]["end"] = far["end"]
    elif where[-1] == "appointment":
        target["appointment"] = far
    elif where[-1] == "breaks":
        target["breaks"] = [{"window": far, "duration_min": 30}]
    else:
        target[where[-1]] = [far]
    errors = _fields(client.post("/v1/plans", json=body))
    assert field in errors and "not within the plan's day" in errors[field], errors


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("agents", 0, "max_work_min"), 10**20, "agents.0.max_work_min"),
        (("agents", 0, "max_visits"), 10**20, "agents.0.max_visits"),
        (("agents", 0, "capacity"), 10**20, "agents.0.capacity"),
        (("visits", 0, "load"), 10**20, "visits.0.load"),
        (("options", "seed"), 10**20, "options.seed"),
        (("options", "time_limit_s"), 1e9, "options.time_limit_s"),
        (("options", "snap_max_m"), 1e300, "options.snap_max_m"),
        (("visits", 0, "duration_min"), -5, "visits.0.duration_min"),
    ],
)
def test_numbers_that_overflow_the_solver_are_422(client, payload, path, value, field):
    body = payload()
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert field in _fields(client.post("/v1/plans", json=body))


# --------------------------------------------------------------------------- #
# Accept
# --------------------------------------------------------------------------- #
def test_accept_is_honoured(client, planned):
    body = _error(client.get(f"/v1/plans/{DAY}", headers={"Accept": "image/png"}), 406)
    assert body["error"] == "not_acceptable" and body["errors"] == [
        {"field": "Accept", "message": "available: application/json"}]
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
    for accept in (None, "", "*/*", "application/*", "application/json", browser):
        headers = {} if accept is None else {"Accept": accept}
        response = client.get(f"/v1/plans/{DAY}", headers=headers)
        assert response.status_code == 200 and response.get_json()["version"] == 1, accept
    assert client.get("/web/dispatcher", headers={"Accept": browser}).status_code == 200
    assert client.get("/v1/docs", headers={"Accept": browser}).mimetype == "text/html"


def test_the_itinerary_negotiates_json_calendar_and_geojson(client, planned):
    url = f"/v1/agents/crew-a/itinerary?date={DAY}"
    assert client.get(url).get_json()["agent_id"] == "crew-a"
    ics = client.get(url, headers={"Accept": "text/calendar"})
    assert ics.mimetype == "text/calendar" and ics.get_data(as_text=True).startswith("BEGIN:VCALENDAR")
    geo = client.get(url, headers={"Accept": "application/geo+json"})
    assert geo.mimetype == "application/geo+json" and geo.get_json()["type"] == "FeatureCollection"
    assert client.get(url + "&format=geojson").mimetype == "application/geo+json"
    assert client.get(url + "&format=geojson", headers={"Accept": "application/json"}).status_code == 200
    body = _error(client.get(url + "&format=ics", headers={"Accept": "application/json"}), 406)
    assert "text/calendar" in body["message"]
    body = _error(client.get(url, headers={"Accept": "image/png"}), 406)
    assert body["errors"][0]["message"] == "available: application/json, text/calendar, application/geo+json"


# --------------------------------------------------------------------------- #
# What an attacker or a careless client sends
# --------------------------------------------------------------------------- #
def test_careless_bodies(client, payload):
    body = _error(client.post("/v1/plans", data=json.dumps(payload()), content_type="text/plain"), 415)
    assert body["error"] == "unsupported_media_type" and "application/json" in body["message"]
    assert client.post("/v1/plans", data=json.dumps(payload()), content_type="application/problem+json").status_code == 202
    huge = '{"date": "2026-12-01", "options": {"seed": 1' + "0" * 5000 + "}}"
    assert "number too large" in _error(client.post("/v1/plans", data=huge, content_type="application/json"),
                                        400)["message"]
    for constant in ("NaN", "Infinity", "-Infinity", "1e400"):
        text = '{"date": "2026-12-01", "options": {"time_limit_s": ' + constant + "}}"
        assert _error(client.post("/v1/plans", data=text, content_type="application/json"), 400)["error"] == \
            "invalid_json"
    duplicate = '{"date": "2026-12-01", "date": "nonsense"}'  # the last key wins, as in any JSON parser
    assert "date" in _fields(client.post("/v1/plans", data=duplicate, content_type="application/json"))


@pytest.mark.parametrize("wait", ["-1", "abc", "1e309", "nan", "0", "301"])
def test_bad_wait_values_are_400_naming_wait(client, payload, wait):
    body = _error(client.post(f"/v1/plans?wait={wait}", json=payload()), 400)
    assert body["errors"][0]["field"] == "wait"


def test_odd_paths_and_methods(client, planned):
    assert _error(client.get("/v1/jobs/%00"), 404)["error"] == "not_found"
    assert _error(client.get("/v1/plans/" + "x" * 100_000), 400)["errors"][0]["field"] == "date"
    assert _error(client.get(f"/v1/agents/{'a' * 100_000}/itinerary?date={DAY}"), 404)["error"] == "not_found"
    wrong = _error(client.patch(f"/v1/plans/{DAY}"), 405)
    assert wrong["error"] == "method_not_allowed"
    options = client.options(f"/v1/plans/{DAY}")
    assert options.status_code == 204 and "GET" in options.headers["Allow"] and not options.get_data()
    head = client.head(f"/v1/plans/{DAY}")
    assert head.status_code == 200 and head.mimetype == "application/json" and not head.get_data()


# --------------------------------------------------------------------------- #
# Found by probing: dates that overflowed after validation, new visits that
# failed in the job instead of the request
# --------------------------------------------------------------------------- #
def test_outcome_dates_out_of_range_are_422(client, planned):
    promise = {"date": DAY, "status": "completed", "result": "promise_to_pay", "amount": 5, "promised_date": "9999-12-31"}
    assert "between 2000-01-01 and 2100-12-31" in _fields(client.post("/v1/visits/v0/outcome", json=promise))[
        "promised_date"]
    for at in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
        errors = _fields(client.post("/v1/visits/v1/outcome", json={"date": DAY, "status": "arrived", "at": at}))
        assert list(errors) == ["at"]


def test_reoptimize_refuses_a_now_out_of_range_and_added_visits_off_the_day(client, planned):
    errors = _fields(client.post(f"/v1/plans/{DAY}/reoptimize", json={"now": "0001-01-01T00:00:00+14:00"}))
    assert list(errors) == ["now"]
    far = {"start": "2126-11-01T08:00:00+08:00", "end": "2126-11-01T09:00:00+08:00"}
    added = [{"id": "n1", "appointment": far, "addresses": [{"location": {"lat": 31.2, "lon": 121.4}}]},
             {"id": "n2", "skills": ["telepathy"], "addresses": [{"location": {"lat": 31.2, "lon": 121.4}}]}]
    response = client.post(f"/v1/plans/{DAY}/reoptimize", json={"now": f"{DAY}T10:00:00+08:00", "added": added})
    errors = _fields(response)  # answered up front; before, a job was queued and failed
    assert "not within the plan's day" in errors["added.0.appointment.start"]
    assert "telepathy" in errors["added.1.skills"]


def test_offers_name_the_new_visit_field(client, planned):
    visit = {"id": "n", "time_windows": [{"start": "2026-11-01T08:00:00+08:00", "end": "2026-11-01T09:00:00+08:00"}],
             "pinned_agent": "crew-z", "addresses": [{"location": {"lat": 31.2, "lon": 121.4}}]}
    errors = _fields(client.post("/v1/slots/offers", json={"date": DAY, "visit": visit}))
    assert set(errors) == {"visit.time_windows.0.start", "visit.time_windows.0.end", "visit.pinned_agent"}
    assert "crew-z" in errors["visit.pinned_agent"]


def test_a_limit_beyond_the_maximum_is_a_400(client):
    body = _error(client.get("/v1/events?limit=" + "9" * 30), 400)
    assert body["errors"] == [{"field": "limit", "message": "must be at most 1000"}]


@pytest.mark.parametrize("redis", [False, True])
def test_an_event_cursor_with_unicode_digits_is_a_400(make_app, redis):
    client = make_app(redis=redis).test_client()
    for after in ("\u00b2", "1\u00b2", "\u0661\u0662", "\u0661-\u0661", "9" * 100):
        body = _error(client.get("/v1/events", query_string={"after": after}), 400)  # was a 500 (found by the fuzz)
        assert body["errors"] == [{"field": "after", "message": "not an event id from this service"}]


def test_a_body_over_the_size_limit_is_a_json_413(make_app, payload):
    client = make_app(MAX_CONTENT_LENGTH=2000).test_client()
    body = payload()
    body["visits"] *= 10
    body = _error(client.post("/v1/plans", json=body), 413)
    assert body["error"] == "request_entity_too_large"


@pytest.mark.parametrize("crew", ["crew\na", 'crew"; x=1', "外访一组", "équipe 1", "🚗"])
def test_the_ics_file_name_header_is_safe_for_any_crew_id(crew):
    """Plans stored before ids were validated may hold any crew id: the header stays ASCII, one line."""
    from app.api.agents import content_disposition

    header = content_disposition(f"doorstep-{crew}-{DAY}.ics")
    assert header.isascii() and "\n" not in header and "\r" not in header
    fallback = header.split('filename="', 1)[1].split('"', 1)[0]
    assert fallback.endswith(f"-{DAY}.ics") and '"' not in fallback
    assert header.endswith("filename*=UTF-8''" + quote(f"doorstep-{crew}-{DAY}.ics", safe=""))
