"""Bearer tokens over the API, for dispatchers: ``GET /v1/tokens`` (list),
``POST /v1/tokens`` (create; the secret is in this answer only) and
``DELETE /v1/tokens/{id}`` (revoke, effective on the next request).

Tokens are named by their public id (``tok_`` + 12 hex digits of the token's
sha256); the secret itself is never stored nor listed. The same operations
are on the command line: ``doorstep token create|list|revoke``.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, jsonify

from app.api.common import dump, parse_body, services
from app.api.openapi import doc
from app.api.schemas import ErrorBody, TokenCreate, TokenCreated, TokenList
from app.auth import issue_token, parse_lifetime, principal, roles
from app.errors import ApiError, not_found
from app.store.base import TokenRecord

bp = Blueprint("tokens", __name__)
log = logging.getLogger("doorstep.auth")


def token_view(record: TokenRecord) -> dict[str, Any]:
    """The public fields of a token record (never the hash)."""
    return {
        "id": record.token_id, "role": record.role, "agent_id": record.agent_id, "member": record.member,
        "label": record.label, "created_at": record.created_at, "expires_at": record.expires_at,
        "last_used_at": record.last_used_at, "expired": record.expired(),
    }


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(422, "validation_error", f"{field}: {message}", errors=[{"field": field, "message": message}])


@bp.get("/tokens")
@roles("dispatcher")
@doc(tags=("tokens",), ok={"HTTP_200": TokenList})
def list_tokens():  # type: ignore[no-untyped-def]
    """Every token (id, role, crew, member, label, created, expires, last used), oldest first."""
    records = services().store.list_tokens()
    return jsonify(dump(TokenList, {"tokens": [token_view(r) for r in records]}))


@bp.post("/tokens")
@roles("dispatcher")
@doc(tags=("tokens",), json=TokenCreate,
     ok={"HTTP_201": (TokenCreated, "Created: the token is in this answer only")},
     errors={"HTTP_422": (ErrorBody, "Invalid request: names the field")})
def create_token():  # type: ignore[no-untyped-def]
    """Create a token. An agent token is bound to a crew (agent_id) and should
    name the member holding it, so outcomes record who; expires_in (30d, 12h…)
    ends it."""
    req = parse_body(TokenCreate)
    lifetime = None
    if req.expires_in is not None:
        try:
            lifetime = parse_lifetime(req.expires_in)
        except ValueError as exc:
            raise _invalid("expires_in", str(exc)) from None
    try:
        token, record = issue_token(services().store, req.role, req.agent_id, req.label, member=req.member,
                                    expires_in=lifetime)
    except ValueError as exc:
        field = "agent_id" if "agent" in str(exc) and "member" not in str(exc) else "member"
        raise _invalid(field, str(exc)) from None
    log.info("token %s (%s) created by %s", record.token_id, record.role, principal().token_id or "-")
    body = dump(TokenCreated, {**token_view(record), "token": token})
    return jsonify(body), 201, {"Location": f"/v1/tokens/{record.token_id}"}


@bp.delete("/tokens/<token_id>")
@roles("dispatcher")
@doc(tags=("tokens",), ok={"HTTP_204": None})
def revoke_token(token_id: str) -> Response:
    """Revoke a token: requests with it are refused (401) from now on."""
    store = services().store
    record = store.find_token(token_id)
    if record is None or not store.delete_token(record.token_hash):
        raise not_found(f"no token {token_id[:40]!r}")
    log.info("token %s revoked by %s", record.token_id, principal().token_id or "-")
    return Response(status=204)
