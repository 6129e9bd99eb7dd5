"""GET /v1/agents/<id>/itinerary?date=YYYY-MM-DD: a crew's day from the current plan."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from app.api.common import parse_date, services
from app.api.render import itinerary
from app.errors import not_found
from solver.model import Plan, Problem

bp = Blueprint("agents", __name__)


@bp.get("/agents/<agent_id>/itinerary")
def get_itinerary(agent_id: str):  # type: ignore[no-untyped-def]
    date = parse_date(request.args.get("date"))
    store = services().store
    stored = store.get_plan(date)
    if stored is None:
        raise not_found(f"no plan for {date}")
    problem_json = store.get_problem(date, stored.version)
    if problem_json is None:  # published together with the plan: should not happen
        raise RuntimeError(f"plan {date} v{stored.version} has no problem stored")
    plan = Plan.model_validate_json(stored.plan_json)
    if all(route.agent_id != agent_id for route in plan.routes):
        raise not_found(f"no agent {agent_id!r} in the plan for {date}")
    problem = Problem.model_validate_json(problem_json)
    return jsonify(itinerary(problem, plan, agent_id, version=stored.version))
