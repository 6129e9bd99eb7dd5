"""Loading street graphs and caching matrices (solver.geo.loading, osmfile, matrixcache)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from solver.config import bundled_map_path
from solver.geo import loading
from solver.geo.loading import (
    fetch_graph,
    graph_from_osm_data,
    load_bundled_graph,
    load_graph,
    load_osm_graph,
    osmnx_module,
)
from solver.geo.matrixcache import MatrixCache, matrix_key
from solver.geo.network import RoadNetwork
from solver.geo.osmfile import OsmData, largest_street_component, read_osm
from solver.model import Location
from tests.osmreads import recorded_reads

SHARED_MAPS = Path(__file__).resolve().parents[2] / "shared" / "maps"
MONACO = SHARED_MAPS / "monaco.osm.pbf"
OAKLAND = SHARED_MAPS / "west-oakland.osm.bz2"

POINTS = [
    Location(lat=31.2260, lon=121.4700),
    Location(lat=31.2330, lon=121.4790),
    Location(lat=31.2380, lon=121.4650),
    Location(lat=31.2220, lon=121.4820),
]


@pytest.fixture(scope="module")
def bundled() -> RoadNetwork:
    return RoadNetwork(load_bundled_graph())


def test_graphml_round_trip_gives_the_same_matrices(tmp_path, bundled):
    path = tmp_path / "huangpu.graphml"
    osmnx_module().save_graphml(load_bundled_graph(), path)
    again = RoadNetwork(load_graph(path))
    for mode in ("drive", "walk"):
        a, b = bundled.matrix(POINTS, mode), again.matrix(POINTS, mode)
        np.testing.assert_array_equal(a.durations, b.durations)
        np.testing.assert_array_equal(a.distances, b.distances)


def test_fetch_graph_reads_its_cache_without_downloading(tmp_path):
    path = tmp_path / "maps" / "cached.graphml"
    path.parent.mkdir()
    osmnx_module().save_graphml(load_bundled_graph(), path)
    graph = fetch_graph(path, place="Nowhere that exists, Atlantis")  # a download would fail offline
    assert graph.number_of_nodes() == load_bundled_graph().number_of_nodes()


def test_fetch_graph_needs_a_place_or_bbox(tmp_path):
    with pytest.raises(ValueError, match="neither a place nor a bbox"):
        fetch_graph(tmp_path / "none.graphml")


def test_unknown_and_missing_map_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_graph(tmp_path / "missing.osm")
    odd = tmp_path / "map.shp"
    odd.write_text("x")
    with pytest.raises(ValueError, match="unknown map file type"):
        load_graph(odd)
    bad = tmp_path / "bad.osm"
    bad.write_text("<osm><node id='1'")
    with pytest.raises(ValueError, match="not readable OSM XML"):
        read_osm(bad)


def test_bundled_extract_is_read_as_is():
    data = read_osm(bundled_map_path())
    assert len(data.ways) > 500 and all("highway" in tags for _, tags in data.ways.values())
    assert data.address_points() == [] and data.named_places() == []  # streets only, as its README says
    assert load_osm_graph(bundled_map_path()).number_of_nodes() == load_bundled_graph().number_of_nodes()


def test_clipped_ways_and_buildings_are_left_out(tmp_path):
    data = OsmData(source="")
    data.coords = {1: (31.230, 121.470), 2: (31.230, 121.471), 3: (31.231, 121.471), 4: (31.231, 121.472)}
    data.ways = {
        10: ([1, 2, 3, 99], {"highway": "residential", "name": "甲路"}),  # node 99 is outside the extract
        11: ([3, 4], {"highway": "residential", "name": "乙路"}),
        12: ([1, 2, 3, 1], {"building": "yes", "addr:street": "甲路", "addr:housenumber": "5"}),
    }
    path = data.write_highway_xml(tmp_path / "streets.osm")
    again = read_osm(path)
    assert sorted(again.ways) == [10, 11] and again.ways[10][0] == [1, 2, 3]
    graph = load_osm_graph(path)
    assert set(graph.nodes) <= {1, 2, 3, 4} and graph.number_of_edges() >= 2
    (house,) = data.address_points()
    assert house.street == "甲路" and house.housenumber == "5"
    assert house.lat == pytest.approx((31.230 + 31.230 + 31.231) / 3)


@pytest.mark.parametrize("second", [3, 2])  # a smaller second component, and one as large as the first
def test_only_the_largest_street_component_is_handed_to_osmnx_and_the_graph_is_the_same(tmp_path, second):
    data = OsmData(source="")
    data.coords = {n: (31.23 + 0.001 * n, 121.47 + 0.0005 * (n % 3)) for n in range(1, 12)}
    data.ways = {
        20: ([7, 8, 9], {"highway": "residential", "name": "丙路"}),
        21: ([9, 10, 11][:second], {"highway": "service"}),
        10: ([1, 2, 3], {"highway": "residential", "name": "甲路"}),
        11: ([3, 4], {"highway": "residential", "name": "乙路", "oneway": "yes"}),
    }
    assert largest_street_component(data.highway_ways()) == ({7, 8, 9, 10, 11} if second == 3 else {1, 2, 3, 4})
    # osmnx's own largest weakly connected component of the whole file (retain_all=False)
    whole = osmnx_module().graph_from_xml(data.write_highway_xml(tmp_path / "all.osm"), simplify=True,
                                          retain_all=False)
    graph = graph_from_osm_data(data)
    assert list(graph.nodes(data=True)) == list(whole.nodes(data=True))
    assert list(graph.edges(keys=True, data=True)) == list(whole.edges(keys=True, data=True))


def test_compressed_xml_extract_loads():
    if not OAKLAND.is_file():
        pytest.skip("shared/maps is not beside the repository")
    graph = load_graph(OAKLAND)
    assert graph.number_of_nodes() > 10
    assert all("highway" in d for *_, d in graph.edges(data=True))


def test_full_pbf_extract_loads_streets_only():
    pytest.importorskip("osmium")
    if not MONACO.is_file():
        pytest.skip("shared/maps is not beside the repository")
    with recorded_reads(loading) as read:  # the extract load_graph reads, its one read_osm call
        graph = load_graph(MONACO)
    (data,) = read
    assert Path(data.source) == MONACO
    assert len(data.address_points()) == 313  # 314 addressed objects, one of them a relation (not read)
    assert all("highway" in d for *_, d in graph.edges(data=True))
    assert "building" not in {k for *_, d in graph.edges(data=True) for k in d}
    net = RoadNetwork(graph)
    assert net.node_count("drive") > 300


# --------------------------------------------------------------------------- #
# Content-addressed matrix cache
# --------------------------------------------------------------------------- #
def test_matrix_key_is_content_addressed():
    lats, lons = np.array([31.23, 31.24]), np.array([121.47, 121.48])
    key = matrix_key("net-a", "drive", lats, lons)
    assert key == matrix_key("net-a", "drive", lats.copy(), lons.copy())
    assert key == matrix_key("net-a", "drive", lats + 1e-9, lons)  # below the 1e-7 degree rounding
    assert key != matrix_key("net-b", "drive", lats, lons)
    assert key != matrix_key("net-a", "walk", lats, lons)
    assert key != matrix_key("net-a", "drive", lats[::-1], lons[::-1])


def test_matrices_are_found_on_disk_by_another_network(tmp_path):
    graph = load_bundled_graph()
    first = RoadNetwork(graph, matrix_cache_dir=tmp_path)
    computed = first.matrix(POINTS, "ebike")
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1 and files[0].stem == matrix_key(
        first.network_id, "ebike", np.array([p.lat for p in POINTS]), np.array([p.lon for p in POINTS])
    )
    second = RoadNetwork(graph, matrix_cache_dir=tmp_path)
    assert second.network_id == first.network_id
    loaded = second.matrix(POINTS, "ebike")
    assert second.matrix_cache.disk_hits == 1 and second.matrix_cache.misses == 0
    np.testing.assert_array_equal(loaded.durations, computed.durations)
    np.testing.assert_array_equal(loaded.distances, computed.distances)
    np.testing.assert_array_equal(loaded.reachable, computed.reachable)
    # Other speeds: another network, another key; the stored file is not reused.
    slower = RoadNetwork(graph, matrix_cache_dir=tmp_path, speeds={"ebike": 10.0})
    assert slower.network_id != first.network_id
    assert (slower.matrix(POINTS, "ebike").durations[0, 1:] > computed.durations[0, 1:]).all()
    assert len(list(tmp_path.glob("*.npz"))) == 2


def test_damaged_cache_file_is_a_miss(tmp_path):
    cache = MatrixCache(directory=tmp_path)
    (tmp_path / "abc.npz").write_bytes(b"not a numpy archive")
    assert cache.get("abc") is None and cache.misses == 1
