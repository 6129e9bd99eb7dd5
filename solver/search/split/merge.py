"""One plan of the whole day from the plans of its parts: :func:`merge_plans`."""

from __future__ import annotations

from collections.abc import Sequence

from solver.compile import Geocoder
from solver.model import Plan, Problem, Route, SolverStats, Unassigned
from solver.search.split.part import Part
from solver.solve import matrix_engine_of, solve, summarize
from solver.travel import TravelModel

__all__ = ["merge_plans"]


def _idle_routes(problem: Problem, travel: TravelModel, geocoder: Geocoder | None) -> list[Route]:
    """Empty routes of a part's crews (a part that could not be solved)."""
    empty = problem.model_copy(update={"visits": []})
    return solve(empty, travel, geocoder=geocoder).routes


def merge_plans(problem: Problem, parts: Sequence[Part], plans: Sequence[Plan | None], travel: TravelModel,
                geocoder: Geocoder | None = None) -> Plan:
    """One plan of the whole day from the part plans: every crew's route in
    the order of ``problem.agents``, every visit planned or unassigned; a
    missing part plan leaves its crews idle and its visits unassigned."""
    routes: dict[str, Route] = {}
    unassigned: list[Unassigned] = []
    warnings: list[str] = []
    flags = []
    objective: int | None = 0
    seconds = matrix_seconds = 0.0
    searches: list[str] = []
    for part, plan in zip(parts, plans):
        if plan is None:
            for route in _idle_routes(part.problem, travel, geocoder):
                routes[route.agent_id] = route
            hard = {v.id for v in part.problem.visits if v.is_hard}  # never "lower priority": the checker refuses it
            unassigned += [Unassigned(visit_id=vid, code="required_infeasible" if vid in hard else "lower_priority",
                                      reason="the part of the split day holding this visit could not be solved "
                                             "in time (see the job log); its crews stayed idle",
                                      details={"part": part.index}) for vid in part.visit_ids]
            objective = None
            continue
        routes.update((r.agent_id, r) for r in plan.routes)
        unassigned += plan.unassigned
        warnings += [w for w in plan.warnings if w not in warnings]
        flags += plan.flags
        objective = None if objective is None or plan.solver.objective is None else objective + plan.solver.objective
        seconds = max(seconds, plan.solver.seconds)
        matrix_seconds += plan.solver.matrix_seconds
        if plan.solver.metaheuristic and plan.solver.metaheuristic not in searches:
            searches.append(plan.solver.metaheuristic)
    ordered = [routes[a.id] for a in problem.agents]
    order = {v.id: i for i, v in enumerate(problem.visits)}
    unassigned.sort(key=lambda u: order[u.visit_id])
    first = next((p for p in plans if p is not None), None)
    return Plan(
        date=problem.date, timezone=problem.timezone, routes=ordered, unassigned=unassigned,
        summary=summarize(problem, ordered),
        solver=SolverStats(
            status="success" if all(p is not None for p in plans) else "partial",
            objective=objective, seconds=round(seconds, 3), matrix_seconds=round(matrix_seconds, 3),
            first_solution=f"split into {len(parts)} parts",
            metaheuristic="per part: " + " | ".join(searches),
            matrix_engine=matrix_engine_of(travel),
        ),
        warnings=warnings, flags=flags,
        rule_set=first.rule_set if first else None, slot_policy=first.slot_policy if first else None,
    )

