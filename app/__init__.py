"""Doorstep's web service: ``create_app(config)`` builds the Flask app.

The web layer is thin: it parses and validates requests (pydantic models from
:mod:`solver.model` and :mod:`app.api.schemas`), hands planning to
:mod:`app.jobs`, reads results from :mod:`app.store` and renders them.
Planning itself lives in :mod:`solver`.

Config keys (``create_app({...})``; environment variables in brackets):

``DATA_DIR``
    Folder for the embedded database; default ``[service] data_dir`` from
    ``config/defaults.toml``, relative to the working directory.
``REDIS_URL`` [``DOORSTEP_REDIS_URL``]
    When set, the store is Redis and jobs go to RQ workers (``doorstep worker``).
``STORE``
    ``"sqlite"`` or ``"redis"``; default: redis when ``REDIS_URL`` is set.
``REDIS_PREFIX`` [``DOORSTEP_REDIS_PREFIX``]
    Key prefix in Redis (default ``doorstep:``; the event stream is ``{prefix}events``).
``JOBS``
    ``"process"`` (a child process per job, embedded; ``"thread"`` is an old
    name of it) or ``"rq"``; default: rq with the Redis store.
``RQ_QUEUE`` [``DOORSTEP_RQ_QUEUE``]
    RQ queue name (default ``doorstep``).
``TRAVEL``
    The travel model by name: "network" (None: the bundled road network),
    "straight", or "package.module:factory" (see :mod:`app.jobs.travel`); or
    ``StraightLineTravel()``. Jobs build it from its name in their own process.
``JOB_WORKERS``
    Planning jobs run at the same time by this process (embedded; default 1);
    further jobs wait, queued.
``JOB_LIMITS``
    Overrides of :class:`app.jobs.limits.JobLimits` (memory cap, wall-clock
    cap, niceness, largest request), over ``[jobs]`` of the config and the
    ``DOORSTEP_JOBS_<FIELD>`` environment variables.
``HEARTBEAT_TIMEOUT_S``
    An RQ job whose worker has not beaten for this long is failed (default 30).
``AUTH``
    Bearer tokens required (default True); False makes every caller a dispatcher.
``SYSTEM_SEES_PII``
    Whether ``system`` tokens see borrower contact in itineraries (default False).
``WEBHOOK_URL`` [``DOORSTEP_WEBHOOK_URL``], ``WEBHOOK_TIMEOUT_S`` (default 2)
    Where events are POSTed as JSON (optional), from the store's outbox.
``WEBHOOK_SECRET`` [``DOORSTEP_WEBHOOK_SECRET``]
    HMAC-SHA256 key of the ``Doorstep-Signature`` header (unsigned without it: a warning).
``WEBHOOK_MAX_ATTEMPTS`` (8), ``WEBHOOK_BACKOFF_S`` (30), ``WEBHOOK_BACKOFF_MAX_S`` (1800), ``WEBHOOK_POLL_S`` (1)
    Retry schedule: ``backoff · 2^(n-1)`` capped, with jitter, then ``dead``
    (8 attempts span about an hour); how often the deliverer looks for work.
``WEBHOOK_KEEP_DAYS`` (7)
    Delivered outbox rows are deleted after this many days (dead ones are kept).
``WEBHOOK_DELIVERER``
    ``"thread"`` (default: a background deliverer in this process) or ``"off"``
    (another process runs ``doorstep deliver`` or ``doorstep worker``).
``AUTH_FAIL_LIMIT`` (20), ``AUTH_FAIL_WINDOW_S`` (60)
    Requests with a wrong token per client address and window before 429.
``PROXY_HOPS`` [``DOORSTEP_PROXY_HOPS``]
    Reverse proxies in front of the service whose ``X-Forwarded-For`` is
    trusted for the client address (default 0: the socket's address).
``REDIS_TIMEOUT_S`` (2), ``SQLITE_TIMEOUT_S`` (30)
    Socket timeouts of the Redis client; how long SQLite waits for a lock.
    Past them a request answers 503 ``store_unavailable`` with ``Retry-After``.
``FOLLOWUP_RULES``
    Path of the follow-up rules (default ``config/followups.toml``).
``CASES_CONFIG``, ``SCREENING_CONFIG``
    Paths of the case settings (who sees amounts, promises, escalation, proof of
    visit; default ``config/cases.toml``) and of the screening weights (default
    ``config/screening.toml``); read on first use (:mod:`app.api.amounts`).
``REPORTS_CONFIG``
    Path of the report settings (who may read reports, crew cost rates and
    branches; default ``config/reports.toml``); read on first use (:mod:`app.api.reports`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask

from app.events import Webhook
from app.followups import Rules, load_rules
from app.jobs import JobLimits, JobRunner, ProcessJobRunner, RQJobRunner, TravelProvider
from app.store import Store, make_store
from app.webhooks import Deliverer, settings_from
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
    webhook: Webhook
    followup_rules: Rules

    def close(self) -> None:
        self.jobs.shutdown(wait=True)
        self.webhook.close()
        self.store.close()


def default_config() -> dict[str, Any]:
    service = defaults().get("service", {})
    env = os.environ
    return {
        "DATA_DIR": str(Path.cwd() / service.get("data_dir", "var")),
        "STORE": None,
        "REDIS_URL": env.get("DOORSTEP_REDIS_URL") or None,
        "REDIS_PREFIX": env.get("DOORSTEP_REDIS_PREFIX") or None,
        "JOBS": None,
        "RQ_QUEUE": env.get("DOORSTEP_RQ_QUEUE") or "doorstep",
        "TRAVEL": None,
        "JOB_WORKERS": 1,
        "JOB_LIMITS": None,
        "HEARTBEAT_TIMEOUT_S": 30.0,
        "AUTH": True,
        "SYSTEM_SEES_PII": False,
        "WEBHOOK_URL": env.get("DOORSTEP_WEBHOOK_URL") or None,
        "WEBHOOK_TIMEOUT_S": 2.0,
        "WEBHOOK_SECRET": env.get("DOORSTEP_WEBHOOK_SECRET") or None,
        "WEBHOOK_MAX_ATTEMPTS": 8,
        "WEBHOOK_BACKOFF_S": 30.0,
        "WEBHOOK_BACKOFF_MAX_S": 1800.0,
        "WEBHOOK_POLL_S": 1.0,
        "WEBHOOK_DELIVERER": "thread",
        "WEBHOOK_KEEP_DAYS": 7,
        "AUTH_FAIL_LIMIT": 20,
        "AUTH_FAIL_WINDOW_S": 60,
        "PROXY_HOPS": int(env.get("DOORSTEP_PROXY_HOPS") or 0),
        "REDIS_TIMEOUT_S": 2.0,
        "SQLITE_TIMEOUT_S": 30.0,
        "FOLLOWUP_RULES": None,
        "MAX_CONTENT_LENGTH": MAX_CONTENT_LENGTH,
    }


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """The Flask app with the v1 API, a store and a job runner."""
    app = Flask(__name__)
    app.config.update(default_config())
    app.config.update(config or {})
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep documents in model order
    cfg = app.config

    store = make_store(cfg)
    travel = TravelProvider(cfg["TRAVEL"])
    webhook = Webhook(cfg["WEBHOOK_URL"], cfg["WEBHOOK_TIMEOUT_S"])
    webhook_settings = settings_from(cfg)
    if webhook_settings is not None:
        deliverer = Deliverer(store, webhook_settings)
        deliverer.setup()  # before any request: events from now on are delivered
        webhook.deliverer = deliverer
        from app.cases import load_config as load_cases_config
        from app.safety import periodic_sweep

        deliverer.add_periodic(*periodic_sweep(store, load_cases_config(cfg.get("CASES_CONFIG")).safety))
        if cfg["WEBHOOK_DELIVERER"] == "thread":
            deliverer.start()
    limits = JobLimits.from_config(cfg["JOB_LIMITS"])
    travel.job_travel()  # fail at start, not on the first plan: jobs build their travel model by name
    jobs_kind = cfg["JOBS"] or ("rq" if getattr(store, "backend", "") == "redis" else "process")
    jobs: JobRunner
    if jobs_kind == "rq":
        if getattr(store, "backend", "") != "redis":
            raise ValueError("JOBS 'rq' needs the Redis store (REDIS_URL)")
        jobs = RQJobRunner(store, travel, webhook, redis_url=cfg["REDIS_URL"], queue=cfg["RQ_QUEUE"],
                           heartbeat_timeout_s=cfg["HEARTBEAT_TIMEOUT_S"], limits=limits)
    elif jobs_kind in ("process", "thread"):
        jobs = ProcessJobRunner(store, travel, webhook, cfg["JOB_WORKERS"], heartbeat_timeout_s=cfg["HEARTBEAT_TIMEOUT_S"],
                                limits=limits)
    else:
        raise ValueError(f"unknown JOBS {jobs_kind!r}; use process or rq")
    app.extensions["doorstep"] = Services(
        store=store, jobs=jobs, travel=travel, webhook=webhook, followup_rules=load_rules(cfg["FOLLOWUP_RULES"])
    )

    from app import auth
    from app.api import register_blueprints
    from app.errors import register_error_handlers
    from app.web import bp as web_pages  # /web pages (docs/web.md)

    register_blueprints(app)
    app.register_blueprint(web_pages)
    register_error_handlers(app)
    auth.install(app)
    if cfg["PROXY_HOPS"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=int(cfg["PROXY_HOPS"]))  # type: ignore[method-assign]
    return app
