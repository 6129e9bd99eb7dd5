"""GET /v1/agents/<id>/itinerary?date=: a crew's day from the current plan."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, urlsplit

DAY = "2026-12-01"  # the date of the conftest payload


def _plan(client, body) -> dict:
    response = client.post("/v1/plans?wait=60", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["plan"]


def test_itinerary_lists_the_stops_in_order_with_the_plan_times(client, payload):
    body = payload()
    plan = _plan(client, body)
    visits = {v["id"]: v for v in body["visits"]}
    for route in plan["routes"]:
        response = client.get(f"/v1/agents/{route['agent_id']}/itinerary?date={DAY}")
        assert response.status_code == 200
        it = response.get_json()
        agent = next(a for a in body["agents"] if a["id"] == route["agent_id"])
        assert (it["agent_id"], it["date"], it["version"]) == (route["agent_id"], DAY, 1)
        assert it["members"] == agent["members"]
        assert it["shift"] == {"start": f"{DAY}T08:30:00+08:00", "end": f"{DAY}T18:00:00+08:00"}
        assert [s["visit_id"] for s in it["stops"]] == [s["visit_id"] for s in route["stops"]]
        assert [s["sequence"] for s in it["stops"]] == list(range(1, len(route["stops"]) + 1))
        for item, stop in zip(it["stops"], route["stops"]):
            visit = visits[stop["visit_id"]]
            for key in ("arrival", "start", "end", "earliest_start", "latest_start"):
                assert dt.datetime.fromisoformat(item[key]) == dt.datetime.fromisoformat(stop[key])
            assert item["case_id"] == visit["case_id"]
            assert item["purpose"] == visit["purpose"]
            assert item["borrower"] == visit["borrower"]
            assert item["address"]["text"] == visit["addresses"][0]["text"]
            assert item["address"]["location"]["lat"] == stop["location"]["lat"]
            assert item["travel_min_from_previous"] == round(stop["travel_s"] / 60, 1)
            nav = item["navigation"]
            assert nav["geo"] == f"geo:{stop['location']['lat']:.6f},{stop['location']['lon']:.6f}"
            query = parse_qs(urlsplit(nav["amap"]).query)
            lon, _lat, name = query["to"][0].split(",")
            assert name == visit["addresses"][0]["text"]
            # GCJ-02 is shifted a few hundred metres from WGS-84 in Shanghai
            assert 0.001 < abs(float(lon) - stop["location"]["lon"]) < 0.01
            assert query["mode"] == ["car"]
        totals = it["totals"]
        assert totals["visits"] == len(route["stops"])
        travel_s = sum(s["travel_s"] for s in route["stops"]) + route["end_travel_s"]
        assert totals["travel_min"] == round(travel_s / 60, 1)
        distance_m = sum(s["distance_m"] for s in route["stops"]) + route["end_distance_m"]
        assert totals["distance_km"] == round(distance_m / 1000, 2)


def test_itinerary_follows_the_current_version(client, payload):
    _plan(client, payload())
    second = payload()
    second["visits"] = [v for v in second["visits"] if v["id"] != "v2"]
    _plan(client, second)
    ids = [
        s["visit_id"]
        for agent in ("crew-a", "crew-b")
        for s in client.get(f"/v1/agents/{agent}/itinerary?date={DAY}").get_json()["stops"]
    ]
    assert sorted(ids) == ["v0", "v1", "v3", "v4", "v5"]


def test_itinerary_needs_a_date(client, payload):
    for query in ("", "?date=", "?date=1/12/2026"):
        response = client.get(f"/v1/agents/crew-a/itinerary{query}")
        assert response.status_code == 400
        assert response.get_json()["errors"][0]["field"] == "date"


def test_itinerary_of_an_unknown_agent_or_date_is_a_404(client, payload):
    _plan(client, payload())
    unknown = client.get(f"/v1/agents/crew-z/itinerary?date={DAY}")
    assert unknown.status_code == 404 and "crew-z" in unknown.get_json()["message"]
    other_day = client.get("/v1/agents/crew-a/itinerary?date=2026-12-02")
    assert other_day.status_code == 404


def test_itinerary_as_icalendar_has_one_event_per_stop_with_the_slot(client, payload):
    import icalendar

    body = payload()
    plan = _plan(client, body)
    visits = {v["id"]: v for v in body["visits"]}
    for route in plan["routes"]:
        agent = route["agent_id"]
        by_accept = client.get(f"/v1/agents/{agent}/itinerary?date={DAY}", headers={"Accept": "text/calendar"})
        by_format = client.get(f"/v1/agents/{agent}/itinerary?date={DAY}&format=ics")
        assert by_accept.status_code == 200 and by_accept.mimetype == "text/calendar"
        assert "attachment" in by_accept.headers["Content-Disposition"]
        cal = icalendar.Calendar.from_ical(by_accept.data)
        assert by_format.mimetype == "text/calendar" and by_format.data.count(b"BEGIN:VEVENT") == len(route["stops"])
        events = cal.walk("VEVENT")
        assert len(events) == len(route["stops"])
        assert len({str(e["UID"]) for e in events}) == len(events)
        for event, stop in zip(events, route["stops"]):
            visit = visits[stop["visit_id"]]
            assert event.decoded("dtstart") == dt.datetime.fromisoformat(stop["slot"]["start"])
            assert event.decoded("dtend") == dt.datetime.fromisoformat(stop["slot"]["end"])
            assert str(event["LOCATION"]) == visit["addresses"][0]["text"]
            geo = event["GEO"]
            assert (round(geo.latitude, 4), round(geo.longitude, 4)) == (
                round(stop["location"]["lat"], 4), round(stop["location"]["lon"], 4))
            description = str(event["DESCRIPTION"])
            assert visit["purpose"] in description and visit["borrower"]["phone"] in description
            assert "amount" not in description.lower() and "¥" not in description
            assert int(event["SEQUENCE"]) == 1
        assert cal.walk("VTIMEZONE")  # phones get the zone


def test_json_is_the_default_and_bad_formats_are_400(client, payload):
    _plan(client, payload())
    browser = client.get(f"/v1/agents/crew-a/itinerary?date={DAY}", headers={"Accept": "text/html,*/*"})
    assert browser.is_json
    bad = client.get(f"/v1/agents/crew-a/itinerary?date={DAY}&format=pdf")
    assert bad.status_code == 400 and bad.get_json()["errors"][0]["field"] == "format"


def test_itinerary_route_as_geojson(client, payload):
    plan = _plan(client, payload())
    route = next(r for r in plan["routes"] if r["stops"])
    response = client.get(f"/v1/agents/{route['agent_id']}/itinerary?date={DAY}&format=geojson")
    assert response.status_code == 200
    geo = response.get_json()
    assert geo["type"] == "FeatureCollection"
    kinds = [f["properties"]["kind"] for f in geo["features"]]
    assert kinds == ["route"] + ["stop"] * len(route["stops"])
    line = geo["features"][0]
    assert line["geometry"]["type"] == "LineString" and line["properties"]["agent_id"] == route["agent_id"]
    assert [f["properties"]["visit_id"] for f in geo["features"][1:]] == [s["visit_id"] for s in route["stops"]]
    first = geo["features"][1]["geometry"]["coordinates"]
    assert first == [route["stops"][0]["location"]["lon"], route["stops"][0]["location"]["lat"]]
