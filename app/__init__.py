"""Doorstep's web service: ``create_app(config)`` builds the Flask app.

The web layer is thin: it parses and validates requests (pydantic models from
:mod:`solver.model`), hands planning to :mod:`app.jobs`, reads results from
:mod:`app.store` and renders them. Planning itself lives in :mod:`solver`.

Config keys (``create_app({...})``):

``DATA_DIR``
    Folder for the embedded database; default ``[service] data_dir`` from
    ``config/defaults.toml``, relative to the working directory.
``STORE``
    Storage backend: ``"sqlite"`` (default).
``TRAVEL``
    A :class:`solver.travel.TravelModel` to plan with (tests inject
    ``StraightLineTravel()``); None loads the bundled road network once, on the
    first job.
``JOB_WORKERS``
    Planning jobs run at the same time in this process (default 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask

from app.jobs import JobRunner, TravelProvider
from app.store import Store, make_store
from solver.config import defaults

__all__ = ["Services", "create_app"]

#: Largest request body accepted (a day of 20,000 visits fits).
MAX_CONTENT_LENGTH = 64 * 1024 * 1024


@dataclass
class Services:
    """What the blueprints use; ``app.extensions["doorstep"]``."""

    store: Store
    jobs: JobRunner
    travel: TravelProvider

    def close(self) -> None:
        self.jobs.shutdown(wait=True)
        self.store.close()


def _default_config() -> dict[str, Any]:
    service = defaults().get("service", {})
    return {
        "DATA_DIR": str(Path.cwd() / service.get("data_dir", "var")),
        "STORE": "sqlite",
        "TRAVEL": None,
        "JOB_WORKERS": 1,
        "MAX_CONTENT_LENGTH": MAX_CONTENT_LENGTH,
    }


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """The Flask app with the v1 API, a store and an in-process job runner."""
    app = Flask(__name__)
    app.config.update(_default_config())
    app.config.update(config or {})
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep documents in model order

    travel = TravelProvider(app.config["TRAVEL"])
    store = make_store(app.config)
    services = Services(store=store, jobs=JobRunner(store, travel, app.config["JOB_WORKERS"]), travel=travel)
    app.extensions["doorstep"] = services

    from app.api import register_blueprints
    from app.errors import register_error_handlers

    register_blueprints(app)
    register_error_handlers(app)
    return app
