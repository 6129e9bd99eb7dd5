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
    ``{date, version, visit_id, agent_id, slot}``.

Events are appended by the store in the same atomic step as the change (Redis:
``XADD`` to the stream ``doorstep:events``; SQLite: the ``events`` table), so an
event exists exactly when its change does; ``GET /v1/events?after=`` reads
them. When ``WEBHOOK_URL`` is configured each stored event is also POSTed there
as JSON with a short timeout; a failing webhook is logged (type and status
only) and never fails the request or the job.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import logging
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

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
    """POSTs events as JSON to a configured URL; failures are logged, not raised."""

    def __init__(self, url: str | None, timeout_s: float = 2.0) -> None:
        self.url = url or None
        self.timeout_s = float(timeout_s)
        self._pool: cf.ThreadPoolExecutor | None = None
        parts = urlsplit(self.url or "")
        self._where = f"{parts.scheme}://{parts.hostname}:{parts.port or ''}"  # no path/query: may hold secrets

    def send(self, events: Sequence[Event], *, background: bool = True) -> None:
        if not self.url or not events:
            return
        if background:
            if self._pool is None:
                self._pool = cf.ThreadPoolExecutor(max_workers=2, thread_name_prefix="doorstep-webhook")
            self._pool.submit(self._post_all, list(events))
        else:
            self._post_all(events)

    def _post_all(self, events: Sequence[Event]) -> None:
        for event in events:
            self._post(event)

    def _post(self, event: Event) -> bool:
        payload = {"event_id": event.event_id, "type": event.type, "at": event.at, "data": event.data}
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        req = urllib.request.Request(
            self.url,  # type: ignore[arg-type]
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "doorstep-webhook/1"},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as response:  # noqa: S310 - configured URL
                response.read(1024)
            return True
        except urllib.error.HTTPError as exc:
            log.warning("webhook %s answered %d to event %s (%s)", self._where, exc.code, event.event_id, event.type)
        except Exception as exc:  # timeouts, refused connections, DNS …
            log.warning("webhook %s failed for event %s (%s): %s", self._where, event.event_id, event.type,
                        type(exc).__name__)
        return False

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
