"""The column-wise house index (solver.geo.houseindex) inside the gazetteer and its store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from solver.geo.gazetteer import Gazetteer
from solver.geo.gazetteerstore import stored_gazetteer
from solver.geo.houseindex import HouseIndex
from solver.geo.osmfile import AddressPoint
from solver.geo.synthetic import synthetic_city

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def town():
    return synthetic_city(24, seed=4)


def _key(result):
    return None if result is None else (result.location, result.confidence, result.precision, result.matched,
                                        result.house_number)


def test_duplicate_houses_give_the_mean_of_their_points_in_the_order_they_came():
    points = [
        AddressPoint("Rue A", "7", 1.0, 2.0),
        AddressPoint("Rue B", "7", 9.0, 9.0),
        AddressPoint("Rue A", "7号", 1.1, 2.3),  # same key as "7"
        AddressPoint("Rue A", "9", 5.0, 5.0),
        AddressPoint("Rue A", "7", 0.7, 2.6),
    ]
    index = HouseIndex.build(iter(points))
    assert len(index) == 3 and index.streets == ("Rue A", "Rue B")
    assert index.point("Rue A", "7") == ((1.0 + 1.1 + 0.7) / 3, (2.0 + 2.3 + 2.6) / 3)
    assert index.point("Rue B", "7") == (9.0, 9.0)
    assert index.point("Rue B", "9") is None and index.point("Rue C", "7") is None
    numbers, where = index.numbered("Rue A")
    assert numbers.tolist() == [7, 9] and where.tolist() == [[1.0, 2.0], [5.0, 5.0]]  # 7: its first point
    assert index.street_centre("Rue B") == (9.0, 9.0)
    assert index.extent.tolist() == [0.7, 2.0, 9.0, 9.0]


def test_an_empty_index_finds_nothing():
    index = HouseIndex.build([])
    assert len(index) == 0 and index.point("Rue A", "1") is None and index.numbered("Rue A") is None


def test_street_known_only_from_its_houses_resolves_to_their_centre(town):
    houses = [AddressPoint("无名路", str(n), 31.2 + n * 1e-4, 121.4 + n * 2e-4) for n in (1, 3, 11)]
    gaz = Gazetteer(town.graph, addresses=houses, districts=town.districts)
    exact = gaz.geocode("无名路3号")
    assert exact.precision == "exact" and exact.location.lat == pytest.approx(31.2003)
    between = gaz.geocode("无名路7号")  # between 3 and 11 on the odd side
    assert between.precision == "street" and between.location.lat == pytest.approx(31.2007)
    street = gaz.geocode("无名路")
    assert street.location.lat == pytest.approx(31.2 + 5e-4) and street.location.lon == pytest.approx(121.4 + 1e-3)


def test_streamed_house_points_geocode_like_a_list(town):
    listed = Gazetteer(town.graph, addresses=town.address_points(every=2), districts=town.districts)
    streamed = Gazetteer(town.graph, addresses=town.iter_address_points(every=2), districts=town.districts)
    assert listed.house_count == streamed.house_count == town.house_point_count(every=2)
    texts = [a.text for a in town.addresses(150, seed=3)]
    assert [_key(listed.geocode(t)) for t in texts] == [_key(streamed.geocode(t)) for t in texts]
    assert sum(listed.geocode(t).precision == "exact" for t in texts) > 30


def test_stored_houses_are_memory_mapped_files_and_answer_the_same(town, tmp_path):
    built = Gazetteer(town.graph, addresses=town.address_points(), districts=town.districts)
    stored_gazetteer("town", lambda: built, store_dir=tmp_path)
    folders = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert len(folders) == 1 and len(list(folders[0].glob("*.npy"))) >= 3
    script = f"""
import sys
import numpy as np
from solver.geo.gazetteerstore import stored_gazetteer
def refuse():
    raise SystemExit("built again")
gaz = stored_gazetteer("town", refuse, store_dir={str(tmp_path)!r})
print(isinstance(gaz._houses.group_first, np.memmap), gaz.house_count)
for text in sys.stdin.read().splitlines():
    r = gaz.geocode(text)
    print(r.location.lat, r.location.lon, r.confidence, r.precision)
"""
    texts = [a.text for a in town.addresses(100, seed=8)]
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, input="\n".join(texts), capture_output=True,
                         text=True, check=True)
    lines = run.stdout.splitlines()
    assert lines[0] == f"True {built.house_count}"
    expected = []
    for text in texts:
        r = built.geocode(text)
        expected.append(f"{r.location.lat} {r.location.lon} {r.confidence} {r.precision}")
    assert lines[1:] == expected


def test_storing_again_replaces_the_arrays_folder(town, tmp_path):
    gaz = Gazetteer(town.graph, addresses=town.address_points(every=4), districts=town.districts)
    stored_gazetteer("town", lambda: gaz, store_dir=tmp_path)
    first = {p.name for p in tmp_path.iterdir()}
    next(tmp_path.glob("*.pickle")).unlink()  # as if a newer build were due
    again = stored_gazetteer("town", lambda: gaz, store_dir=tmp_path)
    second = {p.name for p in tmp_path.iterdir()}
    assert len(first) == len(second) == 2 and first != second
    assert not [name for name in second if name.startswith(".")]
    assert again.house_count == gaz.house_count
    loaded = stored_gazetteer("town", lambda: pytest.fail("built again"), store_dir=tmp_path)
    assert np.array_equal(loaded._houses.group_first, gaz._houses.group_first)


def test_synthetic_house_points_stand_where_house_location_puts_them(town):
    points = list(town.iter_address_points(every=5))
    assert len(points) == town.house_point_count(every=5) > 1000
    for p in points[::97]:
        loc = town.house_location(p.street, int(p.housenumber))
        assert (p.lat, p.lon) == (loc.lat, loc.lon)
