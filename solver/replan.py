"""Mid-day re-optimisation: re-plan the rest of the day from where crews are.

:func:`reoptimize` takes the day's problem, its published plan and a
:class:`~solver.model.DayState` (the time now, crews' positions, what is done,
under way, cancelled or new) and returns the *rest-of-day* problem with its
plan:

* completed and cancelled visits leave the problem; visits under way stay with
  their crew, who is free again at its planned end at that address;
* each crew starts from its reported position (or the visit under way, or
  its last completed stop) no earlier than now; breaks already taken are
  dropped; absent crews leave; ``max_visits`` counts what is done;
* promised slots are kept: a visit whose slot was published becomes an
  appointment in that slot (hard), unless the borrower declined it
  (``DayState.declined``: planned again without that promise);
* stability is the secondary goal: the search starts from the previous
  routes, and moving a visit to another crew costs
  ``STABILITY_COST_S`` seconds of travel.
"""

from __future__ import annotations

import time

from solver.compile import compile_problem
from solver.model import DayState, Location, Plan, Problem
from solver.search import SearchParams, search
from solver.slots import SlotParams, planning_data
from solver.solve import build_plan, default_geocoder, default_travel
from solver.travel import TravelModel

#: What moving one visit to another crew costs, in seconds of travel.
STABILITY_COST_S = 900


def rest_of_day(problem: Problem, plan: Plan, state: DayState) -> Problem:
    """The problem that remains at ``state.now``."""
    now = problem.seconds(state.now)
    known = {v.id for v in problem.visits}
    for field_name, ids in (("completed", state.completed), ("cancelled", state.cancelled),
                            ("in_progress", list(state.in_progress))):
        unknown = sorted(set(ids) - known)
        if unknown:
            raise ValueError(f"state.{field_name}: unknown visit id(s) {', '.join(map(repr, unknown))}")
    agent_ids = {a.id for a in problem.agents}
    for visit_id, agent_id in state.in_progress.items():
        if agent_id not in agent_ids:
            raise ValueError(f"state.in_progress.{visit_id}: unknown agent {agent_id!r}")
    for reported in state.crews:
        if reported.agent_id not in agent_ids:
            raise ValueError(f"state.crews: unknown agent {reported.agent_id!r}")
    added_ids = [v.id for v in state.added]
    clash = sorted(set(added_ids) & known)
    if clash:
        raise ValueError(f"state.added: visit id(s) already in the plan: {', '.join(map(repr, clash))}")

    gone = set(state.completed) | set(state.cancelled) | set(state.in_progress)
    declined = set(state.declined)
    stops = {s.visit_id: (r.agent_id, s) for r in plan.routes for s in r.stops}
    crews = {c.agent_id: c for c in state.crews}
    routes = {r.agent_id: r for r in plan.routes}

    visits = []
    for visit in problem.visits:
        if visit.id in gone:
            continue
        data = visit.model_dump()
        slot = stops[visit.id][1].slot if visit.id in stops else None
        if visit.id in declined:
            data["appointment"] = None  # the borrower declined the time: no promise to keep
        elif slot is not None:
            data["appointment"] = {"start": slot.start, "end": slot.end}  # a promise made
        visits.append(data)
    visits += [v.model_dump() for v in state.added]

    agents = []
    for agent in problem.agents:
        crew = crews.get(agent.id)
        if crew is not None and crew.absent:
            continue
        data = agent.model_dump()
        free_from = max(now, problem.seconds(agent.shift.start))
        position: Location | None = crew.location if crew is not None else None
        under_way = [vid for vid, aid in state.in_progress.items() if aid == agent.id]
        for vid in under_way:
            if vid in stops:
                stop = stops[vid][1]
                free_from = max(free_from, problem.seconds(stop.end))
                position = position or stop.location
            else:
                visit = problem.visit(vid)
                free_from = max(free_from, now + visit.duration_min * 60)
        old_route = routes.get(agent.id)
        if position is None:
            done_here = [s for s in old_route.stops if s.visit_id in state.completed] if old_route else []
            if done_here:
                position = done_here[-1].location
        if free_from >= problem.seconds(agent.shift.end):
            continue  # the shift is over
        data["shift"] = {"start": problem.clock(free_from), "end": problem.clock(problem.seconds(agent.shift.end))}
        if position is not None:
            data["start"] = {"location": position.model_dump()}
            if agent.end is None and not agent.open_end:
                data["end"] = agent.start.model_dump()  # still goes home to the original end
        breaks = []
        taken = old_route.breaks if old_route else []
        for b in agent.breaks:
            lo, hi = problem.window_seconds(b.window)
            already = any(problem.seconds(t.start) < free_from and lo <= problem.seconds(t.start) <= hi
                          for t in taken)
            if already or hi - max(lo, free_from) < b.duration_min * 60:
                continue
            breaks.append({"window": {"start": problem.clock(max(lo, free_from)), "end": problem.clock(hi)},
                           "duration_min": b.duration_min})
        data["breaks"] = breaks
        done = sum(1 for vid in state.completed if vid in stops and stops[vid][0] == agent.id)
        done += len(under_way)
        if agent.max_visits is not None:
            data["max_visits"] = max(0, agent.max_visits - done)
        if agent.max_work_min is not None and plan.routes:
            started = problem.seconds(old_route.start) if old_route else free_from
            data["max_work_min"] = max(1, agent.max_work_min - max(0, free_from - started) // 60)
        agents.append(data)
    if not agents:
        raise ValueError("state: no crew is available for the rest of the day")
    return Problem.model_validate({
        "date": problem.date, "timezone": problem.timezone, "visits": visits, "agents": agents,
        "options": problem.options.model_dump(), "skills": problem.skills,
    })


def reoptimize(
    problem: Problem,
    plan: Plan,
    state: DayState,
    travel: TravelModel | None = None,
    *,
    params: SearchParams | None = None,
) -> tuple[Problem, Plan]:
    """Re-plan the rest of the day; returns the rest-of-day problem and its
    plan. ``params`` tune the search (:class:`solver.search.SearchParams`)."""
    started = time.perf_counter()
    rest = rest_of_day(problem, plan, state)
    travel = travel if travel is not None else default_travel()
    needs_geocoder = any(a.location is None for v in rest.visits for a in v.addresses)
    data = compile_problem(rest, travel, geocoder=default_geocoder() if needs_geocoder else None)

    vehicle_of = {veh.agent.id: v for v, veh in enumerate(data.vehicles)}
    node_of = {(rest.visits[n.visit].id, n.address): i for i, n in enumerate(data.nodes)
               if n.kind == "visit" and n.visit is not None}
    initial: list[list[int]] = [[] for _ in data.vehicles]
    preferred: dict[int, int] = {}
    for route in plan.routes:
        v = vehicle_of.get(route.agent_id)
        for stop in route.stops:
            n = node_of.get((stop.visit_id, stop.address_index))
            if n is None:
                continue
            if v is not None:
                visit_index = data.nodes[n].visit
                assert visit_index is not None  # node_of holds visit nodes
                for alt in data.visit_nodes.get(visit_index, []):
                    preferred[alt] = v
                initial[v].append(n)
    # new slots are planned in as in solve(); if that cannot keep every kept
    # promise (a crew already running late), the rest of the day is planned
    # on the real windows instead: a promise made outranks a wide new slot
    searched = planning_data(data, SlotParams.of(rest.options))
    raw = search(searched, initial_routes=initial, preferred_vehicle=preferred, stability_cost=STABILITY_COST_S,
                 params=params)
    if searched is not data and any(rest.visits[vi].is_hard for vi in raw.dropped):
        searched = data
        raw = search(data, initial_routes=initial, preferred_vehicle=preferred, stability_cost=STABILITY_COST_S,
                     params=params)
    new_plan = build_plan(data, raw, searched=searched)
    new_plan.solver.seconds = round(time.perf_counter() - started, 3)
    return rest, new_plan
