"""Offer and book appointment slots for a new visit in a published plan.

A published plan has made promises: every stop's slot (or, without slots,
its planned start). :func:`offer_slots` lists where a new visit can be
inserted — crew, position, address — such that every promise still holds
wherever in its slot the crew arrives, and the new visit gets a slot of its
own with the same guarantee. :func:`insert_visit` books one offer: the visit
joins the problem as an appointment pinned to the crew, and the crew's route
is re-timed with every earlier slot kept as it was.

Offers and bookings run the same feasibility test, :func:`books`: the new
visit's service-start windows narrowed to the slot (and to the crew's
shift), as the booked appointment narrows them when the problem is compiled
again, then the slots of the whole route with every promise and the new slot
fixed. An offer is made only when that test passes, so every offer returned
at a plan version books at that version. (Before, offers trusted
:func:`solver.timing.latest_start`, whose binary search assumes that every
start before a feasible one is feasible too; a break that fits before a late
start but not after an early one breaks that assumption, and a slot could
reach into starts the booking then refused.)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from solver.compile import RoutingData, compile_problem, intersect
from solver.model import Plan, Problem, Route, SlotOffer, Visit
from solver.solve import default_geocoder, default_travel, summarize, timed_route
from solver.timing import Interval, RouteTiming, Task, assign_slots, simulate
from solver.travel import TravelModel


class SlotUnavailable(ValueError):
    """The offered slot can no longer be booked (the plan changed, or it never fitted)."""


def _with_visit(problem: Problem, visit: Visit) -> Problem:
    if any(v.id == visit.id for v in problem.visits):
        raise ValueError(f"visit.id: a visit with id {visit.id!r} is already in the plan")
    data = problem.model_dump()
    data["visits"].append(visit.model_dump())
    return Problem.model_validate(data)


def _compile(problem: Problem, travel: TravelModel | None) -> RoutingData:
    travel = travel if travel is not None else default_travel()
    needs_geocoder = any(a.location is None for v in problem.visits for a in v.addresses)
    return compile_problem(problem, travel, geocoder=default_geocoder() if needs_geocoder else None)


def node_of(data: RoutingData) -> dict[tuple[str, int], int]:
    """(visit id, address index) -> routing node."""
    return {
        (data.problem.visits[n.visit].id, n.address): i
        for i, n in enumerate(data.nodes)
        if n.kind == "visit" and n.visit is not None and n.address is not None
    }


def promises(problem: Problem, route: Route) -> dict[int, tuple[int, int]]:
    """The promise at each stop of ``route``: its slot, or its planned start."""
    out = {}
    for k, stop in enumerate(route.stops):
        if stop.slot is not None:
            out[k] = (problem.seconds(stop.slot.start), problem.seconds(stop.slot.end))
        else:
            out[k] = (problem.seconds(stop.start), problem.seconds(stop.start))
    return out


def _shifted(fixed: dict[int, tuple[int, int]], position: int) -> dict[int, tuple[int, int]]:
    return {(k + 1 if k >= position else k): slot for k, slot in fixed.items()}


def booked_timing(timing: RouteTiming, position: int, slot: Interval) -> RouteTiming | None:
    """``timing`` with the task at ``position`` as a booking compiles it: its
    service-start windows narrowed to ``slot`` and to the crew's shift (the
    service must end inside it). None when nothing is left."""
    task = timing.tasks[position]
    shift_starts = [(timing.shift[0], timing.shift[1] - task.service_s)]
    windows = intersect(intersect(list(task.windows), [slot]), shift_starts)
    if not windows:
        return None
    tasks = list(timing.tasks)
    tasks[position] = Task(windows=tuple(windows), service_s=task.service_s)
    return replace(timing, tasks=tuple(tasks))


def books(timing: RouteTiming, position: int, slot: Interval, fixed: dict[int, Interval]) -> bool:
    """Whether booking ``slot`` for the task at ``position`` succeeds: the test
    :func:`insert_visit` makes (via :func:`solver.solve.timed_route`), with
    ``fixed`` the promises already made (positions as in ``timing``)."""
    if slot[1] <= slot[0]:  # an appointment is a window with end after start
        return False
    booked = booked_timing(timing, position, slot)
    if booked is None:
        return False
    earliest = simulate(booked)
    if earliest is None:
        return False
    return assign_slots(booked, earliest.starts, 0, 60, {**fixed, position: slot}) is not None


def offer_slots(
    problem: Problem,
    plan: Plan,
    visit: Visit,
    travel: TravelModel | None = None,
    *,
    max_offers: int = 5,
) -> list[SlotOffer]:
    """Slots for ``visit`` that can be inserted into ``plan`` without breaking
    any promise already made, best (least added travel) first, one per
    distinct slot start."""
    extended = _with_visit(problem, visit)
    data = _compile(extended, travel)
    vi = len(extended.visits) - 1
    if vi not in data.visit_nodes:
        return []
    nodes = node_of(data)
    width = extended.options.slot_minutes * 60 or 3600
    align = extended.options.slot_align_minutes * 60
    vehicle_of = {veh.agent.id: v for v, veh in enumerate(data.vehicles)}
    candidates: list[SlotOffer] = []
    for route in plan.routes:
        v = vehicle_of.get(route.agent_id)
        if v is None:
            continue
        veh = data.vehicles[v]
        if len(route.stops) + 1 > veh.max_visits:
            continue
        try:
            sequence = [nodes[(s.visit_id, s.address_index)] for s in route.stops]
        except KeyError:
            continue  # the route holds a visit this problem no longer has
        fixed = promises(problem, route)
        base = data.route_timing(v, sequence)
        base_travel = sum(base.travel)
        for n in data.visit_nodes[vi]:
            if data.nodes[n].vehicles and v not in data.nodes[n].vehicles:
                continue
            for position in range(len(sequence) + 1):
                trial = [*sequence[:position], n, *sequence[position:]]
                timing = data.route_timing(v, trial)
                earliest = simulate(timing)
                if earliest is None:
                    continue
                promised = _shifted(fixed, position)
                slots = assign_slots(timing, earliest.starts, width, align, promised)
                if slots is None:
                    continue
                a, b = slots[position]
                # the slot ends at the latest start that books, on the alignment
                while b > a and not books(timing, position, (a, b), promised):
                    b = (b - 1) // align * align if b % align == 0 else b - b % align
                if b <= a:
                    continue
                extra = sum(timing.travel) - base_travel
                candidates.append(SlotOffer(
                    agent_id=route.agent_id,
                    position=position,
                    address_index=data.nodes[n].address,
                    start=extended.clock(a),
                    end=extended.clock(b),
                    extra_travel_s=extra,
                    score=extra + (b - a < width) * 1800,  # a narrow slot is worth less
                ))
    candidates.sort(key=lambda o: (o.score, o.start))
    offers: list[SlotOffer] = []
    seen: set[dt.datetime] = set()
    for offer in candidates:
        if offer.start in seen:
            continue
        seen.add(offer.start)
        offers.append(offer)
        if len(offers) == max_offers:
            break
    return offers


def insert_visit(
    problem: Problem,
    plan: Plan,
    visit: Visit,
    offer: SlotOffer,
    travel: TravelModel | None = None,
) -> tuple[Problem, Plan]:
    """Book ``offer``: return the problem with ``visit`` added as an appointment
    in the offered slot, pinned to the offer's crew, and the plan with that
    crew's route re-timed (every other route unchanged).

    Raises :class:`SlotUnavailable` when the slot does not fit the plan as it
    is now (for example another booking took the time).
    """
    booked = Visit.model_validate({
        **visit.model_dump(),
        "appointment": {"start": offer.start, "end": offer.end},
        "pinned_agent": offer.agent_id,
    })
    extended = _with_visit(problem, booked)
    data = _compile(extended, travel)
    vi = len(extended.visits) - 1
    nodes = node_of(data)
    node = nodes.get((booked.id, offer.address_index))
    if vi not in data.visit_nodes or node is None:
        raise SlotUnavailable("the visit cannot be made at that address in that slot")
    try:
        route = plan.route(offer.agent_id)
    except KeyError:
        raise SlotUnavailable(f"crew {offer.agent_id!r} has no route in this plan") from None
    if not 0 <= offer.position <= len(route.stops):
        raise SlotUnavailable("the offered position is outside the crew's route")
    v = next(i for i, veh in enumerate(data.vehicles) if veh.agent.id == offer.agent_id)
    if len(route.stops) + 1 > data.vehicles[v].max_visits:
        raise SlotUnavailable("the crew already has its maximum number of visits")
    sequence = [nodes[(s.visit_id, s.address_index)] for s in route.stops]
    sequence.insert(offer.position, node)
    fixed = _shifted(promises(problem, route), offer.position)
    fixed[offer.position] = (extended.seconds(offer.start), extended.seconds(offer.end))
    new_route = timed_route(data, v, sequence, fixed_slots=fixed)
    if new_route is None:
        raise SlotUnavailable("the slot no longer fits the crew's route without breaking a promise")
    routes = [new_route if r.agent_id == offer.agent_id else r for r in plan.routes]
    new_plan = plan.model_copy(update={
        "routes": routes,
        "summary": summarize(extended, routes),
        "unassigned": [u for u in plan.unassigned if u.visit_id != booked.id],
    })
    return extended, new_plan
