"""Request parsing shared by the v1 blueprints."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
from flask import current_app, request
from pydantic import BaseModel, ValidationError

from app.errors import ApiError, bad_request, not_found, validation_errors
from solver.model import Plan, Problem, Visit

T = TypeVar("T", bound=BaseModel)

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

#: Deepest nesting of arrays and objects accepted in a JSON body (a Problem
#: needs 6 levels; the limit keeps the parser and the validators off deep recursion).
MAX_JSON_DEPTH = 32
#: Longest integer literal accepted in a JSON body (digits); longer is no id, count or time.
MAX_INT_DIGITS = 30
#: Largest integer accepted in a query string (plan versions, limits): JSON's safe integers.
MAX_QUERY_INT = 2**53 - 1
#: A JSON string literal (its brackets do not count towards the depth).
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')  # unrolled: 3x faster on large bodies
_OPEN = np.zeros(256, dtype=np.int8)
_OPEN[[ord("["), ord("{")]] = 1
_OPEN[[ord("]"), ord("}")]] = -1


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


def query_int(name: str, minimum: int = 1, maximum: int = MAX_QUERY_INT, *, beyond_is_missing: bool = False
              ) -> int | None:
    """An integer ``minimum <= N <= maximum`` from the query string; 400
    naming ``name`` otherwise, so that no number beyond 64 bits reaches the
    store (SQLite and Redis keep 64-bit integers). With ``beyond_is_missing``
    (an id such as a plan version) a number above ``maximum`` is a 404: no
    such thing exists."""
    value = request.args.get(name)
    if value is None:
        return None
    value = value.strip()
    if not re.fullmatch(r"[+-]?\d{1,40}", value):
        raise bad_request(name, f"{value[:40]!r} is not an integer")
    number = int(value)
    if number < minimum:
        raise bad_request(name, f"must be at least {minimum}")
    if number > maximum:
        if beyond_is_missing:
            raise not_found(f"{name} {clip_number(value)} does not exist (at most {maximum})")
        raise bad_request(name, f"must be at most {maximum}")
    return number


def clip_number(value: str) -> str:
    return value if len(value) <= 20 else value[:19] + "…"


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


class _NumberTooLarge(ValueError):
    pass


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _NumberTooLarge(text)
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 overflows to infinity
        raise _NumberTooLarge(text)
    return value


def json_depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in a JSON text (brackets in
    strings do not count). Linear and without recursion, so it can run before
    the parser."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_JSON_DEPTH:
        return min(raw.count(b"[") + raw.count(b"{"), MAX_JSON_DEPTH)
    outside = _JSON_STRING.sub(b"", raw)
    steps = _OPEN[np.frombuffer(outside, dtype=np.uint8)]
    return int(np.cumsum(steps, dtype=np.int64).max(initial=0))


#: Media types a JSON body may be sent as (no Content-Type is read as JSON too).
def _is_json_type(mimetype: str) -> bool:
    return mimetype in ("", "application/json") or mimetype.endswith("+json")


def json_object_body() -> dict[str, Any]:
    """The request body parsed as a JSON object.

    415 when the Content-Type is not JSON; 400 when the body is empty, not
    JSON, nested deeper than :data:`MAX_JSON_DEPTH`, holds a number too
    large (more than :data:`MAX_INT_DIGITS` digits, or beyond a double), or
    is not an object. A duplicate key keeps its last value (as JSON parsers do).
    """
    if not _is_json_type(request.mimetype):
        raise ApiError(415, "unsupported_media_type",
                       f"send the body as application/json, not {request.mimetype[:60]}")
    raw = request.get_data(cache=False)
    if not raw.strip():
        raise ApiError(400, "invalid_json", "the request body is empty; send a JSON object")
    if json_depth(raw) > MAX_JSON_DEPTH:
        raise ApiError(400, "invalid_json", f"the request body is nested more than {MAX_JSON_DEPTH} levels deep")
    try:
        body = json.loads(raw, parse_constant=_reject_constant, parse_int=_parse_int, parse_float=_parse_float)
    except _NumberTooLarge:
        raise ApiError(400, "invalid_json", "the request body holds a number too large "
                                            f"(at most {MAX_INT_DIGITS} digits, finite)") from None
    except RecursionError:  # belt and braces: json_depth caught it before
        raise ApiError(400, "invalid_json", f"the request body is nested more than {MAX_JSON_DEPTH} levels deep") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise ApiError(400, "invalid_json", f"the request body is not valid JSON{where}") from None
    except ValueError:  # e.g. an integer literal beyond Python's digit limit
        raise ApiError(400, "invalid_json", "the request body is not valid JSON") from None
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


_VISIT_FIELD = re.compile(r"^visits\.(\d+)((?:\..*)?)$")


def new_visit_errors(problem: Problem, visits: Sequence[Visit], name: Callable[[int], str]) -> list[dict[str, str]]:
    """What the day's problem refuses in new visits (offers, bookings, a
    re-plan's ``added``), as field errors named ``name(i)`` + the sub-field:
    unknown skills, an unknown pinned crew, windows or appointments off the
    plan's day. Checked up front, so that the request answers 422 instead of
    a job failing later."""
    if not visits:
        return []
    data = problem.model_dump()
    data["visits"] = [visit.model_dump() for visit in visits]
    try:
        Problem.model_validate(data)
    except ValidationError as exc:
        errors = []
        for error in validation_errors(exc):
            match = _VISIT_FIELD.match(error["field"])
            if match:
                errors.append({"field": name(int(match.group(1))) + match.group(2), "message": error["message"]})
            elif error["field"] != "visits":  # duplicate ids among the new visits are checked by the caller
                errors.append(error)
        return errors
    return []
