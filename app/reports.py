"""Reports over a period: what the field visits of the dates ``from``..``to``
cost and produced, per crew, per branch or per overdue bucket
(``GET /v1/reports``, the dispatcher page's Reports tab).

Flask-free: :func:`build_report` reads the store and returns a
:class:`Report`; :func:`to_csv` writes it as CSV. Definitions (each figure
per group and in total; the total is the sum of the groups):

* **visits planned**: the visits of each date's *current* plan version with a
  stop on a route, plus those a re-plan took out of the day as done or under
  way (the version's ``closed`` list) — the day's work as last planned;
* **visits made**: of those, the ones the crew recorded ``arrived`` or
  ``completed`` (as :mod:`app.history` counts a field visit);
* **contacts**: completed visits where someone was met — the outcome's
  ``met`` is borrower, family or colleague; when ``met`` was not recorded,
  any result but ``not_at_home``, ``wrong_address`` or ``moved``.
  **contact rate** = contacts / visits made;
* **result mix**: completed visits per result (paid, promise_to_pay …);
* **promises**: promises to pay and instalments agreed at the period's visits
  (their count and amount); **due** are those of them due by ``to``, **kept**
  those of the due ones found kept; **promise-kept rate** = kept / due (as
  recorded when the report is made: a promise due yesterday and not yet
  checked is neither kept nor broken, so it counts as not kept);
* **recovered**: payments (``POST /v1/payments``) received from ``from`` to
  ``to`` on the cases visited, each credited to the case's latest visit made
  on or before the day it was received (a payment before the case's first
  visit of the period is not the visits' doing and is left out);
* **hours** and **km**: each route of the current plan versions, from leaving
  the start place to reaching the end, and its distance (a re-planned day
  counts its rest-of-day routes); **cost** = hours x hourly rate + km x
  per-km rate of the crew (``config/reports.toml``: crew, branch, default);
  with ``group_by=bucket`` a route's hours, km and cost are shared equally
  among its stops. **cost per visit** = cost / visits made; **cost per unit
  recovered** = cost / recovered;
* **compliance exceptions**: visits the plans left out because a rule of
  their rule set refused them (visiting hours, frequency limit, crew size for
  home visits, no contact at work), counted per rule; they have no crew, so
  with ``group_by=crew`` or ``branch`` they fall in the crew they were pinned
  to, else ``(none)``.

Groups: ``crew`` (the route's crew), ``branch`` (the crew's branch: the
configuration's, else the text of its start place), ``bucket`` (the overdue
bucket of the visit's case on the day: M0, M1, M2, M3+; ``(none)`` without
case data). Amounts are summed as numbers: one currency is assumed.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from app.api.schemas import OutcomeResult
from app.cases import CaseState
from app.store.base import Store
from solver.config import load_settings
from solver.model import Plan, Problem, Unassigned, Visit

FILENAME = "reports.toml"
GroupBy = Literal["crew", "branch", "bucket"]
GROUP_BY: tuple[str, ...] = get_args(GroupBy)
#: The group of what has no crew, branch or case data.
NONE = "(none)"
#: The group name of the total row in CSV.
TOTAL = "(total)"
#: Visit statuses that mean the crew was there (as :data:`app.history.MADE`).
MADE = frozenset({"arrived", "completed"})
#: Who the crew met that makes a contact (``met``; ``nobody`` does not).
MET = frozenset({"borrower", "family", "colleague"})
#: Results that tell nobody was met, when ``met`` was not recorded.
NO_CONTACT_RESULTS = frozenset({"not_at_home", "wrong_address", "moved"})
#: Every outcome result, in the order the result mix lists them.
RESULTS: tuple[str, ...] = get_args(OutcomeResult)
#: How a plan's refusal cites its rule set's rule (:func:`solver.rules.cite`).
_CITED_RULE = re.compile(r"rule set [^,]+, ([a-z_]+) \(")


# --------------------------------------------------------------------------- #
# Configuration
# --------------------------------------------------------------------------- #
class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Rates(_Config):
    """Cost of a crew's working hour and kilometre."""

    hourly: float = Field(120.0, ge=0, le=1e6)
    per_km: float = Field(1.2, ge=0, le=1e6)
    currency: str | None = Field("CNY", pattern=r"^[A-Z]{3}$")


class RateOverride(_Config):
    """Rates replacing the defaults (None: keep them)."""

    hourly: float | None = Field(None, ge=0, le=1e6)
    per_km: float | None = Field(None, ge=0, le=1e6)


class CrewSettings(RateOverride):
    """A crew's branch and rates."""

    branch: str | None = Field(None, min_length=1, max_length=200)


ReaderRole = Literal["dispatcher", "system"]


def _readers() -> list[ReaderRole]:
    return ["dispatcher", "system"]


class ReportsConfig(_Config):
    """``config/reports.toml``."""

    roles: list[ReaderRole] = Field(default_factory=_readers, description="Roles that may read reports")
    max_days: int = Field(366, ge=1, le=3660)
    rates: Rates = Field(default_factory=Rates)
    branches: dict[str, RateOverride] = Field(default_factory=dict)
    crews: dict[str, CrewSettings] = Field(default_factory=dict)

    def branch_of(self, crew: str, start_text: str | None) -> str:
        """The crew's branch: configured, else its start place's text, else ``(none)``."""
        settings = self.crews.get(crew)
        if settings is not None and settings.branch:
            return settings.branch
        return start_text or NONE

    def rates_of(self, crew: str, branch: str) -> tuple[float, float]:
        """(hourly, per km) of a crew: its own, else its branch's, else the defaults."""
        hourly, per_km = self.rates.hourly, self.rates.per_km
        for override in (self.branches.get(branch), self.crews.get(crew)):
            if override is not None:
                hourly = override.hourly if override.hourly is not None else hourly
                per_km = override.per_km if override.per_km is not None else per_km
        return hourly, per_km


def load_config(path: str | Path | None = None) -> ReportsConfig:
    """The configuration in ``path`` (default: ``reports.toml`` of the
    configuration folder; built-in defaults when that file does not exist).
    A bad file raises ValueError naming the key."""
    return load_settings(ReportsConfig, FILENAME, path)


# --------------------------------------------------------------------------- #
# Figures
# --------------------------------------------------------------------------- #
def _ratio(part: float, whole: float, digits: int) -> float | None:
    """``part / whole`` rounded, or None when ``whole`` is 0."""
    return round(part / whole, digits) if whole else None


@dataclass
class Figures:
    """The figures of one group, added up as the report reads the period."""

    visits_planned: int = 0
    visits_made: int = 0
    visits_completed: int = 0
    contacts: int = 0
    results: Counter[str] = field(default_factory=Counter)
    promises_made: int = 0
    promised_amount: float = 0.0
    promises_due: int = 0
    promises_kept: int = 0
    payments: int = 0
    recovered_amount: float = 0.0
    hours: float = 0.0
    km: float = 0.0
    cost: float = 0.0
    compliance_exceptions: int = 0
    exceptions_by_rule: Counter[str] = field(default_factory=Counter)

    def add(self, other: Figures) -> None:
        """Add another group's figures (for the total)."""
        for name in self.__dataclass_fields__:
            mine, theirs = getattr(self, name), getattr(other, name)
            if isinstance(mine, Counter):
                mine.update(theirs)
            else:
                setattr(self, name, mine + theirs)

    def as_dict(self, group: str) -> dict[str, Any]:
        """The figures with the rates derived from them, rounded for display."""
        return {
            "group": group,
            "visits_planned": self.visits_planned,
            "visits_made": self.visits_made,
            "visits_completed": self.visits_completed,
            "contacts": self.contacts,
            "contact_rate": _ratio(self.contacts, self.visits_made, 4),
            "results": {result: self.results.get(result, 0) for result in RESULTS},
            "promises_made": self.promises_made,
            "promised_amount": round(self.promised_amount, 2),
            "promises_due": self.promises_due,
            "promises_kept": self.promises_kept,
            "promise_kept_rate": _ratio(self.promises_kept, self.promises_due, 4),
            "payments": self.payments,
            "recovered_amount": round(self.recovered_amount, 2),
            "hours": round(self.hours, 2),
            "km": round(self.km, 2),
            "cost": round(self.cost, 2),
            "cost_per_visit": _ratio(self.cost, self.visits_made, 2),
            "cost_per_recovered": _ratio(self.cost, self.recovered_amount, 4),
            "compliance_exceptions": self.compliance_exceptions,
            "exceptions_by_rule": dict(sorted(self.exceptions_by_rule.items())),
        }


@dataclass(frozen=True)
class Report:
    """A report: one line per group (sorted by name) and the total."""

    date_from: dt.date
    date_to: dt.date
    group_by: str
    currency: str | None  # of the cost
    days_planned: int  # dates of the period with a plan
    groups: list[dict[str, Any]]
    total: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The report as the JSON of ``GET /v1/reports`` (amounts not yet hidden)."""
        return {"from": self.date_from.isoformat(), "to": self.date_to.isoformat(), "group_by": self.group_by,
                "currency": self.currency, "days_planned": self.days_planned, "groups": self.groups,
                "total": self.total}


# --------------------------------------------------------------------------- #
# Reading the period
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class _Made:
    """A visit made in the period (for contacts, promises and payments)."""

    date: str
    visit_id: str
    group: str
    result: str | None  # completed: its result


def _bucket(visit: Visit | None) -> str:
    """The overdue bucket of the visit's case, or ``(none)`` without case data."""
    return visit.case.bucket if visit is not None and visit.case is not None else NONE


def _rule_of(unassigned: Unassigned) -> str | None:
    """The rule of the plan's rule set that refused a visit (None: no rule did)."""
    cited = _CITED_RULE.search(unassigned.reason)
    if cited is not None:
        return cited.group(1)
    return "frequency" if unassigned.code == "frequency_limit" else None


class _Period:
    """The figures per group, filled date by date."""

    def __init__(self, store: Store, group_by: str, config: ReportsConfig) -> None:
        self.store = store
        self.group_by = group_by
        self.config = config
        self.figures: defaultdict[str, Figures] = defaultdict(Figures)
        self.made: defaultdict[str, list[_Made]] = defaultdict(list)  # case key -> visits made, date order

    def group(self, crew: str, branch: str, visit: Visit | None) -> str:
        """The group of a visit (or of a route, ``visit`` None) of this crew and branch."""
        if self.group_by == "crew":
            return crew
        if self.group_by == "branch":
            return branch
        return _bucket(visit)

    def read_day(self, date: str, plan: Plan, problem: Problem, meta: dict[str, Any]) -> None:
        """Planned and made visits, hours, km, cost and exceptions of a date."""
        visits = {v.id: v for v in problem.visits}
        starts = {a.id: a.start.text for a in problem.agents}
        crew_of: dict[str, str | None] = {s.visit_id: r.agent_id for r in plan.routes for s in r.stops}
        for visit_id, crew in (meta.get("closed") or {}).items():
            crew_of.setdefault(visit_id, crew)
        states = self.store.get_visit_states(date, list(crew_of))
        for state in states:
            crew = crew_of[state.visit_id] or state.agent_id or NONE
            visit = visits.get(state.visit_id)
            group = self.group(crew, self.config.branch_of(crew, starts.get(crew)), visit)
            figures = self.figures[group]
            figures.visits_planned += 1
            if state.status not in MADE:
                continue
            figures.visits_made += 1
            completed = state.status == "completed" and state.result is not None
            if completed:
                figures.visits_completed += 1
                figures.results[str(state.result)] += 1
            case_key = visit.case_key if visit is not None else state.visit_id
            self.made[case_key].append(_Made(date, state.visit_id, group, state.result if completed else None))
        for route in plan.routes:
            branch = self.config.branch_of(route.agent_id, starts.get(route.agent_id))
            hourly, per_km = self.config.rates_of(route.agent_id, branch)
            hours = (route.end - route.start).total_seconds() / 3600
            km = (sum(s.distance_m for s in route.stops) + route.end_distance_m) / 1000
            shares = [(self.group(route.agent_id, branch, visits.get(s.visit_id)), 1 / len(route.stops))
                      for s in route.stops] or [(self.group(route.agent_id, branch, None), 1.0)]
            for group, share in shares:
                figures = self.figures[group]
                figures.hours += hours * share
                figures.km += km * share
                figures.cost += (hours * hourly + km * per_km) * share
        for left in plan.unassigned:
            rule = _rule_of(left)
            if rule is None:
                continue
            visit = visits.get(left.visit_id)
            crew = visit.pinned_agent if visit is not None and visit.pinned_agent else NONE
            group = self.group(crew, self.config.branch_of(crew, starts.get(crew)) if crew != NONE else NONE, visit)
            self.figures[group].compliance_exceptions += 1
            self.figures[group].exceptions_by_rule[rule] += 1

    def read_cases(self, date_from: dt.date, date_to: dt.date) -> None:
        """Contacts, promises and payments of the cases visited."""
        case_ids = sorted(self.made)
        states = self.store.get_cases(case_ids)
        entries = self.store.list_case_entries_many(case_ids)
        for case_id in case_ids:
            made = self.made[case_id]
            records = [json.loads(e) for e in entries.get(case_id, [])]
            self._contacts(made, records)
            by_visit = {(m.date, m.visit_id): m.group for m in made}
            if case_id in states:
                state = CaseState.model_validate_json(states[case_id])
                for promise in state.promises:
                    group = by_visit.get((promise.date.isoformat(), promise.visit_id))
                    if group is None:
                        continue
                    figures = self.figures[group]
                    figures.promises_made += 1
                    figures.promised_amount += promise.amount or 0.0
                    if promise.due <= date_to:
                        figures.promises_due += 1
                        figures.promises_kept += promise.status == "kept"
            for record in records:
                if record.get("type") != "payment":
                    continue
                received = dt.date.fromisoformat(record["received_on"])
                if not date_from <= received <= date_to:
                    continue
                before = [m for m in made if m.date <= record["received_on"]]
                if before:
                    figures = self.figures[before[-1].group]
                    figures.payments += 1
                    figures.recovered_amount += float(record.get("amount") or 0.0)

    def _contacts(self, made: Sequence[_Made], records: Sequence[dict[str, Any]]) -> None:
        """Count the completed visits of a case where someone was met (its history says who)."""
        met: dict[tuple[str, str], str | None] = {}
        for record in records:  # in the order written: the last completed outcome of a visit counts
            if record.get("type") == "outcome" and record.get("status") == "completed":
                met[(record.get("date") or "", record.get("visit_id") or "")] = record.get("met")
        for visit in made:
            if visit.result is None:
                continue
            who = met.get((visit.date, visit.visit_id))
            if (who in MET) if who is not None else (visit.result not in NO_CONTACT_RESULTS):
                self.figures[visit.group].contacts += 1


def build_report(store: Store, date_from: dt.date, date_to: dt.date, group_by: str,
                 config: ReportsConfig) -> Report:
    """The report of the dates ``date_from``..``date_to`` (both included)
    grouped by ``group_by`` (one of :data:`GROUP_BY`)."""
    if group_by not in GROUP_BY:
        raise ValueError(f"group_by: one of {', '.join(GROUP_BY)}")
    if date_to < date_from:
        raise ValueError("to: not before from")
    dates = [(date_from + dt.timedelta(days=n)).isoformat() for n in range((date_to - date_from).days + 1)]
    period = _Period(store, group_by, config)
    days = store.current_days(dates)
    for date in sorted(days):  # date order: a case's visits made stay in time order
        stored, problem_json = days[date]
        period.read_day(date, Plan.model_validate_json(stored.plan_json), Problem.model_validate_json(problem_json),
                        stored.meta)
    period.read_cases(date_from, date_to)
    total = Figures()
    for figures in period.figures.values():
        total.add(figures)
    groups = [period.figures[name].as_dict(name) for name in sorted(period.figures)]
    return Report(date_from, date_to, group_by, config.rates.currency, len(days), groups, total.as_dict(TOTAL))


# --------------------------------------------------------------------------- #
# CSV
# --------------------------------------------------------------------------- #
#: CSV columns after ``group``; ``result_<r>`` for each result of the mix.
CSV_FIGURES: tuple[str, ...] = (
    "visits_planned", "visits_made", "visits_completed", "contacts", "contact_rate",
    *(f"result_{r}" for r in RESULTS),
    "promises_made", "promised_amount", "promises_due", "promises_kept", "promise_kept_rate",
    "payments", "recovered_amount", "hours", "km", "cost", "cost_per_visit", "cost_per_recovered",
    "compliance_exceptions",
)


#: First characters that make a spreadsheet read a cell as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_row(line: dict[str, Any]) -> list[str]:
    """A report line (a group or the total) as CSV cells (empty: not known or
    hidden). A group name that a spreadsheet would read as a formula (a
    branch is free text) is quoted with a leading apostrophe."""
    group = str(line["group"])
    cells = ["'" + group if group.startswith(_FORMULA_START) else group]
    for name in CSV_FIGURES:
        value = line["results"].get(name[len("result_"):]) if name.startswith("result_") else line[name]
        cells.append("" if value is None else str(value))
    return cells


def to_csv(report: dict[str, Any]) -> str:
    """A report (:meth:`Report.to_dict`, amounts possibly hidden) as CSV: a
    header row, one row per group, then the total (group ``(total)``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([report["group_by"], *CSV_FIGURES])
    for line in [*report["groups"], report["total"]]:
        writer.writerow(csv_row(line))
    return out.getvalue()
