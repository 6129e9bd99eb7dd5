"""The demo-day generator: deterministic, realistic, valid."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from solver.config import default_skill_catalogue
from solver.demo import (
    DEFAULT_DATE,
    bucket_of,
    generate_day,
    main,
    priority_from,
    write_problem_json,
)
from solver.model import Problem

#: Bounds of the bundled extract (lon 121.4611–121.4863, lat 31.2196–31.2412).
MIN_LON, MAX_LON, MIN_LAT, MAX_LAT = 121.4611, 121.4863, 31.2196, 31.2412


@pytest.fixture(scope="session")
def gazetteer():
    from solver.geo.gazetteer import load_bundled_gazetteer

    return load_bundled_gazetteer()


def day(seed: int = 0, visits: int = 80, crews: int = 10, date: dt.date | None = None) -> Problem:
    return generate_day(seed, visits, crews, date)


@pytest.fixture(scope="module")
def default_day() -> Problem:
    return day()


def as_json(problem: Problem) -> str:
    return problem.model_dump_json()


# --------------------------------------------------------------------------- #
# Determinism and counts
# --------------------------------------------------------------------------- #
def test_same_seed_same_problem(default_day):
    assert as_json(day()) == as_json(default_day)


def test_different_seeds_differ(default_day):
    assert as_json(day(seed=1)) != as_json(default_day)


def test_global_random_is_left_alone(default_day):
    import random

    random.seed(123)
    expected = random.random()
    random.seed(123)
    day(seed=5, visits=10, crews=3)
    assert random.random() == expected


@pytest.mark.parametrize(("visits", "crews"), [(80, 10), (30, 8), (120, 12), (0, 1)])
def test_counts_match_arguments(visits, crews):
    problem = day(seed=2, visits=visits, crews=crews)
    assert len(problem.visits) == visits
    assert len(problem.agents) == crews
    assert [a.id for a in problem.agents] == [f"crew-{k:02d}" for k in range(1, crews + 1)]
    assert len({v.id for v in problem.visits}) == visits
    assert len({v.case_id for v in problem.visits}) == visits


def test_default_date_is_fixed(default_day):
    assert default_day.date == DEFAULT_DATE == dt.date(2026, 12, 1)
    assert default_day.timezone == "Asia/Shanghai"
    assert day(date=dt.date(2027, 3, 6), visits=5, crews=2).date == dt.date(2027, 3, 6)


def test_bad_arguments():
    with pytest.raises(ValueError):
        day(visits=-1)
    with pytest.raises(ValueError):
        day(crews=0)


# --------------------------------------------------------------------------- #
# Validity
# --------------------------------------------------------------------------- #
def test_problem_round_trips_through_json(default_day, tmp_path):
    payload = default_day.model_dump(mode="json")
    assert Problem.model_validate(payload) == default_day
    path = write_problem_json(default_day, tmp_path / "day.json")
    text = path.read_text(encoding="utf-8")
    assert "上海市黄浦区" in text  # written as UTF-8, not escaped
    assert Problem.model_validate_json(text) == default_day
    assert Problem.model_validate(json.loads(text)).model_dump() == default_day.model_dump()


def test_command_line(tmp_path, capsys):
    main(["--seed", "3", "--visits", "12", "--crews", "4", str(tmp_path / "d.json")])
    problem = Problem.model_validate_json((tmp_path / "d.json").read_text(encoding="utf-8"))
    assert len(problem.visits) == 12 and len(problem.agents) == 4
    assert "12 visits" in capsys.readouterr().out


def _all_locations(problem: Problem):
    for visit in problem.visits:
        for address in visit.addresses:
            yield address.location
    for agent in problem.agents:
        yield agent.start.location
        if agent.end is not None:
            yield agent.end.location


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_locations_inside_the_map(seed):
    for loc in _all_locations(day(seed=seed)):
        assert loc is not None and loc.crs == "wgs84"
        assert MIN_LON <= loc.lon <= MAX_LON and MIN_LAT <= loc.lat <= MAX_LAT, loc


def test_every_visit_skill_is_held_by_a_crew(default_day):
    held = set().union(*(a.skills for a in default_day.agents))
    catalogue = set(default_skill_catalogue())
    assert held <= catalogue
    for seed in range(5):
        problem = day(seed=seed, crews=8)
        held = set().union(*(a.skills for a in problem.agents))
        for visit in problem.visits:
            assert set(visit.skills) <= held & catalogue, visit.id
    assert any(v.skills for v in default_day.visits)


def test_appointments_lie_inside_an_address_window():
    booked = 0
    for seed in range(5):
        problem = day(seed=seed)
        for visit in problem.visits:
            if visit.appointment is None:
                continue
            booked += 1
            lo, hi = problem.window_seconds(visit.appointment)
            assert hi - lo == 3600
            assert lo >= 9 * 3600 and hi <= 18 * 3600
            inside = False
            for address in visit.addresses:
                if not address.usable:
                    continue
                windows = [problem.window_seconds(w) for w in address.time_windows]
                if not windows or any(a <= lo and hi <= b for a, b in windows):
                    inside = True
            assert inside, visit.id
    assert booked > 0


def test_hard_visits_share(default_day):
    appointments = sum(v.appointment is not None for v in default_day.visits)
    required = sum(v.required for v in default_day.visits)
    assert appointments == round(80 * 0.08) and required == round(80 * 0.05)
    assert all(not v.skills for v in default_day.visits if v.is_hard)


def test_home_visits_need_two_collectors():
    for seed in range(3):
        for visit in day(seed=seed).visits:
            if any(a.kind == "home" for a in visit.addresses):
                assert visit.crew_size == 2, visit.id
            else:
                assert visit.crew_size in (1, 2)


# --------------------------------------------------------------------------- #
# Realism
# --------------------------------------------------------------------------- #
def test_addresses(default_day):
    visits = default_day.visits
    both = sum(len(v.addresses) == 2 for v in visits)
    assert 0.25 * len(visits) <= both <= 0.65 * len(visits)
    work = [a for v in visits for a in v.addresses if a.kind == "work"]
    assert all(
        [(w.start, w.end) for w in a.time_windows] == [(dt.time(9), dt.time(12)), (dt.time(13, 30), dt.time(18))]
        for a in work
    )
    assert any(not a.usable for a in work)
    for visit in visits:
        assert any(a.usable for a in visit.addresses), visit.id
        for address in visit.addresses:
            assert address.text.startswith("上海市黄浦区") and address.text.endswith(("号", "室"))
            assert address.kind in ("home", "work")


def test_borrowers_and_purpose(default_day):
    for visit in default_day.visits:
        assert visit.borrower.name and 2 <= len(visit.borrower.name) <= 3
        phone = visit.borrower.phone
        assert len(phone) == 11 and phone[0] == "1" and phone[1] in "3456789" and phone.isdigit()
        assert visit.case_id.startswith("C2026-") and len(visit.case_id) == 12
        bucket, rest = visit.purpose.split(" 催收 / 逾期", 1)
        days = int(rest.split("天", 1)[0])
        assert bucket == bucket_of(days)
        assert "元" not in visit.purpose and "CNY" not in visit.purpose
        assert 20 <= visit.duration_min <= 60
        assert 0 <= visit.priority <= 100


def test_crews(default_day):
    agents = default_day.agents
    modes = [a.travel_mode for a in agents]
    assert modes.count("ebike") > len(agents) / 2 and 1 <= modes.count("drive") <= 2 and "walk" in modes
    shifts = {(a.shift.start, a.shift.end) for a in agents}
    assert shifts <= {(dt.time(8, 30), dt.time(17, 30)), (dt.time(9), dt.time(18)), (dt.time(12), dt.time(21))}
    assert (dt.time(12), dt.time(21)) in shifts
    branches = {a.start.text for a in agents}
    assert 2 <= len(branches) <= 3
    for agent in agents:
        assert len(agent.members) == 2 and agent.crew_size == 2
        assert agent.end is None and not agent.open_end  # back to the branch
        assert agent.start.text.endswith("支行)") and agent.start.location is not None
        assert 8 <= agent.max_visits <= 12
        (brk,) = agent.breaks
        if agent.shift.start == dt.time(12):
            assert (brk.window.start, brk.window.end) == (dt.time(17, 30), dt.time(19))
        else:
            assert (brk.window.start, brk.window.end) == (dt.time(11, 30), dt.time(13, 30))
            assert 45 <= brk.duration_min <= 60


def test_weekend_homes_have_day_windows():
    saturday = day(date=dt.date(2026, 12, 5))
    windows = {
        tuple((w.start, w.end) for w in a.time_windows)
        for v in saturday.visits for a in v.addresses if a.kind == "home"
    }
    assert ((dt.time(9), dt.time(12)), (dt.time(14), dt.time(20))) in windows


def test_addresses_geocode_to_their_points(default_day, gazetteer):
    """The offline gazetteer reads each generated text back to its point,
    lane (弄) addresses and branch offices included."""
    places = [a for v in default_day.visits for a in v.addresses] + [a.start for a in default_day.agents]
    assert any("弄" in p.text for p in places) and any("支行" in p.text for p in places)
    for place in places:
        found = gazetteer.geocode(place.text)
        assert found is not None, place.text
        assert found.location.lat == pytest.approx(place.location.lat, abs=1e-6), place.text
        assert found.location.lon == pytest.approx(place.location.lon, abs=1e-6), place.text


def test_streets_used_are_real_and_addressable(default_day, gazetteer):
    streets = set(gazetteer.street_names())
    used = set()
    for visit in default_day.visits:
        for address in visit.addresses:
            found = gazetteer.geocode(address.text)
            used.add(found.matched)
    assert used <= streets and len(used) > 20
    assert not any(bad in s for s in used for bad in ("隧道", "高架"))


def test_explicit_gazetteer_is_used(gazetteer):
    class Spy:
        calls = 0

        def street_names(self):
            return gazetteer.street_names()

        def fraction_for_number(self, street, number):
            return gazetteer.fraction_for_number(street, number)

        def point_on_street(self, name, fraction):
            Spy.calls += 1
            return gazetteer.point_on_street(name, fraction)

    problem = generate_day(4, visits=10, crews=3, gazetteer=Spy())
    assert Spy.calls >= 10
    assert problem.model_dump_json() == day(seed=4, visits=10, crews=3).model_dump_json()


# --------------------------------------------------------------------------- #
# Priority
# --------------------------------------------------------------------------- #
def test_buckets():
    assert [bucket_of(d) for d in (1, 30, 31, 60, 61, 400)] == ["M1", "M1", "M2", "M2", "M3+", "M3+"]


def test_priority_range_and_examples():
    assert priority_from(0, 0, 0) == 0
    assert priority_from(400, 10**7, 9) == 100
    assert priority_from(10, 5_000, 0) < priority_from(45, 50_000, 1) < priority_from(120, 200_000, 3)


def test_priority_monotone_in_each_input():
    days = [0, 1, 15, 30, 31, 45, 60, 61, 90, 180, 365]
    amounts = [0, 999, 3_000, 10_000, 50_000, 300_000, 2_000_000]
    promises = [0, 1, 2, 3, 5]
    for a in amounts:
        for b in promises:
            values = [priority_from(d, a, b) for d in days]
            assert values == sorted(values)
    for d in days:
        for b in promises:
            values = [priority_from(d, a, b) for a in amounts]
            assert values == sorted(values)
        for a in amounts:
            values = [priority_from(d, a, b) for b in promises]
            assert values == sorted(values)
    # and each input matters
    assert priority_from(61, 10_000, 0) > priority_from(60, 10_000, 0)
    assert priority_from(20, 100_000, 0) > priority_from(20, 10_000, 0)
    assert priority_from(20, 10_000, 1) > priority_from(20, 10_000, 0)


def test_priority_rejects_negative_inputs():
    with pytest.raises(ValueError):
        priority_from(-1, 0, 0)
    with pytest.raises(ValueError):
        priority_from(0, -5, 0)
    with pytest.raises(ValueError):
        priority_from(0, 0, -1)
