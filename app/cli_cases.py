"""``doorstep promises check`` and ``doorstep safety check``: the daily and
periodic runs of the collection cases (issue 15), on the service's store.

Both do what the service does, with the same functions: ``promises check``
runs :func:`app.api.cases.run_promise_check` (as ``POST /v1/promises/check``)
in an app context on the store; ``safety check`` runs
:func:`app.safety.sweep`. Both are safe to repeat: a promise breaks once, a
visit is reported overdue once. They print counts and ids, never borrower data.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import click

# the store options of app.cli (not imported from there: app.cli registers these commands)
_DATA_DIR = click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                         help="Folder for the embedded database [default: [service] data_dir of the config, ./var].")
_REDIS_URL = click.option("--redis-url", envvar="DOORSTEP_REDIS_URL", default=None,
                          help="Redis URL of the store [env DOORSTEP_REDIS_URL; default: embedded SQLite].")
_PREFIX = click.option("--prefix", envvar="DOORSTEP_REDIS_PREFIX", default=None,
                       help="Redis key prefix [default: doorstep:].")
_CASES_CONFIG = click.option(
    "--cases-config", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
    help="The cases configuration [default: cases.toml of the configuration folder].",
)


def _store_config(data_dir: Path | None, redis_url: str | None, prefix: str | None) -> dict[str, object]:
    from app.cli import _store_config as store_config

    return store_config(data_dir, redis_url, prefix)


def _logging() -> None:
    from app.cli import _logging as setup

    setup()


def _app(data_dir: Path | None, redis_url: str | None, prefix: str | None, cases_config: Path | None) -> Any:
    """An app on the store, without a webhook deliverer thread, planning jobs or road network."""
    from app import create_app

    config: dict[str, Any] = {**_store_config(data_dir, redis_url, prefix), "TRAVEL": "straight", "JOBS": "thread",
                              "WEBHOOK_DELIVERER": "none"}
    if cases_config is not None:
        config["CASES_CONFIG"] = str(cases_config)
    return create_app(config)


def _day(value: str | None, name: str) -> dt.date:
    if value is None:
        return dt.datetime.now(dt.UTC).date()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date as YYYY-MM-DD", param_hint=name) from None


@click.group()
def promises() -> None:
    """Promises to pay of collection cases."""


@promises.command("check")
@click.option("--date", "day", default=None, help="Promises unpaid past their date plus the grace days, before "
                                                  "this day, break [default: today, UTC].")
@_DATA_DIR
@_REDIS_URL
@_PREFIX
@_CASES_CONFIG
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def promises_check(day: str | None, data_dir: Path | None, redis_url: str | None, prefix: str | None,
                   cases_config: Path | None, as_json: bool) -> None:
    """Break the promises (and plan instalments) unpaid past their date: each
    counts on its case (screening weighs it), creates a revisit and may
    escalate the case; events promise.broken and case.escalated. Run it daily;
    running it twice breaks nothing twice."""
    from app.api.cases import run_promise_check

    when = _day(day, "--date")
    _logging()
    app = _app(data_dir, redis_url, prefix, cases_config)
    try:
        with app.app_context():
            result = run_promise_check(when)
    finally:
        app.extensions["doorstep"].close()
    if as_json:
        click.echo(json.dumps(result, default=str, indent=2))
        return
    for broken in result["broken"]:
        click.echo(f"broken  {broken['case_id']:<20} {broken['promise_id']:<16} due {broken['due']}  "
                   f"case {broken['case_status']}")
    click.echo(f"{len(result['broken'])} promise(s) broken on {result['cases_checked']} case(s) with open promises; "
               f"{len(result['escalated'])} escalated, {result['followups']} revisit(s) for {result['date']}", err=True)


@click.group()
def safety() -> None:
    """Safety of crews in the field."""


@safety.command("check")
@click.option("--at", "at", default=None, help="The moment to judge at, ISO 8601 with a zone [default: now].")
@click.option("--date", "dates", multiple=True, help="Plan dates to look at [default: the day before, of and "
                                                     "after --at, UTC].")
@_DATA_DIR
@_REDIS_URL
@_PREFIX
@_CASES_CONFIG
def safety_check(at: str | None, dates: tuple[str, ...], data_dir: Path | None, redis_url: str | None,
                 prefix: str | None, cases_config: Path | None) -> None:
    """Emit safety.overdue for crews that arrived at a visit and have not
    completed it past its planned duration plus [safety] overdue_margin_min
    (once per visit). The web service and every deliverer sweep on their own;
    this runs one sweep now (e.g. from cron when no deliverer runs)."""
    from app import default_config
    from app.cases import load_config
    from app.safety import sweep
    from app.store import make_store

    moment = dt.datetime.now(dt.UTC)
    if at is not None:
        try:
            moment = dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
        except ValueError:
            raise click.BadParameter(f"{at!r} is not an ISO 8601 date-time", param_hint="--at") from None
        if moment.tzinfo is None:
            raise click.BadParameter("give the zone (Z or +08:00)", param_hint="--at")
    days = [_day(d, "--date").isoformat() for d in dates] or None
    rules = load_config(cases_config).safety
    _logging()
    store = make_store({**default_config(), **_store_config(data_dir, redis_url, prefix)})
    try:
        events = sweep(store, rules, moment, days)
    finally:
        store.close()
    for event in events:
        click.echo(f"overdue  {event.data['date']}  {event.data['visit_id']:<20} crew {event.data['agent_id']}  "
                   f"arrived {event.data['arrived_at']}  due by {event.data['due_by']}")
    click.echo(f"{len(events)} safety.overdue event(s) emitted", err=True)
