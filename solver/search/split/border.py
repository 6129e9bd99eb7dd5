"""The border polish of a merged split day: :func:`polish_borders`.

For each pair of neighbouring parts, a *window* of the crews of either side
whose routes lie closest to the other side, with their visits and the
visits either part left out, is compiled as a small problem of its own (no
travel matrix of the whole day is ever built), left-out visits are inserted
with any of its crews (:func:`solver.search.territories.insert_dropped`) and
ruin and recreate (:func:`solver.search.ruin_recreate.polish`) moves visits
across the border. A window's new routes replace the old ones only when the
independent checker accepts them and they serve at least the same priority.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence

from solver.check import check_plan
from solver.compile import Geocoder, compile_problem
from solver.model import Plan, Problem, Route
from solver.search.params import SearchParams
from solver.search.raw import RawSolution, timed_route
from solver.search.ruin_recreate import polish
from solver.search.split.params import SplitParams
from solver.search.split.part import Part
from solver.search.split.partition import planar_xy, visit_location
from solver.search.territories import insert_dropped
from solver.slots import SlotParams, planning_data
from solver.solve import build_plan, summarize
from solver.timing import simulate
from solver.travel import TravelModel

__all__ = ["DROPPED_CODES", "polish_borders"]

log = logging.getLogger("doorstep.solver")

#: Reasons of visits a search left out (as opposed to visits no crew can make):
#: the border polish tries them again.
DROPPED_CODES = frozenset({"lower_priority", "capacity", "required_infeasible"})



def _route_xy(route: Route, lat0: float) -> tuple[float, float]:
    """Where a route works: the centre of its stops (its start when empty)."""
    points = [planar_xy(s.location, lat0) for s in route.stops] or [planar_xy(route.start_location, lat0)]
    return sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points)


def _windows(problem: Problem, plan: Plan, parts: Sequence[Part], params: SplitParams,
             lat0: float) -> list[tuple[list[str], list[str]]]:
    """Border windows, busiest first: (crew ids, left-out visit ids) for each
    part and its nearest neighbour part."""
    by_agent = {r.agent_id: r for r in plan.routes}
    where = {a: _route_xy(by_agent[a], lat0) for p in parts for a in p.agent_ids}
    centre = []
    for p in parts:
        pts = [where[a] for a in p.agent_ids]
        centre.append((sum(x for x, _ in pts) / len(pts), sum(y for _, y in pts) / len(pts)))
    part_of = {vid: p.index for p in parts for vid in p.visit_ids}
    dropped: dict[int, list[str]] = {p.index: [] for p in parts}
    for u in plan.unassigned:
        if u.code in DROPPED_CODES:
            dropped[part_of[u.visit_id]].append(u.visit_id)
    pairs: set[tuple[int, int]] = set()
    for a in range(len(parts)):
        others = sorted((b for b in range(len(parts)) if b != a), key=lambda b: math.dist(centre[a], centre[b]))
        pairs.update(tuple(sorted((a, b))) for b in others[:2])  # type: ignore[misc]
    locations = {v.id: visit_location(v) for v in problem.visits}
    windows = []
    for a, b in pairs:
        crews = []
        for side, other in ((a, b), (b, a)):
            near = sorted(parts[side].agent_ids, key=lambda c: math.dist(where[c], centre[other]))
            crews += near[: params.border_crews]
        mid = ((centre[a][0] + centre[b][0]) / 2, (centre[a][1] + centre[b][1]) / 2)

        def off(vid: str, mid: tuple[float, float] = mid) -> float:
            loc = locations[vid]
            return math.dist(planar_xy(loc, lat0), mid) if loc else math.inf

        left = sorted(dropped[a] + dropped[b], key=off)[: params.window_dropped]
        windows.append((crews, left))
    windows.sort(key=lambda w: -len(w[1]))
    return windows


def _polish_window(problem: Problem, plan: Plan, crews: list[str], left: list[str], end: float,
                   travel: TravelModel, geocoder: Geocoder | None, params: SplitParams) -> Plan | None:
    """Re-plan one border window, done by ``end`` (``time.time()``): its
    search ends early enough to time and check the routes (a share of the
    compile time, :attr:`SplitParams.check_share`); a window left less than
    :attr:`SplitParams.min_search_s` of search after compiling is given up.
    Its plan (crews ``crews``; the window's visits) when the checker accepts
    it and it is better (more priority served, then more visits, then less
    travel), else None."""
    started = time.time()
    by_agent = {r.agent_id: r for r in plan.routes}
    routed = [s.visit_id for c in crews for s in by_agent[c].stops]
    still_out = {u.visit_id for u in plan.unassigned}
    left = [vid for vid in left if vid in still_out]  # an earlier window may have placed some
    keep = set(routed) | set(left)
    agents = {a.id: a for a in problem.agents}
    sub = problem.model_copy(update={
        "visits": [v for v in problem.visits if v.id in keep], "agents": [agents[c] for c in crews],
        "options": problem.options.model_copy(update={"time_limit_s": max(1.0, end - started)}),
    })
    data = compile_problem(sub, travel, geocoder=geocoder)
    searched = planning_data(data, SlotParams.of(sub.options))
    node_of = {(sub.visits[n.visit].id, n.address): k for k, n in enumerate(data.nodes)
               if n.kind == "visit" and n.visit is not None}
    routes = []
    for v, crew in enumerate(crews):
        nodes = [node_of.get((s.visit_id, s.address_index)) for s in by_agent[crew].stops]
        if any(n is None for n in nodes):
            log.info("border window: an address compiled otherwise than in its part; left as it was")
            return None
        route = timed_route(searched, v, [n for n in nodes if n is not None])
        if route is None:
            log.info("border window: a route of its part does not time here; left as it was")
            return None
        routes.append(route)
    served = set(routed)
    raw = RawSolution(routes=routes, dropped=[vi for vi in searched.visit_nodes if sub.visits[vi].id not in served],
                      objective=None, status="success", seconds=0.0, first_solution="split parts",
                      metaheuristic="border polish")
    compiled = time.time()
    search_s = end - compiled - (compiled - started) * params.check_share
    if search_s < params.min_search_s:
        log.info("border window: compiled in %.1f s, too little time left to search it", compiled - started)
        return None
    searching = time.perf_counter()
    insert_dropped(searched, raw, searching + search_s * 0.5)
    sequences = [[s.node for s in r.stops] for r in raw.routes]

    def feasible(vehicle: int, sequence: list[int]) -> bool:
        return simulate(searched.route_timing(vehicle, sequence)) is not None

    polish_s = max(0.0, search_s - (time.perf_counter() - searching))
    # the day's max_iterations stops this ruin and recreate too, as it stops the parts' searches
    rr_params = SearchParams().for_options(sub.options).ruin_recreate
    polished, _cost, _stats = polish(searched, sequences, polish_s, seed=sub.options.seed, feasible=feasible,
                                     params=rr_params)
    for v, sequence in enumerate(polished):
        if sequence != sequences[v]:
            timed = timed_route(searched, v, sequence)
            if timed is None:
                log.info("border window: a polished route does not time; left as it was")
                return None
            raw.routes[v] = timed
    on_route = {searched.nodes[s.node].visit for r in raw.routes for s in r.stops}
    raw.dropped = [vi for vi in searched.visit_nodes if vi not in on_route]
    window = build_plan(data, raw, searched=searched)
    before = (sum(s.priority for c in crews for s in by_agent[c].stops), len(routed),
              -sum(by_agent[c].travel_s for c in crews))
    after = window.summary.priority_planned, window.summary.visits_planned, -window.summary.travel_s
    if after <= before:
        log.info("border window: no better (priority, visits, -travel) %s than %s", after, before)
        return None
    report = check_plan(sub, window, travel)
    if not report.ok:
        log.warning("border window rejected by the checker: %s", report)
        return None
    return window


def polish_borders(problem: Problem, plan: Plan, parts: Sequence[Part], travel: TravelModel, deadline: float,
                   params: SplitParams, geocoder: Geocoder | None = None) -> tuple[Plan, int, int]:
    """Polish the merged ``plan`` across part borders until ``deadline``
    (``time.time()``; see the module docstring): as many windows as fit
    :attr:`SplitParams.min_window_s` each, sharing the time equally; a
    window is tried only while that much is left. Returns the plan, how many
    windows were tried and how many improved it."""
    budget_s = deadline - time.time()
    if len(parts) < 2 or budget_s < params.min_window_s:
        return plan, 0, 0
    known = [loc for loc in map(visit_location, problem.visits) if loc]
    lat0 = sum(loc.lat for loc in known) / len(known) if known else 0.0
    windows = _windows(problem, plan, parts, params, lat0)[: int(budget_s // params.min_window_s)]
    improved = tried = 0
    for k, (crews, left) in enumerate(windows):
        remaining = deadline - time.time()
        if remaining < params.min_window_s:  # earlier windows took more than their share
            break
        tried += 1
        end = time.time() + remaining / (len(windows) - k)
        window = _polish_window(problem, plan, crews, left, end, travel, geocoder, params)
        if window is None:
            continue
        new_routes = {r.agent_id: r for r in window.routes}
        routes = [new_routes.get(r.agent_id, r) for r in plan.routes]
        inside = {s.visit_id for c in crews for s in plan.route(c).stops} | set(left)
        unassigned = [u for u in plan.unassigned if u.visit_id not in inside]
        unassigned += [u for u in window.unassigned if u.visit_id in inside]
        order = {v.id: i for i, v in enumerate(problem.visits)}
        unassigned.sort(key=lambda u: order[u.visit_id])
        plan = plan.model_copy(update={"routes": routes, "unassigned": unassigned,
                                       "summary": summarize(problem, routes)})
        improved += 1
    return plan, tried, improved

