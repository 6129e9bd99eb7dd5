"""The ``doorstep`` command."""

from __future__ import annotations

import importlib.util
import json

import pytest
from click.testing import CliRunner

from app.cli import main


@pytest.mark.skipif(importlib.util.find_spec("solver.demo") is None, reason="solver.demo is not written yet")
def test_demo_writes_a_checked_plan_and_its_map(tmp_path, warm_map):
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["demo", "--visits", "20", "--crews", "3", "--time-limit", "2", "--max-iterations", "10",
              "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    plan = json.loads((out / "plan.json").read_text(encoding="utf-8"))
    problem = json.loads((out / "problem.json").read_text(encoding="utf-8"))
    geojson = json.loads((out / "routes.geojson").read_text(encoding="utf-8"))

    assert len(problem["visits"]) == 20 and len(problem["agents"]) == 3
    assert (problem["options"]["time_limit_s"], problem["options"]["max_iterations"]) == (2, 10)
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


# --------------------------------------------------------------------------- #
# doorstep plan, token create, worker
# --------------------------------------------------------------------------- #
VISITS_CSV = """\
id,case_id,priority,required,duration_min,address,lat,lon,kind,windows,skills,crew_size,appointment,borrower_name,\
borrower_phone
V1,C-1,80,false,30,Test road 1,31.2210,121.4640,home,09:00-11:00;14:00-18:00,,1,,Borrower One,13800000001
V2,C-2,60,,20,Test road 2,31.2250,121.4700,work,10:00-12:00,lang:zh,2,,,
V2,C-2,,,,Test road 2b,31.2300,121.4780,home,18:00-20:00,,,,,
V3,C-3,50,true,30,,31.2350,121.4820,,,,,13:00-14:00,,
"""
AGENTS_CSV = """id,members,shift,break,start_address,start_lat,start_lon,skills,max_visits,travel_mode
crew-a,A1;A2,08:30-18:00,11:30-13:30/60,Branch A,31.2300,121.4740,lang:zh,10,ebike
crew-b,B1,08:30-17:30,,Branch B,31.2260,121.4800,,,drive
"""


def _files(tmp_path, visits=VISITS_CSV, agents=AGENTS_CSV):
    (tmp_path / "visits.csv").write_text(visits, encoding="utf-8")
    (tmp_path / "agents.csv").write_text(agents, encoding="utf-8")
    return [str(tmp_path / "visits.csv"), str(tmp_path / "agents.csv")]


def test_plan_from_csv_writes_a_checked_plan(tmp_path):
    out = tmp_path / "plan.json"
    result = CliRunner().invoke(
        main, ["plan", *_files(tmp_path), "--date", "2026-12-01", "--time-limit", "1", "--max-iterations", "10",
               "--travel", "straight", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(out.read_text(encoding="utf-8"))
    planned = {s["visit_id"]: s for r in plan["routes"] for s in r["stops"]}
    assert set(planned) | {u["visit_id"] for u in plan["unassigned"]} == {"V1", "V2", "V3"}
    assert "V3" in planned and planned["V3"]["start"].startswith("2026-12-01T13:")  # the appointment
    if "V2" in planned:  # needs lang:zh and two people: only crew-a
        assert next(r["agent_id"] for r in plan["routes"] if any(s["visit_id"] == "V2" for s in r["stops"])) == "crew-a"
    assert "crew-a" in result.stdout and "planned" in result.stdout
    assert "solving" in result.stderr  # the progress bar's label


def test_plan_from_json_files_to_stdout(tmp_path, payload):
    body = payload()
    (tmp_path / "day.json").write_text(json.dumps(body), encoding="utf-8")
    result = CliRunner().invoke(main, ["plan", str(tmp_path / "day.json"), "--travel", "straight", "--out", "-"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["date"] == "2026-12-01"  # stdout holds the plan alone
    (tmp_path / "visits.json").write_text(json.dumps(body["visits"]), encoding="utf-8")
    (tmp_path / "agents.json").write_text(json.dumps({"agents": body["agents"]}), encoding="utf-8")
    two = CliRunner().invoke(main, ["plan", str(tmp_path / "visits.json"), str(tmp_path / "agents.json"),
                                    "--date", "2026-12-01", "--time-limit", "1", "--max-iterations", "10", "--travel", "straight",
                                    "--out", str(tmp_path / "p.json")])
    assert two.exit_code == 0, two.output
    assert len(json.loads((tmp_path / "p.json").read_text())["routes"]) == 2


@pytest.mark.parametrize(
    ("visits", "agents", "args", "message"),
    [
        (VISITS_CSV.replace("09:00-11:00;", "9 to 11;"), AGENTS_CSV, [], "visits.csv line 2, column windows"),
        (VISITS_CSV.replace(",80,", ",eighty,"), AGENTS_CSV, [], "visits.csv line 2, column priority"),
        (VISITS_CSV.replace(",80,", ",180,"), AGENTS_CSV, [], "visits.csv line 2 (priority)"),
        (VISITS_CSV, AGENTS_CSV.replace("11:30-13:30/60", "11:30-13:30"), [], "agents.csv line 2, column break"),
        (VISITS_CSV, AGENTS_CSV.replace("Branch B,31.2260,121.4800", ",,"), [], "agents.csv line 3, column start_address"),
        (VISITS_CSV.replace("id,case_id", "ident,case_id"), AGENTS_CSV, [], "no 'id' column"),
        (VISITS_CSV, AGENTS_CSV, ["--date", ""], "--date"),
    ],
)
def test_plan_input_errors_name_the_file_line_and_column(tmp_path, visits, agents, args, message):
    argv = ["plan", *_files(tmp_path, visits, agents), "--travel", "straight", *(args or ["--date", "2026-12-01"])]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_token_create_prints_a_working_token_once(tmp_path, make_app):
    data = tmp_path / "data"
    result = CliRunner().invoke(main, ["token", "create", "--role", "agent", "--agent", "crew-a",
                                       "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert token.startswith("ds_") and "crew-a" in result.stderr
    app = make_app()  # the same data dir
    response = app.test_client(token=token).get("/v1/agents/crew-b/itinerary?date=2026-12-01")
    assert response.status_code == 403  # known token, bound to crew-a
    assert CliRunner().invoke(main, ["token", "create", "--role", "agent", "--data-dir", str(data)]).exit_code == 2
    assert CliRunner().invoke(main, ["token", "create", "--role", "system", "--agent", "x",
                                     "--data-dir", str(data)]).exit_code == 2


def test_token_create_on_redis(make_app):
    from tests.conftest import REDIS_URL

    app = make_app(redis=True)
    result = CliRunner().invoke(main, ["token", "create", "--role", "system", "--redis-url", REDIS_URL,
                                       "--prefix", app.config["REDIS_PREFIX"]])
    assert result.exit_code == 0, result.output
    assert app.test_client(token=result.stdout.strip()).get("/v1/events").status_code == 200


def test_worker_and_serve_help(monkeypatch):
    monkeypatch.delenv("DOORSTEP_REDIS_URL", raising=False)
    help_ = CliRunner().invoke(main, ["worker", "--help"])
    assert help_.exit_code == 0 and "--redis-url" in help_.output and "--heartbeat" in help_.output
    assert CliRunner().invoke(main, ["worker"]).exit_code == 2  # needs Redis
    serve = CliRunner().invoke(main, ["serve", "--help"])
    assert "--redis-url" in serve.output and "--webhook-url" in serve.output


def test_plan_rule_set_option_and_default(tmp_path):
    visits = "id,case_id,address,lat,lon,windows\nN1,C-1,Test road 1,31.2210,121.4640,22:30-23:00\n"
    agents = "id,members,shift,start_lat,start_lon\ncrew-a,A1;A2,20:00-23:59,31.2300,121.4740\n"
    files = _files(tmp_path, visits, agents)
    base = ["plan", *files, "--date", "2026-12-01", "--time-limit", "1", "--max-iterations", "10", "--travel", "straight"]
    default = CliRunner().invoke(main, [*base, "--out", str(tmp_path / "a.json")])
    assert default.exit_code == 0, default.output
    plan = json.loads((tmp_path / "a.json").read_text())
    assert plan["rule_set"] == "cn-cba-2026" and plan["unassigned"][0]["code"] == "outside_hours"
    assert "rule set cn-cba-2026" in default.stderr
    off = CliRunner().invoke(main, [*base, "--rule-set", "none", "--out", str(tmp_path / "b.json")])
    assert off.exit_code == 0, off.output
    plan = json.loads((tmp_path / "b.json").read_text())
    assert plan["rule_set"] == "none" and plan["unassigned"] == []
    unknown = CliRunner().invoke(main, [*base, "--rule-set", "mars"])
    assert unknown.exit_code == 2 and "unknown rule set 'mars'" in unknown.output
