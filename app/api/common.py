"""Request parsing shared by the v1 blueprints."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from typing import Any, TypeVar

from flask import current_app, request
from pydantic import BaseModel

from app.errors import ApiError, bad_request, not_found
from solver.model import Plan, Problem

T = TypeVar("T", bound=BaseModel)

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def services() -> Any:
    """The app's :class:`app.Services` (store, job runner, travel)."""
    return current_app.extensions["doorstep"]


def parse_date(value: str | None, field: str = "date") -> str:
    """A ``YYYY-MM-DD`` date, normalised; 400 naming ``field`` otherwise."""
    if value is None or value == "":
        raise bad_request(field, "required, as YYYY-MM-DD")
    if not _DATE.match(value):
        raise bad_request(field, f"{value[:40]!r} is not a date as YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise bad_request(field, f"{value!r} is not a valid calendar date") from None


def query_int(name: str, minimum: int = 1) -> int | None:
    value = request.args.get(name)
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise bad_request(name, f"{value[:40]!r} is not an integer") from None
    if number < minimum:
        raise bad_request(name, f"must be at least {minimum}")
    return number


def query_seconds(name: str, maximum: float) -> float | None:
    """A number of seconds ``0 < S <= maximum`` from the query string."""
    value = request.args.get(name)
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise bad_request(name, f"{value[:40]!r} is not a number of seconds") from None
    if not math.isfinite(seconds) or not 0 < seconds <= maximum:
        raise bad_request(name, f"must be more than 0 and at most {maximum:g} seconds")
    return seconds


def _reject_constant(name: str) -> Any:
    # NaN / Infinity are not JSON; json.loads would accept them.
    raise json.JSONDecodeError(f"{name} is not valid JSON", name, 0)


def json_object_body() -> dict[str, Any]:
    """The request body parsed as a JSON object; 400 otherwise."""
    raw = request.get_data(cache=False)
    if not raw.strip():
        raise ApiError(400, "invalid_json", "the request body is empty; send a JSON object")
    try:
        body = json.loads(raw, parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise ApiError(400, "invalid_json", f"the request body is not valid JSON{where}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", f"the request body must be a JSON object, not {type(body).__name__}")
    return body


def parse_body(model: type[T]) -> T:
    """The JSON object body validated as ``model`` (400 / 422 naming the field)."""
    return model.model_validate(json_object_body())


def current_day(date: str) -> tuple[int, Plan, Problem]:
    """The date's current version, plan and problem; 404 when there is no plan."""
    store = services().store
    stored = store.get_plan(date)
    if stored is None:
        raise not_found(f"no plan for {date}")
    problem_json = store.get_problem(date, stored.version)
    if problem_json is None:  # published together with the plan: should not happen
        raise RuntimeError(f"plan {date} v{stored.version} has no problem stored")
    return stored.version, Plan.model_validate_json(stored.plan_json), Problem.model_validate_json(problem_json)


def dump(model: type[BaseModel], data: Any) -> dict[str, Any]:
    """``data`` through the response model (the OpenAPI contract) as JSON."""
    return model.model_validate(data).model_dump(mode="json")
