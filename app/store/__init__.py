"""Storage backends behind one interface (:class:`app.store.base.Store`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.store.base import Job, NotFound, PlanVersion, Store, VersionInfo
from app.store.sqlite import SQLiteStore

__all__ = ["Job", "NotFound", "PlanVersion", "SQLiteStore", "Store", "VersionInfo", "make_store"]


def make_store(config: Mapping[str, Any]) -> Store:
    """The backend named by ``config["STORE"]`` ("sqlite": a file in
    ``config["DATA_DIR"]``; "redis" follows in a later issue)."""
    kind = config.get("STORE", "sqlite")
    if kind == "sqlite":
        return SQLiteStore.in_dir(config["DATA_DIR"])
    raise ValueError(f"unknown STORE {kind!r}; available: sqlite")
