"""Who sees amounts: the case settings of the app and the redaction of
amounts (overdue, promised, paid) for roles ``config/cases.toml`` does not
list under ``[visibility] amounts``.

Settings are read once per app: ``CASES_CONFIG`` and ``SCREENING_CONFIG``
(paths; default ``cases.toml`` and ``screening.toml`` of the configuration
folder).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flask import current_app, g, has_request_context

from app.auth import Principal
from app.cases import CasesConfig
from app.cases import load_config as load_cases_config
from solver.model import CaseInfo
from solver.screening import ScreeningConfig
from solver.screening import load_config as load_screening_config

#: Keys holding amounts in case data, promises, payments and history entries.
AMOUNT_KEYS = ("overdue_amount", "amount", "paid", "paid_total")


@dataclass(frozen=True)
class CaseSettings:
    cases: CasesConfig
    screening: ScreeningConfig


def case_settings() -> CaseSettings:
    """The app's case and screening configuration (read on first use)."""
    settings: CaseSettings | None = current_app.extensions.get("doorstep_cases")
    if settings is None:
        settings = CaseSettings(load_cases_config(current_app.config.get("CASES_CONFIG")),
                                load_screening_config(current_app.config.get("SCREENING_CONFIG")))
        current_app.extensions["doorstep_cases"] = settings
    return settings


def may_see_amounts(who: Principal | None) -> bool:
    """Whether the caller's role is listed under ``[visibility] amounts``."""
    return who is not None and who.role in case_settings().cases.visibility.amounts


def _caller() -> Principal | None:
    if not has_request_context():
        return None
    return getattr(g, "doorstep_principal", None)


def case_for_caller(case: CaseInfo | None) -> dict[str, Any] | None:
    """A visit's case data as the current caller may see it (amounts hidden
    from roles without the right; hidden outside a request)."""
    if case is None:
        return None
    data = case.model_dump(mode="json")
    if not may_see_amounts(_caller()):
        data["overdue_amount"] = None
    return data


def hide_amounts(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with every amount key set to None (in place; returned)."""
    for key in AMOUNT_KEYS:
        if key in data:
            data[key] = None
    return data


def redact_visits(visits: list[dict[str, Any]], who: Principal | None = None) -> None:
    """Hide the case amounts of visits (JSON) from a role without the right
    (the current caller unless ``who`` is given)."""
    if may_see_amounts(who if who is not None else _caller()):
        return
    for visit in visits:
        case = visit.get("case")
        if isinstance(case, dict):
            case["overdue_amount"] = None


def events_see_amounts() -> bool:
    """Whether events carry amounts: they go to other systems (webhooks, the
    event log, the Redis stream), so only when ``[visibility] amounts`` lists
    ``system``."""
    return "system" in case_settings().cases.visibility.amounts


def event_data(data: dict[str, Any]) -> dict[str, Any]:
    """An event's ``data`` with its amounts hidden (None) unless events see
    them (:func:`events_see_amounts`); a copy, the argument is left as is."""
    return dict(data) if events_see_amounts() else hide_amounts(dict(data))


def outcome_for(body: dict[str, Any], who: Principal | None = None) -> dict[str, Any]:
    """An outcome answer (:class:`~app.api.schemas.OutcomeView` JSON) as the
    caller (or ``who``) may see it: without the right, the amount, the
    instalment amounts and the overdue amount of follow-up visits are None.
    A copy; the stored record keeps them."""
    if may_see_amounts(who if who is not None else _caller()):
        return body
    shown: dict[str, Any] = json.loads(json.dumps(body))
    shown["amount"] = None
    for instalment in shown.get("instalments") or []:
        if isinstance(instalment, dict):
            instalment["amount"] = None
    redact_visits([f["visit"] for f in shown.get("followups") or [] if isinstance(f.get("visit"), dict)],
                  who if who is not None else _caller())
    return shown
