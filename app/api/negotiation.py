"""Content negotiation for the v1 API: the ``Accept`` header is honoured.

Every v1 operation answers JSON, but for the itinerary (JSON, iCalendar,
GeoJSON) and the docs page (HTML). A request whose ``Accept`` header allows
none of what the operation can send is answered 406 with a JSON error
listing what is available. A missing or empty ``Accept``, ``*/*`` and
``application/*`` keep working everywhere; a browser's usual header
(``text/html,…,*/*;q=0.8``) does too. Error answers are JSON whatever the
``Accept`` says (they are not negotiated).

Automatic ``OPTIONS`` answers become ``204 No Content`` with the ``Allow``
header (instead of an empty ``text/html`` page).
"""

from __future__ import annotations

from flask import Flask, Response, request

from app.errors import ApiError

JSON = "application/json"
CALENDAR = "text/calendar"
GEOJSON = "application/geo+json"
HTML = "text/html"

#: What each operation (Flask endpoint) can send; JSON for any other.
OFFERS: dict[str, tuple[str, ...]] = {
    "agents.get_itinerary": (JSON, CALENDAR, GEOJSON),
    "docs.docs_html": (HTML,),
    "reports.get_report": (JSON, "text/csv"),

    # the bytes of a photo or recording, with the type found on upload (config/cases.toml [attachments] types)
    "attachments.read_attachment": ("image/jpeg", "image/png", "image/webp", "audio/mpeg", "audio/mp4", "audio/ogg",
                                    "audio/wav", "application/octet-stream"),
}
DEFAULT_OFFER: tuple[str, ...] = (JSON,)


def offers(endpoint: str | None) -> tuple[str, ...]:
    """The media types ``endpoint`` can answer with."""
    return OFFERS.get(endpoint or "", DEFAULT_OFFER)


def has_accept() -> bool:
    """Whether the request says what it accepts (an empty header says nothing)."""
    return bool(request.headers.get("Accept", "").strip())


def acceptable(mimetype: str) -> bool:
    """Whether the request's ``Accept`` allows ``mimetype``."""
    return not has_accept() or request.accept_mimetypes.quality(mimetype) > 0


def not_acceptable(available: tuple[str, ...]) -> ApiError:
    """406 listing the media types that are available."""
    listed = ", ".join(available)
    return ApiError(406, "not_acceptable", f"Accept allows none of the available media types: {listed}",
                    errors=[{"field": "Accept", "message": f"available: {listed}"}])


def preferred(available: tuple[str, ...]) -> str:
    """The media type to answer with: the first of ``available`` unless the
    ``Accept`` header rates another strictly higher; 406 when it allows none."""
    if not has_accept():
        return available[0]
    accept = request.accept_mimetypes
    best = available[0] if accept.quality(available[0]) > 0 else None
    for mimetype in available[1:]:
        if accept.quality(mimetype) > (accept.quality(best) if best else 0):
            best = mimetype
    if best is None:
        raise not_acceptable(available)
    return best


def install(app: Flask) -> None:
    """406 for v1 requests that accept nothing the operation sends; 204 for OPTIONS."""

    @app.before_request
    def _negotiate() -> None:
        if request.endpoint is None or not request.path.startswith("/v1/") or request.method == "OPTIONS":
            return
        available = offers(request.endpoint)
        if has_accept() and request.accept_mimetypes.best_match(available) is None:
            raise not_acceptable(available)

    @app.after_request
    def _options(response: Response) -> Response:
        if request.method == "OPTIONS" and response.status_code == 200 and not response.get_data():
            response.status_code = 204
            response.headers.pop("Content-Type", None)
        return response
