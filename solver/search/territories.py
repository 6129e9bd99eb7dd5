"""Decomposition of a large day into territories solved one after another.

OR-Tools' construction heuristics slow down sharply with a thousand visits,
sixty crews and lunch breaks on every route. A collections department works in
territories anyway: crews leave from branches and visit the borrowers around
them. :func:`search_by_territory` groups the crews by where they start (crews
from the same place stay together; places are merged until each territory
has crews enough for about :attr:`TerritoryParams.visits_per_territory`
visits), gives every visit to the territory of the nearest crew able to make
it, solves each territory with :func:`solver.search.search` within its share
of the time, and merges the routes. The routing data is shared; only node and
crew indices are remapped. Then visits a territory left out are placed across
territories (:func:`insert_dropped`), and ruin and recreate runs over the
merged day (:func:`solver.search.polish`,
:attr:`TerritoryParams.polish_share` of the time): its repairs take the
routes around each ruin, wherever their territory, so visits near a border
can move to the other side's crews.
"""

from __future__ import annotations

import math
import time

from solver.compile import RoutingData
from solver.reasons import best_insertion
from solver.search.deadline import Deadline
from solver.search.engine import search
from solver.search.params import SearchParams, TerritoryParams
from solver.search.raw import RawRoute, RawSolution, RawStop, timed_route
from solver.search.ruin_recreate import polish
from solver.timing import simulate


def crew_groups(data: RoutingData, params: TerritoryParams | None = None) -> list[list[int]]:
    """Crew groups (vehicle indices), by start place, merged to size."""
    params = params or TerritoryParams()
    by_start: dict[int | None, list[int]] = {}
    for v, veh in enumerate(data.vehicles):
        by_start.setdefault(data.nodes[veh.start_node].point, []).append(v)
    groups = list(by_start.values())
    wanted = max(1, round(len(data.visit_nodes) / params.visits_per_territory))
    mode = data.vehicles[0].mode
    matrix = data.matrices[mode].durations
    while len(groups) > wanted:
        # merge the smallest group into the group whose start is nearest
        groups.sort(key=len)
        small = groups.pop(0)
        a = data.nodes[data.vehicles[small[0]].start_node].point
        nearest = min(groups, key=lambda g: matrix[a, data.nodes[data.vehicles[g[0]].start_node].point])
        nearest.extend(small)
    return groups


def _crew_capacity(data: RoutingData, vehicle: int) -> int:
    """About how many visits a crew can make: its visit limit, or its shift
    over a typical visit (median service time plus ten minutes of travel)."""
    veh = data.vehicles[vehicle]
    services = sorted(data.nodes[nodes[0]].service_s for nodes in data.visit_nodes.values()) or [1800]
    typical = services[len(services) // 2] + 600
    by_time = (veh.shift[1] - veh.shift[0] - sum(d for _, d in veh.breaks)) // typical
    return max(1, min(veh.max_visits, by_time))


def search_by_territory(data: RoutingData, time_limit_s: float | Deadline,
                        params: SearchParams | None = None) -> RawSolution:
    """Solve ``data`` territory by territory (see the module docstring) by
    ``time_limit_s`` (seconds from now, or a
    :class:`~solver.search.deadline.Deadline`); ``params`` tune the
    decomposition (:attr:`SearchParams.territories`) and each territory's
    search.

    The territories share what remains less
    :attr:`TerritoryParams.polish_share` and
    :attr:`TerritoryParams.cross_insert_share` of it, in proportion to their
    visits (each at least
    :attr:`BudgetParams.min_territory_s` while the deadline allows, model
    building included); the insertion across territories gets at most
    :attr:`TerritoryParams.cross_insert_share` of the time, the whole-day
    polish the rest."""
    params = (params or SearchParams()).for_options(data.problem.options)
    tp = params.territories
    started = time.perf_counter()
    deadline = Deadline.of(time_limit_s)
    groups = crew_groups(data, tp)
    mode = data.vehicles[0].mode
    matrix = data.matrices[mode].durations
    starts = [[data.nodes[data.vehicles[v].start_node].point for v in g] for g in groups]
    members = [set(g) for g in groups]
    capacity = [sum(_crew_capacity(data, v) for v in g) for g in groups]
    # a day too full for the estimate: territories shared in proportion to it, within the visit limits
    scale = max(1.0, len(data.visit_nodes) / max(1, sum(capacity)))
    limit = [min(sum(data.vehicles[v].max_visits for v in g), math.ceil(c * scale)) for g, c in zip(groups, capacity)]
    assigned: list[list[int]] = [[] for _ in groups]
    # most important visits first, each to the nearest territory with room left
    for vi in sorted(data.visit_nodes, key=lambda i: -data.penalties[i]):
        options = data.visit_nodes[vi]
        eligible: set[int] = set()
        for n in options:
            eligible.update(data.nodes[n].vehicles or range(len(data.vehicles)))
        point = data.nodes[options[0]].point
        assert point is not None  # visit nodes have a place

        def distance(k: int, point: int = point) -> int:
            return min(int(matrix[s, point]) for s in starts[k])

        candidates = [k for k in range(len(groups)) if members[k] & eligible] or list(range(len(groups)))
        candidates.sort(key=distance)
        roomy = [k for k in candidates if len(assigned[k]) < capacity[k]]
        # every territory full by the estimate: the nearest with room left in its share
        roomy = roomy or [k for k in candidates if len(assigned[k]) < limit[k]]
        assigned[(roomy or candidates)[0]].append(vi)
    routes: list[RawRoute] = []
    dropped: list[int] = []
    objective = 0
    total_s = deadline.remaining()
    territories_end = deadline.share(1 - tp.polish_share - tp.cross_insert_share)
    for k, (group, visits) in enumerate(zip(groups, assigned)):
        left = sum(len(a) for a in assigned[k:]) or 1
        own = territories_end.share(len(visits) / left)
        # model building needs a minimum; territories after this one get less
        sub_deadline = deadline.until(max(own.at, deadline.clock() + params.budget.min_territory_s))
        sub, node_map, vehicle_map = data.subset(group, visits)
        raw = search(sub, deadline=sub_deadline, params=params)
        objective += raw.objective or 0
        dropped += raw.dropped
        for r in raw.routes:
            routes.append(RawRoute(
                vehicle=vehicle_map[r.vehicle], start=r.start, end=r.end,
                stops=[RawStop(node_map[s.node], s.start) for s in r.stops], breaks=r.breaks,
            ))
    routes.sort(key=lambda r: r.vehicle)
    raw = RawSolution(
        routes=routes,
        dropped=dropped,
        objective=objective,
        status="success",
        seconds=0.0,
        first_solution=f"territories ({len(groups)}) with PARALLEL_CHEAPEST_INSERTION",
        metaheuristic="ruin-and-recreate per territory",
    )
    placed = insert_dropped(data, raw, deadline.cap(total_s * tp.cross_insert_share), tp)
    raw.metaheuristic += f"; {placed} left-out visits placed across territories"
    iterations, improvements = polish_merged(data, raw, deadline, params)
    raw.metaheuristic += f"; whole-day ruin-and-recreate ({iterations} iterations, {improvements} improvements)"
    raw.seconds = time.perf_counter() - started
    return raw


def retime(data: RoutingData, route: RawRoute, sequence: list[int]) -> bool:
    """Give ``route`` the visit nodes ``sequence`` with its earliest feasible
    schedule (:func:`solver.timing.simulate`); False (and ``route`` as it
    was) when there is none."""
    timed = timed_route(data, route.vehicle, sequence)
    if timed is None:
        return False
    route.start, route.end, route.breaks, route.stops = timed.start, timed.end, timed.breaks, timed.stops
    return True


def polish_merged(data: RoutingData, raw: RawSolution, budget_s: float | Deadline,
                  params: SearchParams | None = None) -> tuple[int, int]:
    """Improve the merged day ``raw`` in place by ruin and recreate across
    territories for ``budget_s`` seconds (or until a
    :class:`~solver.search.deadline.Deadline`) (:func:`solver.search.polish`, tuned by
    :attr:`SearchParams.ruin_recreate`), keeping only repairs whose changed
    routes :func:`solver.timing.simulate` can time; returns (iterations,
    improvements)."""
    params = params or SearchParams()
    by_vehicle = {r.vehicle: r for r in raw.routes}
    for v in range(len(data.vehicles)):
        by_vehicle.setdefault(v, RawRoute(v, data.vehicles[v].shift[0], data.vehicles[v].shift[0]))
    sequences = [[s.node for s in by_vehicle[v].stops] for v in range(len(data.vehicles))]

    def feasible(vehicle: int, sequence: list[int]) -> bool:
        return simulate(data.route_timing(vehicle, sequence)) is not None

    polished, cost, stats = polish(data, sequences, budget_s, seed=data.problem.options.seed, feasible=feasible,
                                   params=params.ruin_recreate)
    if cost is not None:
        raw.objective = cost
    for v, sequence in enumerate(polished):
        if sequence is not sequences[v] and not retime(data, by_vehicle[v], sequence):
            raise RuntimeError(f"crew {v}: a route feasible() accepted cannot be timed")
    raw.routes = [by_vehicle[v] for v in range(len(data.vehicles))]
    served = {data.nodes[n].visit for sequence in polished for n in sequence}
    raw.dropped = [vi for vi in data.visit_nodes if vi not in served]
    return stats


def insert_dropped(data: RoutingData, raw: RawSolution, deadline: float | Deadline,
                   params: TerritoryParams | None = None) -> int:
    """Place visits that their territory left out into any crew's route that
    still has room, most important first, each at its cheapest feasible
    position (:func:`solver.reasons.best_insertion`: the
    :attr:`TerritoryParams.cross_insert_crews` crews passing closest, timed with windows,
    breaks and limits). Territories are solved apart, so a visit near a
    border may fit a neighbouring territory's crew. Passes repeat while they
    place something (a route that took a visit may now pass close to
    another). Changes ``raw`` in place until ``deadline`` (a
    :func:`time.perf_counter` moment, or a
    :class:`~solver.search.deadline.Deadline`); returns how many visits were
    placed.
    """
    params = params or TerritoryParams()
    until = deadline if isinstance(deadline, Deadline) else Deadline(deadline)
    by_vehicle = {r.vehicle: r for r in raw.routes}
    vehicle_of = {veh.agent.id: v for v, veh in enumerate(data.vehicles)}
    placed = 0
    progress = True
    while progress and raw.dropped:
        progress = False
        for vi in sorted(raw.dropped, key=lambda i: -data.penalties[i]):
            if until.expired():
                return placed
            fit, _ = best_insertion(data, raw, vi, crews=params.cross_insert_crews, swaps=False)
            if fit is None:
                continue
            vehicle = vehicle_of[fit.agent_id]
            route = by_vehicle[vehicle]
            sequence = [s.node for s in route.stops]
            assert fit.node is not None  # a fit names the address node
            sequence.insert(fit.position - 1, fit.node)
            if not retime(data, route, sequence):
                continue
            raw.dropped.remove(vi)
            placed += 1
            progress = True
    return placed
