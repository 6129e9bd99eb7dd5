"""Jurisdiction rule sets: visiting hours, crew size, contact frequency, workplace.

A rule set is a TOML file in ``config/rules/`` named after the set (e.g.
``cn-cba-2026.toml``)::

    description = "..."
    visiting_hours = { start = "08:00", end = "22:00" }   # borrower's local time
    min_crew_size_home = 2                                  # people for a home visit
    work_contact = true                                     # false: never at work
    [frequency]
    max_visits = 2                                          # field visits per case ...
    period_days = 7                                         # ... in this many days

Every file starts with a ``[source]`` table citing where its rules come from
(name of the regulation or guideline, article, date); a refusal names the rule
set and the rule (:func:`cite`).

Compliance is on by default: ``Options.rule_set`` defaults to ``[planning]
rule_set`` of ``config/defaults.toml`` (``cn-cba-2026``; environment variable
``DOORSTEP_PLANNING_RULE_SET``), and only the explicit name ``"none"`` plans
without rules. The solver applies the set in force: visiting hours are
intersected with each address's windows in the borrower's time zone, home
visits need a crew of at least the minimum size, work addresses are dropped
when work contact is not allowed, and a visit that would exceed the frequency
limit (counting ``Problem.history``: the caller's contacts plus, in the
service, the visits recorded through outcomes) is not planned.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from solver.config import config_dir, defaults

if TYPE_CHECKING:
    from solver.model import Contact


class VisitingHours(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: dt.time
    end: dt.time


class FrequencyLimit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_visits: int = Field(ge=1)
    period_days: int = Field(ge=1)


#: The rule-set name that turns rules off (it must be named explicitly).
NO_RULES = "none"
#: The rule set in force when neither the request nor the configuration names one.
BUILTIN_DEFAULT = "cn-cba-2026"


class Source(BaseModel):
    """Where a rule set's rules come from."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, description="Regulation or guideline")
    articles: dict[str, str] = Field(
        default_factory=dict, description="Rule (visiting_hours, frequency ...) -> article or section"
    )
    date: str = Field(min_length=4, description="Date (or year) of the text cited")
    url: str = ""


class RuleSet(BaseModel):
    """One jurisdiction's rules, with the source they cite."""

    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    source: Source
    visiting_hours: VisitingHours | None = None
    min_crew_size_home: int = Field(1, ge=1)
    work_contact: bool = True
    frequency: FrequencyLimit | None = None


def cite(rules: RuleSet, rule: str) -> str:
    """``rule set NAME (SOURCE, ARTICLE, DATE)``: how a refusal names ``rule``."""
    article = rules.source.articles.get(rule)
    parts = [rules.source.name, *([article] if article else []), rules.source.date]
    return f"rule set {rules.name}, {rule} ({', '.join(parts)})"


def default_rule_set() -> str:
    """The rule set planned with when a request names none: the environment
    variable ``DOORSTEP_PLANNING_RULE_SET``, else ``[planning] rule_set`` of
    the configuration, else ``cn-cba-2026``."""
    value = os.environ.get("DOORSTEP_PLANNING_RULE_SET", "").strip()
    if value:
        return value
    return str(defaults().get("planning", {}).get("rule_set") or BUILTIN_DEFAULT)


def active_rule_set(name: str | None) -> RuleSet | None:
    """The rule set a problem applies: ``None`` only for the explicit ``"none"``."""
    name = name or default_rule_set()
    return None if name == NO_RULES else load_rule_set(name)


def rules_dir() -> Path:
    return config_dir() / "rules"


def available_rule_sets() -> list[str]:
    """Names of the rule sets in ``config/rules/``."""
    folder = rules_dir()
    return sorted(p.stem for p in folder.glob("*.toml")) if folder.exists() else []


@functools.cache
def _load(path: str, name: str) -> RuleSet:
    with open(path, "rb") as handle:
        return RuleSet.model_validate({"name": name, **tomllib.load(handle)})


def load_rule_set(name: str) -> RuleSet:
    """The rule set ``name``; ``KeyError`` naming the known sets if unknown."""
    path = rules_dir() / f"{name}.toml"
    if not path.exists():
        raise KeyError(f"unknown rule set {name!r}; known: {', '.join(available_rule_sets()) or 'none'}")
    return _load(str(path), name)


def visiting_interval(
    rules: RuleSet, date: dt.date, zone: dt.tzinfo, seconds_of: Callable[[dt.datetime], int]
) -> tuple[int, int] | None:
    """The rule's visiting hours on ``date`` in the borrower's ``zone``, in the
    problem's seconds (via ``seconds_of``, e.g. ``Problem.seconds``)."""
    hours = rules.visiting_hours
    if hours is None:
        return None
    start = dt.datetime.combine(date, hours.start, tzinfo=zone)
    end = dt.datetime.combine(date, hours.end, tzinfo=zone)
    return seconds_of(start), seconds_of(end)


def contacts_in_period(
    history: Iterable[Contact], case_key: str, date: dt.date, period_days: int, zone: dt.tzinfo
) -> int:
    """Field visits to ``case_key`` in the ``period_days`` days ending with
    ``date`` (today's planned visit not included)."""
    first = date - dt.timedelta(days=period_days - 1)
    count = 0
    for contact in history:
        if contact.case_key != case_key or contact.kind != "visit":
            continue
        day = contact.at.astimezone(zone).date()
        if first <= day <= date:
            count += 1
    return count
