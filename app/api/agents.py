"""GET /v1/agents/<id>/itinerary?date=YYYY-MM-DD: a crew's day from the current plan,
as JSON, iCalendar (``Accept: text/calendar`` or ``?format=ics``) or GeoJSON
(``?format=geojson``)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from app.api.common import current_day, parse_date, services
from app.api.openapi import doc
from app.api.render import itinerary, itinerary_ical, plan_geojson
from app.api.schemas import Itinerary, ItineraryQuery
from app.auth import Principal, forbidden, principal, roles
from app.errors import bad_request, not_found

bp = Blueprint("agents", __name__)

FORMATS = ("json", "geojson", "ics")


def may_see_borrower(who: Principal) -> bool:
    """Dispatchers and the crew itself see the borrower's contact; other
    systems only when ``SYSTEM_SEES_PII`` is on."""
    if who.role == "system":
        return bool(current_app.config.get("SYSTEM_SEES_PII", False))
    return True


def check_own_agent(who: Principal, agent_id: str, what: str) -> None:
    if who.is_agent() and who.agent_id != agent_id:
        raise forbidden(f"an agent token may only access its own {what}")


def _wants_ical(fmt: str | None) -> bool:
    if fmt == "ics":
        return True
    if fmt is not None:
        return False
    best = request.accept_mimetypes.best_match(["application/json", "text/calendar"])
    return best == "text/calendar" and request.accept_mimetypes["text/calendar"] > request.accept_mimetypes[
        "application/json"
    ]


def _leg_paths() -> Any:
    """Street geometry when the road network is loaded already, else None (straight legs)."""
    travel = getattr(services().travel, "_travel", None)
    return getattr(travel, "path", None)


@bp.get("/agents/<agent_id>/itinerary")
@roles("dispatcher", "agent", "system")
@doc(tags=("itineraries",), query=ItineraryQuery, ok={"HTTP_200": (Itinerary, "JSON; text/calendar with Accept")},
     errors={"HTTP_406": None})
def get_itinerary(agent_id: str):  # type: ignore[no-untyped-def]
    """One crew's day: ordered stops with slot, address, navigation link,
    borrower contact (as the role allows) and travel minutes.

    ``Accept: text/calendar`` (or ``?format=ics``) gives an iCalendar file to
    import on a phone; ``?format=geojson`` the route as GeoJSON. An agent token
    reads its own crew only."""
    who = principal()
    check_own_agent(who, agent_id, "itinerary")
    date = parse_date(request.args.get("date"))
    fmt = request.args.get("format")
    if fmt is not None and fmt not in FORMATS:
        raise bad_request("format", f"one of {', '.join(FORMATS)}")
    version, plan, problem = current_day(date)
    if all(route.agent_id != agent_id for route in plan.routes):
        raise not_found(f"no agent {agent_id!r} in the plan for {date}")
    if fmt == "geojson":
        one = plan.model_copy(update={"routes": [plan.route(agent_id)], "unassigned": []})
        return jsonify(plan_geojson(problem, one, _leg_paths()))
    it = itinerary(problem, plan, agent_id, version=version)
    store = services().store
    show_borrower = may_see_borrower(who)
    for stop in it["stops"]:
        state = store.get_visit_state(date, stop["visit_id"])
        stop["status"], stop["result"] = state.status, state.result
        if not show_borrower:
            stop["borrower"] = None
    if _wants_ical(fmt):
        return Response(
            itinerary_ical(it),
            mimetype="text/calendar",
            headers={"Content-Disposition": f'attachment; filename="doorstep-{agent_id}-{date}.ics"'},
        )
    return jsonify(it)


