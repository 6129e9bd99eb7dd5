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

import re
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, current_app, jsonify, request

from app.api.amounts import may_see_amounts
from app.api.common import parse_date, services
from app.api.negotiation import (
    CALENDAR,
    GEOJSON,
    JSON,
    acceptable,
    not_acceptable,
    preferred,
)
from app.api.openapi import doc
from app.api.render import itinerary_ical, plan_geojson
from app.api.schemas import ErrorBody, Itinerary, ItineraryQuery
from app.auth import Principal, forbidden, principal, roles
from app.errors import bad_request, not_found
from app.plancache import personalised, plan_cache

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
    """Street geometry when this process has the road network in memory
    already (it served a map view), else None: straight legs. The API never
    loads the network (see :mod:`app.maps`)."""
    from app.maps import leg_paths

    return leg_paths(services().travel, load=False)


@bp.get("/agents/<agent_id>/itinerary")
@roles("dispatcher", "agent", "system")
@doc(tags=("itineraries",), query=ItineraryQuery,
     ok={"HTTP_200": (Itinerary, "JSON; text/calendar or application/geo+json (GeoJSON) with Accept or ?format="),
         "HTTP_304": None},
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
    store = services().store
    cache = plan_cache()
    # the version number, then the immutable version itself from the cache
    version = store.current_version(date)
    day = None if version is None else cache.day(store, date, version)
    if day is None:
        raise not_found(f"no plan for {date}")
    if agent_id not in day.agents:
        raise not_found(f"no agent {agent_id!r} in the plan for {date}")
    if mimetype == GEOJSON:
        one = day.plan.model_copy(update={"routes": [day.plan.route(agent_id)], "unassigned": []})
        return _json(plan_geojson(day.problem, one, _leg_paths()), GEOJSON)
    base = cache.itinerary(day, agent_id)
    states = store.get_visit_states(date, [stop["visit_id"] for stop in base["stops"]])
    show_borrower = may_see_borrower(who)
    show_amounts = may_see_amounts(who)
    if mimetype == CALENDAR:
        return Response(
            itinerary_ical(personalised(base, states, show_borrower, show_amounts)),
            mimetype=CALENDAR,
            headers={"Content-Disposition": content_disposition(f"doorstep-{agent_id}-{date}.ics")},
        )
    key = ("itinerary", date, day.version, agent_id, show_borrower, show_amounts,
           tuple((state.status, state.result) for state in states))
    rendered = cache.rendered(key, lambda: jsonify(personalised(base, states, show_borrower, show_amounts)).get_data())
    # borrower data: never stored by a shared or browser cache; the ETag serves clients that keep their own copy
    headers = {"ETag": f'"{rendered.etag}"', "Cache-Control": "no-store", "Vary": "Authorization"}
    if request.if_none_match.contains(rendered.etag):
        return Response(status=304, headers=headers)
    return Response(rendered.body, mimetype=JSON, headers=headers)


def _json(data: Any, mimetype: str) -> Response:
    return current_app.response_class(current_app.json.dumps(data) + "\n", mimetype=mimetype)


