"""Validation of the typed problem: every rejection names the field and the reason."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from solver.model import Problem
from tests.factories import crew, visit


def payload(visits=None, agents=None, **extra):
    return {"date": "2026-12-01", "timezone": "Asia/Shanghai",
            "visits": visits if visits is not None else [visit("v1", 1)],
            "agents": agents if agents is not None else [crew("c1")], **extra}


def errors(data) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as info:
        Problem.model_validate(data)
    return [(".".join(map(str, e["loc"])), e["msg"]) for e in info.value.errors()]


def test_valid_problem_converts_local_times_to_seconds():
    p = Problem.model_validate(payload(visits=[visit("v1", 1, windows=[("09:30", "10:00")])]))
    window = p.visits[0].addresses[0].time_windows[0]
    assert p.window_seconds(window) == (9 * 3600 + 1800, 10 * 3600)
    assert p.clock(9 * 3600).isoformat() == "2026-12-01T09:00:00+08:00"


def test_aware_datetimes_are_read_in_their_own_offset():
    data = payload(visits=[visit("v1", 1, windows=[("2026-12-01T01:00:00Z", "2026-12-01T02:00:00Z")])])
    p = Problem.model_validate(data)
    assert p.window_seconds(p.visits[0].addresses[0].time_windows[0]) == (9 * 3600, 10 * 3600)


def test_naive_datetime_is_rejected():
    data = payload(visits=[visit("v1", 1, windows=[("2026-12-01T09:00:00", "2026-12-01T10:00:00")])])
    fields = {f for f, _ in errors(data)}
    assert any(f.startswith("visits.0.addresses.0.time_windows.0.start") for f in fields)


def test_window_end_before_start():
    (field, message), = errors(payload(visits=[visit("v1", 1, windows=[("10:00", "09:00")])]))
    assert field == "visits.0.addresses.0.time_windows.0"
    assert "end (09:00) is before" in message


def test_shift_shorter_than_its_breaks():
    agent = crew("c1", shift=("12:00", "13:00"),
                 breaks=[{"window": {"start": "12:00", "end": "13:00"}, "duration_min": 45},
                         {"window": {"start": "12:00", "end": "13:00"}, "duration_min": 30}])
    (field, message), = errors(payload(agents=[agent]))
    assert field == "agents.0" and "longer than the shift" in message


def test_duplicate_ids():
    (_field, message), = errors(payload(visits=[visit("v1", 1), visit("v1", 2)],
                                       agents=[crew("c1"), crew("c1")]))
    assert "visits: duplicate id(s) 'v1'" in message and "agents: duplicate id(s) 'c1'" in message


def test_unknown_skill_is_named_with_its_visit():
    (_field, message), = errors(payload(visits=[visit("v1", 1), visit("v2", 1, skills=["lagel"])]))
    assert "visits.1.skills: unknown skill(s) 'lagel'" in message


def test_skill_held_by_an_agent_is_known_even_outside_the_catalogue():
    p = Problem.model_validate(payload(visits=[visit("v1", 1, skills=["forklift"])],
                                       agents=[crew("c1", skills=["forklift"])]))
    assert "forklift" in p.skill_catalogue()


@pytest.mark.parametrize("priority", [-1, 101])
def test_priority_out_of_range(priority):
    (field, _message), = errors(payload(visits=[visit("v1", 1, priority=priority)]))
    assert field == "visits.0.priority"


@pytest.mark.parametrize("lat,lon,bad", [(91, 0, "lat"), (0, -181, "lon")])
def test_coordinates_out_of_range(lat, lon, bad):
    (field, _), = errors(payload(visits=[{"id": "v", "addresses": [{"location": {"lat": lat, "lon": lon}}]}]))
    assert field == f"visits.0.addresses.0.location.{bad}"


def test_empty_agent_list():
    (field, message), = errors(payload(agents=[]))
    assert field == "agents" and "at least 1" in message


def test_address_needs_text_or_location():
    (field, message), = errors(payload(visits=[{"id": "v", "addresses": [{"kind": "home"}]}]))
    assert field == "visits.0.addresses.0" and "text, a location" in message


def test_unknown_timezone_and_pinned_agent():
    fields = dict(errors(payload(visits=[visit("v1", 1, pinned_agent="ghost")], timezone="Mars/Base")))
    assert "unknown time zone" in fields["timezone"]


def test_pinned_to_unknown_agent():
    (_field, message), = errors(payload(visits=[visit("v1", 1, pinned_agent="ghost")]))
    assert "visits.0.pinned_agent: no agent with id 'ghost'" in message


def test_local_times_round_trip_across_a_daylight_saving_change():
    # 2026-03-08: New York springs forward at 02:00 (EST -5 to EDT -4)
    p = Problem.model_validate(payload(timezone="America/New_York") | {"date": "2026-03-08"})
    nine = p.seconds(dt.time(9, 0))
    assert nine == 8 * 3600  # only 8 real hours pass between midnight and 09:00 that day
    assert p.clock(nine).strftime("%H:%M %z") == "09:00 -0400"
    assert p.clock(p.seconds(dt.time(1, 30))).strftime("%H:%M %z") == "01:30 -0500"
