"""Screening (客户筛选): which overdue cases need a field visit, and how urgent.

Banks send a field visit when a case has been overdue long and for much, when
promises to pay were broken, and when calls and messages went unanswered for a
while. This module turns a visit's :class:`~solver.model.CaseInfo` into a
score made of explainable parts, using the weights of
``config/screening.toml`` (:class:`ScreeningConfig`):

* the overdue **bucket** (M1 1–30 days, M2 31–60, M3+ 61 and more);
* the overdue **amount** (points per step of the amount, capped);
* **broken promises** (points each, capped);
* **days since the last contact** (points per day past a grace period, capped).

A case whose score reaches the threshold is sent, with the score (capped at
100) as the visit's :attr:`~solver.model.Visit.priority`; others are not sent,
each with the reason: no case data, not overdue, a risk flag that excludes it
(dispute, complaint, deceased, legal hold …), escalated already (legal review),
visited too often, or below the threshold.

Pure functions, no I/O beyond reading the configuration: used by
``POST /v1/screening`` and ``doorstep screen``.

Example::

    >>> from solver.screening import ScreeningConfig, score_case
    >>> from solver.model import CaseInfo
    >>> import datetime as dt
    >>> score_case(CaseInfo(days_past_due=75, overdue_amount=30000), dt.date(2026, 12, 1),
    ...            ScreeningConfig()).priority
    75
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from solver.config import load_settings
from solver.model import Bucket, CaseInfo, Visit

FILENAME = "screening.toml"

#: Why a case was not sent for a visit.
ExclusionCode = Literal[
    "no_case_data", "not_overdue", "risk_flag", "escalated", "visited_too_often", "below_threshold"
]
#: The parts of a score.
ComponentName = Literal["bucket", "amount", "broken_promises", "last_contact"]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class BucketPoints(_Config):
    """Points by overdue bucket."""

    M0: float = Field(0.0, ge=0, le=100)
    M1: float = Field(10.0, ge=0, le=100)
    M2: float = Field(25.0, ge=0, le=100)
    M3: float = Field(45.0, ge=0, le=100, description="M3+: 61 days and more")

    def points(self, bucket: Bucket) -> float:
        return {"M0": self.M0, "M1": self.M1, "M2": self.M2, "M3+": self.M3}[bucket]


class AmountWeight(_Config):
    """``points`` per ``step`` of the overdue amount, at most ``max``; amounts
    in another currency are first multiplied by ``rates[currency]`` (default 1)."""

    step: float = Field(10000.0, gt=0, le=1e12)
    points: float = Field(5.0, ge=0, le=100)
    max: float = Field(30.0, ge=0, le=100)
    rates: dict[str, float] = Field(default_factory=dict, description="Currency → factor into the step's currency")


class CountWeight(_Config):
    """``points`` per count, at most ``max``."""

    points: float = Field(10.0, ge=0, le=100)
    max: float = Field(30.0, ge=0, le=100)


class LastContactWeight(_Config):
    """``points_per_day`` for each day since the last contact beyond
    ``after_days``, at most ``max``; a case never contacted gets ``max``."""

    after_days: int = Field(7, ge=0, le=3650)
    points_per_day: float = Field(1.0, ge=0, le=100)
    max: float = Field(15.0, ge=0, le=100)


class VisitedTooOften(_Config):
    """At least ``max_visits`` field visits within the last ``days`` days excludes a case."""

    max_visits: int = Field(2, ge=1, le=1000)
    days: int = Field(30, ge=1, le=3650)


class Exclusions(_Config):
    risk_flags: list[str] = Field(default_factory=lambda: ["dispute", "complaint", "deceased", "legal_hold"])
    escalated: list[str] = Field(default_factory=lambda: ["legal_review"])
    visited_too_often: VisitedTooOften | None = Field(default_factory=VisitedTooOften)


class Safety(_Config):
    """Cases with any of ``two_collectors`` among their risk flags are sent
    as visits needing a crew of at least two."""

    two_collectors: list[str] = Field(default_factory=lambda: ["incident", "agitated"])


class ScreeningConfig(_Config):
    """The weights, threshold and exclusions of screening (``config/screening.toml``)."""

    threshold: float = Field(40.0, ge=0, le=1000)
    buckets: BucketPoints = Field(default_factory=BucketPoints)
    amount: AmountWeight = Field(default_factory=AmountWeight)
    broken_promises: CountWeight = Field(default_factory=CountWeight)
    last_contact: LastContactWeight = Field(default_factory=LastContactWeight)
    exclusions: Exclusions = Field(default_factory=Exclusions)
    safety: Safety = Field(default_factory=Safety)


def load_config(path: str | Path | None = None) -> ScreeningConfig:
    """The configuration in ``path`` (default: ``screening.toml`` of the
    configuration folder; the built-in defaults when that file does not
    exist). A bad file raises ValueError naming the key."""
    return load_settings(ScreeningConfig, FILENAME, path)


# --------------------------------------------------------------------------- #
# Scores
# --------------------------------------------------------------------------- #
class Component(BaseModel):
    """One part of a score: what was weighed and the points it gave."""

    model_config = ConfigDict(extra="forbid")

    name: ComponentName
    value: str | float | None = Field(description="bucket name, amount, count or days (null: unknown)")
    points: float


class Score(BaseModel):
    """A case's score, its parts, and the visit priority it gives."""

    model_config = ConfigDict(extra="forbid")

    total: float
    priority: int = Field(ge=0, le=100, description="The total rounded, capped at 100")
    components: list[Component]


def _round(value: float) -> float:
    return round(value, 2)


def score_case(case: CaseInfo, today: dt.date, config: ScreeningConfig) -> Score:
    """The score of ``case`` on ``today``: bucket + amount + broken promises
    + days since the last contact, each part kept for the breakdown."""
    components = [Component(name="bucket", value=case.bucket, points=config.buckets.points(case.bucket))]
    amount = config.amount
    if case.overdue_amount is None:
        components.append(Component(name="amount", value=None, points=0.0))
    else:
        rate = amount.rates.get(case.currency or "", 1.0)
        points = min(amount.max, case.overdue_amount * rate / amount.step * amount.points)
        components.append(Component(name="amount", value=case.overdue_amount, points=_round(points)))
    broken = config.broken_promises
    components.append(Component(name="broken_promises", value=case.broken_promises,
                                points=_round(min(broken.max, case.broken_promises * broken.points))))
    contact = config.last_contact
    if case.last_contact is None:
        components.append(Component(name="last_contact", value=None, points=contact.max))
    else:
        days = max(0, (today - case.last_contact).days)
        points = min(contact.max, max(0, days - contact.after_days) * contact.points_per_day)
        components.append(Component(name="last_contact", value=days, points=_round(points)))
    total = _round(sum(c.points for c in components))
    return Score(total=total, priority=max(0, min(100, math.floor(total + 0.5))), components=components)


def exclusion(case: CaseInfo | None, today: dt.date, config: ScreeningConfig, *,
              status: str | None = None) -> tuple[ExclusionCode, str] | None:
    """Why a case is never sent (code, reason), or None. ``status`` is the
    case's status in Doorstep (``legal_review`` after an escalation)."""
    if case is None:
        return "no_case_data", "the visit carries no case data (Visit.case)"
    flags = [flag for flag in case.risk_flags if flag in config.exclusions.risk_flags]
    if flags:
        return "risk_flag", f"risk flag {flags[0]}: not sent for a field visit"
    if status is not None and status in config.exclusions.escalated:
        return "escalated", f"the case is in {status}: no more field visits"
    if case.days_past_due <= 0:
        return "not_overdue", "nothing is overdue"
    often = config.exclusions.visited_too_often
    if often is not None:
        since = today - dt.timedelta(days=often.days)
        made = sum(1 for day in case.recent_visits if since < day <= today)
        if made >= often.max_visits:
            return "visited_too_often", (f"{made} field visit(s) in the last {often.days} days "
                                         f"(limit {often.max_visits})")
    return None


class Screened(BaseModel):
    """The screening result of one visit: sent with a priority, or not with the reason."""

    model_config = ConfigDict(extra="forbid")

    visit_id: str
    case_id: str | None
    sent: bool
    priority: int | None = Field(None, description="The visit's new priority (sent visits)")
    score: Score | None = Field(None, description="The score and its parts (null when excluded before scoring)")
    code: ExclusionCode | None = Field(None, description="Why it was not sent")
    reason: str | None = None


def screen(
    visits: Iterable[Visit],
    today: dt.date,
    config: ScreeningConfig,
    *,
    statuses: Mapping[str, str] | None = None,
    broken_promises: Mapping[str, int] | None = None,
    risk_flags: Mapping[str, list[str]] | None = None,
) -> tuple[list[Visit], list[Screened]]:
    """Screen visits on ``today``: (the visits to send, highest priority
    first, with their priority set; one :class:`Screened` per visit in input
    order). ``statuses`` and ``broken_promises`` are what Doorstep knows of a
    case (by :attr:`~solver.model.Visit.case_key`): its escalation status, and
    promises it saw broken; the larger of that count and the case's own is
    weighed; and ``risk_flags`` its visits raised (dispute, incident), added
    to the case's own. A visit sent with a flag of ``[safety]
    two_collectors`` needs a crew of two at least."""
    statuses = statuses or {}
    broken_promises = broken_promises or {}
    risk_flags = risk_flags or {}
    sent: list[Visit] = []
    results: list[Screened] = []
    for visit in visits:
        case = visit.case
        key = visit.case_key
        if case is not None and broken_promises.get(key, 0) > case.broken_promises:
            case = case.model_copy(update={"broken_promises": min(1000, broken_promises[key])})
        extra = [flag for flag in risk_flags.get(key, []) if case is not None and flag not in case.risk_flags]
        if case is not None and extra:
            case = case.model_copy(update={"risk_flags": [*case.risk_flags, *extra][:20]})
        excluded = exclusion(case, today, config, status=statuses.get(key))
        if excluded is not None:
            results.append(Screened(visit_id=visit.id, case_id=visit.case_id, sent=False,
                                    code=excluded[0], reason=excluded[1]))
            continue
        assert case is not None
        score = score_case(case, today, config)
        if score.total < config.threshold:
            results.append(Screened(visit_id=visit.id, case_id=visit.case_id, sent=False, score=score,
                                    code="below_threshold",
                                    reason=f"score {score.total:g} is below the threshold {config.threshold:g}"))
            continue
        results.append(Screened(visit_id=visit.id, case_id=visit.case_id, sent=True, priority=score.priority,
                                score=score))
        update: dict[str, object] = {"priority": score.priority, "case": case}
        if any(flag in config.safety.two_collectors for flag in case.risk_flags):
            update["crew_size"] = max(2, visit.crew_size)
        sent.append(visit.model_copy(update=update))
    sent.sort(key=lambda v: (-v.priority, v.id))
    return sent, results
