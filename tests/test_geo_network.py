"""Road-network travel model on the bundled Shanghai extract (solver.geo.network)."""

from __future__ import annotations

import itertools
import math

import networkx as nx
import numpy as np
import pytest

from solver.config import bundled_map_path, defaults
from solver.geo.coords import wgs84_to_gcj02
from solver.geo.network import RoadNetwork, Snap, load_bundled_graph, load_bundled_network, parse_maxspeed_kmh
from solver.model import Location
from solver.travel import StraightLineTravel, TravelModel, haversine_m

MODES = ("drive", "ebike", "walk")


@pytest.fixture(scope="module")
def net() -> RoadNetwork:
    return RoadNetwork.from_osm(bundled_map_path())


@pytest.fixture(scope="module")
def on_map(net: RoadNetwork) -> list[Location]:
    """20 points near drive nodes (up to ~30 m off the street), fixed seed."""
    rng = np.random.default_rng(7)
    g = net.to_networkx("drive")
    nodes = sorted(g.nodes)
    picks = rng.choice(len(nodes), size=20, replace=False)
    points = []
    for k in picks:
        data = g.nodes[nodes[int(k)]]
        d_lat, d_lon = rng.uniform(-0.0002, 0.0002, size=2)
        points.append(Location(lat=data["y"] + d_lat, lon=data["x"] + d_lon))
    return points


def offset(point: Location, east_m: float = 0.0, north_m: float = 0.0) -> Location:
    return Location(
        lat=point.lat + math.degrees(north_m / 6_371_008.8),
        lon=point.lon + math.degrees(east_m / (6_371_008.8 * math.cos(math.radians(point.lat)))),
    )


def test_is_a_travel_model(net):
    assert isinstance(net, TravelModel)


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_has_a_large_component(net, mode):
    assert net.node_count(mode) > 300


def test_bundled_network_is_cached():
    assert load_bundled_network() is load_bundled_network()


def test_street_names(net):
    names = net.street_names()
    assert "西藏中路" in names and "福州路" in names
    assert names == sorted(set(names))


def test_drive_matrix_is_consistent(net, on_map):
    m = net.matrix(on_map, "drive")
    assert m.durations.dtype == np.int64 and m.distances.dtype == np.int64
    assert m.durations.shape == (20, 20)
    assert (np.diag(m.durations) == 0).all() and (np.diag(m.distances) == 0).all()
    assert m.reachable is not None and m.reachable.all()
    off = ~np.eye(20, dtype=bool)
    assert (m.durations[off] > 0).all()
    d = m.durations
    assert (d[:, None, :] <= d[:, :, None] + d[None, :, :] + 2).all()  # d[i,k] <= d[i,j] + d[j,k] + 2


def split_reference(net: RoadNetwork, mode: str, points: list[Location]) -> tuple[nx.DiGraph, list]:
    """The mode graph in networkx with every point joined at its projection.

    Each snapped edge is cut at the projections on it (the cut pieces carry
    the edge's time and length in proportion), and each point hangs off its
    projection by an access leg both ways. Built independently of the
    network's own attachment code, from ``snap()`` and ``to_networkx()``.
    """
    g = net.to_networkx(mode)
    access_mps = net.access_speed_kmh(mode) / 3.6
    snaps = net.snap(points, mode)
    ref = g.copy()
    on_edge: dict[tuple[int, int], list[tuple[float, int]]] = {}
    for i, s in enumerate(snaps):
        a, b = (int(net.node_ids[k]) for k in s.edge)
        on_edge.setdefault((a, b), []).append((s.fraction, i))
    for (a, b), items in on_edge.items():
        items.sort()
        chain = [a] + [("q", i) for _, i in items] + [b]
        fractions = [0.0] + [f for f, _ in items] + [1.0]
        for u, v, seq, fr in ((a, b, chain, fractions), (b, a, chain[::-1], [1 - f for f in fractions[::-1]])):
            if not g.has_edge(u, v):
                continue
            data = g.edges[u, v]
            ref.remove_edge(u, v)
            for k in range(len(seq) - 1):
                share = fr[k + 1] - fr[k]
                ref.add_edge(seq[k], seq[k + 1], travel_time=share * data["travel_time"],
                             length=share * data["length"])
    for i, s in enumerate(snaps):
        leg = {"travel_time": s.distance_m / access_mps, "length": s.distance_m}
        ref.add_edge(("p", i), ("q", i), **leg)
        ref.add_edge(("q", i), ("p", i), **leg)
    return ref, snaps


@pytest.mark.parametrize("mode", MODES)
def test_matrix_matches_networkx_with_points_joined_mid_edge(net, mode):
    rng = np.random.default_rng(11)
    south, west, north, east = net.bounds
    points = [Location(lat=float(rng.uniform(south, north)), lon=float(rng.uniform(west, east))) for _ in range(14)]
    m = net.matrix(points, mode)
    ref, snaps = split_reference(net, mode, points)
    assert all(s.snapped for s in snaps)
    for i in range(0, 14, 3):
        times, paths = nx.single_source_dijkstra(ref, ("p", i), weight="travel_time")
        for j in range(14):
            if i == j:
                continue
            path = paths[("p", j)]
            metres = sum(ref.edges[u, v]["length"] for u, v in itertools.pairwise(path))
            assert abs(m.durations[i, j] - times[("p", j)]) <= 1, (i, j)
            assert abs(m.distances[i, j] - metres) <= 1, (i, j)


def test_point_mid_block_snaps_to_the_street_not_the_corner(net):
    g = net.to_networkx("drive")
    raw = load_bundled_graph()
    # The longest straight drive edge (no curved geometry): its midpoint is far from both ends.
    straight = [(u, v) for u, v, d in raw.edges(data=True) if "geometry" not in d and g.has_edge(u, v)]
    u, v = max(straight, key=lambda e: g.edges[e]["length"])
    assert g.edges[u, v]["length"] > 100
    a = Location(lat=g.nodes[u]["y"], lon=g.nodes[u]["x"])
    b = Location(lat=g.nodes[v]["y"], lon=g.nodes[v]["x"])
    (snap,) = net.snap([Location(lat=(a.lat + b.lat) / 2, lon=(a.lon + b.lon) / 2)], "drive")
    corner = min(haversine_m(snap.projection, a), haversine_m(snap.projection, b))
    assert snap.distance_m < 0.5  # on the street
    assert corner > 45  # while the nearest node is half a block away
    assert snap.fraction == pytest.approx(0.5, abs=0.01)
    assert {int(net.node_ids[k]) for k in snap.edge} == {u, v}


def test_one_way_edge_is_entered_in_its_direction():
    net = RoadNetwork(_toy_graph())
    # Two points along the one-way 1 -> 2 (west to east), 30 % and 70 % of the way.
    west = Location(lat=31.2300, lon=121.4703)
    east = Location(lat=31.2300, lon=121.4707)
    snaps = net.snap([west, east], "drive")
    assert not snaps[0].two_way and snaps[0].snapped and snaps[0].distance_m < 0.5
    d = net.matrix([west, east], "drive")
    length = haversine_m(Location(lat=31.230, lon=121.470), Location(lat=31.230, lon=121.471))
    link_s = length / (defaults()["speeds_kmh"]["drive_by_highway"]["primary"] * defaults()["speeds_kmh"][
        "drive_traffic_factor"] / 3.6)
    assert abs(d.durations[0, 1] - 0.4 * link_s) <= 1  # straight along the one-way street
    assert d.distances[0, 1] == pytest.approx(0.4 * length, abs=1)
    # Against the one-way: on to node 2, round the square, back in at node 1.
    assert d.durations[1, 0] > 3 * d.durations[0, 1]
    side = haversine_m(Location(lat=31.230, lon=121.471), Location(lat=31.231, lon=121.471))
    assert d.distances[1, 0] == pytest.approx(0.3 * length + side + length + side + 0.3 * length, abs=2)
    w = net.matrix([west, east], "walk")
    assert w.durations[0, 1] == w.durations[1, 0]


def test_far_point_is_flagged(net):
    _south, west, north, east = net.bounds
    (snap,) = net.snap([offset(Location(lat=north, lon=(west + east) / 2), north_m=2_000)], "drive")
    assert snap.flagged and not snap.snapped and snap.distance_m > net.snap_max_m


def test_path_goes_through_both_projections(net, on_map):
    a, b = on_map[2], on_map[9]
    coords = net.path(a, b, "walk")
    snap_a, snap_b = net.snap([a, b], "walk")
    assert coords[1] == pytest.approx((snap_a.lat, snap_a.lon))
    assert coords[-2] == pytest.approx((snap_b.lat, snap_b.lon))


def test_one_way_street_is_one_way_for_driving_only(net):
    drive = net.to_networkx("drive")
    walk = net.to_networkx("walk")
    found = False
    for u, v in sorted(drive.edges):
        if drive.has_edge(v, u) or u not in walk or v not in walk:
            continue
        a = Location(lat=drive.nodes[u]["y"], lon=drive.nodes[u]["x"])
        b = Location(lat=drive.nodes[v]["y"], lon=drive.nodes[v]["x"])
        d = net.matrix([a, b], "drive").durations
        if d[0, 1] < d[1, 0]:
            w = net.matrix([a, b], "walk").durations
            assert w[0, 1] == w[1, 0]
            found = True
            break
    assert found, "no one-way street where driving against it is longer"


def test_point_far_from_the_map_uses_straight_line(net, on_map):
    speeds = defaults()["speeds_kmh"]
    south, _west, north, east = net.bounds
    far = offset(Location(lat=(south + north) / 2, lon=east), east_m=5_000)  # 5 km east of the map
    (snap,) = net.snap([far], "walk")
    assert isinstance(snap, Snap) and not snap.snapped and snap.distance_m > 4_000
    points = [on_map[0], on_map[1], far]
    for mode in ("walk", "drive"):
        m = net.matrix(points, mode)
        line = StraightLineTravel(
            speeds_kmh={mode: net.fallback_speed_kmh(mode)}, detour_factor=speeds["detour_factor"]
        ).matrix(points, mode)
        for i, j in [(0, 2), (2, 0), (1, 2), (2, 1)]:
            assert abs(m.durations[i, j] - line.durations[i, j]) <= 1
            assert abs(m.distances[i, j] - line.distances[i, j]) <= 1
        assert m.reachable[0, 2] and m.reachable[2, 0]
    assert net.fallback_speed_kmh("walk") == speeds["walk"]


def test_modes_are_ordered_by_speed(net, on_map):
    medians = {mode: np.median(net.matrix(on_map, mode).durations) for mode in MODES}
    assert medians["walk"] > medians["ebike"]
    assert medians["walk"] > medians["drive"]


def test_identical_points_cost_nothing(net, on_map):
    m = net.matrix([on_map[0], on_map[0], on_map[1]], "drive")
    assert m.durations[0, 1] == m.durations[1, 0] == 0
    assert m.distances[0, 1] == 0
    assert m.durations[0, 2] == m.durations[1, 2] > 0


def test_gcj02_points_are_converted(net, on_map):
    gcj = [Location(lat=lat, lon=lon, crs="gcj02") for lat, lon in (wgs84_to_gcj02(p.lat, p.lon) for p in on_map[:5])]
    np.testing.assert_array_equal(net.matrix(gcj, "ebike").durations, net.matrix(on_map[:5], "ebike").durations)


def test_matrix_results_are_cached_but_not_shared(net, on_map):
    first = net.matrix(on_map[:4], "walk")
    first.durations[0, 1] = -1
    second = net.matrix(on_map[:4], "walk")
    assert second.durations[0, 1] > 0


def test_path_follows_the_streets(net, on_map):
    a, b = on_map[0], on_map[5]
    coords = net.path(a, b, "drive")
    assert len(coords) >= 2
    first, last = Location(lat=coords[0][0], lon=coords[0][1]), Location(lat=coords[-1][0], lon=coords[-1][1])
    assert haversine_m(first, a) < 1 and haversine_m(last, b) < 1
    south, west, north, east = net.bounds
    assert all(south - 0.001 <= lat <= north + 0.001 and west - 0.001 <= lon <= east + 0.001 for lat, lon in coords)
    along = sum(
        haversine_m(Location(lat=p[0], lon=p[1]), Location(lat=q[0], lon=q[1])) for p, q in itertools.pairwise(coords)
    )
    assert along >= haversine_m(a, b)
    # The geometry is about as long as the matrix says the trip is.
    assert along == pytest.approx(net.matrix([a, b], "drive").distances[0, 1], rel=0.05)


def test_path_to_a_far_point_is_straight(net, on_map):
    far = offset(Location(lat=net.bounds[2], lon=on_map[0].lon), north_m=5_000)
    assert net.path(on_map[0], far, "walk") == [(on_map[0].lat, on_map[0].lon), (far.lat, far.lon)]


def test_unknown_mode_is_rejected(net, on_map):
    with pytest.raises(ValueError, match="unknown travel mode"):
        net.matrix(on_map[:2], "boat")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("tag", "kmh"),
    [("40", 40.0), ("30 mph", 30 * 1.609344), ("40;60", 40.0), (["50", "30"], 30.0), ("none", None), (None, None),
     ("CN:urban", None)],
)
def test_parse_maxspeed(tag, kmh):
    assert parse_maxspeed_kmh(tag) == (None if kmh is None else pytest.approx(kmh))


def _toy_graph() -> nx.MultiDiGraph:
    """A square of streets: 1 →(one-way primary_link) 2, others two-way residential."""
    g = nx.MultiDiGraph(crs="epsg:4326")
    coords = {1: (31.230, 121.470), 2: (31.230, 121.471), 3: (31.231, 121.471), 4: (31.231, 121.470)}
    for node, (lat, lon) in coords.items():
        g.add_node(node, y=lat, x=lon)

    def length(u, v):
        return haversine_m(Location(lat=coords[u][0], lon=coords[u][1]), Location(lat=coords[v][0], lon=coords[v][1]))

    g.add_edge(1, 2, highway="primary_link", oneway=True, length=length(1, 2), name="甲路")
    for u, v in [(2, 3), (3, 4), (4, 1)]:
        g.add_edge(u, v, highway="residential", oneway=False, length=length(u, v), maxspeed="20")
        g.add_edge(v, u, highway="residential", oneway=False, length=length(u, v), maxspeed="20")
    return g


def test_toy_graph_speeds_and_one_way():
    speeds = defaults()["speeds_kmh"]
    net = RoadNetwork(_toy_graph())
    drive = net.to_networkx("drive")
    factor = speeds["drive_traffic_factor"]
    link = drive.edges[1, 2]
    assert link["travel_time"] == pytest.approx(link["length"] / (speeds["drive_by_highway"]["primary"] * factor / 3.6))
    res = drive.edges[2, 3]
    assert res["travel_time"] == pytest.approx(res["length"] / (20 * factor / 3.6))
    assert not drive.has_edge(2, 1)
    walk = net.to_networkx("walk")
    assert walk.has_edge(2, 1)
    assert walk.edges[2, 1]["travel_time"] == pytest.approx(walk.edges[2, 1]["length"] / (speeds["walk"] / 3.6))
    pts = [Location(lat=31.230, lon=121.470), Location(lat=31.230, lon=121.471)]
    d = net.matrix(pts, "drive").durations
    assert d[0, 1] < d[1, 0]
    w = net.matrix(pts, "walk").durations
    assert w[0, 1] == w[1, 0]


def test_ebike_keeps_to_a_lower_speed_limit():
    g = _toy_graph()
    for u, v in [(3, 4), (4, 3)]:
        g.edges[u, v, 0].update(highway="living_street", maxspeed="10")
    net = RoadNetwork(g)
    ebike = net.to_networkx("ebike")
    ebike_kmh = defaults()["speeds_kmh"]["ebike"]
    assert ebike_kmh > 10
    assert ebike.edges[3, 4]["travel_time"] == pytest.approx(ebike.edges[3, 4]["length"] / (10 / 3.6))
    assert ebike.edges[2, 3]["travel_time"] == pytest.approx(ebike.edges[2, 3]["length"] / (ebike_kmh / 3.6))
