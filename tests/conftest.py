"""Fixtures for the web-service tests (tests/test_app_*.py).

Apps get a real SQLite file under ``tmp_path`` and the straight-line travel
model, so planning runs the real solver without loading the road network.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest

DAY = "2026-12-01"

#: A small day in central Shanghai: two crews, six visits with windows.
_PAYLOAD: dict[str, Any] = {
    "date": DAY,
    "timezone": "Asia/Shanghai",
    "visits": [
        {
            "id": f"v{i}",
            "case_id": f"CASE-{i:03d}",
            "duration_min": 30,
            "priority": 60,
            "purpose": "repayment plan follow-up",
            "borrower": {"name": f"Borrower {i}", "phone": f"1380000{i:04d}"},
            "addresses": [
                {
                    "text": f"Test road {i}",
                    "location": {"lat": lat, "lon": lon},
                    "time_windows": [{"start": start, "end": end}],
                }
            ],
        }
        for i, (lat, lon, start, end) in enumerate(
            [
                (31.2210, 121.4640, "09:00", "11:00"),
                (31.2250, 121.4700, "10:00", "12:00"),
                (31.2300, 121.4780, "14:00", "16:00"),
                (31.2350, 121.4820, "09:30", "10:30"),
                (31.2380, 121.4660, "13:00", "17:00"),
                (31.2330, 121.4740, "15:00", "16:30"),
            ]
        )
    ],
    "agents": [
        {
            "id": "crew-a",
            "members": ["Agent A1", "Agent A2"],
            "shift": {"start": "08:30", "end": "18:00"},
            "start": {"text": "Branch A", "location": {"lat": 31.2300, "lon": 121.4740}},
        },
        {
            "id": "crew-b",
            "members": ["Agent B1", "Agent B2"],
            "shift": {"start": "08:30", "end": "18:00"},
            "start": {"text": "Branch B", "location": {"lat": 31.2260, "lon": 121.4800}},
        },
    ],
    "options": {"time_limit_s": 1},
}


@pytest.fixture
def payload() -> Callable[[], dict[str, Any]]:
    """A factory of fresh copies of the small test day (mutate freely)."""
    return lambda: copy.deepcopy(_PAYLOAD)


@pytest.fixture
def make_app(tmp_path) -> Iterator[Callable[..., Any]]:
    """Build apps on ``tmp_path/data`` with straight-line travel; closed after the test."""
    from app import create_app
    from solver.travel import StraightLineTravel

    apps = []

    def make(**config: Any):
        settings = {"DATA_DIR": str(tmp_path / "data"), "TRAVEL": StraightLineTravel(), **config}
        app = create_app(settings)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["doorstep"].close()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()
