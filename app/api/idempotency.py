"""``Idempotency-Key`` on the writes a client is likely to retry (outcomes,
slot contact attempts, payments).

A retry with the same key and the same request gets the first answer again
(with ``Idempotent-Replayed: true``); the same key with another request is a
409 ``idempotency_key_reused`` (the store raises
:class:`~app.store.base.IdempotencyMismatch` when two such requests race, and
:func:`app.errors.register_error_handlers` answers it the same way). Keys are
scoped per caller by each view.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from flask import Response, jsonify, request

from app.api.common import services
from app.errors import bad_request, key_reused
from app.store.base import Idempotency

__all__ = ["MAX_KEY_LENGTH", "earlier_answer", "idempotency_key", "replay", "request_hash"]

#: Longest Idempotency-Key accepted.
MAX_KEY_LENGTH = 200


def idempotency_key() -> str | None:
    """The request's ``Idempotency-Key`` (stripped), None without one; 400 when
    it is empty, longer than :data:`MAX_KEY_LENGTH` or not printable."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise bad_request("Idempotency-Key", f"1 to {MAX_KEY_LENGTH} printable characters")
    return key


def request_hash(payload: Any) -> str:
    """The SHA-256 of a request's canonical JSON (keys sorted): what a retry must match."""
    canonical = json.dumps(payload, sort_keys=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def earlier_answer(scope: str, key: str | None, hashed: str) -> Idempotency | None:
    """The stored answer of an earlier request with this key, None when there
    is none (or no key); 409 when the key came with another request."""
    if key is None:
        return None
    stored: Idempotency | None = services().store.get_idempotency(scope, key)
    if stored is not None and stored.request_hash != hashed:
        raise key_reused()
    return stored


def replay(stored: Idempotency) -> tuple[Response, int, dict[str, str]]:
    """The first answer again."""
    return jsonify(json.loads(stored.body_json)), stored.status, {"Idempotent-Replayed": "true"}
