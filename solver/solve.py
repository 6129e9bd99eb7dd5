"""The planning entry point: :func:`solve`.

``solve(problem)`` runs the whole pipeline — geocode, travel-time matrices,
OR-Tools search — and returns a :class:`~solver.model.Plan` with timed routes
and a reason for every visit left out.
"""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING

from solver.compile import Geocoder, Progress, RoutingData, compile_problem
from solver.model import (
    Plan,
    PlannedBreak,
    PlanSummary,
    Problem,
    Route,
    Slot,
    SolverStats,
    Stop,
    Unassigned,
)
from solver.preferences import preferred_vehicles
from solver.reasons import EXPLAIN_BUDGET_S, explain_dropped
from solver.search import Deadline, RawRoute, RawSolution, SearchParams, expressible, search, search_by_territory
from solver.slots import SlotParams, planning_data, planning_timing, real_route
from solver.timing import PlannedIn, Schedule, assign_slots, break_legs_of, latest_start, simulate
from solver.travel import TravelModel

if TYPE_CHECKING:
    from solver.geo.chain import GeocodingChain


def default_travel() -> TravelModel:
    """The travel model ``[routing] provider`` names: by default the bundled
    demo city's road network (loaded once per process); see
    :func:`solver.geo.routing.travel_model_from_config`."""
    from solver.geo.routing import travel_model_from_config

    return travel_model_from_config()


@functools.cache
def default_geocoder() -> GeocodingChain:
    """The configured geocoding chain (cache, then online providers if any are
    enabled, then the offline gazetteer of the bundled map), built once."""
    from solver.geo.chain import GeocodingChain

    return GeocodingChain.from_config()


def solve(
    problem: Problem,
    travel: TravelModel | None = None,
    *,
    geocoder: Geocoder | None = None,
    progress: Progress | None = None,
    min_precision: str | None = None,
    params: SearchParams | None = None,
) -> Plan:
    """Plan the day described by ``problem``.

    Parameters
    ----------
    problem
        A validated problem (``Problem.model_validate(payload)``).
    travel
        Prices travel between points; default: the bundled road network.
    geocoder
        Resolves address text without a location; default: the offline
        gazetteer of the bundled map.
    progress
        Called as ``progress(stage, fraction)`` with stages ``geocoding``,
        ``matrix`` and ``solving``.
    min_precision
        Visit addresses geocoded less precisely than this are not routed
        (a visit left with none is unassigned as ``geocode_imprecise``);
        default: ``[geocoding] min_precision`` (``"street"``).
    params
        Tune the search (:class:`solver.search.SearchParams`); default: the
        product's tuning. Tests pass e.g. ``SearchParams().stopping_after(n)``.

    Returns
    -------
    Plan
        One route per crew (possibly empty) and the unassigned visits.
    """
    started = time.perf_counter()
    travel = travel if travel is not None else default_travel()
    needs_geocoder = any(p.location is None for v in problem.visits for p in v.addresses) or any(
        p is not None and p.location is None for a in problem.agents for p in (a.start, a.end)
    )
    if geocoder is None and needs_geocoder:
        geocoder = default_geocoder()
    data = compile_problem(problem, travel, geocoder=geocoder, progress=progress, min_precision=min_precision)
    params = params or SearchParams()
    budget = params.budget
    # the time limit is the whole plan's: geocoding and the matrix are in it,
    # but the search keeps at least its minimum share after them
    solving = Deadline.for_plan(started, problem.options.time_limit_s, budget.min_search_share)
    if progress:
        progress("solving", 0.0)
    # the search sees the slack every slot needs (slot_policy guaranteed); the
    # routes are timed and the slots cut against the real windows
    searched = planning_data(data, SlotParams.of(problem.options))
    preferred = preferred_vehicles(searched)  # Visit.preferred_agents: priced as re-plans price stability
    if params.use_ils and not preferred and expressible(searched) is None:
        # PyVRP searches the whole day, however large, within what is left of
        # the time limit (less its own reserve for building the plan)
        raw = search(searched, deadline=solving, params=params)
    else:
        # one deadline for the whole search, model building, repairs and
        # building the plan after it included. Building the plan takes CPU
        # time that the machine's load stretches: kept back at the share of
        # a core this plan has had
        finish_cpu_s = budget.finish_reserve_s + budget.finish_reserve_per_visit_s * len(data.visit_nodes)
        deadline = solving.reserving(finish_cpu_s, 1.0, budget.share_prior_weight_s)
        if preferred:
            raw = search(searched, deadline=deadline, preferred_vehicle=preferred,
                         stability_cost=problem.options.preferred_agent_cost_s, params=params)
        elif len(data.visit_nodes) > params.territories.decompose_above and len(data.vehicles) > 1:
            raw = search_by_territory(searched, deadline, params)
        else:
            raw = search(searched, deadline=deadline, params=params)
    if progress:
        progress("solving", 1.0)
    plan = build_plan(data, raw, searched=searched)
    plan.solver.seconds = round(time.perf_counter() - started, 3)
    plan.solver.matrix_engine = matrix_engine_of(travel)
    return plan


def matrix_engine_of(travel: TravelModel) -> str:
    """What prices a travel model's matrices: a road network's shortest-path
    engine (``"csgraph"``, ``"igraph"``, ...), else the model's ``name`` or
    class name (``"StraightLineTravel"``)."""
    label = getattr(travel, "engine_label", None)  # a road network says which modes fell back
    if callable(label):
        return str(label())
    engine = getattr(travel, "engine", None) or getattr(travel, "name", None)
    return str(engine) if engine else type(travel).__name__


def _arrival(departure: int, travel: int, breaks: list[tuple[int, int]]) -> int:
    """When the crew arrives, leaving at ``departure`` with ``travel`` seconds
    to go and taking the given breaks (start, duration) on the way: a break
    that starts before the crew would have arrived interrupts the journey."""
    clock, remaining = departure, travel
    for start, duration in breaks:
        if start < departure:
            continue
        if start >= clock + remaining:
            break
        remaining -= start - clock
        clock = start + duration
    return clock + remaining


def _engine_schedule(data: RoutingData, raw: RawRoute) -> Schedule:
    """The schedule exactly as the engine timed it."""
    veh = data.vehicles[raw.vehicle]
    schedule = Schedule(leave=raw.start, breaks=list(raw.breaks), end=raw.end)
    prev, departure = veh.start_node, raw.start
    for rs in raw.stops:
        travel = data.travel_s(veh.mode, prev, rs.node)
        gap = [b for b in raw.breaks if departure <= b[0] < rs.start]
        schedule.arrivals.append(min(_arrival(departure, travel, gap), rs.start))
        schedule.starts.append(rs.start)
        prev, departure = rs.node, rs.start + data.nodes[rs.node].service_s
    travel = data.travel_s(veh.mode, prev, veh.end_node)
    on_way = [b for b in raw.breaks if departure <= b[0] < max(raw.end, departure + travel)]
    schedule.end = max(raw.end, _arrival(departure, travel, on_way))
    return schedule


def timed_route(
    data: RoutingData,
    vehicle: int,
    sequence: list[int],
    *,
    fallback: Schedule | None = None,
    fixed_slots: dict[int, tuple[int, int]] | None = None,
) -> Route | None:
    """Time crew ``vehicle``'s visit nodes ``sequence`` into a :class:`Route`.

    Service starts as early as the published slots allow; each stop gets its
    feasible start range and, when slots are on, a slot such that arriving
    anywhere in every slot keeps the route feasible (``fixed_slots``: slots
    already promised, by position). With ``slot_policy = "guaranteed"`` each
    slot is cut at its full width where the route allows (the search kept
    the slack free: :mod:`solver.slots`) and a booked appointment's slot is
    the appointment. Returns ``None`` when the sequence is infeasible and
    there is no ``fallback`` (the engine's own timing).
    """
    problem = data.problem
    params = SlotParams.of(problem.options)
    timing = data.route_timing(vehicle, sequence)
    earliest = simulate(timing)
    slots: list[tuple[int, int]] | None = None
    if earliest is None:
        if fallback is None:
            return None
        data.warnings.append(f"crew {data.vehicles[vehicle].agent.id}: stop ranges and slots not computed")
        schedule = fallback
        ranges = [(t, t) for t in schedule.starts]
    else:
        floors: list[int | None] = [None] * len(sequence)
        ranges = [(e, latest_start(timing, k, floors, e)) for k, e in enumerate(earliest.starts)]
        schedule = earliest
        if sequence and (params.width_s > 0 or fixed_slots):
            widths = [params.width_s] * len(sequence)
            planned = earliest.starts
            planned_in = None
            if params.planned_in:
                visits = [problem.visits[v] for v in (data.nodes[n].visit for n in sequence) if v is not None]
                widths = [params.width_for(v) for v in visits]
                planned_in = PlannedIn(planning_timing(timing, widths, params.width_s), params.width_s)
            slots = assign_slots(timing, planned, widths, params.align_s, fixed_slots, planned_in=planned_in)
            if slots is None:
                if fallback is None:
                    return None
            else:
                # the published day takes its breaks where the worst case (the
                # crew at the end of every slot) takes them
                worst = simulate(timing, [b for _, b in slots])
                legs = break_legs_of(worst) if worst is not None and planned_in is not None else None
                schedule = ((legs is not None and simulate(timing, [a for a, _ in slots], legs))
                            or simulate(timing, [a for a, _ in slots]) or worst or earliest)
    return _route_from_schedule(data, vehicle, sequence, schedule, ranges, slots)


def _route_from_schedule(
    data: RoutingData, vehicle: int, sequence: list[int], schedule: Schedule, ranges: list[tuple[int, int]],
    slots: list[tuple[int, int]] | None,
) -> Route:
    problem = data.problem
    veh = data.vehicles[vehicle]
    mode = veh.mode
    stops: list[Stop] = []
    prev_node = veh.start_node
    for k, n in enumerate(sequence):
        node = data.nodes[n]
        assert node.visit is not None and node.address is not None and node.point is not None  # a visit node
        visit = problem.visits[node.visit]
        address = visit.addresses[node.address]
        start, arrival = schedule.starts[k], schedule.arrivals[k]
        earliest, latest = ranges[k]
        stops.append(
            Stop(
                visit_id=visit.id,
                address_index=node.address,
                address_kind=address.kind,
                address_text=address.text,
                location=data.points[node.point],
                arrival=problem.clock(arrival),
                start=problem.clock(start),
                end=problem.clock(start + node.service_s),
                earliest_start=problem.clock(min(earliest, start)),
                latest_start=problem.clock(max(latest, start)),
                slot=None if slots is None else Slot(start=problem.clock(slots[k][0]), end=problem.clock(slots[k][1])),
                travel_s=data.travel_s(mode, prev_node, n),
                distance_m=data.distance_m(mode, prev_node, n),
                wait_s=start - arrival,
                priority=visit.priority,
            )
        )
        prev_node = n
    start_point = data.nodes[veh.start_node].point
    assert start_point is not None  # a crew starts somewhere
    end_point = data.nodes[veh.end_node].point
    return Route(
        agent_id=veh.agent.id,
        travel_mode=mode,
        start_location=data.points[start_point],
        end_location=None if end_point is None else data.points[end_point],
        start=problem.clock(schedule.leave),
        end=problem.clock(schedule.end),
        stops=stops,
        breaks=[PlannedBreak(start=problem.clock(s), end=problem.clock(s + d)) for s, d in schedule.breaks],
        end_travel_s=data.travel_s(mode, prev_node, veh.end_node),
        end_distance_m=data.distance_m(mode, prev_node, veh.end_node),
    )


def _route(data: RoutingData, raw: RawRoute) -> Route:
    if not raw.stops:
        return _route_from_schedule(data, raw.vehicle, [], _engine_schedule(data, raw), [], None)
    route = timed_route(data, raw.vehicle, [s.node for s in raw.stops], fallback=_engine_schedule(data, raw))
    assert route is not None
    return route


def _eligible_crews(data: RoutingData, visit_index: int) -> set[int]:
    crews: set[int] = set()
    for n in data.visit_nodes[visit_index]:
        crews.update(data.nodes[n].vehicles or range(len(data.vehicles)))
    return crews


def summarize(problem: Problem, routes: list[Route]) -> PlanSummary:
    """The plan's key figures."""
    planned = {s.visit_id for r in routes for s in r.stops}
    by_id = {v.id: v for v in problem.visits}
    return PlanSummary(
        visits_total=len(problem.visits),
        visits_planned=len(planned),
        priority_total=sum(v.priority for v in problem.visits),
        priority_planned=sum(by_id[i].priority for i in planned),
        travel_s=sum(r.travel_s for r in routes),
        distance_m=sum(r.distance_m for r in routes),
        crews_used=sum(1 for r in routes if r.stops),
    )


def build_plan(data: RoutingData, raw: RawSolution, *, searched: RoutingData | None = None) -> Plan:
    """Turn the engine's raw solution into a :class:`Plan` (``searched``: the
    data the search saw, :func:`solver.slots.planning_data`, which explains
    the visits left out; default ``data``)."""
    problem = data.problem
    params = SlotParams.of(problem.options)
    if searched is None or searched is data:
        searched, params = data, SlotParams(params.width_s, params.align_s, "best_effort")
    routes = [_route(data, real_route(r, params)) for r in raw.routes]
    unassigned = list(data.unassigned)
    explain_deadline = time.perf_counter() + min(EXPLAIN_BUDGET_S, 0.1 * problem.options.time_limit_s)
    for vi in sorted(raw.dropped, key=lambda i: -problem.visits[i].priority):
        visit = problem.visits[vi]
        if visit.is_hard:
            what = "booked appointment" if visit.appointment else "required visit"
            unassigned.append(Unassigned(
                visit_id=visit.id, code="required_infeasible",
                reason=f"{what} cannot be fitted: no eligible crew can take it without breaking "
                       "a window, shift, break or another hard visit",
            ))
        elif all(len(raw.routes[c].stops) >= data.vehicles[c].max_visits for c in _eligible_crews(data, vi)):
            unassigned.append(Unassigned(
                visit_id=visit.id, code="capacity",
                reason="every eligible crew already has its maximum number of visits",
                details={"priority": visit.priority},
            ))
        else:
            detailed = time.perf_counter() < explain_deadline
            reason, details = explain_dropped(searched, raw, vi, detailed=detailed)
            if params.planned_in:  # what "room" meant: the slack of every slot included
                reason += (f" (with every stop's slot of up to {params.width_s // 60} min planned in: "
                           "slot_policy guaranteed)")
            unassigned.append(Unassigned(visit_id=visit.id, code="lower_priority", reason=reason, details=details))
    summary = summarize(problem, routes)
    order = {v.id: i for i, v in enumerate(problem.visits)}
    unassigned.sort(key=lambda u: order[u.visit_id])
    return Plan(
        date=problem.date,
        timezone=problem.timezone,
        routes=routes,
        unassigned=unassigned,
        summary=summary,
        solver=SolverStats(
            status=raw.status,
            objective=raw.objective,
            seconds=raw.seconds,
            matrix_seconds=round(data.matrix_seconds, 3),
            first_solution=raw.first_solution,
            metaheuristic=raw.metaheuristic,
        ),
        warnings=data.warnings,
        flags=data.flags,
        rule_set=problem.options.rule_set,
        slot_policy=problem.options.slot_policy if problem.options.slot_minutes else None,
    )
