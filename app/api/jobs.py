"""GET /v1/jobs/<id>: a planning job's status and progress."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from app.api.common import services
from app.api.openapi import doc
from app.api.schemas import JobView
from app.auth import roles
from app.errors import not_found
from app.store.base import Job

bp = Blueprint("jobs", __name__)


def job_view(job: Job) -> dict[str, Any]:
    """The public JSON of a job (:class:`app.api.schemas.JobView`)."""
    links = {"job": f"/v1/jobs/{job.id}"}
    if job.version is not None:
        links["plan"] = f"/v1/plans/{job.date}?version={job.version}"
    if job.kind == "days":  # several dates, or a draft: app.multiday
        links["plan_set"] = f"/v1/plan-sets/{job.id}"
    return {
        "job_id": job.id,
        "kind": job.kind,
        "status": job.status,
        "date": job.date,
        "progress": {
            "stage": job.stage,
            "fraction": job.fraction,
            "best_cost": job.best_cost,
            "stage_started_at": job.stage_started_at,
        },
        "error": job.error,
        "error_code": job.error_code,
        "version": job.version,
        "visits": job.visits,
        "agents": job.agents,
        "runner": job.runner,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "heartbeat_at": job.heartbeat_at,
        "links": links,
    }


@bp.get("/jobs/<job_id>")
@roles("dispatcher", "system")
@doc(tags=("plans",), ok={"HTTP_200": JobView})
def get_job(job_id: str):  # type: ignore[no-untyped-def]
    """A job's status and progress (a job whose worker died is reported failed)."""
    job = services().jobs.get(job_id)
    if job is None:
        raise not_found(f"no job {job_id!r}")
    return jsonify(job_view(job))
