"""Several dates and drafts: ``POST /v1/plans`` with ``dates`` or
``?publish=false`` (:func:`create_days`, called by :mod:`app.api.plans`),
``GET /v1/plan-sets/{id}``, ``POST /v1/plan-sets/{id}/publish``.

See :mod:`app.multiday` for what a plan set is.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, jsonify, request

from app.api.common import services
from app.api.day_schemas import PlanSetCreated, PlanSetView, PublishQuery, set_json
from app.api.jobs import job_view
from app.api.openapi import doc
from app.api.schemas import ErrorBody
from app.auth import roles
from app.errors import ApiError, bad_request, conflict, not_found
from app.events import Webhook
from app.multiday import (
    DRAFT,
    PUBLISHED,
    publish_set,
    set_view,
    stale_dates,
    with_followups,
    with_recorded_history,
)
from app.store.base import Event, Job, NewEvent
from solver.multiday import Horizon

bp = Blueprint("days", __name__)

_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


def query_bool(name: str, default: bool) -> bool:
    """A boolean query parameter (true/false, 1/0, yes/no); 400 naming it otherwise."""
    value = request.args.get(name)
    if value is None:
        return default
    if value.strip().lower() in _TRUE:
        return True
    if value.strip().lower() in _FALSE:
        return False
    raise bad_request(name, f"{value[:40]!r} is not true or false")


def _field_error(field: str, message: str) -> ApiError:
    return ApiError(422, "validation_error", "1 validation error(s)", errors=[{"field": field, "message": message}])


def create_days(body: dict[str, Any], *, publish: bool) -> Job:
    """``POST /v1/plans`` with ``dates`` (several dates, follow-ups joining)
    or with ``date`` and ``?publish=false`` (a one-day draft): validate and
    queue a ``days`` job (answered by :func:`days_job_answer`)."""
    from app.api.plans import check_size, with_configured_safety

    several = "dates" in body
    if several and "date" in body:
        raise _field_error("dates", "give date (one day) or dates (several), not both")
    if not several:
        if "date" not in body:
            raise _field_error("date", "Field required (or give dates)")
        body = {**{k: v for k, v in body.items() if k != "date"}, "dates": [body["date"]]}
    elif not isinstance(body["dates"], list):
        raise _field_error("dates", "a list of dates as YYYY-MM-DD")
    options = body.get("options")
    visits = body.get("visits")
    check_size(visits if isinstance(visits, list) else [], len(body["agents"]) if isinstance(body.get("agents"), list)
               else 0, options.get("time_limit_s") if isinstance(options, dict) else None)
    horizon = Horizon.model_validate(body)  # ValidationError → 422 naming the field
    store = services().store
    entries: list[dict[str, Any]] = []
    if several:  # pending follow-ups of these dates join from their date, with their collector
        horizon, report = with_followups(store, horizon)
        entries = report.entries
        check_size(horizon.visits, len(horizon.agents), horizon.options.time_limit_s)
    horizon = with_recorded_history(store, horizon)  # frequency limits count recorded visits
    horizon = with_configured_safety(horizon)
    job: Job = services().jobs.submit_days(horizon, publish=publish, followups=entries)
    return job


def days_job_answer(job: Job, wait: float | None):  # type: ignore[no-untyped-def]
    """202 with the job; with ``wait``: 201 with the plan set, or 200 with the failed job."""
    svc = services()
    if wait is not None:
        job = svc.jobs.wait(job.id, wait) or job
        if job.status == "succeeded":
            found = svc.store.get_plan_set(job.id)
            if found is not None:
                view = set_json(set_view(found[0], json.loads(found[1])))
                link = view["links"]["self"]
                body = {"job_id": job.id, "status": job.status, "date": job.date, "plan_set": view,
                        "links": {"job": f"/v1/jobs/{job.id}", "plan_set": link}}
                return jsonify(PlanSetCreated.model_validate(body).model_dump(mode="json")), 201, {"Location": link}
        if job.status == "failed":
            return jsonify(job_view(job)), 200
    links = {"job": f"/v1/jobs/{job.id}", "plan_set": f"/v1/plan-sets/{job.id}"}
    body = {"job_id": job.id, "status": job.status, "date": job.date, "links": links}
    return jsonify(body), 202, {"Location": links["job"]}


def _plan_set(set_id: str) -> tuple[str, dict[str, Any]]:
    found = services().store.get_plan_set(set_id) if len(set_id) <= 64 else None
    if found is None:
        raise not_found(f"no plan set {set_id[:64]!r}")
    return found[0], json.loads(found[1])


@bp.get("/plan-sets/<set_id>")
@roles("dispatcher", "system")
@doc(tags=("plans",), ok={"HTTP_200": PlanSetView})
def get_plan_set(set_id: str):  # type: ignore[no-untyped-def]
    """A plan set: the plans of the dates one job planned (POST /v1/plans
    with dates, or ?publish=false), draft or published, with the visits
    planned on no date and the follow-ups considered. Drafts are for
    dispatchers only: agents' itineraries show published plans."""
    status, record = _plan_set(set_id)
    return jsonify(set_json(set_view(status, record)))


@bp.post("/plan-sets/<set_id>/publish")
@roles("dispatcher", "system")
@doc(tags=("plans",), query=PublishQuery,
     ok={"HTTP_200": (PlanSetView, "Published now, or earlier (publishing twice publishes once)")},
     errors={"HTTP_409": (ErrorBody, "A date's plan changed since the draft was made (stale_draft; ?force=true "
                                     "publishes anyway), or the set is being published")})
def publish_plan_set(set_id: str):  # type: ignore[no-untyped-def]
    """Publish a draft: each date's plan becomes a new version of that date
    (reason "draft"), with plan.published and itinerary.changed events, in
    date order. Idempotent: a set already published is answered as it is.
    A date whose current plan changed since the draft was made refuses the
    publish with 409 stale_draft, unless ?force=true."""
    force = query_bool("force", False)
    store = services().store
    status, record = _plan_set(set_id)
    if status == PUBLISHED:
        return jsonify(set_json(set_view(status, record)))
    if status != DRAFT:
        raise conflict("publishing", f"plan set {set_id!r} is being published; read it again shortly")
    stale = stale_dates(store, record)
    if stale and not force:
        raise conflict("stale_draft", f"the plan of {', '.join(stale)} changed since this draft was made; "
                                      "plan again, or publish with ?force=true")
    published: list[NewEvent] = []
    try:
        record = publish_set(store, set_id, record, expect_status=DRAFT, reason="draft", job_id=record["job_id"],
                             published=published)
    except LookupError:  # another request got in first
        status, record = _plan_set(set_id)
        if status == PUBLISHED:
            return jsonify(set_json(set_view(status, record)))
        raise conflict("publishing", f"plan set {set_id!r} is being published; read it again shortly") from None
    webhook: Webhook = services().webhook
    webhook.send([Event("", e.event_id, e.type, e.at, e.data) for e in published])
    return jsonify(set_json(set_view(PUBLISHED, record)))
