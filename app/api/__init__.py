"""The v1 HTTP API: thin blueprints over the store, the job runner and the solver."""

from __future__ import annotations

from flask import Flask

API_PREFIX = "/v1"


def register_blueprints(app: Flask) -> None:
    from app.api import agents, confirmations, docs, events, jobs, negotiation, plans, slots, tokens, visits, webhooks

    for module in (plans, jobs, agents, visits, confirmations, slots, events, tokens, webhooks, docs):
        app.register_blueprint(module.bp, url_prefix=API_PREFIX)
    from app.api import cases  # screening, payments, promise checks, case histories (issue 15)

    app.register_blueprint(cases.bp, url_prefix=API_PREFIX)
    from app.api import reports  # period reports (issue 15)

    app.register_blueprint(reports.bp, url_prefix=API_PREFIX)

    from app.api import days  # plan sets: several dates, drafts (issue 15)

    app.register_blueprint(days.bp, url_prefix=API_PREFIX)

    from app.api import attachments  # photos and audio of visits (issue 15)

    app.register_blueprint(attachments.bp, url_prefix=API_PREFIX)
    negotiation.install(app)  # Accept → 406 before anything else runs
