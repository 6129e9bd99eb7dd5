"""POST /v1/plans (plan a day), GET /v1/plans/<date>[/versions],
POST /v1/plans/<date>/reoptimize (mid-day re-plan)."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, jsonify

from app.api.common import (
    current_day,
    json_object_body,
    new_visit_errors,
    parse_date,
    query_int,
    query_seconds,
    services,
)
from app.api.day_schemas import PlanAnswer, PlanQuery, PlanRequest
from app.api.days import create_days, days_job_answer, query_bool
from app.api.idempotency import earlier_answer, idempotency_key, request_hash
from app.api.jobs import job_view
from app.api.openapi import doc
from app.api.schemas import (
    ErrorBody,
    IdempotencyHeaders,
    JobAccepted,
    JobView,
    PlanCreated,
    PlanVersionView,
    TooLargeBody,
    VersionList,
    VersionQuery,
    WaitQuery,
)
from app.auth import principal, roles
from app.confirmations import declined_visits
from app.errors import ApiError, key_reused, not_found, too_large
from app.history import with_recorded_history
from app.safety import Planned, with_case_safety
from app.store.base import Idempotency, Job
from solver.model import DayState, Plan, Problem

bp = Blueprint("plans", __name__)

#: Longest ``?wait=`` accepted, seconds.
MAX_WAIT_S = 300.0

_TOO_LARGE = (TooLargeBody, ("Bigger than a limit of the service (visits, agents, locations, time limit): "
                             "the body names it; nothing was queued"))

_JOB_RESPONSES = {
    "HTTP_201": (PlanCreated, "Finished within ?wait=: the published plan"),
    "HTTP_202": (JobAccepted, "Queued: poll the job"),
    "HTTP_200": (JobView, "Finished within ?wait= without a plan: the failed job"),
}
_PLAN_RESPONSES = {
    **_JOB_RESPONSES,
    "HTTP_201": (PlanAnswer, "Finished within ?wait=: the published plan (with dates or ?publish=false: the plan "
                             "set, PlanSetCreated)"),
}


def _plan_link(date: str, version: int) -> str:
    return f"/v1/plans/{date}?version={version}"


def job_answer(job: Job, wait: float | None):  # type: ignore[no-untyped-def]
    """202 with the job; with ``wait``: 201 with the plan, or 200 with the failed job."""
    svc = services()
    if wait is not None:
        job = svc.jobs.wait(job.id, wait) or job
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
    body = {"job_id": job.id, "status": job.status, "date": job.date, "links": {"job": f"/v1/jobs/{job.id}"}}
    return jsonify(body), 202, {"Location": body["links"]["job"]}


def _count(value: Any) -> int:
    return len(value) if isinstance(value, list) else 0


def with_configured_safety(planned: Planned) -> Planned:
    """``planned`` (a day or several) with the visits of cases an incident
    marked at risk needing two collectors (``config/screening.toml``
    ``[safety] two_collectors``): one-day and several-day plans alike."""
    from app.api.amounts import case_settings

    return with_case_safety(services().store, planned, case_settings().screening.safety.two_collectors)


def check_size(visits: list[Any], agents: int, time_limit_s: Any) -> None:
    """413 when a day is bigger than the job limits allow
    (:meth:`app.jobs.limits.JobLimits.check_size`); ``visits`` are Visit
    models or their JSON objects. Cheap: counts only."""
    locations = 2 * agents
    for visit in visits:
        addresses = visit.get("addresses") if isinstance(visit, dict) else getattr(visit, "addresses", None)
        locations += _count(addresses)
    limit = float(time_limit_s) if isinstance(time_limit_s, (int, float)) and not isinstance(time_limit_s, bool) \
        else None
    violation = services().jobs.limits.check_size(visits=len(visits), agents=agents, locations=locations,
                                                  time_limit_s=limit)
    if violation is not None and violation.field == "options.time_limit_s":  # a bound, not a size: 422
        message = f"at most {violation.max:g} seconds on this service"
        raise ApiError(422, "validation_error", "1 validation error(s)",
                       errors=[{"field": violation.field, "message": message}])
    if violation is not None:
        what = {"visits": "visits", "agents": "crews", "locations": "locations (visit addresses plus crew start "
                "and end points)", "options.time_limit_s": "seconds of search time limit"}[violation.field]
        raise too_large(violation.field, violation.max, violation.got,
                        f"the request has {violation.got:g} {what}; this service plans at most {violation.max:g}")


@bp.post("/plans")
@roles("dispatcher", "system")
@doc(tags=("plans",), json=PlanRequest, query=PlanQuery, headers=IdempotencyHeaders, ok=_PLAN_RESPONSES,
     errors={"HTTP_422": (ErrorBody, "Invalid problem: one error per field"), "HTTP_413": _TOO_LARGE,
             "HTTP_409": (ErrorBody, "Idempotency-Key reused with another request")})
def create_plan():  # type: ignore[no-untyped-def]
    """Plan a day, or several dates.

    The body is a Problem (date). Answers 202 with a job id; with ?wait=S,
    the plan (201) when the job finishes within S seconds. A failed job
    publishes nothing: the date's previous plan stays current. A day bigger
    than the service's limits is refused at once with 413 naming the limit.
    Rules are on by default (options.rule_set: [planning] rule_set; only
    "none" turns them off); frequency limits count the visits recorded
    through outcomes in the period, plus the history sent.

    With dates instead of date (1 to 7, ascending): the dates are planned in
    order, visits left on a date are candidates on the next, due_by is kept
    (a visit not planned by then is reported past_due), and the pending
    follow-ups of these dates join from their date, preferring the collector
    of the earlier visit. The job makes a plan set (GET /v1/plan-sets/{id},
    id = the job id), each date's plan published as a version of that date.
    With ?publish=false (date or dates) the plan set is a draft: nothing is
    published until POST /v1/plan-sets/{id}/publish.

    With an Idempotency-Key, a retry (same key, same body and query) queues
    nothing: it is answered with the first request's job as it stands now
    (Idempotent-Replayed: true)."""
    wait = query_seconds("wait", MAX_WAIT_S)
    publish = query_bool("publish", True)
    body = json_object_body()
    key = idempotency_key()
    hashed = request_hash({"publish": publish, "body": body})
    who = principal()
    scope = f"plans:{who.role}:{who.token_id or ''}"
    stored = earlier_answer(scope, key, hashed)
    if stored is not None:  # a retry: the first request's job, as it stands now
        job = services().jobs.get(json.loads(stored.body_json)["job_id"])
        if job is not None:
            return _replayed(job, wait)
    if "dates" in body or not publish:
        job = create_days(body, publish=publish)
    else:
        visits = body.get("visits")
        options = body.get("options")
        # counted on the raw JSON, before the (costly) validation of a huge day
        check_size(visits if isinstance(visits, list) else [], _count(body.get("agents")),
                   options.get("time_limit_s") if isinstance(options, dict) else None)
        problem = Problem.model_validate(body)  # ValidationError → 422
        problem = with_recorded_history(services().store, problem)  # frequency limits count recorded visits
        problem = with_configured_safety(problem)
        job = services().jobs.submit(problem)
    if key is not None:
        earlier = services().store.keep_idempotency(Idempotency(scope, key, hashed, 202,
                                                                json.dumps({"job_id": job.id})))
        if earlier is not None and earlier.request_hash != hashed:
            raise key_reused()
    return days_job_answer(job, wait) if job.kind == "days" else job_answer(job, wait)


def _replayed(job: Job, wait: float | None):  # type: ignore[no-untyped-def]
    body, status, *rest = days_job_answer(job, wait) if job.kind == "days" else job_answer(job, wait)
    return body, status, {**(rest[0] if rest else {}), "Idempotent-Replayed": "true"}


@bp.get("/plans/<date>")
@roles("dispatcher", "system")
@doc(tags=("plans",), query=VersionQuery, ok={"HTTP_200": PlanVersionView})
def get_plan(date: str):  # type: ignore[no-untyped-def]
    """The current plan of a date (or ?version=N)."""
    date = parse_date(date)
    version = query_int("version", beyond_is_missing=True)
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
            "reason": stored.meta.get("reason", "plan"),
            "plan": json.loads(stored.plan_json),
        }
    )


@bp.get("/plans/<date>/versions")
@roles("dispatcher", "system")
@doc(tags=("plans",), ok={"HTTP_200": VersionList})
def list_versions(date: str):  # type: ignore[no-untyped-def]
    """Every published version of a date, oldest first, with its summary."""
    date = parse_date(date)
    versions = services().store.list_versions(date)
    if not versions:
        raise not_found(f"no plan for {date}")
    items: list[dict[str, Any]] = [
        {
            "version": v.version,
            "created_at": v.created_at,
            "job_id": v.meta.get("job_id"),
            "reason": v.meta.get("reason", "plan"),
            "summary": v.meta.get("summary"),
            "links": {"plan": _plan_link(date, v.version)},
        }
        for v in versions
    ]
    return jsonify({"date": date, "current_version": versions[-1].version, "versions": items})


def _field_error(field: str, message: str) -> ApiError:
    return ApiError(422, "validation_error", "1 validation error(s)", errors=[{"field": field, "message": message}])


def check_day_state(problem: Problem, state: DayState) -> None:
    """422 naming the field for ids the day does not have (or already has)."""
    visits = {v.id for v in problem.visits}
    agents = {a.id for a in problem.agents}
    errors: list[dict[str, str]] = []
    if state.now.astimezone(problem.tz).date() != problem.date:
        errors.append({"field": "now", "message": f"not on the plan date {problem.date} in {problem.timezone}"})
    for name in ("completed", "cancelled", "declined"):
        for i, visit_id in enumerate(getattr(state, name)):
            if visit_id not in visits:
                errors.append({"field": f"{name}.{i}", "message": f"no visit {visit_id!r} in the plan's day"})
    for visit_id, agent_id in state.in_progress.items():
        if visit_id not in visits:
            errors.append({"field": f"in_progress.{visit_id}", "message": "no such visit in the plan's day"})
        if agent_id not in agents:
            errors.append({"field": f"in_progress.{visit_id}", "message": f"no agent {agent_id!r}"})
    for i, crew in enumerate(state.crews):
        if crew.agent_id not in agents:
            errors.append({"field": f"crews.{i}.agent_id", "message": f"no agent {crew.agent_id!r}"})
    for i, visit in enumerate(state.added):
        if visit.id in visits:
            errors.append({"field": f"added.{i}.id", "message": f"visit {visit.id!r} is already in the day"})
    if len({v.id for v in state.added}) < len(state.added):
        errors.append({"field": "added", "message": "duplicate visit id(s)"})
    errors += new_visit_errors(problem, state.added, lambda i: f"added.{i}")
    if errors:
        raise ApiError(422, "validation_error", f"{len(errors)} validation error(s)", errors=errors)


def with_recorded_outcomes(date: str, version: int, plan: Plan, state: DayState) -> DayState:
    """The day state completed with what agents reported: visits recorded as
    completed count as completed, visits recorded as arrived as under way with
    their crew. Visits an earlier re-plan already took out of the day are
    dropped from the lists (a client may resend everything done today)."""
    store = services().store
    stored = store.get_plan(date, version)
    closed = set((stored.meta.get("closed") or {}) if stored is not None else {})
    completed = [v for v in dict.fromkeys(state.completed) if v not in closed]
    cancelled = [v for v in dict.fromkeys(state.cancelled) if v not in closed]
    in_progress = {v: a for v, a in state.in_progress.items() if v not in closed}
    told = set(completed) | set(cancelled) | set(in_progress)
    for route in plan.routes:
        for stop in route.stops:
            if stop.visit_id in told:
                continue
            recorded = store.get_visit_state(date, stop.visit_id).status
            if recorded == "completed":
                completed.append(stop.visit_id)
            elif recorded in ("arrived", "departed"):
                in_progress[stop.visit_id] = route.agent_id
    declined = list(dict.fromkeys([*state.declined, *declined_visits(store, date, plan)]))
    return state.model_copy(update={"completed": completed, "cancelled": cancelled, "in_progress": in_progress,
                                    "declined": declined})


def solver_has(name: str) -> bool:
    import solver

    return callable(getattr(solver, name, None))


def not_implemented(what: str) -> ApiError:
    return ApiError(501, "not_implemented", f"{what} is not available in this build of the solver")


@bp.post("/plans/<date>/reoptimize")
@roles("dispatcher", "system")
@doc(tags=("plans",), json=DayState, query=WaitQuery, ok=_JOB_RESPONSES,
     errors={"HTTP_422": (ErrorBody, "Invalid day state: names the field"), "HTTP_413": _TOO_LARGE,
             "HTTP_501": (ErrorBody, "Re-planning is not available")})
def reoptimize(date: str):  # type: ignore[no-untyped-def]
    """Re-plan the rest of a day from the current plan.

    The body is a DayState: now, crews (position, absent), completed,
    in_progress, cancelled, added. Outcomes already recorded are added to it
    (completed → completed, departed or arrived → in progress). Every
    promised slot is kept, except those the borrower declined (recorded
    through POST /v1/visits/{id}/contact, or listed in declined). The new
    version holds the rest of the day (done, under way and cancelled visits
    leave it; outcomes can still be recorded for the first two). Runs as a
    job, like POST /v1/plans; crews whose itinerary changed get an
    itinerary.changed event."""
    date = parse_date(date)
    wait = query_seconds("wait", MAX_WAIT_S)
    state = DayState.model_validate(json_object_body())
    version, plan, problem = current_day(date)
    state = with_recorded_outcomes(date, version, plan, state)
    check_day_state(problem, state)
    check_size([*problem.visits, *state.added], len(problem.agents), problem.options.time_limit_s)
    if not solver_has("reoptimize"):
        raise not_implemented("re-planning (solver.reoptimize)")
    return job_answer(services().jobs.submit_reoptimize(problem, version, state), wait)
