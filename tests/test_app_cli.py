"""The ``doorstep`` command."""

from __future__ import annotations

import importlib.util
import json

import pytest
from click.testing import CliRunner

from app.cli import main


@pytest.mark.skipif(importlib.util.find_spec("solver.demo") is None, reason="solver.demo is not written yet")
def test_demo_writes_a_checked_plan_and_its_map(tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["demo", "--visits", "20", "--crews", "3", "--time-limit", "2", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    plan = json.loads((out / "plan.json").read_text(encoding="utf-8"))
    problem = json.loads((out / "problem.json").read_text(encoding="utf-8"))
    geojson = json.loads((out / "routes.geojson").read_text(encoding="utf-8"))

    assert len(problem["visits"]) == 20 and len(problem["agents"]) == 3
    assert len(plan["routes"]) == 3
    stops = [s for r in plan["routes"] for s in r["stops"]]
    assert len(stops) + len(plan["unassigned"]) == 20

    assert geojson["type"] == "FeatureCollection"
    kinds: dict[str, list[dict]] = {}
    for feature in geojson["features"]:
        kinds.setdefault(feature["properties"]["kind"], []).append(feature)
    lines = kinds.get("route", [])
    assert len(lines) == sum(1 for r in plan["routes"] if r["stops"])
    for line in lines:
        assert line["geometry"]["type"] == "LineString"
        assert len(line["geometry"]["coordinates"]) >= 2
        route = next(r for r in plan["routes"] if r["agent_id"] == line["properties"]["agent_id"])
        assert line["properties"]["visits"] == len(route["stops"])
        assert line["properties"]["colour"].startswith("#")
        # lon, lat order, inside the bundled map
        for lon, lat in line["geometry"]["coordinates"]:
            assert 121.4 < lon < 121.6 and 31.1 < lat < 31.3
    assert [f["properties"]["visit_id"] for f in kinds.get("stop", [])] == [s["visit_id"] for s in stops]
    assert [f["properties"]["sequence"] for f in kinds.get("stop", [])] == [
        i for r in plan["routes"] for i in range(1, len(r["stops"]) + 1)
    ]
    unassigned = kinds.get("unassigned", [])
    assert [f["properties"]["visit_id"] for f in unassigned] == [u["visit_id"] for u in plan["unassigned"]]
    assert all(f["properties"]["reason"] for f in unassigned)

    # the summary table names every crew
    for route in plan["routes"]:
        assert route["agent_id"] in result.stdout
    assert "planned" in result.stdout


def test_demo_rejects_bad_options():
    result = CliRunner().invoke(main, ["demo", "--crews", "0"])
    assert result.exit_code == 2
    assert "--crews" in result.output


def test_serve_help_lists_its_options():
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--data-dir"):
        assert option in result.output
