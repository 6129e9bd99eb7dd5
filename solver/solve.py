"""The planning entry point: :func:`solve`.

``solve(problem)`` runs the whole pipeline — geocode, travel-time matrices,
OR-Tools search — and returns a :class:`~solver.model.Plan` with timed routes
and a reason for every visit left out.
"""

from __future__ import annotations

import time

from solver.compile import Progress, RoutingData, compile_problem
from solver.engine import RawRoute, RawSolution, search
from solver.model import (
    PlannedBreak,
    Plan,
    PlanSummary,
    Problem,
    Route,
    SolverStats,
    Stop,
    Unassigned,
)
from solver.travel import TravelModel


def default_travel() -> TravelModel:
    """The bundled demo city's road network (loaded once per process)."""
    from solver.geo.network import load_bundled_network

    return load_bundled_network()


def default_geocoder():
    """The offline gazetteer of the bundled demo city (loaded once per process)."""
    from solver.geo.gazetteer import load_bundled_gazetteer

    return load_bundled_gazetteer()


def solve(
    problem: Problem,
    travel: TravelModel | None = None,
    *,
    geocoder=None,
    progress: Progress | None = None,
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
    data = compile_problem(problem, travel, geocoder=geocoder, progress=progress)
    if progress:
        progress("solving", 0.0)
    raw = search(data)
    if progress:
        progress("solving", 1.0)
    plan = build_plan(data, raw)
    plan.solver.seconds = round(time.perf_counter() - started, 3)
    return plan


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


def _earliest_at_or_after(windows: list[tuple[int, int]], t: int) -> int | None:
    for lo, hi in windows:
        if hi >= t:
            return max(lo, t)
    return None


def _latest_at_or_before(windows: list[tuple[int, int]], t: int) -> int | None:
    for lo, hi in reversed(windows):
        if lo <= t:
            return min(hi, t)
    return None


def start_ranges(data: RoutingData, raw: RawRoute) -> list[tuple[int, int]]:
    """For each stop, the earliest and latest service start that keeps the
    rest of the route feasible with the stops' order and the breaks' planned
    times held fixed (each range on its own; moving several stops at once
    within their ranges is not guaranteed)."""
    veh = data.vehicles[raw.vehicle]
    nodes = [veh.start_node] + [s.node for s in raw.stops] + [veh.end_node]
    starts = [raw.start] + [s.start for s in raw.stops] + [raw.end]
    service = [data.nodes[n].service_s for n in nodes]
    windows = [[veh.shift]] + [data.nodes[n].windows for n in nodes[1:-1]] + [[veh.shift]]
    gaps = []  # per leg: (break total, first break start, last break end)
    for k in range(len(nodes) - 1):
        inside = [b for b in raw.breaks if starts[k] + service[k] <= b[0] and b[0] + b[1] <= starts[k + 1]]
        gaps.append((sum(d for _, d in inside), min((b for b, _ in inside), default=None),
                     max((b + d for b, d in inside), default=None)))
    earliest = [veh.shift[0]]
    for k in range(1, len(nodes)):
        pause, _, last_end = gaps[k - 1]
        t = earliest[-1] + service[k - 1] + data.travel_s(veh.mode, nodes[k - 1], nodes[k]) + pause
        if last_end is not None:
            t = max(t, last_end)
        e = _earliest_at_or_after(windows[k], t)
        earliest.append(starts[k] if e is None else min(e, starts[k]))
    latest = [veh.shift[1]] * len(nodes)
    for k in range(len(nodes) - 2, -1, -1):
        pause, first_start, _ = gaps[k]
        t = latest[k + 1] - data.travel_s(veh.mode, nodes[k], nodes[k + 1]) - pause - service[k]
        if first_start is not None:
            t = min(t, first_start - service[k])
        l = _latest_at_or_before(windows[k], t)
        latest[k] = starts[k] if l is None else max(l, starts[k])
    return list(zip(earliest[1:-1], latest[1:-1]))


def _route(data: RoutingData, raw: RawRoute) -> Route:
    problem = data.problem
    veh = data.vehicles[raw.vehicle]
    mode = veh.mode
    stops: list[Stop] = []
    prev_node, departure = veh.start_node, raw.start
    for rs, (earliest, latest) in zip(raw.stops, start_ranges(data, raw)):
        node = data.nodes[rs.node]
        visit = problem.visits[node.visit]  # type: ignore[index]
        address = visit.addresses[node.address]  # type: ignore[index]
        travel_s = data.travel_s(mode, prev_node, rs.node)
        gap_breaks = [b for b in raw.breaks if departure <= b[0] < rs.start]
        arrival = min(_arrival(departure, travel_s, gap_breaks), rs.start)
        stops.append(
            Stop(
                visit_id=visit.id,
                address_index=node.address,  # type: ignore[arg-type]
                address_kind=address.kind,
                address_text=address.text,
                location=data.points[node.point],  # type: ignore[index]
                arrival=problem.clock(arrival),
                start=problem.clock(rs.start),
                end=problem.clock(rs.start + node.service_s),
                earliest_start=problem.clock(earliest),
                latest_start=problem.clock(latest),
                travel_s=travel_s,
                distance_m=data.distance_m(mode, prev_node, rs.node),
                wait_s=rs.start - arrival,
                priority=visit.priority,
            )
        )
        prev_node, departure = rs.node, rs.start + node.service_s
    end_point = data.nodes[veh.end_node].point
    return Route(
        agent_id=veh.agent.id,
        travel_mode=mode,
        start_location=data.points[data.nodes[veh.start_node].point],  # type: ignore[index]
        end_location=None if end_point is None else data.points[end_point],
        start=problem.clock(raw.start),
        end=problem.clock(raw.end),
        stops=stops,
        breaks=[PlannedBreak(start=problem.clock(s), end=problem.clock(s + d)) for s, d in raw.breaks],
        end_travel_s=data.travel_s(mode, prev_node, veh.end_node),
        end_distance_m=data.distance_m(mode, prev_node, veh.end_node),
    )


def _eligible_crews(data: RoutingData, visit_index: int) -> set[int]:
    crews: set[int] = set()
    for n in data.visit_nodes[visit_index]:
        crews.update(data.nodes[n].vehicles or range(len(data.vehicles)))
    return crews


def build_plan(data: RoutingData, raw: RawSolution) -> Plan:
    """Turn the engine's raw solution into a :class:`Plan`."""
    problem = data.problem
    routes = [_route(data, r) for r in raw.routes]
    unassigned = list(data.unassigned)
    for vi in raw.dropped:
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
            unassigned.append(Unassigned(
                visit_id=visit.id, code="lower_priority",
                reason="not enough crew time: higher-priority visits filled the eligible crews' day",
                details={"priority": visit.priority},
            ))
    planned = {s.visit_id for r in routes for s in r.stops}
    by_id = {v.id: v for v in problem.visits}
    summary = PlanSummary(
        visits_total=len(problem.visits),
        visits_planned=len(planned),
        priority_total=sum(v.priority for v in problem.visits),
        priority_planned=sum(by_id[i].priority for i in planned),
        travel_s=sum(r.travel_s for r in routes),
        distance_m=sum(r.distance_m for r in routes),
        crews_used=sum(1 for r in routes if r.stops),
    )
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
    )
