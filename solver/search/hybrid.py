"""PyVRP on days with breaks, OR-Tools for the breaks.

PyVRP (:mod:`solver.search.ils`) cannot express crews' breaks, so a
collection day (a lunch break on every route) went to OR-Tools, whose local
search is much weaker on a thousand visits. :func:`hybrid_search` lets PyVRP
search a relaxation of the day it can express, and OR-Tools (with its full
model) make the routes feasible and polish them:

1. **Relax** (:func:`relax`). Where every crew has the same breaks, time is
   *compressed*: each break is pinned at a point ``p`` inside its window
   (:attr:`HybridParams.break_point`) and the break's duration is cut out of
   the clock from ``p`` on, ``f(t) = t - clamp(t - p, 0, duration)``. Visit
   windows, shift bounds and maximum spans are mapped through ``f``, and the
   breaks are removed. A route feasible on the compressed clock is feasible
   on the real one with the break taken at ``p`` (or at the end of the visit
   or journey in progress then): on the compressed clock everything after
   ``p`` happens ``duration`` earlier. Crews whose breaks differ get them
   *folded in* instead: the shift end and span shortened by the breaks'
   durations, windows unchanged (not exact: step 3 repairs).
   Visit limits (``max_visits``) become a PyVRP load dimension (one unit per
   visit).
2. **Search**: PyVRP's iterated local search on the relaxation
   (:func:`solver.search.portfolio.portfolio_search`, ``Options.threads``
   searches) for :attr:`HybridParams.search_share` of the budget.
3. **Repair**: each route is timed on the real day with
   :func:`solver.timing.simulate` (breaks placed); from a route that does not
   time, visits are taken out (the one whose removal times the route at the
   least loss first). Visits left out are then placed where they fit
   (:func:`solver.search.insert_dropped`).
4. **Polish**: ruin and recreate in OR-Tools sub-models of the real day,
   breaks and all (:func:`solver.search.polish`), for the rest of the
   budget; every changed route is timed again.

The day goes back to the plain OR-Tools path (:func:`hybrid_search` returns
None) when PyVRP cannot express it even relaxed (crews restricted per visit,
workload balance), when it has no breaks (plain PyVRP, or OR-Tools for
visit limits alone: :attr:`HybridParams.limits_alone`), or when the budget
is too short.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from solver.compile import RoutingData
from solver.search.deadline import Deadline
from solver.search.params import HybridParams, SearchParams
from solver.timing import simulate

if TYPE_CHECKING:
    from solver.search.ils import Translation
    from solver.search.raw import RawSolution

Interval = tuple[int, int]




@dataclass
class Relaxation:
    """A day as PyVRP can see it (no breaks, no visit limits) and how it was
    relaxed: ``limits`` per crew (None: no crew has one), ``compressed``
    whether the breaks were cut out of the clock (exact) or folded in."""

    data: RoutingData
    limits: list[int] | None
    compressed: bool


def _compress(breaks: list[tuple[Interval, int]], point: float) -> list[tuple[int, int]]:
    """(pin, duration) per break, in window order: the pin at ``point`` of
    the break's latest-start range, after the previous break's end."""
    pins: list[tuple[int, int]] = []
    floor = 0
    for (lo, hi), duration in sorted(breaks):
        pin = max(floor, lo + int(point * max(0, hi - duration - lo)))
        pins.append((pin, duration))
        floor = pin + duration
    return pins


def _clock(t: int, pins: list[tuple[int, int]]) -> int:
    """``t`` on the compressed clock: the breaks' durations cut out from their pins."""
    return t - sum(min(max(t - pin, 0), duration) for pin, duration in pins)


def _merge(windows: list[Interval]) -> list[Interval]:
    """Sorted windows with overlapping or touching ones merged."""
    out: list[Interval] = []
    for lo, hi in sorted(windows):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def relax(data: RoutingData, params: HybridParams) -> Relaxation | None:
    """``data`` without breaks and visit limits (see the module docstring);
    None when it has no breaks (and visit limits alone do not count:
    :attr:`HybridParams.limits_alone`) or PyVRP cannot express it even so
    (:func:`solver.search.ils.expressible`)."""
    from solver.search.ils import expressible

    n_visits = len(data.visit_nodes)
    with_breaks = any(veh.breaks for veh in data.vehicles)
    with_limits = any(veh.max_visits < n_visits for veh in data.vehicles)
    if not with_breaks and not (with_limits and params.limits_alone):
        return None
    same = all(veh.breaks == data.vehicles[0].breaks for veh in data.vehicles)
    pins = _compress(data.vehicles[0].breaks, params.break_point) if with_breaks and same else []
    vehicles = []
    for veh in data.vehicles:
        lost = sum(duration for _, duration in veh.breaks)
        if pins:
            shift = (_clock(veh.shift[0], pins), _clock(veh.shift[1], pins))
        else:
            shift = (veh.shift[0], max(veh.shift[0], veh.shift[1] - lost))
        span = None if veh.max_span_s is None else max(0, veh.max_span_s - lost)
        vehicles.append(dataclasses.replace(veh, shift=shift, breaks=[], max_visits=n_visits, max_span_s=span))
    nodes = data.nodes
    if pins:
        nodes = [dataclasses.replace(node, windows=_merge([(_clock(lo, pins), _clock(hi, pins))
                                                           for lo, hi in node.windows]))
                 if node.kind == "visit" else node for node in data.nodes]
    relaxed = dataclasses.replace(data, nodes=nodes, vehicles=vehicles)
    if expressible(relaxed) is not None:
        return None
    limits = [veh.max_visits for veh in data.vehicles] if with_limits else None
    return Relaxation(relaxed, limits, bool(pins))


def translate_relaxed(relaxation: Relaxation) -> Translation | None:
    """The relaxation as PyVRP data, visit limits as one more load
    dimension; None when crews of one PyVRP vehicle type have different
    limits."""
    import pyvrp

    from solver.search.ils import translate

    translation = translate(relaxation.data)
    limits = relaxation.limits
    if limits is None:
        return translation
    type_limits = []
    for vehicles in translation.type_vehicles:
        if len({limits[v] for v in vehicles}) > 1:
            return None
        type_limits.append(limits[vehicles[0]])
    problem = translation.problem_data
    clients = [pyvrp.Client(location=c.location, delivery=[*c.delivery, 1], pickup=[*c.pickup, 0] if c.pickup
                            else [], service_duration=c.service_duration, tw_early=c.tw_early, tw_late=c.tw_late,
                            release_time=c.release_time, prize=c.prize, required=c.required, group=c.group,
                            name=c.name)
               for c in problem.clients()]
    vehicle_types = [vt.replace(capacity=[*vt.capacity, limit])
                     for vt, limit in zip(problem.vehicle_types(), type_limits)]
    translation.problem_data = problem.replace(clients=clients, vehicle_types=vehicle_types)
    return translation


def _fits(data: RoutingData, vehicle: int, sequence: list[int]) -> bool:
    """Whether crew ``vehicle`` can make ``sequence`` on the real day."""
    return (len(sequence) <= data.vehicles[vehicle].max_visits
            and simulate(data.route_timing(vehicle, sequence)) is not None)


def _route_cost(data: RoutingData, vehicle: int, sequence: list[int]) -> int:
    """Travel seconds of crew ``vehicle`` making ``sequence``."""
    veh = data.vehicles[vehicle]
    places = [veh.start_node, *sequence, veh.end_node]
    return sum(data.travel_s(veh.mode, a, b) for a, b in itertools.pairwise(places))


def _penalty(data: RoutingData, node: int) -> int:
    """The cost of leaving out the visit that visit node ``node`` serves."""
    visit = data.nodes[node].visit
    assert visit is not None  # routes hold visit nodes only
    return data.penalties[visit]


def repair(data: RoutingData, vehicle: int, sequence: list[int]) -> list[int]:
    """``sequence`` made feasible for crew ``vehicle`` on the real day by
    taking visits out: while it does not time, the visit whose removal
    loses least (drop penalty less travel saved) among those whose removal
    times it, else the least important one."""
    sequence = list(sequence)
    while sequence and not _fits(data, vehicle, sequence):
        base = _route_cost(data, vehicle, sequence)
        best: tuple[int, int] | None = None
        for k, n in enumerate(sequence):
            rest = sequence[:k] + sequence[k + 1:]
            if _fits(data, vehicle, rest):
                loss = _penalty(data, n) - (base - _route_cost(data, vehicle, rest))
                if best is None or loss < best[0]:
                    best = (loss, k)
        if best is None:
            k = min(range(len(sequence)), key=lambda i: _penalty(data, sequence[i]))
        else:
            k = best[1]
        del sequence[k]
    return sequence


def hybrid_search(data: RoutingData, time_limit_s: float | Deadline, *, params: SearchParams | None = None,
                  ) -> RawSolution | None:
    """Solve ``data`` within ``time_limit_s`` (seconds from now, or a
    :class:`~solver.search.deadline.Deadline`; see the module docstring);
    None when the hybrid does not apply or the budget is too short.
    ``hybrid_params.hybrid`` tunes it; its PyVRP search and OR-Tools polish use
    ``hybrid_params.ils``, ``hybrid_params.portfolio`` and ``hybrid_params.ruin_recreate``."""
    from solver.search.portfolio import portfolio_search
    from solver.search.raw import RawRoute, RawSolution, timed_route
    from solver.search.ruin_recreate import polish
    from solver.search.territories import insert_dropped
    from solver.search.threads import search_threads

    search_params = params or SearchParams()
    hybrid_params = search_params.hybrid
    started = time.perf_counter()
    deadline = Deadline.of(time_limit_s)
    budget_s = deadline.remaining()
    if not hybrid_params.enabled or budget_s < hybrid_params.min_budget_s:
        return None
    relaxation = relax(data, hybrid_params)
    if relaxation is None:
        return None
    translation = translate_relaxed(relaxation)
    if translation is None:
        return None
    options = data.problem.options
    threads = search_threads(options, search_params.portfolio)
    # PyVRP's share of the whole budget (relaxing and translating counted),
    # the rest for the repair, the insertion and the polish
    share = hybrid_params.search_share
    if budget_s * (1 - share) < hybrid_params.min_polish_s:
        # too short a polish to pay for its set-up (a territory of a short
        # day): PyVRP takes it, the whole-day polish after the territories
        # has the border work anyway
        share = hybrid_params.short_search_share
    search_s = budget_s * share - (time.perf_counter() - started)
    result = portfolio_search(relaxation.data, search_s, threads=threads, seed=options.seed,
                              params=search_params.ils, portfolio=search_params.portfolio,
                              translation=translation)
    if result is None:
        return None
    # -- repair on the real day ------------------------------------------- #
    sequences = [repair(data, v, sequence) for v, sequence in enumerate(result.routes)]
    repaired = sum(len(r) for r in result.routes) - sum(len(s) for s in sequences)
    routes: list[RawRoute] = []
    for v, sequence in enumerate(sequences):
        route = timed_route(data, v, sequence)
        if route is None:  # not even the empty route: the shift itself is impossible
            return None
        routes.append(route)
    served = {data.nodes[n].visit for sequence in sequences for n in sequence}
    relaxed = "breaks cut out of the clock" if relaxation.compressed else "breaks folded into the shifts"
    raw = RawSolution(
        routes=routes,
        dropped=[vi for vi in data.visit_nodes if vi not in served],
        objective=None,
        status="success" if result.feasible else "partial_success_infeasible_repaired",
        seconds=0.0,
        first_solution=f"PyVRP on the day relaxed ({relaxed})",
        metaheuristic=(f"PyVRP iterated local search ({result.searches} searches, {result.iterations} iterations); "
                       f"{repaired} visits taken out to fit breaks"),
    )
    placed = insert_dropped(data, raw, deadline.cap(budget_s * hybrid_params.insert_share))
    raw.metaheuristic += f"; {placed} left-out visits placed"
    # -- polish with OR-Tools' full model ------------------------------------ #
    by_vehicle = {r.vehicle: r for r in raw.routes}
    current = [[s.node for s in by_vehicle[v].stops] for v in range(len(data.vehicles))]
    polished, cost, (iterations, improvements) = polish(
        data, current, deadline, seed=options.seed, feasible=lambda v, s: _fits(data, v, s),
        params=search_params.ruin_recreate)
    for v, sequence in enumerate(polished):
        if sequence is current[v]:
            continue
        route = timed_route(data, v, sequence)
        if route is None:
            raise RuntimeError(f"crew {v}: a route the polish accepted cannot be timed")
        by_vehicle[v] = route
    raw.routes = [by_vehicle[v] for v in range(len(data.vehicles))]
    served = {data.nodes[n].visit for sequence in polished for n in sequence}
    raw.dropped = [vi for vi in data.visit_nodes if vi not in served]
    raw.objective = cost
    raw.metaheuristic += f"; OR-Tools ruin-and-recreate ({iterations} iterations, {improvements} improvements)"
    raw.seconds = time.perf_counter() - started
    return raw
