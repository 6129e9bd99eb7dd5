"""Offering and booking appointment slots in a published plan."""

from __future__ import annotations

import random

import pytest

from solver import SlotUnavailable, insert_visit, offer_slots, solve
from solver.check import check_plan
from solver.model import Visit
from tests.factories import PLANE, crew, minutes, problem, visit
from tests.test_slots import simulate_arrivals


@pytest.fixture(scope="module")
def day():
    visits = [visit(f"v{i}", 5 * (i + 1), duration_min=30, priority=80) for i in range(5)]
    agents = [crew("east", x=0, shift=("09:00", "17:00")), crew("west", x=-60, shift=("09:00", "12:00"))]
    p = problem(visits, agents, slot_minutes=60, time_limit_s=1)
    plan = solve(p, PLANE)
    check_plan(p, plan, PLANE).raise_if_invalid()
    return p, plan


def new_visit(x, **extra):
    return Visit.model_validate(visit("new", x, duration_min=30, **extra))


def test_offers_keep_every_promise_and_are_best_first(day):
    p, plan = day
    offers = offer_slots(p, plan, new_visit(12), PLANE, max_offers=5)
    assert offers, "a 30-minute visit fits a day with hours of room"
    assert [o.score for o in offers] == sorted(o.score for o in offers)
    assert len({o.start for o in offers}) == len(offers)
    for offer in offers:
        p2, plan2 = insert_visit(p, plan, new_visit(12), offer, PLANE)
        check_plan(p2, plan2, PLANE).raise_if_invalid()
        # every earlier promise is unchanged ...
        for route in plan.routes:
            new_route = plan2.route(route.agent_id)
            old_slots = {s.visit_id: s.slot for s in route.stops}
            for stop in new_route.stops:
                if stop.visit_id in old_slots:
                    assert stop.slot == old_slots[stop.visit_id]
        # ... and still holds when the crew is late inside every slot
        check_plan(p2, simulate_arrivals(p2, plan2, lambda a, b: b), PLANE).raise_if_invalid()
        booked = next(s for s in plan2.route(offer.agent_id).stops if s.visit_id == "new")
        assert booked.slot.start == offer.start and booked.slot.end == offer.end
        assert p2.visit("new").appointment is not None and p2.visit("new").pinned_agent == offer.agent_id


def test_offer_respects_the_new_visits_own_hours(day):
    p, plan = day
    offers = offer_slots(p, plan, new_visit(12, windows=[("14:00", "16:00")]), PLANE)
    assert offers
    for offer in offers:
        assert minutes(offer.start) >= 14 * 60 and minutes(offer.end) <= 16 * 60
        assert offer.agent_id == "east"  # west's shift ends at noon


def test_no_offer_when_the_visit_cannot_fit(day):
    p, plan = day
    assert offer_slots(p, plan, new_visit(12, windows=[("07:00", "08:00")]), PLANE) == []


def test_booking_the_same_slot_twice_is_refused(day):
    p, plan = day
    # a short window leaves room for one visit only
    wanted = new_visit(6, windows=[("15:00", "15:40")])
    (offer, *_) = offer_slots(p, plan, wanted, PLANE)
    p2, plan2 = insert_visit(p, plan, wanted, offer, PLANE)
    rival = Visit.model_validate(visit("rival", 6, duration_min=30, windows=[("15:00", "15:40")]))
    rival_offer = offer.model_copy(update={"position": offer.position})
    with pytest.raises(SlotUnavailable):
        insert_visit(p2, plan2, rival, rival_offer, PLANE)
    # whatever the current plan still offers the rival keeps the first booking's promise
    promised = next(s for s in plan2.route(offer.agent_id).stops if s.visit_id == "new").slot
    for other in offer_slots(p2, plan2, rival, PLANE):
        p3, plan3 = insert_visit(p2, plan2, rival, other, PLANE)
        assert next(s for r in plan3.routes for s in r.stops if s.visit_id == "new").slot == promised
        check_plan(p3, simulate_arrivals(p3, plan3, lambda a, b: b), PLANE).raise_if_invalid()


def test_duplicate_visit_id_is_refused(day):
    p, plan = day
    with pytest.raises(ValueError, match=r"visit\.id"):
        offer_slots(p, plan, Visit.model_validate(visit("v1", 3)), PLANE)


def test_random_bookings_never_break_a_promise():
    rng = random.Random(5)
    visits = [visit(f"v{i}", rng.uniform(-20, 20), rng.uniform(-20, 20), duration_min=25) for i in range(8)]
    p = problem(visits, [crew("a"), crew("b", x=10)], slot_minutes=60)
    plan = solve(p, PLANE)
    for j in range(6):
        wanted = Visit.model_validate(visit(f"n{j}", rng.uniform(-20, 20), rng.uniform(-20, 20), duration_min=25))
        offers = offer_slots(p, plan, wanted, PLANE)
        if not offers:
            continue
        p, plan = insert_visit(p, plan, wanted, rng.choice(offers), PLANE)
        check_plan(p, plan, PLANE).raise_if_invalid()
        check_plan(p, simulate_arrivals(p, plan, lambda a, b: b), PLANE).raise_if_invalid()
    assert sum(1 for v in p.visits if v.id.startswith("n")) >= 3
