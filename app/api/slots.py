"""POST /v1/slots/offers (appointment slots for a new visit) and
POST /v1/slots/bookings (book one, conflict-safe)."""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify

from app.api.common import current_day, dump, new_visit_errors, parse_body, services
from app.api.openapi import doc
from app.api.plans import not_implemented, solver_has
from app.api.schemas import Booking, BookingRequest, ErrorBody, OfferList, OfferRequest
from app.auth import principal, roles
from app.errors import ApiError, conflict
from app.events import new_event, plan_events
from app.store.base import Event, NewEvent, VersionConflict
from solver.check import check_plan
from solver.model import Problem, Visit

bp = Blueprint("slots", __name__)
log = logging.getLogger("doorstep.slots")

_CONFLICTS = {"HTTP_409": (ErrorBody, "The plan changed meanwhile or the slot no longer fits: ask for offers again"),
              "HTTP_422": (ErrorBody, "Invalid request: names the field")}


def _visit_error(exc: ValueError) -> ApiError:
    """422 for what the solver refuses in the new visit ("visit.x: reason" names the field)."""
    text = str(exc)
    field, sep, reason = text.partition(": ")
    if not sep or " " in field:
        field, reason = "visit", text
    return ApiError(422, "validation_error", "1 validation error(s)", errors=[{"field": field, "message": reason}])


def _check_visit(problem: Problem, visit: Visit) -> None:
    if any(v.id == visit.id for v in problem.visits):
        raise conflict("visit_exists", f"visit {visit.id!r} is already in the plan's day")
    # unknown skills or pinned crew, windows off the plan's day: as the day's problem validates them
    errors = new_visit_errors(problem, [visit], lambda _: "visit")
    if errors:
        raise ApiError(422, "validation_error", f"{len(errors)} validation error(s)", errors=errors)


@bp.post("/slots/offers")
@roles("dispatcher", "system")
@doc(tags=("slots",), json=OfferRequest, ok={"HTTP_200": OfferList}, errors=_CONFLICTS)
def offers():  # type: ignore[no-untyped-def]
    """Appointment slots for a new visit that fit into the current plan of the
    date without breaking any promise already made, best first."""
    req = parse_body(OfferRequest)
    date = req.date.isoformat()
    version, plan, problem = current_day(date)
    _check_visit(problem, req.visit)
    if not solver_has("offer_slots"):
        raise not_implemented("slot offers (solver.offer_slots)")
    import solver

    try:
        found = solver.offer_slots(problem, plan, req.visit, services().travel.get(), max_offers=req.max_offers)
    except ValueError as exc:  # e.g. an address that cannot be placed
        raise _visit_error(exc) from None
    log.info("slot offers for visit %s on %s v%d: %d", req.visit.id, date, version, len(found))
    return jsonify(dump(OfferList, {"date": date, "version": version, "visit_id": req.visit.id, "offers": found}))


@bp.post("/slots/bookings")
@roles("dispatcher", "system")
@doc(tags=("slots",), json=BookingRequest, ok={"HTTP_201": Booking}, errors=_CONFLICTS)
def book():  # type: ignore[no-untyped-def]
    """Book an offered slot: the visit is added to the plan as an appointment
    of the offer's crew and a new plan version is published.

    Optimistic concurrency: the new version is published only if the plan is
    still the version the booking was computed from (and, when the request
    names ``version``, the one the offer came from); the loser of two racing
    bookings gets 409 and should ask for offers again."""
    req = parse_body(BookingRequest)
    date = req.date.isoformat()
    version, plan, problem = current_day(date)
    if req.version is not None and req.version != version:
        raise conflict("plan_changed", f"the plan is at version {version}, the offer came from {req.version}; "
                                       "ask for offers again")
    _check_visit(problem, req.visit)
    if all(r.agent_id != req.offer.agent_id for r in plan.routes):
        raise ApiError(422, "validation_error", "1 validation error(s)",
                       errors=[{"field": "offer.agent_id", "message": f"no agent {req.offer.agent_id!r} in the plan"}])
    if not solver_has("insert_visit"):
        raise not_implemented("slot booking (solver.insert_visit)")
    import solver

    travel = services().travel.get()
    try:
        new_problem, new_plan = solver.insert_visit(problem, plan, req.visit, req.offer, travel)
    except solver.SlotUnavailable as exc:
        raise conflict("slot_unavailable", f"the slot no longer fits: {exc}; ask for offers again") from None
    except ValueError as exc:
        raise _visit_error(exc) from None
    report = check_plan(new_problem, new_plan, travel)
    if not report.ok:
        log.error("booking of visit %s on %s: the new plan breaks %d rule(s); not published", req.visit.id, date,
                  len(report.violations))
        raise conflict("slot_unavailable", "the slot does not fit the plan any more; ask for offers again")
    route = new_plan.route(req.offer.agent_id)
    stop = next((s for s in route.stops if s.visit_id == req.visit.id), None)
    if stop is None:
        raise conflict("slot_unavailable", "the solver did not place the visit; ask for offers again")
    slot = stop.slot.model_dump(mode="json") if stop.slot else None
    made: list[NewEvent] = []

    def events(new_version: int) -> list[NewEvent]:
        booked = new_event("slot.booked", {"date": date, "version": new_version, "visit_id": req.visit.id,
                                           "case_id": req.visit.case_id, "agent_id": route.agent_id, "slot": slot})
        made[:] = plan_events(date, new_version, new_plan, plan, version, reason="booking", extra=[booked])
        return made

    try:
        new_version = services().store.publish_plan(
            date, new_plan.model_dump_json(), new_problem.model_dump_json(),
            meta={"reason": "booking", "visit_id": req.visit.id, "summary": new_plan.summary.model_dump(mode="json"),
                  "actor": principal().actor()},
            expect_version=version, events=events,
        )
    except VersionConflict as exc:
        raise conflict("plan_changed", f"the plan changed meanwhile (now version {exc.current}); "
                                       "ask for offers again") from None
    log.info("visit %s booked on %s with %s: version %d", req.visit.id, date, route.agent_id, new_version)
    services().webhook.send([Event("", e.event_id, e.type, e.at, e.data) for e in made])
    body = {
        "date": date, "version": new_version, "previous_version": version, "visit_id": req.visit.id,
        "agent_id": route.agent_id, "slot": slot, "stop": stop,
        "links": {"plan": f"/v1/plans/{date}?version={new_version}",
                  "itinerary": f"/v1/agents/{route.agent_id}/itinerary?date={date}"},
    }
    return jsonify(dump(Booking, body)), 201, {"Location": body["links"]["plan"]}


