"""Storage backends behind one interface (:class:`app.store.base.Store`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.store.base import (
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
    ``config["REDIS_PREFIX"]``)."""
    kind = config.get("STORE") or ("redis" if config.get("REDIS_URL") else "sqlite")
    if kind == "sqlite":
        return SQLiteStore.in_dir(config["DATA_DIR"])
    if kind == "redis":
        from app.store.redis import DEFAULT_PREFIX, RedisStore

        url = config.get("REDIS_URL")
        if not url:
            raise ValueError("STORE 'redis' needs REDIS_URL (or DOORSTEP_REDIS_URL)")
        return RedisStore(url, prefix=config.get("REDIS_PREFIX") or DEFAULT_PREFIX)
    raise ValueError(f"unknown STORE {kind!r}; available: {', '.join(BACKENDS)}")
