"""A split day end to end, within its time limit: :func:`solve_split`."""

from __future__ import annotations

import logging
import time

from solver.compile import Geocoder
from solver.model import Plan, Problem
from solver.search.split.border import polish_borders
from solver.search.split.merge import merge_plans
from solver.search.split.params import SplitParams
from solver.search.split.part import SolveParts
from solver.search.split.partition import needs_split, split_problem
from solver.search.split.parts import solve_parts_inline
from solver.search.split.report import SplitReport
from solver.solve import default_geocoder, solve
from solver.travel import TravelModel

__all__ = ["solve_split"]

log = logging.getLogger("doorstep.solver")


def solve_split(problem: Problem, travel: TravelModel, *, params: SplitParams | None = None,
                solve_parts: SolveParts | None = None, geocoder: Geocoder | None = None,
                started: float | None = None, report: SplitReport | None = None) -> Plan:
    """Plan a big day in parts within its time limit (see the module docstring).

    Parameters
    ----------
    problem, travel
        The day and its travel model.
    params
        Split settings (default :class:`SplitParams`).
    solve_parts
        Solves the parts by a deadline (default: one after another in this
        process, :func:`solve_parts_inline`).
    geocoder
        For addresses without a location (default: the configured chain,
        when the day has any).
    started
        When the day's budget started (``time.time()``; default now): a
        job passes its own start, so that its start-up counts too. The
        budget ends ``problem.options.time_limit_s`` later.
    report
        Filled in with where the wall time went (:class:`SplitReport`).

    Returns
    -------
    Plan
        The merged and polished plan; days at or below ``split_above`` are
        solved whole.
    """
    params = params or SplitParams()
    report = report if report is not None else SplitReport()
    now = time.time()
    started = now if started is None else min(started, now)
    limit = problem.options.time_limit_s
    deadline = started + limit
    report.budget_s, report.before_s = limit, now - started
    if geocoder is None and any(a.location is None for v in problem.visits for a in v.addresses):
        geocoder = default_geocoder()
    if not needs_split(problem, params):
        return solve(problem, travel, geocoder=geocoder)
    parts = split_problem(problem, params)
    mark = time.time()
    report.split_s = mark - now
    solver_fn = solve_parts or solve_parts_inline(travel, geocoder, params)
    plans = solver_fn(parts, deadline - limit * params.polish_share, deadline)
    for k, part_plan in enumerate(plans):
        if part_plan is not None:
            report.part_s[k], report.matrix_s[k] = part_plan.solver.seconds, part_plan.solver.matrix_seconds
            report.where.setdefault(k, "inline")
    report.parts_s, mark = time.time() - mark, time.time()
    plan = merge_plans(problem, parts, plans, travel, geocoder)
    report.merge_s, mark = time.time() - mark, time.time()
    plan, report.windows_tried, report.windows_improved = polish_borders(
        problem, plan, parts, travel, deadline, params, geocoder)
    report.polish_s = time.time() - mark
    plan.solver.metaheuristic = f"{plan.solver.metaheuristic}; border polish ({report.windows_improved} windows improved)"
    plan.solver.seconds = round(time.time() - started, 3)
    log.info("split day: %s", report.describe())
    return plan

