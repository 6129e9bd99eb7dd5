"""Storage backends behind one interface (:class:`app.store.base.Store`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.store.base import (
    Delivery,
    Event,
    Idempotency,
    IdempotencyMismatch,
    Job,
    NewEvent,
    NotFound,
    OutcomeWrite,
    PlanVersion,
    Store,
    TokenRecord,
    TransitionRefused,
    VersionConflict,
    VersionInfo,
    VisitState,
)
from app.store.sqlite import SQLiteStore

__all__ = [
    "Delivery",
    "Event",
    "Idempotency",
    "IdempotencyMismatch",
    "Job",
    "NewEvent",
    "NotFound",
    "OutcomeWrite",
    "PlanVersion",
    "SQLiteStore",
    "Store",
    "TokenRecord",
    "TransitionRefused",
    "VersionConflict",
    "VersionInfo",
    "VisitState",
    "make_store",
]

BACKENDS = ("sqlite", "redis")


def make_store(config: Mapping[str, Any]) -> Store:
    """The backend named by ``config["STORE"]``: "sqlite" (a file in
    ``config["DATA_DIR"]``) or "redis" (``config["REDIS_URL"]``, keys under
    ``config["REDIS_PREFIX"]``, socket timeouts ``config["REDIS_TIMEOUT_S"]``);
    ``config["SQLITE_TIMEOUT_S"]`` is how long SQLite waits for a lock."""
    kind = config.get("STORE") or ("redis" if config.get("REDIS_URL") else "sqlite")
    if kind == "sqlite":
        return SQLiteStore.in_dir(config["DATA_DIR"], timeout_s=float(config.get("SQLITE_TIMEOUT_S") or 30.0))
    if kind == "redis":
        from app.store.redis import DEFAULT_PREFIX, SOCKET_TIMEOUT_S, RedisStore

        url = config.get("REDIS_URL")
        if not url:
            raise ValueError("STORE 'redis' needs REDIS_URL (or DOORSTEP_REDIS_URL)")
        return RedisStore(url, prefix=config.get("REDIS_PREFIX") or DEFAULT_PREFIX,
                          socket_timeout_s=float(config.get("REDIS_TIMEOUT_S") or SOCKET_TIMEOUT_S))
    raise ValueError(f"unknown STORE {kind!r}; available: {', '.join(BACKENDS)}")
