"""Bearer tokens and roles.

A token is ``ds_`` + 32 random bytes (URL-safe base64). Only its sha256 is
stored; a request's token is hashed and looked up, and the stored hash is
compared in constant time. Roles:

``dispatcher``
    everything: plans, jobs, every crew's itinerary with borrower contact,
    outcomes, re-plans, slots, events, follow-ups;
``agent``
    bound to one crew (``agent_id``): its own itinerary (borrower name, phone,
    address and purpose of its own visits) and outcomes of its own visits;
    anything else is 403;
``system``
    other systems: plans, jobs, re-plans, slots, events, follow-ups; itineraries
    without borrower contact (unless the ``SYSTEM_SEES_PII`` setting is on).

Every view declares who may call it with :func:`roles`; a view without the
declaration is open (the OpenAPI document and the docs page only). With
``AUTH=False`` (tests that are not about auth, local experiments) every
request acts as a dispatcher.

Token lifecycle: each token has a public id (``tok_`` + 12 hex digits of its
sha256, :func:`app.store.base.token_id_of`) that lists and revocations use;
the secret is shown once, at creation. A token may expire (``expires_at``);
an agent token may name the crew ``member`` holding it, so writes record who
(token id and member), not only the role. Revoking deletes the record, so it
takes effect on the next request (auth reads the store on every request: one
read, no cache). ``last_used_at`` is written at most once a minute per token
(:data:`TOUCH_EVERY_S`), judged from the record just read, so the hot path
does not write on every request.

Failed authentication is throttled per client address: every request that
presents a wrong, expired or malformed credential counts in a fixed window
kept in the store (so several server processes share it); past
``AUTH_FAIL_LIMIT`` failures in ``AUTH_FAIL_WINDOW_S`` seconds the address
gets 429 with ``Retry-After`` — even with a right token, or guessing would go
on — until the window ends. Other addresses are unaffected. The counter is
read in the same store round trip as the token (:meth:`Store.get_token_and_count`).

Every response of a view that needs a token carries ``Cache-Control:
no-store``: those responses may hold borrower data (itineraries, plans,
visits) or secrets (a new token). A view that sets its own ``Cache-Control``
(the street network GeoJSON of the web pages, no personal data) keeps it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import math
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Flask, Response, current_app, g, request

from app.errors import ApiError
from app.store.base import Store, TokenRecord, parse_utc, utcnow

ROLES: tuple[str, ...] = ("dispatcher", "agent", "system")
TOKEN_PREFIX = "ds_"
#: ``last_used_at`` is written at most this often per token.
TOUCH_EVERY_S = 60.0
#: Defaults of ``AUTH_FAIL_LIMIT`` / ``AUTH_FAIL_WINDOW_S``.
FAIL_LIMIT = 20
FAIL_WINDOW_S = 60
#: Longest token lifetime accepted by ``--expires-in`` / ``expires_in``.
MAX_LIFETIME = dt.timedelta(days=3650)

log = logging.getLogger("doorstep.auth")
_DURATION = re.compile(r"^\s*(\d{1,6})\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Principal:
    """Who is calling."""

    role: str
    agent_id: str | None = None
    label: str | None = None
    token_id: str | None = None
    member: str | None = None

    def is_agent(self) -> bool:
        return self.role == "agent"

    def actor(self) -> dict[str, str | None]:
        """Who made a write, for the records it leaves: role, token id, member."""
        return {"role": self.role, "token_id": self.token_id, "member": self.member}


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_lifetime(text: str) -> dt.timedelta:
    """``"30d"``, ``"12h"``, ``"90m"``, ``"2w"``, ``"45s"`` as a duration (ValueError otherwise)."""
    match = _DURATION.match(text or "")
    if not match:
        raise ValueError(f"{text[:40]!r} is not a duration like 30d, 12h, 90m, 2w")
    lifetime = dt.timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
    if not dt.timedelta(0) < lifetime <= MAX_LIFETIME:
        raise ValueError("a token lifetime is more than 0 and at most 3650d")
    return lifetime


def issue_token(
    store: Store,
    role: str,
    agent_id: str | None = None,
    label: str | None = None,
    *,
    member: str | None = None,
    expires_in: dt.timedelta | None = None,
) -> tuple[str, TokenRecord]:
    """Store a new token; return it (the only time it is seen in clear) and its record."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    if role == "agent" and not agent_id:
        raise ValueError("an agent token needs the agent (crew) id it is bound to")
    if role != "agent" and agent_id:
        raise ValueError("only agent tokens are bound to an agent id")
    if member is not None and role != "agent":
        raise ValueError("only agent tokens name a crew member")
    if member is not None and not (0 < len(member.strip()) <= 100 and member.isprintable()):
        raise ValueError("member: 1 to 100 printable characters")
    now = dt.datetime.now(dt.UTC)
    expires_at = None
    if expires_in is not None:
        expires_at = (now + expires_in).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = TokenRecord(token_hash=hash_token(token), role=role, agent_id=agent_id, label=label,
                         member=member.strip() if member else None, expires_at=expires_at)
    store.save_token(record)
    return token, record


def create_token(store: Store, role: str, agent_id: str | None = None, label: str | None = None, *,
                 member: str | None = None, expires_in: dt.timedelta | None = None) -> str:
    """Store a new token and return it (the only time it is seen in clear)."""
    return issue_token(store, role, agent_id, label, member=member, expires_in=expires_in)[0]


def _credential(header: str | None) -> str:
    """The token of an ``Authorization: Bearer …`` header (401 otherwise)."""
    if not header:
        raise _unauthorized("send Authorization: Bearer <token>", counts=False)
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("the Authorization header must be 'Bearer <token>'")
    return token


def _check_record(record: TokenRecord | None, digest: str, store: Store) -> Principal:
    if record is None or not hmac.compare_digest(record.token_hash, digest):
        raise _unauthorized("unknown or revoked token")
    now = utcnow()
    if record.expired(now):
        raise _unauthorized("the token has expired")
    if record.last_used_at is None or \
            (parse_utc(now) - parse_utc(record.last_used_at)).total_seconds() >= TOUCH_EVERY_S:
        store.touch_token(record.token_hash, now)
    return Principal(record.role, record.agent_id, record.label, record.token_id, record.member)


def authenticate(store: Store, header: str | None) -> Principal:
    """The principal of an ``Authorization: Bearer …`` header; 401 otherwise
    (no throttling: :func:`install` adds that around it)."""
    token = _credential(header)
    digest = hash_token(token)
    return _check_record(store.get_token(digest), digest, store)


def _unauthorized(message: str, *, counts: bool = True) -> ApiError:
    error = ApiError(401, "unauthorized", message)
    error.headers = {"WWW-Authenticate": 'Bearer realm="doorstep"'}
    error.counts = counts  # type: ignore[attr-defined]  # a failed credential (throttled), not a missing one
    return error


def _too_many(retry_after_s: float) -> ApiError:
    seconds = max(1, math.ceil(retry_after_s))
    error = ApiError(429, "too_many_failed_logins",
                     f"too many requests with a wrong token from this address; retry in {seconds} s")
    error.headers = {"Retry-After": str(seconds)}
    return error


def forbidden(message: str) -> ApiError:
    return ApiError(403, "forbidden", message)


def roles(*allowed: str) -> Callable[[F], F]:
    """Declare the roles that may call a view."""
    unknown = set(allowed) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {unknown}")

    def mark(func: F) -> F:
        func.doorstep_roles = frozenset(allowed)  # type: ignore[attr-defined]
        return func

    return mark


def principal() -> Principal:
    """The caller of the current request."""
    who: Principal = g.doorstep_principal
    return who


def install(app: Flask) -> None:
    """Check every request against the view's declared roles."""

    @app.before_request
    def _check() -> None:
        view = app.view_functions.get(request.endpoint or "")
        allowed = _roles_of(view)
        if allowed is None:  # open view, or 404/405 answered by the error handlers
            return
        if not current_app.config.get("AUTH", True):
            g.doorstep_principal = Principal("dispatcher", label="auth disabled")
            return
        who = _throttled_authenticate(current_app.extensions["doorstep"].store)
        if who.role not in allowed:
            raise forbidden(f"the {who.role} role may not call this endpoint")
        g.doorstep_principal = who

    @app.after_request
    def _no_store(response: Response) -> Response:
        # a view that chose its own caching (the street network: no personal data) keeps it
        if _roles_of(app.view_functions.get(request.endpoint or "")) is not None and \
                "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "no-store"
        return response


def _throttled_authenticate(store: Store) -> Principal:
    """:func:`authenticate` behind the per-address failure throttle."""
    limit = int(current_app.config.get("AUTH_FAIL_LIMIT", FAIL_LIMIT))
    window = int(current_app.config.get("AUTH_FAIL_WINDOW_S", FAIL_WINDOW_S))
    key = f"authfail:{request.remote_addr or '-'}"
    header = request.headers.get("Authorization")
    try:
        token = _credential(header)
    except ApiError as exc:
        failures, left = store.count_hit(key, window, add=0)
        if failures >= limit:
            raise _too_many(left) from None
        if getattr(exc, "counts", True):
            _count_failure(store, key, window, limit)
        raise
    digest = hash_token(token)
    record, failures, left = store.get_token_and_count(digest, key, window)
    if failures >= limit:
        raise _too_many(left)
    try:
        return _check_record(record, digest, store)
    except ApiError:
        _count_failure(store, key, window, limit)
        raise


def _count_failure(store: Store, key: str, window: int, limit: int) -> None:
    failures, left = store.count_hit(key, window)
    if failures == limit:  # once per window and address; the address is not personal data of a borrower
        log.warning("failed authentication: %d in %d s from one address; answering 429 for %.0f s",
                    failures, window, left)


def _roles_of(view: Any) -> frozenset[str] | None:
    while view is not None:
        found: frozenset[str] | None = getattr(view, "doorstep_roles", None)
        if found is not None:
            return found
        view = getattr(view, "__wrapped__", None)
    return None
