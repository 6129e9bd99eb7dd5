"""Address text is geocoded inside a plan; doubtful points are flagged, not hidden."""

from __future__ import annotations

from solver import solve
from solver.check import check_plan
from solver.geo.network import load_bundled_network
from tests.factories import problem


def test_text_addresses_are_geocoded_and_doubtful_ones_flagged():
    network = load_bundled_network()
    branch = {"location": {"lat": 31.2305, "lon": 121.4737}}
    visits = [
        {"id": "street", "addresses": [{"text": "上海市黄浦区西藏中路120号"}]},
        {"id": "district", "addresses": [{"text": "上海市黄浦区"}]},
        {"id": "nowhere", "addresses": [{"text": "火星基地99号"}]},
        {"id": "far", "addresses": [{"location": {"lat": 31.40, "lon": 121.60}}]},
    ]
    agents = [{"id": "c", "shift": {"start": "08:00", "end": "18:00"}, "start": branch, "travel_mode": "ebike"}]
    p = problem(visits, agents, time_limit_s=1)
    plan = solve(p, network)
    check_plan(p, plan, network).raise_if_invalid()
    planned = {s.visit_id for s in plan.route("c").stops}
    assert "street" in planned
    codes = {u.visit_id: u.code for u in plan.unassigned}
    assert codes.get("nowhere") == "not_geocoded"
    assert codes.get("district") == "geocode_imprecise"  # [geocoding] min_precision = "street"
    flags = {(f.visit_id, f.code) for f in plan.flags}
    assert ("district", "geocode_low_confidence") in flags
    assert ("far", "off_road") in flags
    off = next(f for f in plan.flags if f.code == "off_road")
    assert off.details["distance_m"] > 500
