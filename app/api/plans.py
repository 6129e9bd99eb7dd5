"""POST /v1/plans (plan a day), GET /v1/plans/<date>[/versions]."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, jsonify

from app.api.common import json_object_body, parse_date, query_int, query_seconds, services
from app.api.jobs import job_view
from app.errors import not_found
from solver.model import Problem

bp = Blueprint("plans", __name__)

#: Longest ``?wait=`` accepted, seconds.
MAX_WAIT_S = 300.0


def _plan_link(date: str, version: int) -> str:
    return f"/v1/plans/{date}?version={version}"


@bp.post("/plans")
def create_plan():  # type: ignore[no-untyped-def]
    wait = query_seconds("wait", MAX_WAIT_S)
    problem = Problem.model_validate(json_object_body())  # ValidationError → 422
    svc = services()
    job = svc.jobs.submit(problem)
    if wait is not None:
        job = svc.jobs.wait(job.id, wait)
        if job.status == "succeeded" and job.version is not None:
            stored = svc.store.get_plan(job.date, job.version)
            if stored is not None:
                link = _plan_link(job.date, job.version)
                body = {
                    "job_id": job.id,
                    "status": job.status,
                    "date": job.date,
                    "version": job.version,
                    "plan": json.loads(stored.plan_json),
                    "links": {"job": f"/v1/jobs/{job.id}", "plan": link},
                }
                return jsonify(body), 201, {"Location": link}
        if job.status == "failed":  # finished in time, without a plan
            return jsonify(job_view(job)), 200
    body = {
        "job_id": job.id,
        "status": job.status,
        "date": job.date,
        "links": {"job": f"/v1/jobs/{job.id}"},
    }
    return jsonify(body), 202, {"Location": body["links"]["job"]}


@bp.get("/plans/<date>")
def get_plan(date: str):  # type: ignore[no-untyped-def]
    date = parse_date(date)
    version = query_int("version")
    store = services().store
    stored = store.get_plan(date, version)
    if stored is None:
        what = f"version {version} of the plan" if version is not None else "a plan"
        raise not_found(f"no {what} for {date}")
    current = stored.version if version is None else store.current_version(date)
    return jsonify(
        {
            "date": date,
            "version": stored.version,
            "current_version": current,
            "current": stored.version == current,
            "created_at": stored.created_at,
            "job_id": stored.meta.get("job_id"),
            "plan": json.loads(stored.plan_json),
        }
    )


@bp.get("/plans/<date>/versions")
def list_versions(date: str):  # type: ignore[no-untyped-def]
    date = parse_date(date)
    versions = services().store.list_versions(date)
    if not versions:
        raise not_found(f"no plan for {date}")
    items: list[dict[str, Any]] = [
        {
            "version": v.version,
            "created_at": v.created_at,
            "job_id": v.meta.get("job_id"),
            "summary": v.meta.get("summary"),
            "links": {"plan": _plan_link(date, v.version)},
        }
        for v in versions
    ]
    return jsonify({"date": date, "current_version": versions[-1].version, "versions": items})
