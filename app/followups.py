"""Follow-up rules (``config/followups.toml``): which recorded results create
a follow-up visit for a later date, or a flag.

A follow-up visit is the original visit with a new id, its priority moved by
``priority_delta``, no appointment, not required, not pinned, and the rule's
purpose; it is stored for its date and listed by ``GET /v1/followups?date=``,
ready to be sent in that day's ``POST /v1/plans``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from solver.config import load_settings
from solver.model import Visit

RESULTS = ("paid", "promise_to_pay", "plan_agreed", "refused", "not_at_home", "wrong_address",
           "dispute", "moved", "third_party", "incident")
FILENAME = "followups.toml"


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    action: Literal["visit", "flag"]
    from_: Literal["visit_date", "promised_date"] = Field("visit_date", alias="from")
    days: int = Field(1, ge=0, le=366)
    priority_delta: int = Field(0, ge=-100, le=100)
    purpose: str | None = Field(None, max_length=200)
    flag: str | None = Field(None, max_length=100)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.action == "visit" and self.days < 1:
            raise ValueError("days: a follow-up visit is at least 1 day later")
        if self.action == "flag" and not self.flag:
            raise ValueError("flag: required when action is flag")
        return self


class Rules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    paid: Rule | None = None
    promise_to_pay: Rule | None = None
    plan_agreed: Rule | None = None
    refused: Rule | None = None
    not_at_home: Rule | None = None
    wrong_address: Rule | None = None
    dispute: Rule | None = None
    moved: Rule | None = None
    third_party: Rule | None = None
    incident: Rule | None = None

    @model_validator(mode="after")
    def _promised_date_only_for_promises(self) -> Self:
        for name in RESULTS:
            rule = getattr(self, name)
            if rule is not None and rule.from_ == "promised_date" and name != "promise_to_pay":
                raise ValueError(f"{name}.from: promised_date is only known for promise_to_pay")
        return self

    def for_result(self, result: str | None) -> Rule | None:
        return getattr(self, result) if result in RESULTS else None


def load_rules(path: str | Path | None = None) -> Rules:
    """The rules in ``path`` (default: ``followups.toml`` of the configuration
    folder; no rules when that file does not exist). A bad file raises
    ValueError naming the key."""
    return load_settings(Rules, FILENAME, path)


def followups_for(
    rules: Rules,
    *,
    visit: Visit,
    date: dt.date,
    result: str | None,
    promised_date: dt.date | None,
    source: dict[str, Any],
    created_at: str,
) -> list[dict[str, Any]]:
    """The follow-up records (JSON-able dicts) a result creates."""
    rule = rules.for_result(result)
    if rule is None:
        return []
    base = {"rule": result, "source": source, "created_at": created_at}
    if rule.action == "flag":
        return [{"id": f"fu-{uuid.uuid4().hex[:12]}", "kind": "flag", "date": date.isoformat(), "flag": rule.flag,
                 "priority": None, "purpose": None, "visit": None, **base}]
    start = promised_date if rule.from_ == "promised_date" and promised_date is not None else date
    due = start + dt.timedelta(days=rule.days)
    priority = max(0, min(100, visit.priority + rule.priority_delta))
    purpose = rule.purpose or visit.purpose
    new_visit = visit.model_copy(
        update={
            "id": f"{visit.id[:80]}-fu-{due.strftime('%Y%m%d')}",
            "priority": priority,
            "required": False,
            "appointment": None,
            "pinned_agent": None,
            "purpose": purpose,
        }
    )
    return [{"id": f"fu-{uuid.uuid4().hex[:12]}", "kind": "visit", "date": due.isoformat(), "flag": None,
             "priority": priority, "purpose": purpose, "visit": new_visit.model_dump(mode="json"), **base}]
