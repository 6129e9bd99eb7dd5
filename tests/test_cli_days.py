"""``doorstep plan --days`` / ``--dates``: several dates planned offline from
visits.csv agents.csv (real solves on straight-line travel, 1 s a date)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from app.cli import main

VISITS_CSV = """\
id,case_id,priority,duration_min,address,lat,lon,windows,due_by
V1,C-1,90,30,Road 1,31.2210,121.4640,09:00-17:00,
V2,C-2,80,30,Road 2,31.2250,121.4700,,
V3,C-3,70,30,Road 3,31.2300,121.4780,,
V4,C-4,60,30,Road 4,31.2350,121.4820,,
V5,C-5,10,30,Road 5,31.2330,121.4740,,2026-12-02
V6,C-6,50,30,Road 6,31.2380,121.4660,,2026-11-30
"""
AGENTS_CSV = """id,members,shift,start_address,start_lat,start_lon,max_visits
crew-a,A1;A2,08:30-18:00,Branch A,31.2300,121.4740,2
"""


def _files(tmp_path):
    (tmp_path / "visits.csv").write_text(VISITS_CSV, encoding="utf-8")
    (tmp_path / "agents.csv").write_text(AGENTS_CSV, encoding="utf-8")
    return [str(tmp_path / "visits.csv"), str(tmp_path / "agents.csv")]


def test_plan_days_writes_a_plan_per_date_and_the_summary(tmp_path):
    out = tmp_path / "out" / "plan.json"
    result = CliRunner().invoke(main, ["plan", *_files(tmp_path), "--date", "2026-12-01", "--days", "3",
                                       "--time-limit", "1", "--max-iterations", "10", "--travel", "straight", "--out", str(out)])
    assert result.exit_code == 0, result.output
    dates = ["2026-12-01", "2026-12-02", "2026-12-03"]
    plans = {d: json.loads((out.parent / f"plan-{d}.json").read_text(encoding="utf-8")) for d in dates}
    summary = json.loads((out.parent / "plan-summary.json").read_text(encoding="utf-8"))
    made = {d: [s["visit_id"] for r in plans[d]["routes"] for s in r["stops"]] for d in dates}
    for day in dates:  # each plan is a day of its own date, within the crew's two visits
        assert len(made[day]) <= 2
        assert all(s["start"].startswith(day) for r in plans[day]["routes"] for s in r["stops"])
    everything = [v for d in dates for v in made[d]]
    assert sorted(everything) == ["V1", "V2", "V3", "V4", "V5"]  # each once; V6 was due before the first date
    assert "V5" in made["2026-12-01"] + made["2026-12-02"]  # by its due date
    assert [(d["date"], d["candidates"], d["planned"], d["carried"], d["past_due"]) for d in summary["days"]] == \
        [("2026-12-01", 5, 2, 3, 0), ("2026-12-02", 3, 2, 1, 0), ("2026-12-03", 1, 1, 0, 0)]
    assert summary["days"][0]["file"] == "plan-2026-12-01.json"
    assert sorted(summary["days"][0]["carried_visits"]) == sorted(set(everything) - set(made["2026-12-01"]))
    assert summary["summary"] == {"visits": 6, "planned": 5, "unplanned": 1, "past_due": 1}
    assert [(u["visit_id"], u["code"]) for u in summary["unplanned"]] == [("V6", "past_due")]
    # the figures per date on standard output
    assert "2026-12-02          3       2       1        0  plan-2026-12-02.json" in result.stdout
    assert "5 of 6 visit(s) planned over 3 date(s); 1 on no date (1 past due)" in result.stdout
    assert "crew-a" in result.stdout and "unplanned V6: past_due" in result.stdout


def test_plan_dates_list_and_bad_options(tmp_path):
    files = _files(tmp_path)
    out = tmp_path / "p.json"
    listed = CliRunner().invoke(main, ["plan", *files, "--dates", "2026-12-03,2026-12-07", "--time-limit", "1",
                                       "--max-iterations", "10", "--travel", "straight", "--out", str(out)])
    assert listed.exit_code == 0, listed.output
    summary = json.loads((tmp_path / "p-summary.json").read_text(encoding="utf-8"))
    assert summary["dates"] == ["2026-12-03", "2026-12-07"] and summary["summary"]["planned"] == 4
    # V5 was due on 2026-12-02, before the first date; V6 too
    assert sorted(u["visit_id"] for u in summary["unplanned"] if u["code"] == "past_due") == ["V5", "V6"]
    assert json.loads((tmp_path / "p-2026-12-07.json").read_text(encoding="utf-8"))["summary"]["visits_planned"] == 2

    for args, hint in ((["--dates", "2026-12-01", "--days", "2"], "--days"),
                       (["--dates", "2026-12-02,2026-12-01"], "ascending"),
                       (["--dates", "2026-12-01,1 Dec"], "--dates"),
                       (["--date", "2026-12-01", "--days", "8"], "--days"),
                       (["--date", "2026-12-01", "--days", "2", "--out", "-"], "--out")):
        bad = CliRunner().invoke(main, ["plan", *files, *args, "--travel", "straight"])
        assert bad.exit_code == 2 and hint in bad.output, (args, bad.output)
