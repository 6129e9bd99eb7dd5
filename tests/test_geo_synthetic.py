"""The synthetic city generator (solver.geo.synthetic) with the real network and gazetteer."""

from __future__ import annotations

import collections

import networkx as nx
import numpy as np
import pytest

from solver.geo.gazetteer import Gazetteer
from solver.geo.network import RoadNetwork, parse_maxspeed_kmh
from solver.geo.synthetic import METRES_PER_NUMBER, SETBACK_M, synthetic_city
from solver.travel import haversine_m


@pytest.fixture(scope="module")
def town():
    """A 30 × 30 town: small enough to check against networkx."""
    return synthetic_city(30, seed=5)


def test_default_city_is_large_and_deterministic():
    city = synthetic_city(seed=2)
    assert city.edge_count >= 50_000
    again = synthetic_city(seed=2)
    assert list(again.graph.edges(data="name")) == list(city.graph.edges(data="name"))
    assert [city.graph.nodes[n]["x"] for n in list(city.graph)[:50]] == [
        again.graph.nodes[n]["x"] for n in list(again.graph)[:50]]
    other = synthetic_city(seed=3)
    assert [city.graph.nodes[n]["x"] for n in list(city.graph)[:50]] != [
        other.graph.nodes[n]["x"] for n in list(other.graph)[:50]]
    south = min(d["y"] for _, d in city.graph.nodes(data=True))
    north = max(d["y"] for _, d in city.graph.nodes(data=True))
    assert 31.0 < south < 31.23 < north < 31.5 and (north - south) * 111_000 > 15_000


def test_graph_is_osmnx_shaped(town):
    g = town.graph
    assert g.graph["crs"] == "epsg:4326" and isinstance(g, nx.MultiDiGraph)
    for u, v, data in list(g.edges(data=True))[:500]:
        assert {"length", "highway", "name", "oneway"} <= set(data)
        assert data["length"] == pytest.approx(haversine_m(_loc(g, u), _loc(g, v)))
        assert 80 < data["length"] < 320  # 100-200 m blocks, diagonals up to ~280 m
    classes = collections.Counter(d["highway"] for *_, d in g.edges(data=True))
    assert {"primary", "secondary", "tertiary", "residential"} <= set(classes)
    arterial = [d for *_, d in g.edges(data=True) if d["highway"] in ("primary", "secondary")]
    assert all(parse_maxspeed_kmh(d["maxspeed"]) >= 50 for d in arterial)


def _loc(g, n):
    from solver.model import Location

    return Location(lat=g.nodes[n]["y"], lon=g.nodes[n]["x"])


def test_one_way_couplets_run_in_opposite_directions(town):
    g = town.graph
    one_way = collections.defaultdict(set)
    for u, v, data in g.edges(data=True):
        if data["oneway"]:
            (ru, cu), (rv, cv) = divmod(u - 1, 30), divmod(v - 1, 30)
            if ru == rv:
                one_way[ru].add(int(np.sign(cv - cu)))
    rows = sorted(one_way)
    assert rows, "no one-way east-west streets"
    assert any((one_way[r] == {1} and one_way.get(r + 1) == {-1}) or (one_way[r] == {-1} and one_way.get(r + 1) == {1})
               for r in rows)


def test_names_have_direction_segments(town):
    names = sorted(town.streets)
    west = [n for n in names if n.endswith("西路")]
    assert west and all(n[:-2] + "中路" in town.streets and n[:-2] + "东路" in town.streets for n in west)
    assert any(n.endswith("大道") for n in names)


def test_road_network_prices_the_town(town):
    net = RoadNetwork(town.graph)
    assert net.node_count("drive") > 0.95 * 900
    points = [a.location for a in town.addresses(12, seed=4)]
    m = net.matrix(points, "drive")
    assert m.reachable.all()
    g = net.to_networkx("drive")
    snaps = net.snap(points, "drive")
    assert max(s.distance_m for s in snaps) < SETBACK_M + 15
    # Triangle inequality through the network and symmetric-ish walking.
    d = m.durations
    assert (d[:, None, :] <= d[:, :, None] + d[None, :, :] + 2).all()
    w = net.matrix(points, "walk").durations
    assert np.abs(w - w.T).max() <= 1
    assert nx.is_strongly_connected(g)


def test_arterials_are_faster_than_residential_streets(town):
    net = RoadNetwork(town.graph)
    g = net.to_networkx("drive")
    speed = collections.defaultdict(list)
    raw = town.graph
    for u, v, data in raw.edges(data=True):
        if g.has_edge(u, v):
            speed[data["highway"]].append(g.edges[u, v]["length"] / g.edges[u, v]["travel_time"])
    assert np.median(speed["primary"]) > np.median(speed["secondary"]) > np.median(speed["residential"])


def test_addresses_geocode_back_to_their_houses(town):
    addresses = town.addresses(200, seed=1)
    kinds = collections.Counter(a.kind for a in addresses)
    assert kinds["house"] > 100 and kinds["lane"] > 20 and kinds["intersection"] > 5
    street_only = Gazetteer(town.graph, districts=town.districts)
    with_houses = Gazetteer(town.graph, addresses=town.address_points(), districts=town.districts)
    errors_street, errors_house = [], []
    for a in addresses:
        r = street_only.geocode(a.text)
        assert r is not None, a.text
        errors_street.append(haversine_m(r.location, a.location))
        h = with_houses.geocode(a.text)
        errors_house.append(haversine_m(h.location, a.location))
        if a.kind == "house":
            assert h.precision == "exact" and h.matched == a.street, a.text
        if a.kind == "intersection":
            assert r.precision == "intersection"
    # Interpolation along the street lands within the setback plus a few numbers.
    assert np.percentile(errors_street, 90) < SETBACK_M + 4 * METRES_PER_NUMBER
    assert np.max(errors_house) < SETBACK_M + 1  # houses exact; lanes at their entrance, intersections at the node


def test_district_fallback_uses_the_citys_districts(town):
    gaz = Gazetteer(town.graph, districts=town.districts)
    name = sorted(town.districts)[0]
    r = gaz.geocode(f"{town.city}{name}某某小区")
    assert r.precision == "district" and r.matched == name and r.flagged
    assert r.location == town.districts[name]
