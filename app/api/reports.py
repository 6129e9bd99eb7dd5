"""``GET /v1/reports``: visits planned and made, contacts, results, promises,
recoveries, hours, km, cost and compliance exceptions of a period, per crew,
branch or overdue bucket (:mod:`app.reports` defines each figure), as JSON or
CSV (``?format=csv`` or ``Accept: text/csv``).

Dispatchers and other systems may read reports (``config/reports.toml``
``roles``; agents never); amounts (promised, recovered, cost per unit
recovered) only for roles ``config/cases.toml`` lets see amounts. Settings
are read once per app (``REPORTS_CONFIG``: path; default ``reports.toml`` of
the configuration folder).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Literal, Self

from flask import Blueprint, Response, current_app, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.api.agents import content_disposition
from app.api.amounts import may_see_amounts
from app.api.common import services
from app.api.negotiation import JSON, acceptable, not_acceptable, preferred
from app.api.openapi import doc
from app.api.schemas import ErrorBody
from app.auth import forbidden, principal, roles
from app.errors import ApiError
from app.reports import GroupBy, ReportsConfig, build_report, load_config, to_csv

bp = Blueprint("reports", __name__)
log = logging.getLogger("doorstep.reports")

CSV = "text/csv"
#: ``?format=`` → the media type it answers with.
FORMAT_TYPES = {"json": JSON, "csv": CSV}
#: Figures that are amounts (hidden from roles that see no amounts).
AMOUNT_FIGURES = ("promised_amount", "recovered_amount", "cost_per_recovered")


def reports_config() -> ReportsConfig:
    """The app's report settings (read on first use)."""
    config: ReportsConfig | None = current_app.extensions.get("doorstep_reports")
    if config is None:
        config = load_config(current_app.config.get("REPORTS_CONFIG"))
        current_app.extensions["doorstep_reports"] = config
    return config


class ReportQuery(BaseModel):
    """The period and the grouping of a report."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    date_from: dt.date = Field(alias="from", description="First plan date of the period (YYYY-MM-DD)")
    to: dt.date = Field(description="Last plan date of the period, included")
    group_by: GroupBy = Field("crew", description="crew, branch (the crew's) or bucket (overdue: M0..M3+)")
    format: Literal["json", "csv"] | None = Field(None, description="csv: the same figures as CSV (or Accept: "
                                                                    "text/csv)")

    @model_validator(mode="after")
    def _period(self) -> Self:
        if self.to < self.date_from:
            raise ValueError("to: must not be before from")
        return self


class ReportLine(BaseModel):
    """The figures of one group, or of the whole period (group ``(total)``)."""

    model_config = ConfigDict(extra="forbid")

    group: str = Field(description="The crew, branch or bucket; (none) when it has none")
    visits_planned: int
    visits_made: int = Field(description="Recorded arrived or completed")
    visits_completed: int
    contacts: int = Field(description="Completed visits where someone (borrower, family, colleague) was met")
    contact_rate: float | None = Field(description="contacts / visits_made (null: no visit made)")
    results: dict[str, int] = Field(description="Completed visits per result")
    promises_made: int = Field(description="Promises to pay and instalments agreed at the period's visits")
    promised_amount: float | None = Field(description="Their amount (null: hidden from the role)")
    promises_due: int = Field(description="Of them, due by `to`")
    promises_kept: int
    promise_kept_rate: float | None = Field(description="promises_kept / promises_due")
    payments: int
    recovered_amount: float | None = Field(description="Payments received in the period after a visit of the case")
    hours: float = Field(description="Route hours of the crews (start to end)")
    km: float
    cost: float = Field(description="hours x hourly rate + km x per-km rate (config/reports.toml)")
    cost_per_visit: float | None = Field(description="cost / visits_made")
    cost_per_recovered: float | None = Field(description="cost / recovered_amount (null: none, or hidden)")
    compliance_exceptions: int = Field(description="Visits a rule of the rule set kept out of the plans")
    exceptions_by_rule: dict[str, int] = Field(description="The same per rule (visiting_hours, frequency …)")


class ReportView(BaseModel):
    """A report of a period."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    date_from: dt.date = Field(alias="from")
    to: dt.date
    group_by: GroupBy
    currency: str | None = Field(description="Currency of the cost")
    days_planned: int = Field(description="Dates of the period with a published plan")
    amounts_visible: bool = Field(description="False: amounts are null for the caller's role")
    groups: list[ReportLine]
    total: ReportLine


def _query() -> ReportQuery:
    args: dict[str, Any] = {}
    for name in request.args:
        values = request.args.getlist(name)
        args[name] = values[0] if len(values) == 1 else values
    return ReportQuery.model_validate(args)


def _representation(fmt: str | None) -> str:
    if fmt is None:
        return preferred((JSON, CSV))
    mimetype = FORMAT_TYPES[fmt]
    if acceptable(mimetype):
        return mimetype
    raise not_acceptable((mimetype,))


@bp.get("/reports")
@roles("dispatcher", "system")
@doc(tags=("reports",), query=ReportQuery,
     ok={"HTTP_200": (ReportView, "JSON; text/csv with ?format=csv or Accept: text/csv (a header row, one row per "
                                  "group, then (total))")},
     errors={"HTTP_406": (ErrorBody, "Accept allows neither JSON nor text/csv")})
def get_report():  # type: ignore[no-untyped-def]
    """What the field visits of a period cost and produced, per crew, branch
    or overdue bucket: visits planned and made, contact rate, result mix,
    promises (amount, kept rate), recovered amount, hours, km, cost (crew
    rates of config/reports.toml), cost per visit and per unit recovered, and
    compliance exceptions. See docs/api.md for each definition. Amounts are
    null for roles config/cases.toml does not let see amounts."""
    who = principal()
    config = reports_config()
    if who.role not in config.roles:
        raise forbidden(f"the {who.role} role may not read reports (config/reports.toml roles)")
    query = _query()
    span = (query.to - query.date_from).days + 1
    if span > config.max_days:
        message = f"the period is {span} days; at most {config.max_days}"
        raise ApiError(422, "validation_error", f"to: {message}", errors=[{"field": "to", "message": message}])
    mimetype = _representation(query.format)
    report = build_report(services().store, query.date_from, query.to, query.group_by, config).to_dict()
    amounts = may_see_amounts(who)
    if not amounts:
        for line in [*report["groups"], report["total"]]:
            for name in AMOUNT_FIGURES:
                line[name] = None
    report["amounts_visible"] = amounts
    log.info("report %s..%s by %s: %d group(s), %d day(s) planned", query.date_from, query.to, query.group_by,
             len(report["groups"]), report["days_planned"])
    if mimetype == CSV:
        name = f"doorstep-report-{query.date_from}-{query.to}-{query.group_by}.csv"
        response = Response(to_csv(report), mimetype=CSV)
        response.headers["Content-Disposition"] = content_disposition(name)
        return response
    return jsonify(ReportView.model_validate(report).model_dump(mode="json", by_alias=True))
