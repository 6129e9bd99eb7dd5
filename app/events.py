"""Events for other systems, and the optional webhook.

Event types (``data`` never holds borrower names or phones):

``plan.published``
    ``{date, version, previous_version, reason, job_id, summary}``; reason is
    ``plan``, ``reoptimize`` or ``booking``;
``itinerary.changed``
    ``{date, version, previous_version, agent_id, stops}``: one per crew whose
    stops (order, address, slot or start time) differ from the previous version;
``outcome.recorded``
    ``{date, visit_id, case_id, agent_id, status, result, amount, promised_date, followups}``;
``slot.booked``
    ``{date, version, visit_id, agent_id, slot}``;
``attachment.added``
    ``{case_id, attachment_id, date, visit_id, agent_id, kind, content_type, size, sha256, …}``
    (:mod:`app.api.attachments`; never the bytes);
``safety.overdue``
    ``{date, visit_id, case_id, agent_id, arrived_at, due_by, overdue_min, reported_by}``,
    once per visit (:mod:`app.safety`).

The case events (``promise.*``, ``payment.received``, ``case.escalated``) are
listed in :mod:`app.cases`; amounts in events are null unless
``config/cases.toml`` lets the ``system`` role see them.

Events are appended by the store in the same atomic step as the change (Redis:
``XADD`` to the stream ``doorstep:events``; SQLite: the ``events`` table), so an
event exists exactly when its change does; ``GET /v1/events?after=`` reads
them. When ``WEBHOOK_URL`` is configured each stored event is also delivered
there from a durable outbox, signed and retried with backoff
(:mod:`app.webhooks`); a failing webhook never fails the request or the job.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

from app.store.base import Event, NewEvent
from solver.model import Plan

log = logging.getLogger("doorstep.events")


def new_event(type_: str, data: dict[str, Any]) -> NewEvent:
    return NewEvent(type=type_, data=data, event_id=uuid.uuid4().hex)


def _route_signature(plan: Plan | None, agent_id: str, ignore: frozenset[str]) -> list[tuple[Any, ...]]:
    """What a crew was told: the order of its visits, the address of each, and
    the promised slot (the planned start when there is no slot)."""
    if plan is None:
        return []
    for route in plan.routes:
        if route.agent_id == agent_id:
            return [
                (
                    s.visit_id,
                    s.address_index,
                    (s.slot.start.isoformat(), s.slot.end.isoformat())
                    if s.slot is not None
                    else s.start.replace(second=0, microsecond=0).isoformat(),
                )
                for s in route.stops
                if s.visit_id not in ignore
            ]
    return []


def changed_agents(old: Plan | None, new: Plan, ignore: frozenset[str] = frozenset()) -> list[str]:
    """Crews whose itinerary differs between two plans, in the new plan's order
    (then crews only in the old one). Visits in ``ignore`` (done or under way
    before a re-plan) are left out of the comparison."""
    agents = [r.agent_id for r in new.routes]
    if old is not None:
        agents += [r.agent_id for r in old.routes if r.agent_id not in agents]
    return [a for a in agents if _route_signature(old, a, ignore) != _route_signature(new, a, ignore)]


def plan_events(
    date: str,
    version: int,
    new: Plan,
    old: Plan | None,
    old_version: int | None,
    *,
    reason: str,
    job_id: str | None = None,
    extra: Sequence[NewEvent] = (),
    ignore: frozenset[str] = frozenset(),
) -> list[NewEvent]:
    """``plan.published`` and an ``itinerary.changed`` per changed crew."""
    events = [
        new_event(
            "plan.published",
            {
                "date": date,
                "version": version,
                "previous_version": old_version,
                "reason": reason,
                "job_id": job_id,
                "summary": new.summary.model_dump(mode="json"),
            },
        )
    ]
    for agent_id in changed_agents(old, new, ignore):
        stops = next((len(r.stops) for r in new.routes if r.agent_id == agent_id), 0)
        events.append(
            new_event(
                "itinerary.changed",
                {
                    "date": date,
                    "version": version,
                    "previous_version": old_version,
                    "agent_id": agent_id,
                    "stops": stops,
                    "links": {"itinerary": f"/v1/agents/{agent_id}/itinerary?date={date}"},
                },
            )
        )
    events.extend(extra)
    return events


def event_json(event: Event) -> dict[str, Any]:
    """The public JSON of a stored event (API and webhook)."""
    return {"id": event.id, "event_id": event.event_id, "type": event.type, "at": event.at, "data": event.data}


class Webhook:
    """The job code's and the views' handle on webhooks (``send(events)``).

    Events reach the webhook through the store's outbox (:mod:`app.webhooks`):
    they are stored with their change, and a :class:`app.webhooks.Deliverer`
    fans them out and delivers them, signed, with retries. :meth:`send` only
    wakes the deliverer of this process, if it runs one, so that a new event
    goes out at once rather than at the next poll; in a process without one
    (an RQ work horse) it does nothing and a deliverer elsewhere picks the
    events up from the store. Nothing is lost when this process dies.
    """

    def __init__(self, url: str | None, timeout_s: float = 2.0) -> None:
        self.url = url or None
        self.timeout_s = float(timeout_s)
        self.deliverer: Any = None  # app.webhooks.Deliverer, attached by create_app

    def send(self, events: Sequence[Event], *, background: bool = True) -> None:
        """Wake the deliverer (the events are already in the store)."""
        if self.deliverer is not None and events:
            self.deliverer.wake()

    def close(self) -> None:
        if self.deliverer is not None:
            self.deliverer.stop()
            self.deliverer = None
