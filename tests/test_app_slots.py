"""Appointment booking (POST /v1/slots/offers, /v1/slots/bookings) and the
mid-day re-plan (POST /v1/plans/<date>/reoptimize), with the real solver."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

import solver

DAY = "2026-12-01"

NEW_VISIT = {
    "id": "new-1",
    "case_id": "CASE-NEW",
    "duration_min": 20,
    "priority": 70,
    "borrower": {"name": "New Borrower", "phone": "13900000000"},
    "addresses": [{"text": "Test road new", "location": {"lat": 31.2280, "lon": 121.4700}}],
}


@pytest.fixture
def plan(client, payload):
    response = client.post("/v1/plans?wait=60", json=payload())
    assert response.status_code == 201, response.get_json()
    return response.get_json()["plan"]


def _slots(plan) -> dict[str, tuple]:
    return {s["visit_id"]: (s["slot"]["start"], s["slot"]["end"]) for r in plan["routes"] for s in r["stops"]}


def _visit(n: int = 1, **extra) -> dict:
    return {**NEW_VISIT, "id": f"new-{n}", **extra}


def test_offers_keep_every_promise_and_a_booking_publishes_a_version(client, plan):
    response = client.post("/v1/slots/offers", json={"date": DAY, "visit": _visit(), "max_offers": 3})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["version"] == 1 and body["visit_id"] == "new-1"
    offers = body["offers"]
    assert 1 <= len(offers) <= 3
    assert [o["score"] for o in offers] == sorted(o["score"] for o in offers)  # best first

    booked = client.post("/v1/slots/bookings", json={"date": DAY, "visit": _visit(), "offer": offers[0], "version": 1})
    assert booked.status_code == 201, booked.get_json()
    booking = booked.get_json()
    assert (booking["version"], booking["previous_version"], booking["agent_id"]) == (2, 1, offers[0]["agent_id"])
    assert dt.datetime.fromisoformat(booking["slot"]["start"]) >= dt.datetime.fromisoformat(offers[0]["start"])
    current = client.get(f"/v1/plans/{DAY}").get_json()
    assert current["version"] == 2 and current["reason"] == "booking"
    new_slots = _slots(current["plan"])
    for visit_id, slot in _slots(plan).items():  # every promise made before is kept
        assert new_slots[visit_id] == slot
    stops = client.get(f"/v1/agents/{booking['agent_id']}/itinerary?date={DAY}").get_json()["stops"]
    assert "new-1" in [s["visit_id"] for s in stops]
    types = [e["type"] for e in client.get("/v1/events").get_json()["events"] if e["data"].get("version") == 2]
    assert types[0] == "plan.published" and "slot.booked" in types and "itinerary.changed" in types

    again = client.post("/v1/slots/offers", json={"date": DAY, "visit": _visit()})
    assert again.status_code == 409 and again.get_json()["error"] == "visit_exists"
    stale = client.post("/v1/slots/bookings", json={"date": DAY, "visit": _visit(2), "offer": offers[0], "version": 1})
    assert stale.status_code == 409 and stale.get_json()["error"] == "plan_changed"


def test_two_racing_bookings_one_wins_the_other_gets_409(app, client, plan, monkeypatch):
    offers = client.post("/v1/slots/offers", json={"date": DAY, "visit": _visit(1)}).get_json()["offers"]
    offers2 = client.post("/v1/slots/offers", json={"date": DAY, "visit": _visit(2)}).get_json()["offers"]
    real_insert = solver.insert_visit
    barrier = threading.Barrier(2, timeout=30)

    def insert_then_wait(*args, **kwargs):
        result = real_insert(*args, **kwargs)
        barrier.wait()  # both bookings have computed from version 1 before either publishes
        return result

    monkeypatch.setattr(solver, "insert_visit", insert_then_wait)
    answers: dict[int, object] = {}

    def book(n: int, offer: dict) -> None:
        answers[n] = app.test_client().post("/v1/slots/bookings",
                                            json={"date": DAY, "visit": _visit(n), "offer": offer})

    threads = [threading.Thread(target=book, args=(1, offers[0])), threading.Thread(target=book, args=(2, offers2[0]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(a.status_code for a in answers.values())
    assert codes == [201, 409], [a.get_json() for a in answers.values()]
    loser = next(a for a in answers.values() if a.status_code == 409)
    assert loser.get_json()["error"] == "plan_changed" and "offers again" in loser.get_json()["message"]
    versions = client.get(f"/v1/plans/{DAY}/versions").get_json()["versions"]
    assert [v["version"] for v in versions] == [1, 2]
    winner = next(a for a in answers.values() if a.status_code == 201).get_json()["visit_id"]
    ids = [s["visit_id"] for r in client.get(f"/v1/plans/{DAY}").get_json()["plan"]["routes"] for s in r["stops"]]
    assert winner in ids and ({"new-1", "new-2"} - {winner}).isdisjoint(ids)


def test_an_offer_that_no_longer_fits_is_409(client, plan):
    offer = client.post("/v1/slots/offers", json={"date": DAY, "visit": _visit()}).get_json()["offers"][0]
    offer["start"], offer["end"] = f"{DAY}T03:00:00+08:00", f"{DAY}T03:30:00+08:00"  # before the shift
    response = client.post("/v1/slots/bookings", json={"date": DAY, "visit": _visit(), "offer": offer})
    assert response.status_code == 409 and response.get_json()["error"] == "slot_unavailable"
    assert client.get(f"/v1/plans/{DAY}").get_json()["version"] == 1


def test_bad_slot_requests(client, plan):
    assert client.post("/v1/slots/offers", json={"date": "2026-12-09", "visit": _visit()}).status_code == 404
    bad = client.post("/v1/slots/offers", json={"date": DAY, "visit": {**_visit(), "skills": ["telepathy"]}})
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "visit.skills"
    missing = client.post("/v1/slots/offers", json={"date": DAY})
    assert missing.status_code == 422 and missing.get_json()["errors"][0]["field"] == "visit"
    offer = client.post("/v1/slots/offers", json={"date": DAY, "visit": _visit()}).get_json()["offers"][0]
    ghost = client.post("/v1/slots/bookings",
                        json={"date": DAY, "visit": _visit(), "offer": {**offer, "agent_id": "crew-z"}})
    assert ghost.status_code == 422 and ghost.get_json()["errors"][0]["field"] == "offer.agent_id"


# --------------------------------------------------------------------------- #
# Re-plan
# --------------------------------------------------------------------------- #
def test_reoptimize_keeps_promises_closes_done_visits_and_tells_changed_crews(client, plan):
    routes = {r["agent_id"]: r["stops"] for r in plan["routes"]}
    done = routes["crew-a"][0]["visit_id"]
    # the crew reported it: it counts as completed without being listed
    assert client.post(f"/v1/visits/{done}/outcome", json={"date": DAY, "status": "completed",
                                                         "result": "paid"}).status_code == 201
    under_way = routes["crew-b"][0]["visit_id"]  # arrived: under way when the re-plan runs
    assert client.post(f"/v1/visits/{under_way}/outcome", json={"date": DAY, "status": "arrived"}).status_code == 201
    later = [s for r in plan["routes"] for s in r["stops"] if s["slot"]["start"] >= f"{DAY}T12:00"]
    cancelled = later[-1]["visit_id"]
    state = {
        "now": f"{DAY}T11:30:00+08:00",
        "cancelled": [cancelled],
        "added": [_visit(9, addresses=[{"location": {"lat": 31.2320, "lon": 121.4700},
                                        "time_windows": [{"start": "13:00", "end": "17:00"}]}])],
    }
    response = client.post(f"/v1/plans/{DAY}/reoptimize?wait=60", json=state)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["version"] == 2
    new = body["plan"]
    planned = {s["visit_id"]: s for r in new["routes"] for s in r["stops"]}
    assert done not in planned and cancelled not in planned
    assert "new-9" in planned or any(u["visit_id"] == "new-9" for u in new["unassigned"])
    old_slots = _slots(plan)
    for visit_id, stop in planned.items():  # promises kept
        if visit_id in old_slots:
            assert dt.datetime.fromisoformat(stop["start"]) >= dt.datetime.fromisoformat(old_slots[visit_id][0])
            assert dt.datetime.fromisoformat(stop["start"]) <= dt.datetime.fromisoformat(old_slots[visit_id][1])
    current = client.get(f"/v1/plans/{DAY}").get_json()
    assert current["version"] == 2 and current["reason"] == "reoptimize"
    events = [e for e in client.get("/v1/events").get_json()["events"] if e["data"].get("version") == 2]
    assert events[0]["type"] == "plan.published" and events[0]["data"]["reason"] == "reoptimize"
    changed = {e["data"]["agent_id"] for e in events if e["type"] == "itinerary.changed"}
    crew_of_cancelled = next(r["agent_id"] for r in plan["routes"] if any(s["visit_id"] == cancelled for s in r["stops"]))
    assert crew_of_cancelled in changed
    # outcomes can still be recorded for the visits the re-plan closed
    assert under_way not in planned
    finish = client.post(f"/v1/visits/{under_way}/outcome", json={"date": DAY, "status": "completed",
                                                               "result": "plan_agreed"})
    assert finish.status_code == 201 and finish.get_json()["agent_id"] == "crew-b"
    assert client.post(f"/v1/visits/{done}/outcome", json={"date": DAY, "status": "arrived"}).status_code == 409
    job = client.get(f"/v1/jobs/{body['job_id']}").get_json()
    assert job["kind"] == "reoptimize" and job["status"] == "succeeded"


def test_reoptimize_refuses_unknown_ids_naming_the_field(client, plan):
    for state, field in (
        ({"now": f"{DAY}T11:00:00+08:00", "completed": ["nope"]}, "completed.0"),
        ({"now": f"{DAY}T11:00:00+08:00", "crews": [{"agent_id": "crew-z"}]}, "crews.0.agent_id"),
        ({"now": f"{DAY}T11:00:00+08:00", "added": [{**NEW_VISIT, "id": "v1"}]}, "added.0.id"),
        ({"now": "2026-12-05T11:00:00+08:00"}, "now"),
        ({"now": "2026-12-01T11:00:00"}, "now"),
    ):
        response = client.post(f"/v1/plans/{DAY}/reoptimize", json=state)
        assert response.status_code == 422, (state, response.get_json())
        assert field in [e["field"] for e in response.get_json()["errors"]]
    assert client.post("/v1/plans/2026-12-09/reoptimize", json={"now": "2026-12-09T11:00:00+08:00"}).status_code == 404
