"""Why a visit the search left out was left out, in terms a dispatcher can act on.

The screening in :mod:`solver.compile` already names visits no crew could
ever make (skills, crew size, hours, address, reach, frequency). For a visit
the *search* dropped, :func:`explain_dropped` looks at the finished routes:

* where it would fit as things stand (the crew, the position, the added
  travel) — then only the search's trade-off left it out;
* otherwise, which single planned visit it would have to displace, and where:
  the cheapest such swap in priority, so the dispatcher sees exactly what
  giving it a place would cost;
* otherwise, that no eligible crew has room even by giving up one visit.

The search is bounded: only the :data:`NEAREST_CREWS` crews whose routes pass
closest are examined, so explanations stay fast on days of a thousand visits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from solver.compile import RoutingData, Vehicle
from solver.model import Visit
from solver.timing import simulate

if TYPE_CHECKING:  # solver.search.territories imports this module
    from solver.search.raw import RawSolution

#: Crews examined per dropped visit (those whose routes pass closest).
NEAREST_CREWS = 6
#: Seconds spent explaining dropped visits per plan (highest priority first);
#: the rest get the short reason.
EXPLAIN_BUDGET_S = 3.0


@dataclass
class Insertion:
    agent_id: str
    position: int  # 1-based stop number the visit would take
    extra_travel_s: int
    displaces: str | None = None
    displaced_priority: int | None = None
    node: int | None = None  # the address node that fits (for a fit without displacement)


def _visit_at(data: RoutingData, node: int) -> Visit:
    """The visit a stop's node serves."""
    index = data.nodes[node].visit
    assert index is not None, node  # stops are visit nodes
    return data.problem.visits[index]


def _feasible(data: RoutingData, vehicle: int, sequence: list[int]) -> bool:
    veh = data.vehicles[vehicle]
    if len(sequence) > veh.max_visits:
        return False
    if veh.capacity is not None:
        load = sum(_visit_at(data, n).load for n in sequence)
        if load > veh.capacity:
            return False
    return simulate(data.route_timing(vehicle, sequence)) is not None


def _route_travel(data: RoutingData, vehicle: int, sequence: list[int]) -> int:
    return sum(data.route_timing(vehicle, sequence).travel)


def best_insertion(
    data: RoutingData, raw: RawSolution, visit_index: int, *, crews: int = NEAREST_CREWS, swaps: bool = True
) -> tuple[Insertion | None, Insertion | None]:
    """The cheapest insertion of the visit as the routes stand, and the best
    single-visit displacement (lowest displaced priority, then least travel),
    among the ``crews`` crews passing closest (``swaps`` False: no displacement)."""
    sequences = {r.vehicle: [s.node for s in r.stops] for r in raw.routes}
    options = data.visit_nodes[visit_index]
    candidates: list[tuple[int, int]] = []  # (vehicle, node)
    for n in options:
        allowed = data.nodes[n].vehicles or range(len(data.vehicles))
        for v in allowed:
            candidates.append((v, n))

    def closeness(item: tuple[int, int]) -> int:
        v, n = item
        veh = data.vehicles[v]
        places = [veh.start_node, *sequences[v]]
        return min(data.travel_s(veh.mode, p, n) for p in places)

    candidates.sort(key=closeness)
    nearest: list[int] = []
    for v, _ in candidates:
        if v not in nearest:
            nearest.append(v)
        if len(nearest) == crews:
            break
    shortlist = [(v, n) for v, n in candidates if v in nearest]

    fit: Insertion | None = None
    swap: Insertion | None = None
    for v, n in shortlist:
        sequence = sequences[v]
        veh = data.vehicles[v]
        places = [veh.start_node, *sequence, veh.end_node]
        base = _route_travel(data, v, sequence)
        agent_id = veh.agent.id

        def detour(p: int, places: list[int] = places, veh: Vehicle = veh, n: int = n) -> int:
            a, b = places[p], places[p + 1]
            return data.travel_s(veh.mode, a, n) + data.travel_s(veh.mode, n, b) - data.travel_s(veh.mode, a, b)

        # cheapest feasible insertion: try positions by increasing detour
        for p in sorted(range(len(sequence) + 1), key=detour):
            if fit is not None and detour(p) >= fit.extra_travel_s:
                break
            if _feasible(data, v, [*sequence[:p], n, *sequence[p:]]):
                fit = Insertion(agent_id, p + 1, detour(p), node=n)
                break
        if fit is not None or not swaps:
            continue
        # the cheapest single displacement, in place of (or next to) the visit given up
        for j, other in enumerate(sequence):
            other_visit = _visit_at(data, other)
            if other_visit.is_hard or (swap is not None and swap.displaced_priority is not None
                                       and other_visit.priority > swap.displaced_priority):
                continue
            rest = sequence[:j] + sequence[j + 1:]
            for p in sorted({max(0, j - 1), j, min(len(rest), j + 1)}):
                trial = [*rest[:p], n, *rest[p:]]
                if not _feasible(data, v, trial):
                    continue
                extra = _route_travel(data, v, trial) - base
                key = (other_visit.priority, extra)
                if swap is None or key < (swap.displaced_priority, swap.extra_travel_s):
                    swap = Insertion(agent_id, p + 1, extra, other_visit.id, other_visit.priority)
    return fit, swap


def explain_dropped(
    data: RoutingData, raw: RawSolution, visit_index: int, *, detailed: bool = True
) -> tuple[str, dict[str, Any]]:
    """Reason text and details for a visit the search left out (``detailed``
    False skips the route analysis, for when the time budget is spent)."""
    visit = data.problem.visits[visit_index]
    if not detailed:
        return (
            "lower priority than what was planned: the eligible crews' day is full",
            {"priority": visit.priority, "analysed": False},
        )
    fit, swap = best_insertion(data, raw, visit_index)
    if fit is not None:
        return (
            f"left out by the search's trade-off; it fits crew {fit.agent_id} as stop {fit.position} "
            f"for {fit.extra_travel_s / 60:.0f} more minutes of travel",
            {"priority": visit.priority, "agent_id": fit.agent_id, "position": fit.position,
             "extra_travel_s": fit.extra_travel_s, "fits_without_displacing": True},
        )
    if swap is not None:
        return (
            f"lower priority than what was planned: it would fit crew {swap.agent_id} as stop {swap.position} "
            f"only in place of visit {swap.displaces} (priority {swap.displaced_priority} vs {visit.priority})",
            {"priority": visit.priority, "agent_id": swap.agent_id, "position": swap.position,
             "displaces": [swap.displaces], "displaced_priority": swap.displaced_priority,
             "extra_travel_s": swap.extra_travel_s, "fits_without_displacing": False},
        )
    return (
        "no eligible crew has room for it, even by giving up one planned visit",
        {"priority": visit.priority, "fits_without_displacing": False},
    )
