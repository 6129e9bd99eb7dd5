"""Stored indexes (solver.geo.network.store, solver.geo.gazetteerstore) on the bundled extract."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np
import pytest

from solver.config import bundled_map_path
from solver.geo.gazetteer import Gazetteer
from solver.geo.gazetteerstore import stored_gazetteer
from solver.geo.loading import load_bundled_graph, load_graph
from solver.geo.network import NetworkStore, RoadNetwork, available_engines, stored_network
from solver.geo.network.store import file_digest, store_key
from solver.model import Location
from tests.forked import run_forked

ROOT = Path(__file__).resolve().parents[1]
MODES = ("drive", "ebike", "walk")


@pytest.fixture(scope="module")
def built() -> RoadNetwork:
    return RoadNetwork(load_bundled_graph())


@pytest.fixture(scope="module")
def points(built: RoadNetwork) -> list[Location]:
    """30 points spread over the map, some off the streets, fixed seed."""
    south, west, north, east = built.bounds
    rng = np.random.default_rng(11)
    return [Location(lat=float(rng.uniform(south, north)), lon=float(rng.uniform(west, east))) for _ in range(30)]


@pytest.fixture(scope="module")
def small_map(tmp_path_factory) -> Path:
    """The bundled extract cut to its central box (the middle 60 % of its nodes each way; the ways
    wholly inside): for the tests of keys and locks, which build a network several times and gain
    nothing from a big one (the bundled map builds in 0.55 s of CPU, this one in 0.18 s)."""
    tree = ET.parse(bundled_map_path())
    root = tree.getroot()
    where = {n.get("id"): (float(n.get("lat", 0)), float(n.get("lon", 0))) for n in root.iter("node")}
    lats, lons = sorted(p[0] for p in where.values()), sorted(p[1] for p in where.values())
    south, north = lats[int(len(lats) * 0.2)], lats[int(len(lats) * 0.8)]
    west, east = lons[int(len(lons) * 0.2)], lons[int(len(lons) * 0.8)]
    inside = {k for k, (lat, lon) in where.items() if south <= lat <= north and west <= lon <= east}
    for child in list(root):
        if child.tag == "relation" or (child.tag == "node" and child.get("id") not in inside) or \
                (child.tag == "way" and not all(nd.get("ref") in inside for nd in child.iter("nd"))):
            root.remove(child)
        elif child.tag == "bounds":
            child.attrib.update(minlat=str(south), maxlat=str(north), minlon=str(west), maxlon=str(east))
    path = tmp_path_factory.mktemp("small-map") / "small.osm"
    tree.write(path, encoding="utf-8", xml_declaration=True)
    return path


def test_the_small_map_is_a_street_network(small_map):
    net = RoadNetwork(load_graph(small_map))
    assert all(net.mode_graph(mode).edge_keys.size > 50 for mode in MODES)


class Counter:
    """A build function that counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> RoadNetwork:
        self.calls += 1
        return RoadNetwork(load_bundled_graph())


def test_second_load_comes_from_the_store_and_prices_the_same(tmp_path, built, points):
    build = Counter()
    first = stored_network(bundled_map_path(), store_dir=tmp_path, build=build)
    (folder,) = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    second = stored_network(bundled_map_path(), store_dir=tmp_path, build=build)
    assert build.calls == 1
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == stamps  # files reused, not rewritten
    assert isinstance(second.mode_graph("drive").edge_keys, np.memmap)  # memory-mapped, shared between processes
    assert second.network_id == first.network_id == built.network_id
    for mode in MODES:
        expected = built.matrix(points, mode)
        got = second.matrix(points, mode)
        np.testing.assert_array_equal(got.durations, expected.durations)
        np.testing.assert_array_equal(got.distances, expected.distances)
        np.testing.assert_array_equal(got.reachable, expected.reachable)
        assert second.snap(points, mode) == built.snap(points, mode)
    assert second.path(points[0], points[1], "drive") == built.path(points[0], points[1], "drive")
    assert second.street_names() == built.street_names()
    assert list(second.street_edges()) == list(built.street_edges())


def test_a_fresh_process_loads_without_building(tmp_path, built, points):
    stored_network(bundled_map_path(), store_dir=tmp_path, build=Counter())
    script = f"""
import json, sys
from solver.config import bundled_map_path
from solver.geo.network import stored_network
from solver.model import Location

def refuse():
    raise SystemExit("built again")

net = stored_network(bundled_map_path(), store_dir={str(tmp_path)!r}, build=refuse)
pts = [Location(lat=lat, lon=lon) for lat, lon in json.loads(sys.argv[1])]
print(json.dumps(net.matrix(pts, "drive").durations.tolist()))
"""
    arg = json.dumps([[p.lat, p.lon] for p in points[:10]])
    out = subprocess.run([sys.executable, "-c", script, arg], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == built.matrix(points[:10], "drive").durations.tolist()


def test_a_changed_map_or_setting_gets_a_new_index(tmp_path, small_map):
    maps = tmp_path / "maps"
    maps.mkdir()
    copy = maps / "city.osm"
    shutil.copy(small_map, copy)
    store = tmp_path / "store"
    stored_network(copy, store_dir=store)
    stored_network(copy, store_dir=store)
    assert len(NetworkStore(store).keys()) == 1
    text = copy.read_text(encoding="utf-8")
    copy.write_text(text.replace("<osm", "<!-- edited -->\n<osm", 1), encoding="utf-8")
    stored_network(copy, store_dir=store)
    assert len(NetworkStore(store).keys()) == 2
    slower = stored_network(copy, store_dir=store, speeds={"ebike": 10.0})
    assert len(NetworkStore(store).keys()) == 3
    assert slower.access_speed_kmh("ebike") == 10.0


def test_settings_are_part_of_the_key(built):
    digest = file_digest(bundled_map_path())
    assert store_key(digest, built.settings) == store_key(digest, json.loads(json.dumps(built.settings)))
    assert store_key(digest, built.settings) != store_key(digest, {**built.settings, "snap_max_m": 100.0})
    assert store_key(digest, built.settings) != store_key("other", built.settings)


def _build_into(osm: str, store_dir: str, out: Connection) -> None:
    """A builder process: load or build the network of ``osm`` in ``store_dir``, send its id."""
    out.send(stored_network(osm, store_dir=store_dir).network_id)


def test_concurrent_builders_leave_one_complete_index(tmp_path, small_map):
    # three processes build at once (forked: a fresh interpreter would add only its imports)
    builders = run_forked(_build_into, [(str(small_map), str(tmp_path))] * 3, timeout_s=300)
    ids = {network_id for network_id, _ in builders if network_id is not None}
    assert all(code == 0 for _, code in builders)
    assert len(ids) == 1
    assert [p.name for p in tmp_path.iterdir()] == NetworkStore(tmp_path).keys()  # no temporary folder left


def test_gazetteer_second_load_comes_from_the_store(tmp_path, small_map):
    calls = []

    def build() -> Gazetteer:
        calls.append(1)
        return Gazetteer.from_osm(small_map)

    first = stored_gazetteer("bundled", build, settings={"v": 1}, store_dir=tmp_path)
    second = stored_gazetteer("bundled", build, settings={"v": 1}, store_dir=tmp_path)
    assert len(calls) == 1 and second is not first
    assert second.street_names() == first.street_names()
    for name in first.street_names()[:20]:
        a, b = first.geocode(f"{name}100号"), second.geocode(f"{name}100号")
        assert (a is None) == (b is None)
        if a is not None and b is not None:
            assert (a.location, a.precision, a.confidence) == (b.location, b.precision, b.confidence)
    stored_gazetteer("bundled", build, settings={"v": 2}, store_dir=tmp_path)
    assert len(calls) == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_plans_say_which_engine_priced_them(tmp_path):
    from solver import solve
    from tests.factories import problem

    net = stored_network(bundled_map_path(), store_dir=tmp_path)
    branch = {"location": {"lat": 31.2305, "lon": 121.4737}}
    visits = [{"id": f"v{i}", "addresses": [{"location": {"lat": 31.2305 + 0.002 * i, "lon": 121.4737}}]}
              for i in range(1, 4)]
    agents = [{"id": "c", "shift": {"start": "08:00", "end": "18:00"}, "start": branch, "travel_mode": "drive"}]
    plan = solve(problem(visits, agents, time_limit_s=1), net)
    assert plan.solver.matrix_engine == net.engine == ("ch" if "ch" in available_engines() else "csgraph")


def test_every_process_builds_the_same_network(built):
    """osmnx stores merged edges' tags as lists in set order (it varies with the
    string hash seed); the network must not, or each process keys another index."""
    script = """
from solver.geo.loading import load_bundled_graph
from solver.geo.network import RoadNetwork
print(RoadNetwork(load_bundled_graph()).network_id)
"""
    # another hash seed than this process's (random, or $PYTHONHASHSEED): string sets iterate in
    # another order there; `built` is this process's own build
    seed = "2" if os.environ.get("PYTHONHASHSEED") == "1" else "1"
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONHASHSEED": seed}, timeout=300)
    assert out.stdout.strip() == built.network_id


def test_a_read_only_store_still_serves_a_network(tmp_path, points, built):
    store = tmp_path / "store"
    store.mkdir()
    store.chmod(0o500)
    try:
        if os.access(store, os.W_OK):  # root ignores permissions
            pytest.skip("cannot make a read-only folder as this user")
        net = stored_network(bundled_map_path(), store_dir=store)
        np.testing.assert_array_equal(net.matrix(points, "walk").durations, built.matrix(points, "walk").durations)
        assert NetworkStore(store).keys() == []
    finally:
        store.chmod(0o700)


def test_a_store_in_place_of_a_file_still_serves_a_network(tmp_path, points, built):
    blocker = tmp_path / "store"
    blocker.write_text("not a folder")
    net = stored_network(bundled_map_path(), store_dir=blocker)
    np.testing.assert_array_equal(net.matrix(points, "walk").durations, built.matrix(points, "walk").durations)
    gaz = stored_gazetteer("x", lambda: Gazetteer.from_osm(bundled_map_path()), store_dir=blocker)
    assert gaz.street_names()
