"""Solving the parts of a split day: one part by a deadline
(:func:`solve_part`), or all of them one after another in this process
(:func:`solve_parts_inline`; :mod:`app.jobs.split` hands them to RQ
workers instead)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from solver.compile import Geocoder, compile_problem
from solver.model import Plan, Problem
from solver.search.split.params import SplitParams
from solver.search.split.part import Part, SolveParts
from solver.solve import solve
from solver.travel import TravelModel

__all__ = ["solve_part", "solve_parts_inline"]

log = logging.getLogger("doorstep.solver")


def solve_parts_inline(travel: TravelModel, geocoder: Geocoder | None = None,
                       params: SplitParams | None = None) -> SolveParts:
    """``solve_parts`` solving one part after another in this process, each
    with an equal share of the time left before the deadline; a part whose
    solve raises comes back None."""
    params = params or SplitParams()

    def run(parts: Sequence[Part], deadline: float, end: float | None = None) -> list[Plan | None]:
        plans: list[Plan | None] = []
        for k, part in enumerate(parts):
            own = time.time() + (deadline - time.time()) / (len(parts) - k)
            plans.append(solve_part(part.problem, own, travel, geocoder, params))
        return plans

    return run


def solve_part(problem: Problem, deadline: float, travel: TravelModel, geocoder: Geocoder | None = None,
               params: SplitParams | None = None) -> Plan | None:
    """Solve one part's ``problem`` by ``deadline`` (``time.time()``); None when it fails.

    Its travel matrices are computed first (compiling the part fills the
    travel model's matrix cache, which :func:`solver.solve` then finds), so
    that the search gets :attr:`SplitParams.search_share` of what is left
    until the deadline, less :attr:`SplitParams.part_margin_s` (at least
    :attr:`SplitParams.min_part_s`). The plan's ``matrix_seconds`` are those
    of the first compile, its ``seconds`` the whole part's (compile included).
    """
    params = params or SplitParams()
    started = time.perf_counter()
    try:
        matrix_s = compile_problem(problem, travel, geocoder=geocoder).matrix_seconds
        limit = max(params.min_part_s, (deadline - time.time() - params.part_margin_s) * params.search_share)
        sub = problem.model_copy(update={"options": problem.options.model_copy(update={"time_limit_s": limit})})
        plan = solve(sub, travel, geocoder=geocoder)
    except Exception:  # a failed part leaves its visits unassigned; the day goes on
        log.exception("a part of a split day failed")
        return None
    plan.solver.matrix_seconds = round(matrix_s + plan.solver.matrix_seconds, 3)
    plan.solver.seconds = round(time.perf_counter() - started, 3)
    return plan

