"""GET /v1/agents/<id>/itinerary?date=YYYY-MM-DD: a crew's day from the current plan,
as JSON, iCalendar (``Accept: text/calendar`` or ``?format=ics``) or GeoJSON
(``?format=geojson``).

This is the service's hot read path (every crew's phone polls it). The parsed
plan version, the crew's itinerary and the JSON bytes come from
:mod:`app.plancache`; a request reads only the current version number and the
crew's visit states from the store. JSON answers carry a strong ETag and
``If-None-Match`` gets ``304``. The road network is never loaded here (see
:mod:`app.maps`)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from app.api.common import parse_date, services
from app.api.openapi import doc
from app.api.render import itinerary_ical, plan_geojson
from app.api.schemas import Itinerary, ItineraryQuery
from app.auth import Principal, forbidden, principal, roles
from app.errors import bad_request, not_found
from app.plancache import personalised, plan_cache

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
    if "calendar" not in request.headers.get("Accept", ""):  # the usual case, without parsing Accept
        return False
    best = request.accept_mimetypes.best_match(["application/json", "text/calendar"])
    return best == "text/calendar" and request.accept_mimetypes["text/calendar"] > request.accept_mimetypes[
        "application/json"
    ]


def _leg_paths() -> Any:
    """Street geometry when this process has the road network in memory
    already (it served a map view), else None: straight legs. The API never
    loads the network (see :mod:`app.maps`)."""
    from app.maps import leg_paths

    return leg_paths(services().travel, load=False)


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
    store = services().store
    cache = plan_cache()
    # the version number, then the immutable version itself from the cache
    version = store.current_version(date)
    day = None if version is None else cache.day(store, date, version)
    if day is None:
        raise not_found(f"no plan for {date}")
    if agent_id not in day.agents:
        raise not_found(f"no agent {agent_id!r} in the plan for {date}")
    if fmt == "geojson":
        one = day.plan.model_copy(update={"routes": [day.plan.route(agent_id)], "unassigned": []})
        return jsonify(plan_geojson(day.problem, one, _leg_paths()))
    base = cache.itinerary(day, agent_id)
    states = store.get_visit_states(date, [stop["visit_id"] for stop in base["stops"]])
    show_borrower = may_see_borrower(who)
    if _wants_ical(fmt):
        return Response(
            itinerary_ical(personalised(base, states, show_borrower)),
            mimetype="text/calendar",
            headers={"Content-Disposition": f'attachment; filename="doorstep-{agent_id}-{date}.ics"'},
        )
    key = ("itinerary", date, day.version, agent_id, show_borrower,
           tuple((state.status, state.result) for state in states))
    rendered = cache.rendered(key, lambda: jsonify(personalised(base, states, show_borrower)).get_data())
    headers = {"ETag": f'"{rendered.etag}"', "Cache-Control": "private, no-cache", "Vary": "Authorization"}
    if request.if_none_match.contains(rendered.etag):
        return Response(status=304, headers=headers)
    return Response(rendered.body, mimetype="application/json", headers=headers)
