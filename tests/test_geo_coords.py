"""WGS-84 / GCJ-02 / BD-09 conversions (solver.geo.coords)."""

from __future__ import annotations

import pytest

from solver.geo.coords import (
    bd09_to_gcj02,
    bd09_to_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    location_from,
    out_of_china,
    to_wgs84,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)
from solver.model import Location
from solver.travel import haversine_m

PEOPLES_SQUARE = (31.2304, 121.4737)  # WGS-84, central Shanghai


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    return haversine_m(Location(lat=a[0], lon=a[1]), Location(lat=b[0], lon=b[1]))


def test_shanghai_offset_has_the_published_size_and_direction():
    lat, lon = wgs84_to_gcj02(*PEOPLES_SQUARE)
    assert lon - PEOPLES_SQUARE[1] == pytest.approx(0.0045, abs=0.0005)  # east
    assert lat - PEOPLES_SQUARE[0] == pytest.approx(-0.0020, abs=0.0005)  # south
    assert 300 < metres((lat, lon), PEOPLES_SQUARE) < 700


def test_beijing_published_pair():
    # Tiananmen: a widely quoted WGS-84 / GCJ-02 pair.
    assert metres(wgs84_to_gcj02(39.90872, 116.39748), (39.91012, 116.40372)) < 5


@pytest.mark.parametrize("point", [PEOPLES_SQUARE, (39.9087, 116.3975), (22.5431, 114.0579), (43.8171, 125.3235)])
def test_gcj02_round_trips_both_ways(point):
    assert metres(gcj02_to_wgs84(*wgs84_to_gcj02(*point)), point) < 1
    assert metres(wgs84_to_gcj02(*gcj02_to_wgs84(*point)), point) < 1


def test_gcj02_inverse_is_iterative_not_one_step():
    gcj = wgs84_to_gcj02(*PEOPLES_SQUARE)
    assert metres(gcj02_to_wgs84(*gcj), PEOPLES_SQUARE) < 0.01
    # The one-step approximation is visibly worse; the iteration must beat it.
    fwd = wgs84_to_gcj02(*gcj)
    one_step = (2 * gcj[0] - fwd[0], 2 * gcj[1] - fwd[1])
    assert metres(one_step, PEOPLES_SQUARE) > metres(gcj02_to_wgs84(*gcj), PEOPLES_SQUARE)


@pytest.mark.parametrize("point", [PEOPLES_SQUARE, (39.9087, 116.3975)])
def test_bd09_round_trips_both_ways(point):
    assert metres(bd09_to_gcj02(*gcj02_to_bd09(*point)), point) < 0.01
    assert metres(gcj02_to_bd09(*bd09_to_gcj02(*point)), point) < 0.01
    assert metres(bd09_to_wgs84(*wgs84_to_bd09(*point)), point) < 1
    assert metres(wgs84_to_bd09(*bd09_to_wgs84(*point)), point) < 1


def test_bd09_is_further_north_east_than_gcj02():
    gcj = wgs84_to_gcj02(*PEOPLES_SQUARE)
    bd = wgs84_to_bd09(*PEOPLES_SQUARE)
    assert bd[0] > gcj[0] and bd[1] > gcj[1]
    assert 500 < metres(bd, gcj) < 1500


@pytest.mark.parametrize("point", [(51.5007, -0.1246), (40.6892, -74.0445), (-33.8568, 151.2153)])
def test_out_of_china_gcj_equals_wgs(point):
    assert out_of_china(*point)
    assert wgs84_to_gcj02(*point) == point
    assert gcj02_to_wgs84(*point) == point
    assert to_wgs84(Location(lat=point[0], lon=point[1], crs="gcj02")) == Location(lat=point[0], lon=point[1])


def test_to_wgs84_converts_tagged_locations():
    wgs = Location(lat=PEOPLES_SQUARE[0], lon=PEOPLES_SQUARE[1])
    assert to_wgs84(wgs) is wgs
    gcj_lat, gcj_lon = wgs84_to_gcj02(*PEOPLES_SQUARE)
    from_gcj = to_wgs84(Location(lat=gcj_lat, lon=gcj_lon, crs="gcj02"))
    assert from_gcj.crs == "wgs84" and haversine_m(from_gcj, wgs) < 0.01
    bd_lat, bd_lon = wgs84_to_bd09(*PEOPLES_SQUARE)
    from_bd = to_wgs84(Location(lat=bd_lat, lon=bd_lon, crs="bd09"))
    assert from_bd.crs == "wgs84" and haversine_m(from_bd, wgs) < 0.01


@pytest.mark.parametrize("crs", ["GCJ-02", "gcj02", "mars"])
def test_location_from_converts_any_spelling(crs):
    gcj = wgs84_to_gcj02(*PEOPLES_SQUARE)
    loc = location_from(gcj[0], gcj[1], crs)
    assert loc.crs == "wgs84" and metres((loc.lat, loc.lon), PEOPLES_SQUARE) < 0.01
    bd = wgs84_to_bd09(*PEOPLES_SQUARE)
    from_bd = location_from(*bd, "BD-09")
    assert metres((from_bd.lat, from_bd.lon), PEOPLES_SQUARE) < 0.01


@pytest.mark.parametrize(
    ("args", "message"),
    [((121.47, 31.23), r"latitude 121.47 is out of range \[-90, 90\] \(latitude and longitude swapped\?\)"),
     ((31.23, 200.0), r"longitude 200.0 is out of range"),
     ((31.23, 121.47, "EPSG:3857"), r"unknown coordinate system 'EPSG:3857'; use wgs84, gcj02 or bd09"),
     ((31.23, 121.47, "bd09mc"), r"unknown coordinate system 'bd09mc'"),
     ((float("nan"), 121.47), r"must be finite"),
     (("north", 121.47), r"must be numbers")],
)
def test_bad_coordinates_are_clear_errors(args, message):
    with pytest.raises(ValueError, match=message):
        location_from(*args)
