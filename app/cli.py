"""The ``doorstep`` command.

``doorstep demo`` plans the bundled demo day offline and writes the plan, the
problem and a GeoJSON map; ``doorstep serve`` runs the web service.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from solver.model import Plan, Problem, Route


def _hhmm(value) -> str:  # noqa: ANN001 - aware datetime or None
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


@click.group()
@click.version_option(package_name="doorstep", message="%(prog)s %(version)s")
def main() -> None:
    """Doorstep: route planning for collections field visits."""


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
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("out"),
    show_default=True,
    help="Folder for plan.json, problem.json and routes.geojson.",
)
def demo(seed: int, visits: int, crews: int, time_limit: float | None, out_dir: Path) -> None:
    """Plan the demo day on the bundled road network (offline), check the plan
    and write it with a GeoJSON map."""
    from app.api.render import plan_geojson
    from solver import solve
    from solver.check import check_plan
    from solver.demo import generate_day
    from solver.geo.network import load_bundled_network

    problem: Problem = generate_day(seed=seed, visits=visits, crews=crews)
    if time_limit is not None:
        problem = problem.model_copy(update={"options": problem.options.model_copy(update={"time_limit_s": time_limit})})
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
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "plan.json").write_text(plan.model_dump_json(indent=2) + "\n", encoding="utf-8")
    (out_dir / "problem.json").write_text(problem.model_dump_json(indent=2) + "\n", encoding="utf-8")
    geojson = plan_geojson(problem, plan, network.path)
    (out_dir / "routes.geojson").write_text(json.dumps(geojson, ensure_ascii=False) + "\n", encoding="utf-8")
    click.echo(f"wrote {out_dir / 'plan.json'}, {out_dir / 'problem.json'}, {out_dir / 'routes.geojson'}", err=True)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the database [default: [service] data_dir of the config, ./var].",
)
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Planning jobs at once.")
def serve(host: str, port: int, data_dir: Path | None, workers: int) -> None:
    """Run the web service (Flask's threaded server)."""
    import logging

    from app import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config: dict[str, object] = {"JOB_WORKERS": workers}
    if data_dir is not None:
        config["DATA_DIR"] = str(data_dir)
    app = create_app(config)
    click.echo(f"doorstep: data in {app.config['DATA_DIR']}; listening on http://{host}:{port}/v1", err=True)
    app.run(host=host, port=port, threaded=True, use_reloader=False)


if __name__ == "__main__":  # pragma: no cover
    main()
