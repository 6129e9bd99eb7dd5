"""GET /v1/agents/<id>/itinerary?date=YYYY-MM-DD: a crew's day from the current plan,
as JSON, iCalendar (``Accept: text/calendar`` or ``?format=ics``) or GeoJSON
(``?format=geojson``)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, current_app, request

from app.api.common import current_day, parse_date, services
from app.api.negotiation import (
    CALENDAR,
    GEOJSON,
    JSON,
    acceptable,
    not_acceptable,
    preferred,
)
from app.api.openapi import doc
from app.api.render import itinerary, itinerary_ical, plan_geojson
from app.api.schemas import ErrorBody, Itinerary, ItineraryQuery
from app.auth import Principal, forbidden, principal, roles
from app.errors import bad_request, not_found

bp = Blueprint("agents", __name__)

FORMATS = ("json", "geojson", "ics")
#: ``?format=`` → the media type it answers with.
FORMAT_TYPES = {"json": JSON, "geojson": GEOJSON, "ics": CALENDAR}


def may_see_borrower(who: Principal) -> bool:
    """Dispatchers and the crew itself see the borrower's contact; other
    systems only when ``SYSTEM_SEES_PII`` is on."""
    if who.role == "system":
        return bool(current_app.config.get("SYSTEM_SEES_PII", False))
    return True


def check_own_agent(who: Principal, agent_id: str, what: str) -> None:
    if who.is_agent() and who.agent_id != agent_id:
        raise forbidden(f"an agent token may only access its own {what}")


def representation(fmt: str | None) -> str:
    """The media type to answer with: ``?format=`` when given (GeoJSON is
    JSON, so ``Accept: application/json`` takes it too), else the ``Accept``
    header's choice among JSON, iCalendar and GeoJSON (JSON on a tie);
    406 when the ``Accept`` header allows none."""
    if fmt is None:
        return preferred((JSON, CALENDAR, GEOJSON))
    mimetype = FORMAT_TYPES[fmt]
    if acceptable(mimetype) or (mimetype == GEOJSON and acceptable(JSON)):
        return mimetype
    raise not_acceptable((mimetype,))


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII ``filename`` fallback and the exact name as
    RFC 5987 ``filename*`` (crew ids may be Chinese): header values must be
    Latin-1 without control characters."""
    fallback = re.sub(r'[^A-Za-z0-9._-]+', "_", filename).strip("_") or "itinerary.ics"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _leg_paths() -> Any:
    """Street geometry when the road network is loaded already, else None (straight legs)."""
    travel = getattr(services().travel, "_travel", None)
    return getattr(travel, "path", None)


@bp.get("/agents/<agent_id>/itinerary")
@roles("dispatcher", "agent", "system")
@doc(tags=("itineraries",), query=ItineraryQuery,
     ok={"HTTP_200": (Itinerary, "JSON; text/calendar or application/geo+json (GeoJSON) with Accept or ?format=")},
     errors={"HTTP_406": (ErrorBody, "Accept allows neither JSON, text/calendar nor application/geo+json")})
def get_itinerary(agent_id: str):  # type: ignore[no-untyped-def]
    """One crew's day: ordered stops with slot, address, navigation link,
    borrower contact (as the role allows) and travel minutes.

    ``Accept: text/calendar`` (or ``?format=ics``) gives an iCalendar file to
    import on a phone; ``Accept: application/geo+json`` (or ``?format=geojson``)
    the route as a GeoJSON FeatureCollection. An agent token reads its own crew only."""
    who = principal()
    check_own_agent(who, agent_id, "itinerary")
    date = parse_date(request.args.get("date"))
    fmt = request.args.get("format")
    if fmt is not None and fmt not in FORMATS:
        raise bad_request("format", f"one of {', '.join(FORMATS)}")
    mimetype = representation(fmt)
    version, plan, problem = current_day(date)
    if all(route.agent_id != agent_id for route in plan.routes):
        raise not_found(f"no agent {agent_id!r} in the plan for {date}")
    if mimetype == GEOJSON:
        one = plan.model_copy(update={"routes": [plan.route(agent_id)], "unassigned": []})
        return _json(plan_geojson(problem, one, _leg_paths()), GEOJSON)
    it = itinerary(problem, plan, agent_id, version=version)
    store = services().store
    show_borrower = may_see_borrower(who)
    for stop in it["stops"]:
        state = store.get_visit_state(date, stop["visit_id"])
        stop["status"], stop["result"] = state.status, state.result
        if not show_borrower:
            stop["borrower"] = None
    if mimetype == CALENDAR:
        return Response(
            itinerary_ical(it),
            mimetype=CALENDAR,
            headers={"Content-Disposition": content_disposition(f"doorstep-{agent_id}-{date}.ics")},
        )
    return _json(it, JSON)


def _json(data: Any, mimetype: str) -> Response:
    return current_app.response_class(current_app.json.dumps(data) + "\n", mimetype=mimetype)


