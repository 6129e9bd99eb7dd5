"""Plan sets: several dates planned by one job, and drafts.

``POST /v1/plans`` with ``dates`` (or any plan with ``?publish=false``) runs a
``days`` job (:func:`run_days`): :func:`solver.multiday.plan_days` plans the
dates in order, every day's plan is checked (:func:`solver.check.check_plan`),
and the result is stored as one *plan set* under the job's id
(:meth:`app.store.base.Store.save_plan_set`). Published, each date's plan
becomes a new version of that date, exactly like a one-day plan, so
``GET /v1/plans/{date}``, itineraries and re-plans work per date. A draft
publishes nothing: dispatchers read it (``GET /v1/plan-sets/{id}``) and may
publish it later (:func:`publish_set`); agents never see it.

Follow-ups (:func:`with_followups`): the pending follow-up visits that outcomes
and broken promises created for a date of the horizon join the candidates
from that date, preferring the collector who made the earlier visit
(``preferred_agents``). A follow-up already in the request, already made,
or whose case is no longer open is left out; one whose case carries a risk
flag (dispute, incident …) gets no preferred collector.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from app.cases import OPEN
from app.events import plan_events
from app.history import recorded_contacts
from app.store.base import NewEvent, Store, utcnow
from solver.model import Contact, Plan, Problem, Visit
from solver.multiday import Horizon, MultiDayPlan

__all__ = ["DRAFT", "PUBLISHED", "PUBLISHING", "FollowupsAdded", "publish_set", "set_record", "set_view",
           "with_followups", "with_recorded_history"]

log = logging.getLogger("doorstep.plans")

DRAFT, PUBLISHING, PUBLISHED = "draft", "publishing", "published"
#: Visit statuses after which a follow-up is not planned again.
DONE = frozenset({"completed", "arrived", "departed"})


@dataclass
class FollowupsAdded:
    """What :func:`with_followups` did with each follow-up of the horizon."""

    entries: list[dict[str, Any]] = field(default_factory=list)


def with_followups(store: Store, horizon: Horizon) -> tuple[Horizon, FollowupsAdded]:
    """``horizon`` with the pending follow-up visits of its dates added
    (available from their date, preferring their collector)."""
    known = {v.id for v in horizon.visits}
    crews = {a.id for a in horizon.agents}
    added: list[Visit] = []
    available = dict(horizon.available_from)
    report = FollowupsAdded()
    catalogue = horizon.day_problem(horizon.dates[0], [], []).skill_catalogue()
    for date in horizon.dates:
        day = date.isoformat()
        for record_json in store.list_followups(day):
            record = json.loads(record_json)
            if record.get("kind") != "visit" or not record.get("visit"):
                continue
            try:
                visit = Visit.model_validate(record["visit"])
            except ValidationError:  # stored by an older release with other rules: not plannable as it is
                report.entries.append({"followup_id": record.get("id"), "visit_id": str(record["visit"].get("id")),
                                       "date": day, "rule": record.get("rule"), "added": False,
                                       "preferred_agents": [], "reason": "its visit is not valid any more"})
                continue
            source = record.get("source") or {}
            entry: dict[str, Any] = {"followup_id": record.get("id"), "visit_id": visit.id, "date": day,
                                     "rule": record.get("rule"), "added": False, "preferred_agents": []}
            report.entries.append(entry)
            if visit.id in known:
                entry["reason"] = "already in the request (or another follow-up)"
                continue
            if any(store.get_visit_state(d.isoformat(), visit.id).status in DONE for d in horizon.dates):
                entry["reason"] = "already made"
                continue
            unknown = sorted(set(visit.skills) - catalogue)
            if unknown:
                entry["reason"] = f"needs skills not in this request's catalogue: {', '.join(unknown)}"
                continue
            state = _case_state(store, visit.case_id)
            if state is not None and state.get("status", OPEN) != OPEN:
                entry["reason"] = f"its case is {state.get('status')}, not open"
                continue
            collector = source.get("agent_id")
            preferred = [] if not collector or (state is not None and state.get("risk_flags")) else [collector]
            visit = visit.model_copy(update={"preferred_agents": preferred})
            entry.update({"added": True, "preferred_agents": preferred,
                          "collector_in_horizon": bool(collector and collector in crews)})
            added.append(visit)
            known.add(visit.id)
            available[visit.id] = date
    if not added:
        return horizon, report
    # the horizon was validated already; the follow-ups were valid visits when they were stored
    return horizon.model_copy(update={"visits": [*horizon.visits, *added], "available_from": available}), report


def _case_state(store: Store, case_id: str | None) -> dict[str, Any] | None:
    if not case_id:
        return None
    _version, state = store.get_case(case_id)
    return None if state is None else dict(json.loads(state))


def with_recorded_history(store: Store, horizon: Horizon) -> Horizon:
    """``horizon`` with the visits recorded through outcomes in the frequency
    period of each of its dates (:func:`app.history.recorded_contacts`) added
    to its history, each once."""
    seen = {(c.case_id, c.at) for c in horizon.history}
    recorded: list[Contact] = []
    for date in horizon.dates:
        view = Problem.model_construct(date=date, timezone=horizon.timezone, visits=horizon.visits,
                                       agents=horizon.agents, options=horizon.options)
        for contact in recorded_contacts(store, view):
            if (contact.case_id, contact.at) not in seen:
                seen.add((contact.case_id, contact.at))
                recorded.append(contact)
    if not recorded:
        return horizon
    return horizon.model_copy(update={"history": [*horizon.history, *recorded]})


def set_record(set_id: str, result: MultiDayPlan, *, followups: FollowupsAdded, store: Store) -> dict[str, Any]:
    """The stored record of a plan set (JSON-able): each day's plan and
    problem, the visits planned on no date, the follow-ups considered, and
    the version each date had when it was planned (``based_on_version``)."""
    days = []
    for day in result.days:
        date = day.date.isoformat()
        days.append({"date": date, "plan": day.plan.model_dump(mode="json"),
                     "problem_json": day.problem.model_dump_json(), "version": None,
                     "based_on_version": store.current_version(date)})
    return {"id": set_id, "job_id": set_id, "created_at": utcnow(), "published_at": None,
            "dates": [d.date.isoformat() for d in result.days], "days": days,
            "unplanned": [u.model_dump(mode="json") for u in result.unplanned], "followups": followups.entries}


def set_view(status: str, record: dict[str, Any]) -> dict[str, Any]:
    """The public JSON of a plan set (:class:`app.api.day_schemas.PlanSetView`)."""
    days = []
    for day in record["days"]:
        links = {"plan": f"/v1/plans/{day['date']}?version={day['version']}"} if day.get("version") else {}
        days.append({"date": day["date"], "version": day.get("version"), "based_on_version": day.get("based_on_version"),
                     "plan": day["plan"], "links": links})
    planned = sum(d["plan"]["summary"]["visits_planned"] for d in record["days"])
    return {
        "id": record["id"], "job_id": record["job_id"], "status": status, "dates": record["dates"],
        "created_at": record["created_at"], "published_at": record.get("published_at"), "days": days,
        "unplanned": record["unplanned"], "followups": record["followups"],
        "summary": {"visits_planned": planned, "visits_unplanned": len(record["unplanned"])},
        "links": {"self": f"/v1/plan-sets/{record['id']}", "job": f"/v1/jobs/{record['job_id']}",
                  **({"publish": f"/v1/plan-sets/{record['id']}/publish"} if status == DRAFT else {})},
    }


def stale_dates(store: Store, record: dict[str, Any]) -> list[str]:
    """The dates whose current version is no longer the one the draft was planned on."""
    return [d["date"] for d in record["days"] if store.current_version(d["date"]) != d.get("based_on_version")]


def publish_set(store: Store, set_id: str, record: dict[str, Any], *, expect_status: str, reason: str,
                job_id: str | None, published: list[NewEvent]) -> dict[str, Any]:
    """Publish every day of a plan set as a new version of its date, in date
    order, and mark the set published; returns the updated record. The set
    moves ``expect_status`` → ``publishing`` first (compare-and-set: of two
    concurrent publishers one wins; the other gets False from the store and
    :class:`LookupError` here). ``published`` collects the events written."""
    if not store.update_plan_set(set_id, expect_status=expect_status, status=PUBLISHING,
                                 record_json=json.dumps(record)):
        raise LookupError(set_id)
    record = json.loads(json.dumps(record))
    for day in record["days"]:
        date = day["date"]
        plan = Plan.model_validate(day["plan"])

        def events(version: int, date: str = date, plan: Plan = plan) -> list[NewEvent]:
            old = store.get_plan(date, version - 1) if version > 1 else None
            old_plan = Plan.model_validate_json(old.plan_json) if old is not None else None
            made = plan_events(date, version, plan, old_plan, old.version if old else None, reason=reason,
                               job_id=job_id)
            published.extend(made)
            return made

        meta = {"job_id": job_id, "reason": reason, "summary": plan.summary.model_dump(mode="json"),
                "plan_set": set_id}
        day["version"] = store.publish_plan(date, plan.model_dump_json(), day["problem_json"], meta=meta,
                                            events=events)
    record["published_at"] = utcnow()
    store.update_plan_set(set_id, expect_status=PUBLISHING, status=PUBLISHED, record_json=json.dumps(record))
    log.info("plan set %s published: %s", set_id, ", ".join(f"{d['date']} v{d['version']}" for d in record["days"]))
    return record

