"""GET /v1/jobs/<id>: a planning job's status and progress."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from app.api.common import services
from app.errors import not_found
from app.store.base import Job

bp = Blueprint("jobs", __name__)


def job_view(job: Job) -> dict[str, Any]:
    """The public JSON of a job."""
    links = {"job": f"/v1/jobs/{job.id}"}
    if job.version is not None:
        links["plan"] = f"/v1/plans/{job.date}?version={job.version}"
    return {
        "job_id": job.id,
        "status": job.status,
        "date": job.date,
        "progress": {"stage": job.stage, "fraction": job.fraction},
        "error": job.error,
        "version": job.version,
        "visits": job.visits,
        "agents": job.agents,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "links": links,
    }


@bp.get("/jobs/<job_id>")
def get_job(job_id: str):  # type: ignore[no-untyped-def]
    job = services().store.get_job(job_id)
    if job is None:
        raise not_found(f"no job {job_id!r}")
    return jsonify(job_view(job))
