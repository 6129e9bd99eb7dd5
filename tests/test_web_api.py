"""The web pages' server side (app/web): the street network as GeoJSON (real
bundled network), who-am-I, a day's view with what moved, CSV → problem, demo
day, and the pages themselves (offline: every asset is local, CSP 'self').
Browser tests are in tests/test_web_browser.py."""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path

import pytest

DAY = "2026-12-01"
WEB_STATIC = Path(__file__).resolve().parents[1] / "app" / "web" / "static"


# --------------------------------------------------------------------------- #
# Street network
# --------------------------------------------------------------------------- #
@pytest.fixture
def network():
    from solver.geo.network import load_bundled_network

    return load_bundled_network()


def _coords(document):
    return [pt for f in document["features"] for pt in f["geometry"]["coordinates"]]


def test_network_geojson_is_the_bundled_street_network(make_app, network):
    app = make_app(TRAVEL=None)  # the road network is the travel model
    response = app.test_client().get("/web/api/network.geojson")
    assert response.status_code == 200
    assert response.mimetype == "application/geo+json"
    doc = response.get_json()
    assert doc["type"] == "FeatureCollection" and doc["source"] == "travel_model"
    assert "OpenStreetMap" in doc["attribution"]

    south, west, north, east = network.bounds
    assert doc["bbox"] == pytest.approx([west, south, east, north])
    # central Shanghai (Huangpu)
    assert 121.44 < west < east < 121.50 and 31.20 < south < north < 31.26

    assert len(doc["features"]) > 300
    for feature in doc["features"]:
        assert feature["type"] == "Feature" and feature["geometry"]["type"] == "LineString"
        line = feature["geometry"]["coordinates"]
        assert len(line) >= 2
        assert feature["properties"]["class"] in {
            "motorway", "trunk", "primary", "secondary", "tertiary", "unclassified", "residential",
            "living_street", "service", "road"}
    points = _coords(doc)
    eps = 1e-5  # OSM way geometry may run a hair past the outermost graph node
    assert all(west - eps <= lon <= east + eps and south - eps <= lat <= north + eps for lon, lat in points)
    # every node of the network lies on a drawn line end (both directions drawn once)
    lines = [f["geometry"]["coordinates"] for f in doc["features"]]
    ends = {tuple(p) for line in lines for p in (line[0], line[-1])}
    nodes = {(round(float(lon), 6), round(float(lat), 6)) for lon, lat in zip(network.lons, network.lats)}
    assert len(nodes & ends) >= 0.95 * len(nodes)
    names = {f["properties"].get("name") for f in doc["features"]}
    assert {"福州路", "西藏中路"} <= names
    # both directions of a two-way street are one line
    assert len(doc["features"]) < 0.75 * sum(1 for _ in network.street_edges())


def test_two_apps_of_one_process_each_say_where_their_map_comes_from(make_app):
    """The document is cached per process: an app on straight lines (the bundled map as a
    background) asked first must not make the next app, which plans on that network, say "bundled"."""
    background = make_app().test_client().get("/web/api/network.geojson")
    assert background.status_code == 200 and background.get_json()["source"] == "bundled"
    planning = make_app(TRAVEL=None).test_client().get("/web/api/network.geojson")
    assert planning.status_code == 200 and planning.get_json()["source"] == "travel_model"
    assert planning.headers["ETag"] != background.headers["ETag"]
    again = make_app().test_client().get("/web/api/network.geojson")
    assert again.get_json()["source"] == "bundled" and again.headers["ETag"] == background.headers["ETag"]


def test_network_geojson_simplifies_within_the_tolerance(make_app):
    import shapely

    client = make_app().test_client()
    full = client.get("/web/api/network.geojson?tolerance_m=0").get_json()
    simple = client.get("/web/api/network.geojson?tolerance_m=10").get_json()
    default = client.get("/web/api/network.geojson").get_json()
    assert full["source"] == "bundled"  # straight-line travel: the bundled map is the background
    assert len(full["features"]) == len(simple["features"]) == len(default["features"])
    assert len(_coords(simple)) < len(_coords(default)) < len(_coords(full))
    kx = 111_320 * math.cos(math.radians(31.23))
    ky = 110_574

    def metric(line):
        return shapely.LineString([(lon * kx, lat * ky) for lon, lat in line])

    for a, b in zip(full["features"], simple["features"]):
        assert a["geometry"]["coordinates"][0] == b["geometry"]["coordinates"][0]
        assert a["geometry"]["coordinates"][-1] == b["geometry"]["coordinates"][-1]
        assert metric(a["geometry"]["coordinates"]).hausdorff_distance(metric(b["geometry"]["coordinates"])) <= 10.5


def test_network_geojson_auth_caching_and_bad_tolerance(app, client, token):
    assert app.test_client(token="").get("/web/api/network.geojson").status_code == 401
    agent = app.test_client(token=token("agent", "crew-a"))
    first = agent.get("/web/api/network.geojson")
    assert first.status_code == 200 and first.headers["ETag"]
    assert "max-age" in first.headers["Cache-Control"]
    again = agent.get("/web/api/network.geojson", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and not again.data
    for bad in ("-1", "abc", "1000", "nan"):
        response = client.get(f"/web/api/network.geojson?tolerance_m={bad}")
        assert response.status_code == 400, bad
        assert response.get_json()["errors"][0]["field"] == "tolerance_m"


# --------------------------------------------------------------------------- #
# Who am I
# --------------------------------------------------------------------------- #
def test_me_names_the_role_and_crew(app, client, token):
    assert client.get("/web/api/me").get_json()["role"] == "dispatcher"
    me = app.test_client(token=token("agent", "crew-b")).get("/web/api/me").get_json()
    assert (me["role"], me["agent_id"], me["sees_borrower"]) == ("agent", "crew-b", True)
    system = app.test_client(token=token("system")).get("/web/api/me").get_json()
    assert (system["role"], system["sees_borrower"]) == ("system", False)
    assert app.test_client(token="ds_nope").get("/web/api/me").status_code == 401


# --------------------------------------------------------------------------- #
# A day's view and what moved
# --------------------------------------------------------------------------- #
@pytest.fixture
def planned(client, payload):
    response = client.post("/v1/plans?wait=60", json=payload())
    assert response.status_code == 201, response.get_json()
    return response.get_json()["plan"]


def test_day_view_has_plan_problem_geometry_and_outcomes(app, client, planned, token):
    first = planned["routes"][0]["stops"][0]["visit_id"]
    recorded = client.post(f"/v1/visits/{first}/outcome", json={"date": DAY, "status": "arrived"})
    assert recorded.status_code == 201
    day = client.get(f"/web/api/days/{DAY}").get_json()
    assert (day["version"], day["current_version"], day["changes"]) == (1, 1, None)
    assert [v["version"] for v in day["versions"]] == [1]
    assert day["plan"]["summary"] == planned["summary"]
    assert {v["id"] for v in day["problem"]["visits"]} == {f"v{i}" for i in range(6)}
    assert day["problem"]["visits"][0]["borrower"]["name"] == "Borrower 0"
    kinds = [f["properties"]["kind"] for f in day["geojson"]["features"]]
    assert kinds.count("stop") == planned["summary"]["visits_planned"]
    assert kinds.count("route") == sum(1 for r in planned["routes"] if r["stops"])
    assert day["states"] == {first: {"status": "arrived", "result": None, "agent_id": planned["routes"][0]["agent_id"]}}

    system = app.test_client(token=token("system")).get(f"/web/api/days/{DAY}").get_json()
    assert all("borrower" not in v for v in system["problem"]["visits"])
    assert app.test_client(token=token("agent", "crew-a")).get(f"/web/api/days/{DAY}").status_code == 403
    assert client.get("/web/api/days/2026-12-02").status_code == 404
    assert client.get(f"/web/api/days/{DAY}?version=7").status_code == 404
    assert client.get("/web/api/days/tomorrow").status_code == 400


def test_day_view_after_a_replan_says_what_moved(client, planned, payload):
    crew = next(r for r in planned["routes"] if len(r["stops"]) >= 2)
    cancelled = crew["stops"][0]["visit_id"]
    urgent = copy.deepcopy(payload()["visits"][1])
    urgent.update(id="urgent-1", priority=100)
    body = {"now": f"{DAY}T08:30:00+08:00", "cancelled": [cancelled], "added": [urgent]}
    response = client.post(f"/v1/plans/{DAY}/reoptimize?wait=60", json=body)
    assert response.status_code == 201, response.get_json()
    day = client.get(f"/web/api/days/{DAY}").get_json()
    assert day["version"] == 2 and day["reason"] == "reoptimize"
    assert day["changes"]["against"] == 1
    items = {c["visit_id"]: c for c in day["changes"]["items"]}
    assert items[cancelled]["kinds"] == ["closed"]
    assert items[cancelled]["before"]["agent_id"] == crew["agent_id"] and items[cancelled]["after"] is None
    assert items["urgent-1"]["kinds"][0] == "added"
    older = client.get(f"/web/api/days/{DAY}?version=1").get_json()
    assert older["version"] == 1 and older["current_version"] == 2 and older["changes"] is None


def _plan_of(routes):
    """A Plan with the given {crew: [visit ids]} (times and places made up)."""
    import datetime as dt

    from solver.model import Location, Plan, PlanSummary, Route, SolverStats, Stop

    t0 = dt.datetime(2026, 12, 1, 9, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    here = Location(lat=31.23, lon=121.47)

    def stop(visit_id, i, slot_hour=None):
        from solver.model import Slot

        start = t0 + dt.timedelta(hours=i)
        slot = None if slot_hour is None else Slot(start=t0.replace(hour=slot_hour), end=t0.replace(hour=slot_hour + 1))
        return Stop(visit_id=visit_id, address_index=0, address_kind="home", location=here, arrival=start, start=start,
                    end=start + dt.timedelta(minutes=30), earliest_start=start, latest_start=start, slot=slot,
                    travel_s=60, distance_m=100)

    out = []
    for agent, visits in routes.items():
        stops = [stop(v[0], i, v[1]) if isinstance(v, tuple) else stop(v, i) for i, v in enumerate(visits)]
        out.append(Route(agent_id=agent, travel_mode="drive", start_location=here, end_location=here, start=t0,
                         end=t0 + dt.timedelta(hours=9), stops=stops))
    summary = PlanSummary(visits_total=0, visits_planned=0, priority_total=0, priority_planned=0, travel_s=0,
                          distance_m=0, crews_used=len(out))
    return Plan(date=dt.date(2026, 12, 1), timezone="Asia/Shanghai", routes=out, summary=summary,
                solver=SolverStats(status="test", seconds=0))


def test_plan_changes_marks_only_what_moved():
    from app.web import plan_changes
    from solver.model import Problem, Unassigned

    before = _plan_of({"a": ["v1", "v2", "v3", "v4", ("v5", 10)], "b": ["v6", "v7"]})
    before.unassigned = [Unassigned(visit_id="v9", code="capacity", reason="full")]
    # v4 moves to the front of a (one visit out of order, not all of them),
    # v7 goes to crew a, v2 leaves the day, v5's slot changes, v9 gets planned,
    # v10 is new, v6 is dropped
    after = _plan_of({"a": ["v4", "v1", "v3", "v7", ("v5", 11)], "b": ["v9", "v10"]})
    after.unassigned = [Unassigned(visit_id="v6", code="lower_priority", reason="other visits mattered more")]
    problem = Problem.model_validate({
        "date": "2026-12-01",
        "visits": [{"id": v, "addresses": [{"location": {"lat": 31.23, "lon": 121.47}}]}
                   for v in ("v1", "v3", "v4", "v5", "v6", "v7", "v9", "v10")],
        "agents": [{"id": a, "shift": {"start": "08:00", "end": "18:00"}, "start": {"text": "x"}} for a in "ab"],
    })
    changes = {c["visit_id"]: c for c in plan_changes(before, after, problem)}
    assert {v: c["kinds"] for v, c in changes.items()} == {
        "v4": ["order"], "v2": ["closed"], "v5": ["slot"], "v6": ["dropped"], "v7": ["crew"],
        "v9": ["planned"], "v10": ["added"],
    }
    assert {k: changes["v7"]["before"][k] for k in ("agent_id", "sequence", "slot")} == \
        {"agent_id": "b", "sequence": 2, "slot": None}
    assert (changes["v7"]["after"]["agent_id"], changes["v7"]["after"]["sequence"]) == ("a", 4)
    assert changes["v6"]["reason"] == "other visits mattered more"
    assert plan_changes(before, before, problem) == []


# --------------------------------------------------------------------------- #
# Input helpers
# --------------------------------------------------------------------------- #
VISITS_CSV = """id,case_id,priority,address,lat,lon,kind,windows,borrower_name,borrower_phone
V1,C-1,80,Test road 1,31.2210,121.4640,home,09:00-12:00,Borrower 1,13800000001
V2,C-2,50,,31.2300,121.4780,work,14:00-16:00,,
"""
AGENTS_CSV = """id,members,shift,break,start_address,start_lat,start_lon,travel_mode
crew-a,A1;A2,08:30-17:30,11:30-13:30/60,Branch A,31.2300,121.4740,ebike
"""


def test_problem_from_csv(client):
    response = client.post("/web/api/problem-from-csv",
                           json={"visits_csv": VISITS_CSV, "agents_csv": AGENTS_CSV, "date": DAY, "time_limit_s": 2})
    assert response.status_code == 200, response.get_json()
    problem = response.get_json()
    assert problem["date"] == DAY and problem["options"]["time_limit_s"] == 2
    assert [v["id"] for v in problem["visits"]] == ["V1", "V2"]
    assert problem["visits"][0]["addresses"][0]["time_windows"] == [{"start": "09:00:00", "end": "12:00:00"}]
    assert problem["agents"][0]["breaks"][0]["duration_min"] == 60
    problem["options"]["max_iterations"] = 10  # the day plans as converted; its search is not under test
    planned = client.post("/v1/plans?wait=60", json=problem)
    assert planned.status_code == 201, planned.get_json()


def test_problem_from_csv_errors_name_the_line_and_column(client):
    bad = VISITS_CSV.replace("09:00-12:00", "9 to 11")
    response = client.post("/web/api/problem-from-csv", json={"visits_csv": bad, "agents_csv": AGENTS_CSV, "date": DAY})
    assert response.status_code == 422
    message = response.get_json()["errors"][0]["message"]
    assert "visits.csv line 2, column windows" in message
    missing = client.post("/web/api/problem-from-csv", json={"visits_csv": VISITS_CSV})
    assert missing.status_code == 422
    assert {e["field"] for e in missing.get_json()["errors"]} == {"agents_csv", "date"}


def test_demo_day(app, client, token):
    response = client.get(f"/web/api/demo-day?seed=0&visits=12&crews=3&date={DAY}")
    assert response.status_code == 200
    problem = response.get_json()
    assert (len(problem["visits"]), len(problem["agents"]), problem["date"]) == (12, 3, DAY)
    assert client.get("/web/api/demo-day?visits=100000").status_code == 400
    assert app.test_client(token=token("system")).get("/web/api/demo-day").status_code == 403


# --------------------------------------------------------------------------- #
# The pages
# --------------------------------------------------------------------------- #
def test_pages_are_served_with_local_assets_only(app):
    client = app.test_client(token="")  # the pages themselves need no token; their API calls do
    for path in ("/web/", "/web/dispatcher", "/web/agent"):
        response = client.get(path)
        assert response.status_code == 200 and response.mimetype == "text/html", path
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "connect-src 'self'" in csp
        html = response.get_data(as_text=True)
        assets = re.findall(r'(?:src|href)="([^"]+)"', html)
        external = [a for a in assets if re.match(r"^(?:[a-z]+:)?//", a)]
        assert assets and not external, external
        for asset in assets:
            if asset.startswith("/web/static/"):
                assert client.get(asset).status_code == 200, asset
    assert client.get("/web/agent/").status_code in (301, 302, 308)


#: Vendored libraries name their home pages in their licence banners (comments, never fetched).
VENDOR_BANNERS = {"vendor/chart.umd.min.js": {"https://www.chartjs.org", "https://github.com/kurkle/color#readme"}}


def test_static_files_reference_nothing_on_the_internet():
    allowed = {"http://www.w3.org/2000/svg"}  # the SVG namespace, never fetched
    for path in sorted(p for p in WEB_STATIC.rglob("*") if p.is_file()):
        name = path.relative_to(WEB_STATIC).as_posix()
        text = path.read_text(encoding="utf-8")
        urls = set(re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s\"')]*", text))
        assert urls <= allowed | VENDOR_BANNERS.get(name, set()), (name, urls - allowed)
        assert "@import" not in text and "fonts.googleapis" not in text
