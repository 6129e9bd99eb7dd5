"""Signed webhook deliveries from a durable outbox.

Events are stored by the store in the same atomic step as the change they
describe (:mod:`app.events`). A :class:`Deliverer` turns them into deliveries
and POSTs them:

1. **fan-out** — it reads the event log after the endpoint's cursor and, in
   one atomic store step, inserts a :class:`~app.store.base.Delivery` row per
   event (id derived from endpoint and event id: inserting twice makes one
   row) and moves the cursor; a compare-and-set on the cursor makes several
   processes doing this at once harmless. The first time an endpoint is set
   up its cursor is put at the end of the log: history is not replayed to a
   new receiver.
2. **claim** — it claims due rows with a lease: ``next_attempt_at`` moves
   ``lease_s`` ahead and the row is marked with the claimer's lease, in one
   atomic step, so each delivery is attempted by one process at a time; a
   process that dies mid-attempt leaves the row due again when the lease ends.
3. **attempt** — POST the event JSON with ``Doorstep-Signature: t=<unix
   seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`` and
   ``Doorstep-Event-Id``. A 2xx answer marks it ``delivered``; anything else
   (other status, timeout, refused connection) schedules the next attempt
   after an exponential backoff with jitter (``backoff_s · 2^(n-1)``, capped
   at ``backoff_max_s``, times a random 0.5–1.0), and after ``max_attempts``
   the row is ``dead`` until someone retries it
   (``POST /v1/webhooks/deliveries/{id}/retry``). The outcome is stored only
   if the row is still held with the same lease. Delivered rows are deleted
   after ``keep_delivered_s`` (``WEBHOOK_KEEP_DAYS``, 7); dead ones are kept.

Delivery is at least once: a receiver that timed out after processing gets
the event again, with the same ``Doorstep-Event-Id`` to deduplicate on.

The deliverer runs as a background thread of the web process, of
``doorstep worker`` and as ``doorstep deliver``; any number may run against one
store. Logs name the endpoint's scheme, host and port only (a URL's path or
query may hold a secret) and event ids and types (events hold no borrower data).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import http.client
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from app.store.base import Delivery, Event, Store, utcnow

log = logging.getLogger("doorstep.webhooks")

#: The endpoint name of ``WEBHOOK_URL`` (one endpoint per service today).
DEFAULT_ENDPOINT = "default"
SIGNATURE_HEADER = "Doorstep-Signature"
EVENT_ID_HEADER = "Doorstep-Event-Id"
#: Attempts kept in a delivery's history.
HISTORY_KEPT = 20


# --------------------------------------------------------------------------- #
# Signatures
# --------------------------------------------------------------------------- #
def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``"<timestamp>.<body>"`` with ``secret``."""
    message = str(int(timestamp)).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The ``Doorstep-Signature`` value: ``t=<unix seconds>,v1=<hex>``."""
    ts = int(time.time() if timestamp is None else timestamp)
    return f"t={ts},v1={sign(secret, ts, body)}"


def verify(secret: str, header: str, body: bytes, *, tolerance_s: float = 300, now: float | None = None) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` and its timestamp is
    within ``tolerance_s`` of now (what a receiver should check)."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        ts = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, ts, body), parts.get("v1", ""))


# --------------------------------------------------------------------------- #
# Settings and schedule
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class Settings:
    """How to deliver (from the ``WEBHOOK_*`` config keys, :func:`settings_from`)."""

    url: str
    secret: str | None = None
    timeout_s: float = 2.0
    max_attempts: int = 8
    backoff_s: float = 30.0
    backoff_max_s: float = 1800.0
    poll_s: float = 1.0
    batch: int = 20
    endpoint: str = DEFAULT_ENDPOINT
    keep_delivered_s: float = 7 * 86400.0
    prune_every_s: float = 600.0

    @property
    def lease_s(self) -> float:
        """How long a claimed row is held: well past one attempt's timeout."""
        return 2 * self.timeout_s + 10.0


def settings_from(config: Mapping[str, Any]) -> Settings | None:
    """Settings from an app config; None when no ``WEBHOOK_URL`` is set."""
    url = config.get("WEBHOOK_URL")
    if not url:
        return None
    return Settings(
        url=url,
        secret=config.get("WEBHOOK_SECRET") or None,
        timeout_s=float(config.get("WEBHOOK_TIMEOUT_S") or 2.0),
        max_attempts=int(config.get("WEBHOOK_MAX_ATTEMPTS") or 8),
        backoff_s=float(config.get("WEBHOOK_BACKOFF_S") or 30.0),
        backoff_max_s=float(config.get("WEBHOOK_BACKOFF_MAX_S") or 1800.0),
        poll_s=float(config.get("WEBHOOK_POLL_S") or 1.0),
        keep_delivered_s=float(config.get("WEBHOOK_KEEP_DAYS") or 7) * 86400.0,
    )


def backoff_s(attempt: int, settings: Settings, rng: random.Random | None = None) -> float:
    """Seconds before the attempt after failed attempt number ``attempt`` (1-based)."""
    base = float(min(settings.backoff_max_s, settings.backoff_s * 2 ** (attempt - 1)))
    jitter: float = (rng or random).random()
    return base * (0.5 + 0.5 * jitter)


def delivery_id(endpoint: str, event_id: str) -> str:
    return "dlv_" + hashlib.sha256(f"{endpoint}\n{event_id}".encode()).hexdigest()[:20]


def event_body(event: Event) -> bytes:
    """The JSON POSTed for an event."""
    payload = {"event_id": event.event_id, "type": event.type, "at": event.at, "data": event.data}
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def delivery_view(delivery: Delivery) -> dict[str, Any]:
    """The public JSON of a delivery (no body: see ``GET /v1/events`` for the event)."""
    return {
        "id": delivery.id, "endpoint": delivery.endpoint, "event_id": delivery.event_id,
        "event_type": delivery.event_type, "status": delivery.status, "attempts": delivery.attempts,
        "next_attempt_at": _iso(delivery.next_attempt_at) if delivery.status == "pending" else None,
        "last_status": delivery.last_status, "last_error": delivery.last_error,
        "created_at": delivery.created_at, "delivered_at": delivery.delivered_at,
        "history": list(delivery.history),
    }


# --------------------------------------------------------------------------- #
# The deliverer
# --------------------------------------------------------------------------- #
class Deliverer:
    """Fans events out to the outbox and delivers due rows (see the module doc)."""

    def __init__(self, store: Store, settings: Settings, *, name: str | None = None) -> None:
        self.store = store
        self.settings = settings
        self.name = name or f"deliverer-{uuid.uuid4().hex[:8]}"
        parts = urlsplit(settings.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("WEBHOOK_URL must be an http(s) URL")
        self._where = f"{parts.scheme}://{parts.hostname}:{parts.port or ''}"  # no path/query: may hold secrets
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rng = random.Random()
        self._pruned_at = 0.0
        self._periodic: list[list[Any]] = []  # [every_s, task, last run (monotonic)]
        if not settings.secret:
            log.warning("webhook %s: no WEBHOOK_SECRET set, deliveries are not signed", self._where)

    # -- lifecycle ----------------------------------------------------------- #
    def setup(self) -> None:
        """Put a new endpoint's cursor at the end of the event log (once per store)."""
        if self.store.outbox_cursor(self.settings.endpoint) is not None:
            return
        last = ""
        while True:
            page = self.store.list_events(last or None, 1000)
            if not page:
                break
            last = page[-1].id
        self.store.advance_outbox(self.settings.endpoint, None, last, [])

    def start(self) -> Deliverer:
        """Run in a daemon thread until :meth:`stop`."""
        if self._thread is None:
            self._thread = threading.Thread(target=self.run_forever, name=f"doorstep-{self.name}", daemon=True)
            self._thread.start()
        return self

    def wake(self) -> None:
        """Look for new events now rather than at the next poll."""
        self._wake.set()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def run_forever(self) -> None:
        """Deliver until stopped; a store outage is logged and waited out."""
        pause = self.settings.poll_s
        while not self._stop.is_set():
            try:
                busy = self.run_once()
                pause = self.settings.poll_s
            except Exception as exc:  # noqa: BLE001 - store down, …: keep going
                log.warning("webhook deliverer %s: %s; retrying in %.1f s", self.name, type(exc).__name__, pause)
                busy = 0
                pause = min(pause * 2, 30.0)
            if not busy:
                self._wake.wait(pause)
                self._wake.clear()

    def add_periodic(self, every_s: float, task: Callable[[], object]) -> None:
        """Run ``task`` from :meth:`run_once` every ``every_s`` seconds (the
        safety sweep, :mod:`app.safety`); its failures are logged, never raised."""
        self._periodic.append([float(every_s), task, -float("inf")])

    def _run_periodic(self) -> None:
        for entry in self._periodic:
            every_s, task, last = entry
            if time.monotonic() - last < every_s:
                continue
            entry[2] = time.monotonic()
            try:
                task()
            except Exception as exc:  # noqa: BLE001 - a failed sweep waits for the next turn
                log.warning("deliverer %s: periodic task failed (%s)", self.name, type(exc).__name__)

    # -- one pass ------------------------------------------------------------ #
    def run_once(self) -> int:
        """Run the periodic tasks that are due, fan new events out, then attempt
        the due deliveries; returns the number of attempts made."""
        self._run_periodic()
        self.fan_out()
        if time.monotonic() - self._pruned_at >= self.settings.prune_every_s:
            self._pruned_at = time.monotonic()
            self.store.prune_deliveries(time.time() - self.settings.keep_delivered_s)
        return self.deliver_due()

    def fan_out(self) -> int:
        """Create the outbox rows of events after the cursor; returns how many."""
        endpoint = self.settings.endpoint
        made = 0
        while True:
            cursor = self.store.outbox_cursor(endpoint)
            if cursor is None:
                self.setup()
                continue
            events = self.store.list_events(cursor or None, 500)
            if not events:
                return made
            now = time.time()
            rows = [
                Delivery(id=delivery_id(endpoint, e.event_id), endpoint=endpoint, event_id=e.event_id,
                         event_type=e.type, body=event_body(e).decode("utf-8"), next_attempt_at=now)
                for e in events
            ]
            if self.store.advance_outbox(endpoint, cursor, events[-1].id, rows):
                made += len(rows)

    def deliver_due(self) -> int:
        lease = f"{self.name}:{uuid.uuid4().hex[:8]}"
        claimed = self.store.claim_deliveries(time.time(), self.settings.lease_s, lease, self.settings.batch)
        for delivery in claimed:
            self._attempt(delivery, lease)
        return len(claimed)

    def _attempt(self, delivery: Delivery, lease: str) -> None:
        attempt = delivery.attempts + 1
        started = time.monotonic()
        status, error = self.post(delivery, attempt)
        entry = {"at": utcnow(), "status": status, "error": error, "ms": int((time.monotonic() - started) * 1000)}
        history = (*delivery.history, entry)[-HISTORY_KEPT:]
        if status is not None and 200 <= status < 300:
            done = dataclasses.replace(delivery, status="delivered", attempts=attempt, last_status=status,
                                       last_error=None, delivered_at=utcnow(), history=history)
        else:
            dead = attempt >= self.settings.max_attempts
            done = dataclasses.replace(
                delivery, status="dead" if dead else "pending", attempts=attempt, last_status=status,
                last_error=error, history=history,
                next_attempt_at=time.time() + (0.0 if dead else backoff_s(attempt, self.settings, self._rng)),
            )
            log.warning("webhook %s: event %s (%s) attempt %d failed (%s)%s", self._where, delivery.event_id,
                        delivery.event_type, attempt, status or error, "; giving up" if dead else "")
        if not self.store.finish_attempt(done, lease):
            log.warning("webhook delivery %s: lease lost before the outcome was stored", delivery.id)

    def post(self, delivery: Delivery, attempt: int) -> tuple[int | None, str | None]:
        """POST one delivery; (HTTP status, None) or (None, error class name). No redirects are followed."""
        body = delivery.body.encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "doorstep-webhook/2",
            EVENT_ID_HEADER: delivery.event_id,
            "Doorstep-Event-Type": delivery.event_type,
            "Doorstep-Delivery-Id": delivery.id,
            "Doorstep-Delivery-Attempt": str(attempt),
        }
        if self.settings.secret:
            headers[SIGNATURE_HEADER] = signature_header(self.settings.secret, body)
        parts = urlsplit(self.settings.url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = cls(parts.hostname or "", parts.port, timeout=self.settings.timeout_s)
        try:
            conn.request("POST", target, body=body, headers=headers)
            response = conn.getresponse()
            response.read(4096)
            return response.status, None
        except Exception as exc:  # noqa: BLE001 - timeouts, refused connections, DNS, TLS …
            return None, type(exc).__name__
        finally:
            conn.close()
