"""GET /v1/events?after=<id>&limit=N: the event log (plan published,
itinerary changed, outcome recorded, slot booked), oldest first."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from app.api.common import query_int, services
from app.api.openapi import doc
from app.api.schemas import EventList, EventsQuery
from app.auth import roles
from app.errors import bad_request
from app.events import event_json
from app.store.base import Store

bp = Blueprint("events", __name__)

MAX_LIMIT = 1000


@bp.get("/events")
@roles("dispatcher", "system")
@doc(tags=("events",), query=EventsQuery, ok={"HTTP_200": EventList})
def list_events():  # type: ignore[no-untyped-def]
    """Events after the cursor ?after= (from the start without it), at most ?limit= (100).

    The same events go on the Redis stream doorstep:events when Redis is
    configured, and to the webhook when one is configured."""
    store = services().store
    after = request.args.get("after") or None
    # ASCII only: str.isdigit() and \d also take "²" or "١", which int() and Redis refuse
    if after is not None and not (after.isascii() and len(after) <= 64 and store.valid_cursor(after)):
        raise bad_request("after", "not an event id from this service")
    limit = query_int("limit", maximum=MAX_LIMIT) or 100
    _sweep_safety(store)
    events = store.list_events(after, limit)
    return jsonify({"events": [event_json(e) for e in events], "next_after": events[-1].id if events else after})


def _sweep_safety(store: Store) -> None:
    """Emit the safety.overdue events that are due before reading (app.safety; throttled per app)."""
    from app.api.amounts import case_settings
    from app.safety import Throttle, sweep_on_read

    rules = case_settings().cases.safety
    throttle = current_app.extensions.get("doorstep_safety_throttle")
    if throttle is None:
        throttle = current_app.extensions.setdefault("doorstep_safety_throttle", Throttle(rules.sweep_every_s))
    sweep_on_read(store, rules, throttle)
