"""The ``doorstep`` command.

``doorstep demo`` plans the bundled demo day offline and writes the plan, the
problem and a GeoJSON map; ``doorstep serve`` runs the web service;
``doorstep worker`` runs planning jobs from Redis (RQ); ``doorstep plan``
plans a day from CSV or JSON files; ``doorstep token create|list|revoke``
manages API tokens; ``doorstep deliver`` delivers webhooks from the outbox.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sys
from pathlib import Path

import click

from solver.model import Plan, Problem, Route


def _hhmm(value: dt.datetime | None) -> str:
    return "-" if value is None else value.strftime("%H:%M")


def summary_table(plan: Plan) -> str:
    """Per crew: visits, first arrival, last departure, travel, distance;
    then the unassigned visits with their reason."""
    header = f"{'crew':<14} {'visits':>6} {'first in':>8} {'last out':>8} {'travel min':>10} {'km':>7}"
    lines = [header, "-" * len(header)]

    def row(route: Route) -> str:
        first = route.stops[0].arrival if route.stops else None
        last = route.stops[-1].end if route.stops else None
        return (
            f"{route.agent_id:<14} {len(route.stops):>6} {_hhmm(first):>8} {_hhmm(last):>8} "
            f"{route.travel_s / 60:>10.0f} {route.distance_m / 1000:>7.1f}"
        )

    lines.extend(row(route) for route in plan.routes)
    s = plan.summary
    lines.append("-" * len(header))
    lines.append(
        f"{'total':<14} {s.visits_planned:>6} {'':>8} {'':>8} {s.travel_s / 60:>10.0f} {s.distance_m / 1000:>7.1f}"
    )
    lines.append(
        f"planned {s.visits_planned}/{s.visits_total} visits, priority {s.priority_planned}/{s.priority_total}, "
        f"{s.crews_used} crew(s) used; solver {plan.solver.status} in {plan.solver.seconds:.1f} s"
    )
    if plan.unassigned:
        lines.append("")
        lines.append(f"unassigned ({len(plan.unassigned)}):")
        width = max(len(u.visit_id) for u in plan.unassigned)
        lines.extend(f"  {u.visit_id:<{width}}  {u.code:<24} {u.reason}" for u in plan.unassigned)
    for warning in plan.warnings:
        lines.append(f"warning: {warning}")
    return "\n".join(lines)


def flag_lines(problem: Problem, plan: Plan) -> list[str]:
    """One line per plan flag (doubtful geocodes, off-road points): the code,
    the visit id and address index (with the address text as given) or the
    crew, and the message. Never borrower names or phone numbers."""
    visits = {v.id: v for v in problem.visits}
    lines = []
    for flag in plan.flags:
        if flag.visit_id is not None:
            where = f"visit {flag.visit_id}"
            if flag.address_index is not None:
                where += f" address {flag.address_index}"
                visit = visits.get(flag.visit_id)
                if visit is not None and 0 <= flag.address_index < len(visit.addresses):
                    text = visit.addresses[flag.address_index].text
                    if text:
                        where += f" {json.dumps(text, ensure_ascii=False)}"
        elif flag.agent_id is not None:
            where = f"crew {flag.agent_id}"
        else:
            where = "plan"
        lines.append(f"flag {flag.code}: {where}: {flag.message}")
    return lines


def _echo_flags(problem: Problem, plan: Plan) -> None:
    lines = flag_lines(problem, plan)
    if lines:
        click.echo(f"{len(lines)} flag(s) to confirm:", err=True)
        for line in lines:
            click.echo(f"  {line}", err=True)


@click.group()
@click.version_option(package_name="doorstep", message="%(prog)s %(version)s")
@click.option("--map", "map_name", default=None, metavar="FILE|NAME",
              help="Map to plan on: an OSM file or a map imported with 'doorstep map import' "
                   "[default: [map] path of the config].")
def main(map_name: str | None = None) -> None:
    """Doorstep: route planning for collections field visits."""
    if map_name:
        import os

        from solver.geo.mapimport import resolve_map

        try:
            os.environ["DOORSTEP_MAP"] = str(resolve_map(map_name))  # inherited by workers' job processes
        except FileNotFoundError as exc:
            raise click.BadParameter(str(exc), param_hint="--map") from None


@main.group("map")
def map_group() -> None:
    """City maps: import an OSM extract into the index store."""


@map_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", default=None, help="Name to select it by with --map [default: the file name].")
def map_import(path: Path, name: str | None) -> None:
    """Build and store the road network and gazetteer of an OSM extract (.osm, .osm.pbf)."""
    from solver.geo.mapimport import STAGES, import_map

    with click.progressbar(length=len(STAGES), label=f"importing {path.name}", file=sys.stderr) as bar:
        summary = import_map(path, name=name, progress=lambda stage: bar.update(1))
    click.echo("\n".join(summary.lines()))


_MAX_ITERATIONS = click.option(
    "--max-iterations", type=click.IntRange(min=1, max=10_000_000), default=None,
    help="Stop the search after this many iterations, before the time limit (options.max_iterations: quick "
         "plans of small days, the same plan every time with one thread) [default: the problem's, else search "
         "until the time limit].",
)


def _with_options(problem: Problem, **changes: object) -> Problem:
    """``problem`` with the options given on the command line (those not None) in place of its own."""
    given = {name: value for name, value in changes.items() if value is not None}
    if not given:
        return problem
    return problem.model_copy(update={"options": problem.options.model_copy(update=given)})


@main.command()
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed of the demo day.")
@click.option("--visits", type=click.IntRange(min=0), default=100, show_default=True, help="Visits to plan.")
@click.option("--crews", type=click.IntRange(min=1), default=10, show_default=True, help="Two-person crews.")
@click.option(
    "--time-limit",
    type=click.FloatRange(min=0, min_open=True, max=3600),
    default=None,
    help="Search time limit in seconds [default: the problem's, 10].",
)
@_MAX_ITERATIONS
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("out"),
    show_default=True,
    help="Folder for plan.json, problem.json and routes.geojson.",
)
def demo(seed: int, visits: int, crews: int, time_limit: float | None, max_iterations: int | None,
         out_dir: Path) -> None:
    """Plan the demo day on the bundled road network (offline), check the plan
    and write it with a GeoJSON map."""
    from app.api.render import plan_geojson
    from solver import solve
    from solver.check import check_plan
    from solver.demo import generate_day
    from solver.geo.network import load_bundled_network

    problem: Problem = generate_day(seed=seed, visits=visits, crews=crews)
    problem = _with_options(problem, time_limit_s=time_limit, max_iterations=max_iterations)
    click.echo(
        f"demo day {problem.date}: {len(problem.visits)} visits, {len(problem.agents)} crews, "
        f"time limit {problem.options.time_limit_s:g} s",
        err=True,
    )
    network = load_bundled_network()

    seen: set[str] = set()

    def progress(stage: str, fraction: float) -> None:
        if stage not in seen:
            seen.add(stage)
            click.echo(f"  {stage} …", err=True)

    plan = solve(problem, network, progress=progress)
    report = check_plan(problem, plan, network)
    if not report.ok:
        click.echo(f"error: the plan breaks {len(report.violations)} rule(s):", err=True)
        for violation in report.violations:
            click.echo(f"  - {violation}", err=True)
        sys.exit(1)

    click.echo(summary_table(plan))
    _echo_flags(problem, plan)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "plan.json").write_text(plan.model_dump_json(indent=2) + "\n", encoding="utf-8")
    (out_dir / "problem.json").write_text(problem.model_dump_json(indent=2) + "\n", encoding="utf-8")
    geojson = plan_geojson(problem, plan, network.path)
    (out_dir / "routes.geojson").write_text(json.dumps(geojson, ensure_ascii=False) + "\n", encoding="utf-8")
    click.echo(f"wrote {out_dir / 'plan.json'}, {out_dir / 'problem.json'}, {out_dir / 'routes.geojson'}", err=True)


_DATA_DIR = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the embedded database [default: [service] data_dir of the config, ./var].",
)
_REDIS_URL = click.option(
    "--redis-url", envvar="DOORSTEP_REDIS_URL", default=None,
    help="Redis URL: the Redis store and RQ jobs [env DOORSTEP_REDIS_URL; default: embedded SQLite].",
)
_PREFIX = click.option(
    "--prefix", envvar="DOORSTEP_REDIS_PREFIX", default=None, help="Redis key prefix [default: doorstep:]."
)


_WEBHOOK_URL = click.option("--webhook-url", envvar="DOORSTEP_WEBHOOK_URL", default=None,
                            help="Deliver events here [env DOORSTEP_WEBHOOK_URL].")


def _logging() -> None:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _store_config(data_dir: Path | None, redis_url: str | None, prefix: str | None) -> dict[str, object]:
    config: dict[str, object] = {}
    if data_dir is not None:
        config["DATA_DIR"] = str(data_dir)
    if redis_url:
        config.update({"STORE": "redis", "REDIS_URL": redis_url})
    if prefix:
        config["REDIS_PREFIX"] = prefix
    return config


@main.command()
@click.option("--host", default=None, help="Address to listen on [default: 127.0.0.1; env DOORSTEP_SERVE_HOST].")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Port [default: 8000; env DOORSTEP_SERVE_PORT].")
@_DATA_DIR
@_REDIS_URL
@_PREFIX
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Planning jobs at once in each web process, each job in a child process (embedded mode; "
                   "with Redis, run `doorstep worker`).")
@click.option("--webhook-url", envvar="DOORSTEP_WEBHOOK_URL", default=None, help="POST events here (JSON).")
@click.option("--no-auth", is_flag=True, help="Accept requests without a token, as a dispatcher (local use only).")
@click.option("--travel", type=click.Choice(["network", "straight"]), default=None,
              help="Travel times of planning jobs: road network of the bundled map, or straight lines "
                   "[default: network; env DOORSTEP_TRAVEL].")
@click.option("--processes", type=click.IntRange(min=0), default=None,
              help="Web worker processes; 0: one per CPU core [default: 0; env DOORSTEP_SERVE_PROCESSES].")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Request threads per web process [default: 8; env DOORSTEP_SERVE_THREADS].")
@click.option("--request-timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds a request may take to arrive whole [default: 30; env DOORSTEP_SERVE_REQUEST_TIMEOUT].")
@click.option("--keepalive", type=click.IntRange(min=0), default=None,
              help="Seconds an idle keep-alive connection stays open [default: 5; env DOORSTEP_SERVE_KEEPALIVE].")
@click.option("--access-log", default=None,
              help="Access log: '-' stdout, a file, or '' none [default: '-'; env DOORSTEP_SERVE_ACCESS_LOG].")
@click.option("--proxy-hops", type=click.IntRange(min=0), default=None,
              help="Trusted reverse proxies in front (X-Forwarded-For/-Proto) [default: 0; env DOORSTEP_SERVE_PROXY_HOPS].")
@click.option("--dev", is_flag=True, help="Run Flask's development server instead of gunicorn (debugging only).")
def serve(host: str | None, port: int | None, data_dir: Path | None, redis_url: str | None, prefix: str | None,
          workers: int, webhook_url: str | None, no_auth: bool, travel: str | None, processes: int | None,
          threads: int | None, request_timeout: float | None, keepalive: int | None, access_log: str | None,
          proxy_hops: int | None, dev: bool) -> None:
    """Run the web service (gunicorn; the [server] settings of the config,
    DOORSTEP_SERVE_* variables and these options tune it; see app/server.py)."""
    import os

    from app import create_app
    from app.server import DoorstepServer, ServerSettings

    try:
        settings = ServerSettings.resolve({
            "host": host, "port": port, "processes": processes, "threads": threads,
            "request_timeout": request_timeout, "keepalive": keepalive, "access_log": access_log,
            "proxy_hops": proxy_hops,
        })
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    _logging()
    config: dict[str, object] = {"JOB_WORKERS": workers, **_store_config(data_dir, redis_url, prefix)}
    if webhook_url:
        config["WEBHOOK_URL"] = webhook_url
    if no_auth:
        config["AUTH"] = False
    travel = travel or os.environ.get("DOORSTEP_TRAVEL") or None
    if travel:
        config["TRAVEL"] = travel
    where = "Redis, jobs on RQ workers (doorstep worker)" if redis_url else \
        f"{data_dir or 'the [service] data_dir'}, jobs in child processes of the web processes"
    url = f"http://{settings.host}:{settings.port}/v1"
    if dev:
        app = create_app(config)
        click.echo(f"doorstep (development server): data in {where}; listening on {url} (docs: /v1/docs)", err=True)
        app.run(host=settings.host, port=settings.port, threaded=True, use_reloader=False)
        return
    click.echo(f"doorstep: data in {where}; {settings.worker_processes} process(es) x {settings.threads} "
               f"thread(s); listening on {url} (docs: /v1/docs)", err=True)
    DoorstepServer(lambda: create_app(config), settings).run()


@main.command()
@_REDIS_URL
@_PREFIX
@click.option("--queue", "queues", multiple=True, envvar="DOORSTEP_RQ_QUEUE", default=["doorstep"],
              show_default=True, help="RQ queue(s) to take jobs from.")
@click.option("--heartbeat", type=click.IntRange(1, 60), default=2, show_default=True,
              help="Seconds between the heartbeats written on the running job.")
@click.option("--heartbeat-timeout", type=click.FloatRange(2, 3600), default=30, show_default=True,
              help="A running job without a heartbeat for this long is failed (its worker died).")
@click.option("--preload/--no-preload", default=True, show_default=True,
              help="Load the bundled road network before taking jobs.")
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--name", default=None, help="Worker name [default: RQ's].")
@click.option("--memory-mb", type=click.IntRange(min=0), envvar="DOORSTEP_JOBS_MEMORY_MB", default=None,
              help="Memory cap of each work horse, MB (0: none) [env DOORSTEP_JOBS_MEMORY_MB; default: "
                   "[jobs] memory_mb of the config].")
@_WEBHOOK_URL
def worker(redis_url: str | None, prefix: str | None, queues: tuple[str, ...], heartbeat: int,
           heartbeat_timeout: float, preload: bool, burst: bool, name: str | None, memory_mb: int | None,
           webhook_url: str | None) -> None:
    """Run planning jobs from Redis (an RQ worker); run as many as you like, on any machine.
    With a webhook URL it also delivers webhooks from the outbox (a background thread)."""
    from app.jobs import JobLimits, run_worker

    if not redis_url:
        raise click.UsageError("a worker needs Redis: --redis-url or DOORSTEP_REDIS_URL")
    _logging()
    click.echo(f"doorstep worker: queues {', '.join(queues)}", err=True)
    deliverer = None
    if webhook_url:
        deliverer = _deliverer(_open_store(None, redis_url, prefix), webhook_url).start()
    limits = JobLimits.from_config({} if memory_mb is None else {"memory_mb": memory_mb})
    try:
        run_worker(redis_url, queues=list(queues), prefix=prefix, heartbeat_s=heartbeat,
                   heartbeat_timeout_s=heartbeat_timeout, preload=preload, burst=burst, name=name, limits=limits)
    finally:
        if deliverer is not None:
            deliverer.stop()
            deliverer.store.close()


@main.group()
def token() -> None:
    """API tokens."""


def _open_store(data_dir: Path | None, redis_url: str | None, prefix: str | None):  # type: ignore[no-untyped-def]
    from app import default_config
    from app.store import make_store

    return make_store({**default_config(), **_store_config(data_dir, redis_url, prefix)})


@token.command("create")
@click.option("--role", type=click.Choice(["dispatcher", "agent", "system"]), required=True)
@click.option("--agent", "agent_id", default=None, help="The crew (agent id) an agent token is bound to.")
@click.option("--member", default=None,
              help="The crew member holding an agent token (one token per person: outcomes record who).")
@click.option("--expires-in", default=None, help="Lifetime: 30d, 12h, 90m, 2w [default: no expiry].")
@click.option("--label", default=None, help="A note to tell tokens apart (who holds it).")
@_DATA_DIR
@_REDIS_URL
@_PREFIX
def token_create(role: str, agent_id: str | None, member: str | None, expires_in: str | None, label: str | None,
                 data_dir: Path | None, redis_url: str | None, prefix: str | None) -> None:
    """Create a bearer token and print it (once: only its hash is stored)."""
    from app.auth import issue_token, parse_lifetime

    if role == "agent" and not agent_id:
        raise click.UsageError("an agent token needs --agent <crew id>")
    if role != "agent" and agent_id:
        raise click.UsageError("--agent is only for --role agent")
    if role != "agent" and member:
        raise click.UsageError("--member is only for --role agent")
    lifetime = None
    if expires_in is not None:
        try:
            lifetime = parse_lifetime(expires_in)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--expires-in") from None
    store = _open_store(data_dir, redis_url, prefix)
    try:
        secret, record = issue_token(store, role, agent_id, label, member=member, expires_in=lifetime)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    finally:
        store.close()
    click.echo(secret)
    click.echo(f"{role} token {record.token_id} created" + (f" for {agent_id}" if agent_id else "") +
               (f" ({member})" if member else "") +
               (f", expires {record.expires_at}" if record.expires_at else "") +
               "; it is shown only now: keep it secret", err=True)


@token.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of a table.")
@_DATA_DIR
@_REDIS_URL
@_PREFIX
def token_list(as_json: bool, data_dir: Path | None, redis_url: str | None, prefix: str | None) -> None:
    """List tokens: id, role, crew, member, label, created, expires, last used (never the secret)."""
    from app.api.tokens import token_view

    store = _open_store(data_dir, redis_url, prefix)
    try:
        views = [token_view(r) for r in store.list_tokens()]
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps({"tokens": views}, ensure_ascii=False, indent=2))
        return
    header = f"{'id':<16} {'role':<10} {'agent':<10} {'member':<12} {'expires':<24} {'last used':<24} label"
    click.echo(header)
    for v in views:
        expires = (v["expires_at"] or "never") + (" (expired)" if v["expired"] else "")
        click.echo(f"{v['id']:<16} {v['role']:<10} {v['agent_id'] or '-':<10} {v['member'] or '-':<12} "
                   f"{expires:<24} {v['last_used_at'] or '-':<24} {v['label'] or ''}")


@token.command("revoke")
@click.argument("token_id")
@_DATA_DIR
@_REDIS_URL
@_PREFIX
def token_revoke(token_id: str, data_dir: Path | None, redis_url: str | None, prefix: str | None) -> None:
    """Revoke the token with this id (tok_…): refused from the next request on."""
    store = _open_store(data_dir, redis_url, prefix)
    try:
        record = store.find_token(token_id)
        if record is None or not store.delete_token(record.token_hash):
            click.echo(f"error: no token {token_id!r} (see `doorstep token list`)", err=True)
            sys.exit(1)
    finally:
        store.close()
    click.echo(f"token {token_id} revoked", err=True)


def _deliverer(store, webhook_url: str):  # type: ignore[no-untyped-def]
    from app import default_config
    from app.webhooks import Deliverer, settings_from

    settings = settings_from({**default_config(), "WEBHOOK_URL": webhook_url})
    assert settings is not None
    deliverer = Deliverer(store, settings)
    deliverer.setup()
    from app.cases import load_config as load_cases_config
    from app.safety import periodic_sweep

    deliverer.add_periodic(*periodic_sweep(store, load_cases_config().safety))  # safety.overdue (app/safety.py)
    return deliverer


@main.command()
@_DATA_DIR
@_REDIS_URL
@_PREFIX
@_WEBHOOK_URL
@click.option("--once", is_flag=True, help="One pass (fan out new events, attempt the due deliveries), then stop.")
def deliver(data_dir: Path | None, redis_url: str | None, prefix: str | None, webhook_url: str | None,
            once: bool) -> None:
    """Deliver webhooks from the store's outbox (signed with DOORSTEP_WEBHOOK_SECRET,
    retried with backoff). Any number may run with the web service: each delivery
    is claimed with a lease by one process at a time."""
    if not webhook_url:
        raise click.UsageError("--webhook-url or DOORSTEP_WEBHOOK_URL is required")
    _logging()
    store = _open_store(data_dir, redis_url, prefix)
    deliverer = _deliverer(store, webhook_url)
    try:
        if once:
            click.echo(f"{deliverer.run_once()} attempt(s)", err=True)
        else:
            click.echo("doorstep deliver: delivering webhooks (Ctrl-C stops)", err=True)
            with contextlib.suppress(KeyboardInterrupt):
                deliverer.run_forever()
    finally:
        store.close()


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--date", default=None, help="The plan date, YYYY-MM-DD (required for CSV input).")
@click.option("--timezone", default=None, help="IANA time zone [default: the problem's, or Asia/Shanghai].")
@click.option("--time-limit", type=click.FloatRange(min=0, min_open=True, max=3600), default=None,
              help="Search time limit in seconds [default: 10].")
@_MAX_ITERATIONS
@click.option("--travel", type=click.Choice(["network", "straight"]), default="network", show_default=True,
              help="Road travel times as [routing] provider says (the bundled map by default, or an "
                   "OSRM/Valhalla server), or straight lines.")
@click.option("--min-precision", type=click.Choice(["exact", "rooftop", "house", "street", "intersection",
                                                    "district", "city", "any"]),
              default=None, help="Leave out visits whose addresses are geocoded less precisely "
                                 "[default: [geocoding] min_precision, street].")
@click.option("--rule-set", default=None,
              help="Jurisdiction rules (config/rules/<name>.toml), or 'none' for no rules [default: the files' "
                   "rule set, else [planning] rule_set, cn-cba-2026].")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("plan.json"),
              show_default=True, help="Where to write the plan JSON ('-': standard output).")
@click.option("--dates", default=None, metavar="D1,D2,…",
              help="Plan several dates (up to 7, ascending): one plan file per date (plan-<date>.json) "
                   "and plan-summary.json.")
@click.option("--days", type=click.IntRange(1, 7), default=None,
              help="Plan N dates from --date (as --dates).")
def plan(files: tuple[Path, ...], date: str | None, timezone: str | None, time_limit: float | None,
         max_iterations: int | None, travel: str, min_precision: str | None, rule_set: str | None, out: Path,
         dates: str | None = None, days: int | None = None) -> None:
    """Plan a day from files: visits.csv agents.csv (or .json lists), or one
    problem.json. Checks the plan, prints a summary and writes the plan JSON.

    With --dates or --days, plans each date in turn (what a date cannot
    make is a candidate on the next; see solver.multiday) and prints the
    figures per date. CSV columns are described in docs/api.md and the README."""
    from app.inputs import InputError, load_problem
    from app.jobs import TravelProvider
    from solver import solve
    from solver.check import check_plan
    from solver.geo.routing import TravelUnavailable

    if date is not None:
        try:
            date = dt.date.fromisoformat(date).isoformat()
        except ValueError:
            raise click.BadParameter(f"{date!r} is not a date as YYYY-MM-DD", param_hint="--date") from None
    if dates is not None:  # several dates: the first is the day the files are read for
        from app.cli_days import horizon_dates

        date = horizon_dates(dates, days, None)[0].isoformat()
    try:
        problem = load_problem(list(files), date=date, timezone=timezone, time_limit_s=time_limit,
                               rule_set=rule_set)
    except InputError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    problem = _with_options(problem, max_iterations=max_iterations)
    click.echo(
        f"{problem.date}: {len(problem.visits)} visits, {len(problem.agents)} crews, "
        f"time limit {problem.options.time_limit_s:g} s, rule set {problem.options.rule_set}",
        err=True,
    )
    try:
        model = TravelProvider(travel).get()
    except ValueError as exc:  # a bad [routing] section
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    if dates is not None or days is not None:
        from app.cli_days import horizon_dates, plan_horizon

        plan_horizon(problem, horizon_dates(dates, days, problem.date), model=model, min_precision=min_precision,
                     out=out)
        return
    with click.progressbar(length=1000, label="planning", show_percent=True, file=sys.stderr) as bar:
        done = [0]
        stages = ("geocoding", "matrix", "solving")

        def progress(stage: str, fraction: float, *_: object, **__: object) -> None:
            # each stage is a third of the bar (the solver holds the CPU while searching)
            index = stages.index(stage) if stage in stages else 0
            target = int(1000 * (index + min(1.0, max(0.0, fraction))) / len(stages))
            bar.label = stage
            if target > done[0]:
                bar.update(target - done[0])
                done[0] = target

        try:
            result = solve(problem, model, progress=progress, min_precision=min_precision)
        except TravelUnavailable as exc:
            click.echo(f"\nerror: {exc}", err=True)
            sys.exit(3)
        bar.update(1000 - done[0])
    try:
        report = check_plan(problem, result, model)
    except TravelUnavailable as exc:  # the checker prices travel too (a day with nothing to route solves without it)
        click.echo(f"error: {exc}", err=True)
        sys.exit(3)
    if not report.ok:
        click.echo(f"error: the plan breaks {len(report.violations)} rule(s):", err=True)
        for violation in report.violations:
            click.echo(f"  - {violation}", err=True)
        sys.exit(1)
    to_stdout = str(out) == "-"
    click.echo(summary_table(result), err=to_stdout)  # the plan alone on standard output with --out -
    _echo_flags(problem, result)
    text = result.model_dump_json(indent=2) + "\n"
    if to_stdout:
        click.echo(text, nl=False)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        click.echo(f"wrote {out}", err=True)


@main.command()
@click.argument("cases", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--date", default=None, help="The screening day, YYYY-MM-DD [default: today].")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Screening weights [default: config/screening.toml].")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("visits.csv"),
              show_default=True, help="The visits to send, for `doorstep plan` (.csv, or .json for a JSON list).")
@click.option("--excluded", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the cases not sent, with the reason, as CSV.")
def screen(cases: Path, date: str | None, config_path: Path | None, out: Path, excluded: Path | None) -> None:
    """Screen cases for field visits offline (as POST /v1/screening does).

    CASES is a visits.csv with the case columns (days_past_due, overdue_amount,
    currency, broken_promises, last_contact, risk_flags, recent_visits), or a
    JSON list of visits. Writes the visits whose score reaches the threshold,
    with the score as their priority, highest first, ready for `doorstep plan`;
    prints each case's score and breakdown or why it was not sent (ids and
    points only: no names, phones or amounts)."""
    import csv

    from app.inputs import InputError, load_visits, write_visits_csv
    from solver.screening import load_config
    from solver.screening import screen as screen_visits

    try:
        day = dt.date.fromisoformat(date) if date is not None else dt.date.today()
    except ValueError:
        raise click.BadParameter(f"{date!r} is not a date as YYYY-MM-DD", param_hint="--date") from None
    try:
        config = load_config(config_path)
        visits = load_visits(cases)
    except (InputError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    sent, results = screen_visits(visits, day, config)
    header = f"{'visit':<16} {'case':<14} {'sent':<4} {'priority':>8} {'score':>7}  breakdown / reason"
    click.echo(header)
    click.echo("-" * len(header))
    for r in results:
        detail = r.reason or ""
        if r.score is not None and r.sent:
            detail = " ".join(f"{c.name}={c.points:g}" for c in r.score.components)
        click.echo(f"{r.visit_id:<16} {r.case_id or '-':<14} {'yes' if r.sent else 'no':<4} "
                   f"{'' if r.priority is None else r.priority:>8} "
                   f"{'' if r.score is None else format(r.score.total, 'g'):>7}  {detail}")
    click.echo(f"{len(sent)} of {len(results)} case(s) sent (threshold {config.threshold:g}) on {day}", err=True)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_visits_csv(sent, out)
    except InputError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(f"wrote {out}", err=True)
    if excluded is not None:
        with open(excluded, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["visit_id", "case_id", "code", "reason", "score"])
            for r in results:
                if not r.sent:
                    writer.writerow([r.visit_id, r.case_id or "", r.code, r.reason,
                                     "" if r.score is None else format(r.score.total, "g")])
        click.echo(f"wrote {excluded}", err=True)


from app.cli_cases import promises, safety  # noqa: E402 - they use the options above

main.add_command(promises)
main.add_command(safety)

if __name__ == "__main__":  # pragma: no cover
    main()
