"""Offline street gazetteer on the bundled Shanghai extract (solver.geo.gazetteer)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from solver.config import bundled_map_path
from solver.geo.address import western_house_number
from solver.geo.gazetteer import (
    DISTRICT_CONFIDENCE,
    EXACT_CONFIDENCE,
    STREET_CONFIDENCE,
    STREET_NUMBER_CONFIDENCE,
    Gazetteer,
    GeocodeResult,
    load_bundled_gazetteer,
    normalize_text,
    parse_address,
)
from solver.model import Location
from solver.travel import haversine_m
from tests.osmreads import recorded_reads


@pytest.fixture(scope="module")
def gaz() -> Gazetteer:
    return Gazetteer.from_osm(bundled_map_path())


def _xy(points: np.ndarray, lat0: float) -> np.ndarray:
    r = 6_371_008.8
    return np.column_stack(
        [np.radians(points[:, 1]) * r * math.cos(math.radians(lat0)), np.radians(points[:, 0]) * r]
    )


def distance_to_street_m(gaz: Gazetteer, name: str, point: Location) -> float:
    """Distance from ``point`` to the nearest segment of the street's geometry."""
    best = math.inf
    for line in gaz.street(name).lines:
        xy = _xy(np.asarray(line, dtype=float), point.lat)
        p = _xy(np.array([[point.lat, point.lon]]), point.lat)[0]
        a, b = xy[:-1], xy[1:]
        ab = b - a
        t = np.clip(((p - a) * ab).sum(axis=1) / np.maximum((ab * ab).sum(axis=1), 1e-12), 0, 1)
        best = min(best, float(np.hypot(*(a + t[:, None] * ab - p).T).min()))
    return best


def closest_approach(gaz: Gazetteer, first: str, second: str) -> Location:
    """Where the vertices of two streets' geometries come closest (midpoint)."""
    pa = np.array([p for line in gaz.street(first).lines for p in line])
    pb = np.array([p for line in gaz.street(second).lines for p in line])
    xa, xb = _xy(pa, pa[0, 0]), _xy(pb, pa[0, 0])
    gaps = np.hypot(xa[:, None, 0] - xb[None, :, 0], xa[:, None, 1] - xb[None, :, 1])
    i, j = np.unravel_index(np.argmin(gaps), gaps.shape)
    return Location(lat=(pa[i, 0] + pb[j, 0]) / 2, lon=(pa[i, 1] + pb[j, 1]) / 2)


def inside_map(gaz: Gazetteer, loc: Location) -> bool:
    south, west, north, east = gaz.bounds
    return south <= loc.lat <= north and west <= loc.lon <= east


def test_bundled_gazetteer_is_cached():
    assert load_bundled_gazetteer() is load_bundled_gazetteer()


def test_street_index(gaz):
    names = gaz.street_names()
    assert len(names) > 100 and "西藏中路" in names and "福州路" in names
    street = gaz.street("西藏中路")
    assert street.length_m > street.spine_length_m > 1000  # divided road: two carriageways
    assert len(street.lines) >= 2
    with pytest.raises(KeyError):
        gaz.street("不存在路")


def test_street_with_number(gaz):
    result = gaz.geocode("西藏中路45号")
    assert isinstance(result, GeocodeResult)
    assert result.matched == "西藏中路"
    assert result.precision == "street"
    assert result.house_number == "45号"
    assert 0 < result.confidence <= STREET_NUMBER_CONFIDENCE
    assert result.location.crs == "wgs84"
    assert result.location == gaz.point_on_street("西藏中路", gaz.fraction_for_number("西藏中路", 45))
    assert distance_to_street_m(gaz, "西藏中路", result.location) < 1
    assert inside_map(gaz, result.location)


def test_numbers_run_along_the_street(gaz):
    spine = gaz.street("西藏中路").spine
    assert spine[0][0] < spine[-1][0]  # north-south street: numbered from the south
    fuzhou = gaz.street("福州路").spine
    assert fuzhou[0][1] > fuzhou[-1][1]  # east-west street: numbered from the east
    fractions = [gaz.fraction_for_number("西藏中路", n) for n in (1, 20, 100, 200, 10_000)]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    start = Location(lat=spine[0][0], lon=spine[0][1])
    near = gaz.geocode("西藏中路2号").location
    far = gaz.geocode("西藏中路200号").location
    assert haversine_m(start, near) < haversine_m(start, far)
    assert haversine_m(gaz.point_on_street("西藏中路", 0.0), start) < 0.01


def test_full_width_digits(gaz):
    assert gaz.geocode("西藏中路１２３号") == gaz.geocode("西藏中路123号")
    assert gaz.geocode("西藏中路１２３号").house_number == "123号"


@pytest.mark.parametrize(
    "text",
    ["上海市黄浦区西藏中路45号", "上海黄浦区西藏中路45号", "中国上海市黄浦区西藏中路 45 号 3楼", "黄浦区西藏中路45号601室"],
)
def test_administrative_prefixes_and_details_are_ignored(gaz, text):
    result = gaz.geocode(text)
    assert result is not None and result.matched == "西藏中路"
    assert result.location == gaz.geocode("西藏中路45号").location
    assert result.house_number == "45号"


def test_street_named_like_a_city_is_not_stripped(gaz):
    result = gaz.geocode("重庆中路12号")
    assert result is not None and result.matched == "重庆中路"


def test_lane_address(gaz):
    result = gaz.geocode("人民路100弄5号601室")
    assert result is not None and result.matched == "人民路"
    assert result.house_number == "100弄5号"
    assert result.location == gaz.point_on_street("人民路", gaz.fraction_for_number("人民路", 100))


def test_street_without_number_is_its_midpoint(gaz):
    result = gaz.geocode("福州路")
    assert result is not None and result.precision == "street" and result.house_number is None
    assert result.confidence <= STREET_CONFIDENCE
    assert result.location == gaz.point_on_street("福州路", 0.5)


@pytest.mark.parametrize(
    "text",
    ["西藏中路与福州路交叉口", "西藏中路与福州路路口", "西藏中路 & 福州路", "西藏中路 and 福州路", "上海市西藏中路与福州路"],
)
def test_intersection(gaz, text):
    result = gaz.geocode(text)
    assert result is not None and result.precision == "intersection"
    assert set(result.matched.split("/")) == {"西藏中路", "福州路"}
    assert haversine_m(result.location, closest_approach(gaz, "西藏中路", "福州路")) < 50
    assert inside_map(gaz, result.location)
    assert result.location == gaz.geocode("福州路与西藏中路交叉口").location


def test_fuzzy_match_of_a_typo(gaz):
    exact = gaz.geocode("西藏中路45号")
    typo = gaz.geocode("西臧中路45号")  # 臧 for 藏: one character off
    assert typo is not None and typo.matched == "西藏中路"
    assert typo.location == exact.location
    assert 0 < typo.confidence < exact.confidence


def test_fuzzy_match_keeps_the_direction(gaz):
    # 南京东路 is not in the extract; 南京西路 and 北京东路 are different roads.
    assert gaz.geocode("南京东路123号") is None


@pytest.mark.parametrize("text", ["asdfgh qwerty", "今天天气很好", "12345", "上海市"])
def test_gibberish_is_not_geocoded(gaz, text):
    assert gaz.geocode(text) is None


@pytest.mark.parametrize("text", ["上海市黄浦区", "上海市黄浦区不存在路88号", "黄浦区某某小区3号楼"])
def test_district_only_is_a_flagged_district_result(text):
    gaz = load_bundled_gazetteer()
    result = gaz.geocode(text)
    assert result is not None and result.precision == "district" and result.matched == "黄浦区"
    assert result.confidence == DISTRICT_CONFIDENCE and result.flagged
    # The bundled map is central Huangpu: the district seat is a few hundred metres from it.
    assert haversine_m(result.location, Location(lat=31.2304, lon=121.4737)) < 3_000


def test_the_most_specific_district_wins():
    result = load_bundled_gazetteer().geocode("上海市静安区不存在路88号")
    assert result.matched == "静安区" and result.precision == "district"


def test_a_known_street_beats_the_district():
    result = load_bundled_gazetteer().geocode("上海市静安区西藏中路45号")  # wrong district, real street
    assert result.precision == "street" and result.matched == "西藏中路" and not result.flagged


def test_street_results_are_stamped_and_not_flagged(gaz):
    result = gaz.geocode("西藏中路45号")
    assert result.provider == "gazetteer" and not result.flagged and result.geocoded_at is not None
    fuzzy_midpoint = gaz.geocode("西臧中路")  # typo and no number: 0.6 × 0.75 < 0.5
    assert fuzzy_midpoint.confidence < 0.5 and fuzzy_midpoint.flagged


@pytest.mark.parametrize("text", ["", "   ", "\u3000"])
def test_empty_text_is_an_error(gaz, text):
    with pytest.raises(ValueError, match="empty"):
        gaz.geocode(text)


def test_every_street_geocodes_inside_the_map(gaz):
    for name in gaz.street_names():
        result = gaz.geocode(f"{name}8号")
        assert result is not None and result.matched == name, name
        assert result.location == gaz.point_on_street(name, gaz.fraction_for_number(name, 8))
        assert inside_map(gaz, result.location)


def test_normalize_and_parse():
    assert normalize_text("　西藏中路　４５号Ａ座 ") == "西藏中路 45号A座"
    parsed = parse_address("上海市黄浦区人民路100弄5号601室")
    assert parsed.streets == ("人民路",) and parsed.house_number == "100弄5号" and parsed.number == 100
    assert parse_address("西藏中路与福州路交叉口").streets == ("西藏中路", "福州路")
    assert parse_address("西藏中路45").number == 45


def test_parse_keeps_the_administrative_parts():
    parsed = parse_address("中国上海市黄浦区外滩街道西藏中路45号")
    assert parsed.admin == ("上海市", "黄浦区", "外滩街道") and parsed.streets == ("西藏中路",)


@pytest.mark.parametrize(
    ("text", "street", "expected"),
    [("7 Avenue Princesse Grace", "Avenue Princesse Grace", ("7", 7)),
     ("Avenue Princesse Grace 7, 98000 Monaco", "Avenue Princesse Grace", ("7", 7)),
     ("12b, rue Grimaldi", "Rue Grimaldi", ("12b", 12)),
     ("Rue Grimaldi, 98000 Monaco", "Rue Grimaldi", None)],
)
def test_western_house_numbers(text, street, expected):
    assert western_house_number(text, street) == expected


# --------------------------------------------------------------------------- #
# An addressed extract: Monaco (houses, named places, quarters)
# --------------------------------------------------------------------------- #
MONACO = Path(__file__).resolve().parents[2] / "shared" / "maps" / "monaco.osm.pbf"


@pytest.fixture(scope="module")
def monaco(tmp_path_factory) -> tuple[Gazetteer, list]:
    """Monaco converted from PBF to OSM XML with pyosmium, then read as XML (the product's path)."""
    osmium = pytest.importorskip("osmium")
    if not MONACO.is_file():
        pytest.skip("shared/maps is not beside the repository")
    xml = tmp_path_factory.mktemp("monaco") / "monaco.osm"
    with osmium.SimpleWriter(str(xml)) as writer:
        for obj in osmium.FileProcessor(str(MONACO)):
            writer.add(obj)
    # the houses expected are those of the extract that from_osm reads (its one read_osm call)
    import solver.geo.gazetteer as gazetteer_module

    with recorded_reads(gazetteer_module) as read:
        gaz = Gazetteer.from_osm(xml)
    (data,) = read
    assert Path(data.source) == xml
    return gaz, data.address_points()


def test_houses_of_the_extract_are_exact(monaco):
    gaz, houses = monaco
    assert gaz.house_count > 250
    house = next(h for h in houses if h.street == "Avenue Princesse Grace" and h.housenumber == "7")
    target = Location(lat=house.lat, lon=house.lon)
    for text in ("Avenue Princesse Grace 7, Monaco", "7 avenue Princesse-Grace", "7, AVENUE PRINCESSE GRACE"):
        result = gaz.geocode(text)
        assert result.precision == "exact" and result.house_number == "7", text
        assert result.confidence >= EXACT_CONFIDENCE * 0.9 and not result.flagged
        assert haversine_m(result.location, target) < 20, text


def test_every_house_of_the_extract_is_found_where_it_is(monaco):
    gaz, houses = monaco
    misses = []
    for house in houses:
        result = gaz.geocode(f"{house.housenumber} {house.street}")
        if result is None or result.precision != "exact" or haversine_m(
            result.location, Location(lat=house.lat, lon=house.lon)
        ) > 50:
            misses.append((house.street, house.housenumber))
    assert len(misses) <= 0.05 * len(houses), misses[:10]


def test_missing_number_is_interpolated_between_neighbours(monaco):
    gaz, houses = monaco
    numbers = sorted(int(h.housenumber) for h in houses
                     if h.street == "Boulevard Princesse Charlotte" and h.housenumber.isdigit())
    gap = next(n for n in range(numbers[0] + 2, numbers[-1], 2) if n not in numbers)
    lower = max(n for n in numbers if n < gap and n % 2 == gap % 2)
    upper = min(n for n in numbers if n > gap and n % 2 == gap % 2)
    result = gaz.geocode(f"Boulevard Princesse Charlotte {gap}")
    assert result.precision == "street" and result.house_number == str(gap)

    def point(n):
        h = next(h for h in houses if h.street == "Boulevard Princesse Charlotte" and h.housenumber == str(n))
        return Location(lat=h.lat, lon=h.lon)

    # On the segment between the two neighbours of the same parity.
    a, b = point(lower), point(upper)
    assert haversine_m(a, result.location) + haversine_m(result.location, b) == pytest.approx(
        haversine_m(a, b), abs=1)


def test_named_places_and_quarters(monaco):
    gaz, _ = monaco
    assert "Casino de Monte-Carlo" in gaz.place_names() or "Casino de Monte Carlo" in gaz.place_names()
    casino = gaz.geocode("Casino de Monte Carlo")
    assert casino.precision == "exact" and casino.confidence >= 0.8
    hotel = gaz.geocode("Hotel de Paris")  # accents are not needed
    assert hotel.matched == "Hôtel de Paris" and hotel.precision == "exact"
    assert haversine_m(casino.location, hotel.location) < 300  # both on Place du Casino
    quarter = gaz.geocode("La Condamine")
    assert quarter.precision == "district" and quarter.flagged
    assert "Monte-Carlo" in gaz.district_names()


def test_intersection_in_english(monaco):
    gaz, _ = monaco
    result = gaz.geocode("Rue Grimaldi and Rue Princesse Caroline")
    assert result.precision == "intersection"
    assert set(result.matched.split("/")) == {"Rue Grimaldi", "Rue Princesse Caroline"}
