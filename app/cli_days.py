"""``doorstep plan --dates`` / ``--days``: several dates planned offline.

The day loaded by ``doorstep plan`` (visits.csv agents.csv, or JSON) becomes
a :class:`solver.multiday.Horizon` over the dates given, planned with
:func:`solver.multiday.plan_days` as ``POST /v1/plans`` with ``dates`` does
(no follow-ups or recorded outcomes: there is no store offline). Every
date's plan is checked (:func:`solver.check.check_plan`), written to its own
file (``plan.json`` → ``plan-2026-12-01.json`` …) and summarised per date;
the summary (:func:`horizon_summary`) goes to ``plan-summary.json``.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from solver.model import Problem
from solver.multiday import MAX_DATES, Horizon, MultiDayPlan

__all__ = ["day_path", "horizon_dates", "horizon_of", "horizon_summary", "plan_horizon"]


def horizon_dates(dates: str | None, days: int | None, first: dt.date | None) -> list[dt.date]:
    """The dates of ``--dates 2026-12-01,2026-12-02`` or of ``--days N``
    counted from ``first`` (``--date``, or the problem's date), ascending;
    :class:`click.BadParameter` naming the option otherwise."""
    if dates is not None and days is not None:
        raise click.BadParameter("give --dates or --days, not both", param_hint="--days")
    if dates is not None:
        out: list[dt.date] = []
        for part in (p.strip() for p in dates.split(",")):
            try:
                out.append(dt.date.fromisoformat(part))
            except ValueError:
                raise click.BadParameter(f"{part[:40]!r} is not a date as YYYY-MM-DD", param_hint="--dates") from None
        if not 1 <= len(out) <= MAX_DATES:
            raise click.BadParameter(f"give 1 to {MAX_DATES} dates", param_hint="--dates")
        return out
    if first is None or days is None:
        raise click.BadParameter("--days counts from --date: give --date too", param_hint="--days")
    return [first + dt.timedelta(days=k) for k in range(days)]


def horizon_of(problem: Problem, dates: list[dt.date]) -> Horizon:
    """``problem``'s visits, crews, options and history over ``dates``
    (:class:`pydantic.ValidationError` when they do not fit: datetimes in
    shifts, dates out of order …)."""
    data = problem.model_dump(mode="json", exclude={"date"})
    return Horizon.model_validate({**data, "dates": [d.isoformat() for d in dates]})


def day_path(out: Path, date: dt.date | str) -> Path:
    """The file of one date's plan next to ``out``: ``plan.json`` → ``plan-2026-12-01.json``."""
    return out.with_name(f"{out.stem}-{date}{out.suffix or '.json'}")


def horizon_summary(horizon: Horizon, result: MultiDayPlan, files: dict[str, str]) -> dict[str, Any]:
    """Per date: candidates, planned, unassigned, ``carried`` (not made that
    date, a candidate again on the next one) and ``past_due`` (not made on
    its due date); then the visits planned on no date, with their reason, and
    the totals. Ids, counts and codes only (no names, phones or amounts)."""
    due = {v.id: v.due_by for v in horizon.visits}
    last = horizon.dates[-1]
    days = []
    for day in result.days:
        left = [u.visit_id for u in day.plan.unassigned]
        past_due = [v for v in left if due.get(v) is not None and due[v] == day.date]
        carried = [] if day.date == last else [v for v in left if v not in past_due]
        days.append({"date": day.date.isoformat(), "file": files.get(day.date.isoformat()),
                     "candidates": len(day.problem.visits), "planned": day.plan.summary.visits_planned,
                     "unassigned": len(left), "carried": len(carried), "past_due": len(past_due),
                     "carried_visits": carried, "past_due_visits": past_due})
    unplanned = [{"visit_id": u.visit_id, "code": u.code, "reason": u.reason} for u in result.unplanned]
    return {"dates": [d.isoformat() for d in horizon.dates], "days": days, "unplanned": unplanned,
            "summary": {"visits": len(horizon.visits), "planned": sum(d["planned"] for d in days),
                        "unplanned": len(unplanned), "past_due": sum(1 for u in unplanned if u["code"] == "past_due")}}


def plan_horizon(problem: Problem, dates: list[dt.date], *, model: Any, min_precision: str | None,
                 out: Path) -> None:
    """Plan ``problem`` over ``dates`` with travel ``model``, check and write
    each date's plan and the summary, print the per-date figures. Exits 1
    when a plan breaks a rule, 2 on bad input, 3 when travel is unavailable."""
    from app.cli import _echo_flags, summary_table
    from solver.check import check_plan
    from solver.geo.routing import TravelUnavailable
    from solver.multiday import plan_days
    from solver.solve import solve

    if str(out) == "-":
        raise click.BadParameter("several dates write one file per date: give a file name", param_hint="--out")
    try:
        horizon = horizon_of(problem, dates)
    except ValidationError as exc:
        for error in exc.errors(include_url=False, include_input=False):
            loc = ".".join(str(p) for p in error["loc"])
            click.echo(f"error: {loc + ': ' if loc else ''}{str(error['msg']).removeprefix('Value error, ')}",
                       err=True)
        sys.exit(2)
    with click.progressbar(length=1000, label="planning", show_percent=True, file=sys.stderr) as bar:
        done = [0]

        def progress(stage: str, fraction: float, *_: object, **__: object) -> None:
            index = min(len(dates) - 1, int(fraction * len(dates)))
            bar.label = f"{dates[index]} {stage}"
            target = int(1000 * min(1.0, max(0.0, fraction)))
            if target > done[0]:
                bar.update(target - done[0])
                done[0] = target

        def solve_day(day: Problem, travel: Any, **kwargs: Any) -> Any:
            return solve(day, travel, min_precision=min_precision, **kwargs)

        try:
            result = plan_days(horizon, model, progress=progress, solve_day=solve_day)
            reports = [(day, check_plan(day.problem, day.plan, model)) for day in result.days]
        except TravelUnavailable as exc:
            click.echo(f"\nerror: {exc}", err=True)
            sys.exit(3)
        bar.update(1000 - done[0])
    broken = [(day.date, v) for day, report in reports for v in report.violations]
    if broken:
        click.echo(f"error: the plans break {len(broken)} rule(s):", err=True)
        for date, violation in broken:
            click.echo(f"  - {date}: {violation}", err=True)
        sys.exit(1)
    out.parent.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    for day in result.days:
        click.echo(f"== {day.date}")
        click.echo(summary_table(day.plan))
        _echo_flags(day.problem, day.plan)
        path = day_path(out, day.date)
        path.write_text(day.plan.model_dump_json(indent=2) + "\n", encoding="utf-8")
        files[day.date.isoformat()] = path.name
    summary = horizon_summary(horizon, result, files)
    header = f"{'date':<10} {'candidates':>10} {'planned':>7} {'carried':>7} {'past_due':>8}  file"
    click.echo(header)
    click.echo("-" * len(header))
    for row in summary["days"]:
        click.echo(f"{row['date']:<10} {row['candidates']:>10} {row['planned']:>7} {row['carried']:>7} "
                   f"{row['past_due']:>8}  {row['file']}")
    totals = summary["summary"]
    click.echo(f"{totals['planned']} of {totals['visits']} visit(s) planned over {len(dates)} date(s); "
               f"{totals['unplanned']} on no date ({totals['past_due']} past due)")
    for entry in summary["unplanned"]:
        click.echo(f"  unplanned {entry['visit_id']}: {entry['code']}")
    path = day_path(out, "summary")
    path.write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    click.echo(f"wrote {', '.join(files.values())} and {path.name} in {out.parent}", err=True)
