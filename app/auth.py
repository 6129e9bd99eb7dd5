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
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Flask, current_app, g, request

from app.errors import ApiError
from app.store.base import Store, TokenRecord

ROLES: tuple[str, ...] = ("dispatcher", "agent", "system")
TOKEN_PREFIX = "ds_"

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Principal:
    """Who is calling."""

    role: str
    agent_id: str | None = None
    label: str | None = None

    def is_agent(self) -> bool:
        return self.role == "agent"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(store: Store, role: str, agent_id: str | None = None, label: str | None = None) -> str:
    """Store a new token and return it (the only time it is seen in clear)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    if role == "agent" and not agent_id:
        raise ValueError("an agent token needs the agent (crew) id it is bound to")
    if role != "agent" and agent_id:
        raise ValueError("only agent tokens are bound to an agent id")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    store.save_token(TokenRecord(token_hash=hash_token(token), role=role, agent_id=agent_id, label=label))
    return token


def authenticate(store: Store, header: str | None) -> Principal:
    """The principal of an ``Authorization: Bearer …`` header; 401 otherwise."""
    if not header:
        raise _unauthorized("send Authorization: Bearer <token>")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("the Authorization header must be 'Bearer <token>'")
    digest = hash_token(token)
    record = store.get_token(digest)
    if record is None or not hmac.compare_digest(record.token_hash, digest):
        raise _unauthorized("unknown or revoked token")
    return Principal(record.role, record.agent_id, record.label)


def _unauthorized(message: str) -> ApiError:
    error = ApiError(401, "unauthorized", message)
    error.headers = {"WWW-Authenticate": 'Bearer realm="doorstep"'}
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
    return g.doorstep_principal


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
        who = authenticate(current_app.extensions["doorstep"].store, request.headers.get("Authorization"))
        if who.role not in allowed:
            raise forbidden(f"the {who.role} role may not call this endpoint")
        g.doorstep_principal = who


def _roles_of(view: Any) -> frozenset[str] | None:
    while view is not None:
        found = getattr(view, "doorstep_roles", None)
        if found is not None:
            return found
        view = getattr(view, "__wrapped__", None)
    return None
