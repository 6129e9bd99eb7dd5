"""The pydantic models of planning several dates and of drafts (plan sets):
``POST /v1/plans`` with ``dates`` or ``?publish=false``, ``GET
/v1/plan-sets/{id}``, ``POST /v1/plan-sets/{id}/publish``.

They are part of the OpenAPI contract like :mod:`app.api.schemas`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from app.api.schemas import PlanCreated
from solver.model import Agent, Contact, Id, Options, Plan, Unassigned, Visit
from solver.multiday import MAX_DATES, MAX_SPAN_DAYS


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlanRequest(_In):
    """A day (:class:`solver.model.Problem`, with ``date``) or several dates
    (:class:`solver.multiday.Horizon`, with ``dates``): give one of the two."""

    date: dt.date | None = Field(None, description="The plan date (one day)")
    dates: list[dt.date] | None = Field(
        None, min_length=1, max_length=MAX_DATES,
        description=f"Instead of date: 1 to {MAX_DATES} distinct dates, ascending, the last at most {MAX_SPAN_DAYS} "
                    "days after the first. Planned in order; visits left on a date are candidates on the next; "
                    "pending follow-ups of these dates join from their date",
    )
    timezone: str = Field("Asia/Shanghai", max_length=64)
    visits: list[Visit] = Field(default_factory=list, max_length=20000)
    agents: list[Agent] = Field(min_length=1, max_length=2000,
                                description="The crews (with dates: working every date; shifts as times of day)")
    options: Options | None = None
    skills: list[Id] | None = None
    history: list[Contact] = Field(default_factory=list)
    available_from: dict[str, dt.date] | None = Field(
        None, description="With dates: visit id -> the first date it may be planned")


class PlanQuery(_In):
    wait: float | None = Field(None, gt=0, le=300, description="Wait up to this many seconds for the job to finish")
    publish: bool = Field(
        True, description="false: keep the plans as a draft (a plan set): not current, not in itineraries, "
                          "publishable later with POST /v1/plan-sets/{id}/publish")


class PublishQuery(_In):
    force: bool = Field(False, description="Publish although a date's plan changed since the draft was made")


class FollowupConsidered(_Out):
    followup_id: str | None
    visit_id: str
    date: str = Field(description="The follow-up's date: a candidate from that date on")
    rule: str | None
    added: bool = Field(description="Whether it joined the candidates")
    preferred_agents: list[str] = Field(description="The collector of the earlier visit (none when the case is at "
                                                    "risk)")
    collector_in_horizon: bool | None = Field(None, description="Whether that collector works these dates")
    reason: str | None = Field(None, description="Why it was left out")


class DayOfSet(_Out):
    date: str
    version: int | None = Field(description="The version published for the date (null: a draft)")
    based_on_version: int | None = Field(description="The date's current version when it was planned")
    plan: Plan
    links: dict[str, str]


class SetSummary(_Out):
    visits_planned: int = Field(description="Over every date")
    visits_unplanned: int = Field(description="Planned on no date")


class PlanSetView(_Out):
    """The plans of several dates made by one job (or one kept as a draft)."""

    id: str = Field(description="The plan set's id: its job's id")
    job_id: str
    status: Literal["draft", "publishing", "published"]
    dates: list[str]
    created_at: str
    published_at: str | None
    days: list[DayOfSet]
    unplanned: list[Unassigned] = Field(description="Visits planned on no date, with the reason (past_due: its "
                                                    "due_by passed; else the last date's reason)")
    followups: list[FollowupConsidered]
    summary: SetSummary
    links: dict[str, str]


class PlanSetCreated(_Out):
    job_id: str
    status: Literal["succeeded"]
    date: str = Field(description="The first date")
    plan_set: PlanSetView
    links: dict[str, str]


class PlanAnswer(RootModel[Any]):
    """What ``POST /v1/plans?wait=`` answers with 201: a one-day plan
    published (:class:`app.api.schemas.PlanCreated`), or, with ``dates`` or
    ``?publish=false``, the plan set (:class:`PlanSetCreated`)."""

    root: PlanCreated | PlanSetCreated


def set_json(view: dict[str, Any]) -> dict[str, Any]:
    """``view`` through :class:`PlanSetView` (the contract) as JSON."""
    return PlanSetView.model_validate(view).model_dump(mode="json")
