"""Errors as JSON: every error the service returns is a JSON object
``{"error": <code>, "message": <text>, ["errors": [{"field", "message"}]]}``,
never an HTML page or a traceback.

Logs name request paths, ids and counts only; exception messages (which can
quote the input, e.g. a borrower's phone) stay out of them.

When the store cannot answer — Redis down or hung past the client's socket
timeout (``redis.ConnectionError`` / ``TimeoutError``), SQLite still locked
after its busy timeout — a request answers 503 ``store_unavailable`` with
``Retry-After``: nothing was acknowledged, and a write may be retried (with
its ``Idempotency-Key`` where the endpoint takes one).

Answers never echo the input at length: a quoted value longer than
:data:`ECHO_LIMIT` characters in a message is cut with "…" (see :func:`clip`),
and a whole message is cut at :data:`MESSAGE_LIMIT` characters, whatever view
raised it (:meth:`ApiError.body`).
"""

from __future__ import annotations

import logging
import re
import sqlite3
import traceback
from collections import Counter
from typing import Any

from flask import Flask, jsonify, request
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from werkzeug.exceptions import HTTPException

from app.store.base import IdempotencyMismatch

log = logging.getLogger("doorstep.app")

#: ``Retry-After`` (seconds) of a 503 when the store is unavailable.
STORE_RETRY_AFTER_S = 5

#: Longest piece of the caller's input quoted back in an error message.
ECHO_LIMIT = 80
#: Longest error message.
MESSAGE_LIMIT = 1000
#: A quoted value in a message ('…' or "…", as repr() writes them).
_LONG = ECHO_LIMIT + 1
_QUOTED = re.compile(rf"'((?:[^'\\\n]|\\.){{{_LONG},}})'|\"((?:[^\"\\\n]|\\.){{{_LONG},}})\"")


def clip(text: str, limit: int = ECHO_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, ending with "…" when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def tidy_message(message: str) -> str:
    """A message with every long quoted value clipped and the whole capped."""

    def _cut(match: re.Match[str]) -> str:
        quote = "'" if match.group(1) is not None else '"'
        return quote + clip(match.group(1) if match.group(1) is not None else match.group(2)) + quote

    return clip(_QUOTED.sub(_cut, message), MESSAGE_LIMIT)


class ApiError(Exception):
    """An error answered as JSON with a status code."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        *,
        errors: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.errors = errors
        self.headers: dict[str, str] = {}
        self.extra: dict[str, Any] = {}

    def body(self) -> dict[str, Any]:
        """The JSON answer, with echoed input clipped (:func:`tidy_message`)."""
        body: dict[str, Any] = {"error": self.error, "message": tidy_message(self.message)}
        if self.errors is not None:
            body["errors"] = [
                {"field": clip(str(e.get("field", "")), 200), "message": tidy_message(str(e.get("message", "")))}
                for e in self.errors
            ]
        body.update(self.extra)
        return body


def bad_request(field: str, message: str) -> ApiError:
    """400 naming the query/path parameter at fault."""
    return ApiError(400, "bad_request", f"{field}: {message}", errors=[{"field": field, "message": message}])


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


def too_large(field: str, maximum: float, got: float, message: str) -> ApiError:
    """413: the request is bigger than a limit of the service;
    ``limit`` names it: ``{"field", "max", "got"}``."""
    error = ApiError(413, "too_large", message)
    error.extra["limit"] = {"field": field, "max": maximum, "got": got}
    return error


def conflict(error: str, message: str) -> ApiError:
    """409: the request is fine but the state does not allow it (the reason says why)."""
    return ApiError(409, error, message)


def key_reused() -> ApiError:
    """409: the Idempotency-Key came before with another request."""
    return conflict("idempotency_key_reused", "this Idempotency-Key was used with another request body")


# --------------------------------------------------------------------------- #
# pydantic → field errors
# --------------------------------------------------------------------------- #
_PATH = r"[A-Za-z_]\w*(?:\.\w+)*"
#: A model validator joins its findings as "visits.3.skills: ...; agents: ...".
_PART_SPLIT = re.compile(rf"; (?={_PATH}: )")
_PART = re.compile(rf"^({_PATH}): (.+)$", re.DOTALL)
#: Names pydantic puts in ``loc`` for the member of a union that failed.
_UNION_TAGS = frozenset({"time", "datetime", "date", "int", "float", "str", "bool"})


def _is_tag(part: Any) -> bool:
    return isinstance(part, str) and (part in _UNION_TAGS or "[" in part)


def _field(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def validation_errors(exc: ValidationError) -> list[dict[str, str]]:
    """``[{"field": "visits.3.time_windows.0.end", "message": ...}]`` from pydantic.

    * ``loc`` becomes a dotted field path;
    * a model validator's message made of ``path: reason`` parts separated by
      ``"; "`` becomes one error per part, the path appended to the model's loc;
    * the failed branches of a union (``"09:00"`` is a time *or* a datetime)
      become one error for the field.
    """
    raw = exc.errors(include_url=False, include_input=False)
    # A union's failed branches share a loc but for a last part naming the branch.
    branches = Counter(tuple(e["loc"][:-1]) for e in raw if len(e["loc"]) > 1 and _is_tag(e["loc"][-1]))
    out: list[dict[str, str]] = []
    index: dict[str, int] = {}
    for err in raw:
        loc = tuple(err["loc"])
        message = str(err["msg"])
        if err["type"] == "value_error" and message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        union = len(loc) > 1 and _is_tag(loc[-1]) and branches[loc[:-1]] > 1
        if union:
            loc = loc[:-1]
        parts = _PART_SPLIT.split(message) if err["type"] == "value_error" else [message]
        for part in parts:
            match = _PART.match(part) if err["type"] == "value_error" else None
            if match:
                field, text = _field(loc + tuple(match.group(1).split("."))), match.group(2)
            else:
                field, text = _field(loc), part
            if union and field in index:  # one error per field for a union's branches
                previous = out[index[field]]
                if text not in previous["message"]:
                    previous["message"] += f"; or {text}"
                continue
            index.setdefault(field, len(out))
            out.append({"field": field, "message": text})
    return out


def validation_error(exc: ValidationError) -> ApiError:
    errors = validation_errors(exc)
    return ApiError(422, "validation_error", f"{len(errors)} validation error(s)", errors=errors)


# --------------------------------------------------------------------------- #
# Logging without personal data
# --------------------------------------------------------------------------- #
def describe_exception(exc: BaseException) -> str:
    """The exception's type and traceback frames, without its message."""
    frames = "".join(traceback.format_tb(exc.__traceback__))
    return f"{type(exc).__module__}.{type(exc).__qualname__}\n{frames}".rstrip()


# --------------------------------------------------------------------------- #
# Handlers
# --------------------------------------------------------------------------- #
def _snake(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):  # type: ignore[no-untyped-def]
        return jsonify(exc.body()), exc.status, exc.headers

    @app.errorhandler(ValidationError)
    def _validation(exc: ValidationError):  # type: ignore[no-untyped-def]
        api = validation_error(exc)
        return jsonify(api.body()), api.status

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):  # type: ignore[no-untyped-def]
        response = jsonify({"error": _snake(exc.name or "error"),
                            "message": tidy_message(str(exc.description or exc.name))})
        response.status_code = exc.code or 500
        allowed = getattr(exc, "valid_methods", None)  # MethodNotAllowed's
        if exc.code == 405 and allowed:
            response.headers["Allow"] = ", ".join(allowed)
        return response

    @app.errorhandler(IdempotencyMismatch)
    def _key_reused(_exc: IdempotencyMismatch):  # type: ignore[no-untyped-def]
        # two requests with one key raced: the store kept the first
        api = key_reused()
        return jsonify(api.body()), api.status

    def _store_unavailable(exc: Exception):  # type: ignore[no-untyped-def]
        log.warning("store unavailable on %s %s: %s", request.method, request.path, type(exc).__name__)
        body = {"error": "store_unavailable",
                "message": "the data store is not answering; nothing was saved by this request, retry later"}
        return jsonify(body), 503, {"Retry-After": str(STORE_RETRY_AFTER_S)}

    app.register_error_handler(RedisConnectionError, _store_unavailable)
    app.register_error_handler(RedisTimeoutError, _store_unavailable)

    @app.errorhandler(sqlite3.OperationalError)
    def _sqlite(exc: sqlite3.OperationalError):  # type: ignore[no-untyped-def]
        text = str(exc).lower()
        if "locked" in text or "busy" in text:
            return _store_unavailable(exc)
        return _unexpected(exc)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):  # type: ignore[no-untyped-def]
        log.error("unhandled error on %s %s: %s", request.method, request.path, describe_exception(exc))
        return jsonify({"error": "internal_error", "message": "internal server error"}), 500
