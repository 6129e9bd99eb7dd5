"""Photos and audio of a visit (issue 15, proof of visit):

* ``POST /v1/visits/{visit_id}/attachments?date=``: the bytes as the raw body
  (with their Content-Type) or as the ``file`` part of a multipart form; the
  type is found from the bytes (:func:`app.attachments.sniff`) and must be one
  of ``[attachments] types``, the size at most ``max_bytes`` (413 above);
  the answer gives the SHA-256, who uploaded it and when. The attachment
  enters the case's history (``GET /v1/cases/{id}/history``) with the event
  ``attachment.added``. Idempotent with an ``Idempotency-Key``;
* ``GET /v1/attachments/{attachment_id}``: the bytes, for the roles of
  ``[attachments] readers`` (an agent only for its crew's visits).

Logs name ids, types and sizes only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from typing import Any

from flask import Blueprint, Response, jsonify, request

from app.api.agents import check_own_agent
from app.api.amounts import case_settings
from app.api.case_schemas import AttachmentQuery, AttachmentView
from app.api.cases import apply, crew_has_case
from app.api.common import dump, parse_date, services
from app.api.idempotency import earlier_answer, idempotency_key, replay, request_hash
from app.api.negotiation import acceptable, not_acceptable
from app.api.openapi import doc
from app.api.schemas import ErrorBody, IdempotencyHeaders, TooLargeBody
from app.api.visits import locate_visit
from app.attachments import Blobs, new_record, sniff
from app.auth import Principal, forbidden, principal, roles
from app.cases import CaseState, Change, on_attachment
from app.errors import ApiError, not_found, too_large
from app.store.base import Idempotency, IdempotencyMismatch, utcnow

bp = Blueprint("attachments", __name__)
log = logging.getLogger("doorstep.attachments")

#: Room allowed for a multipart form's own bytes (boundaries, part headers) above ``max_bytes``.
FORM_OVERHEAD = 64 * 1024
#: The form field holding the bytes of a multipart upload.
FILE_FIELD = "file"


def blobs() -> Blobs:
    """Where this app keeps the bytes of attachments."""
    return Blobs(services().store, case_settings().cases.attachments.folder)


def _unsupported(message: str) -> ApiError:
    return ApiError(415, "unsupported_media_type", f"{FILE_FIELD}: {message}",
                    errors=[{"field": FILE_FIELD, "message": message}])


def _uploaded_bytes(max_bytes: int) -> bytes:
    """The uploaded bytes (raw body, or the ``file`` part of a multipart form);
    413 above ``max_bytes``, 422 when there are none."""
    multipart = request.mimetype == "multipart/form-data"
    allowed = max_bytes + (FORM_OVERHEAD if multipart else 0)
    if request.content_length is not None and request.content_length > allowed:
        raise too_large(FILE_FIELD, max_bytes, request.content_length,
                        f"{FILE_FIELD}: larger than the {max_bytes} bytes accepted")
    request.max_content_length = allowed  # a chunked body without a length stops there too
    if multipart:
        upload = request.files.get(FILE_FIELD)
        if upload is None:
            raise ApiError(422, "invalid_request", f"{FILE_FIELD}: required (a multipart part named {FILE_FIELD!r})",
                           errors=[{"field": FILE_FIELD, "message": "required"}])
        content = upload.stream.read(max_bytes + 1)
    else:
        content = request.stream.read(max_bytes + 1)
    if len(content) > max_bytes:
        raise too_large(FILE_FIELD, max_bytes, len(content), f"{FILE_FIELD}: larger than the {max_bytes} bytes accepted")
    if not content:
        raise ApiError(422, "invalid_request", f"{FILE_FIELD}: empty; send the photo or recording",
                       errors=[{"field": FILE_FIELD, "message": "empty"}])
    return content


def _view(record: dict[str, Any]) -> dict[str, Any]:
    return dump(AttachmentView, {**record, "links": {"content": f"/v1/attachments/{record['attachment_id']}"}})


def may_read(who: Principal, record: dict[str, Any]) -> None:
    """403 unless the caller's role is among ``[attachments] readers`` and,
    for an agent, the visit is its crew's (the crew of the stop when it was
    uploaded, or of the case's stop in that date's current plan)."""
    if who.role not in case_settings().cases.attachments.readers:
        raise forbidden(f"the role {who.role!r} may not read attachments (config/cases.toml [attachments] readers)")
    if who.is_agent() and record.get("agent_id") != who.agent_id and \
            not crew_has_case(record["date"], who.agent_id, record["case_id"]):
        raise forbidden("an agent token may only read its own crew's attachments")


@bp.post("/visits/<visit_id>/attachments")
@roles("dispatcher", "agent")
@doc(tags=("outcomes",), query=AttachmentQuery, headers=IdempotencyHeaders,
     ok={"HTTP_201": (AttachmentView, "Stored (or replayed for the same Idempotency-Key and bytes)")},
     errors={"HTTP_409": (ErrorBody, "The Idempotency-Key was used with other bytes"),
             "HTTP_413": (TooLargeBody, "Larger than [attachments] max_bytes (limit.field: file)"),
             "HTTP_415": (ErrorBody, "The bytes are not of a type of [attachments] types (field: file)"),
             "HTTP_422": (ErrorBody, "No bytes, or a bad query parameter: names the field")})
def upload_attachment(visit_id: str):  # type: ignore[no-untyped-def]
    """Attach a photo or an audio recording to a visit (proof of visit).

    Send the bytes as the body with their Content-Type, or as the part
    ``file`` of a multipart/form-data body. The type is read from the bytes
    (JPEG, PNG, WebP, MP3, MP4 audio, Ogg, WAV by default): a Content-Type
    that does not match them is ignored, and other bytes are a 415 naming
    ``file``. Stored with its SHA-256, the uploading token and the time, in
    the store or the configured folder; listed in the case's history. An agent
    token may attach to its own crew's visits only."""
    who = principal()
    key = idempotency_key()
    date = parse_date(request.args.get("date"))
    query = AttachmentQuery.model_validate({"date": date, "label": request.args.get("label")})
    rules = case_settings().cases.attachments
    content = _uploaded_bytes(rules.max_bytes)
    media_type = sniff(content)
    if media_type is None:
        raise _unsupported(f"not a known photo or audio format; accepted: {', '.join(rules.types)}")
    if media_type not in rules.types:
        raise _unsupported(f"{media_type} is not accepted; accepted: {', '.join(rules.types)}")
    digest = hashlib.sha256(content).hexdigest()
    hashed = request_hash({"visit_id": visit_id, "date": date, "label": query.label, "sha256": digest})
    scope = f"attachment:{who.role}:{who.token_id or ''}"
    stored = earlier_answer(scope, key, hashed)
    if stored is not None:  # before the plan is read: a re-plan since does not turn a retry into a 404
        return replay(stored)
    agent_id, visit = locate_visit(date, visit_id)
    check_own_agent(who, agent_id, "visits")
    record = new_record(date=date, visit_id=visit_id, case_id=visit.case_key, agent_id=agent_id,
                        media_type=media_type, content=content, uploaded_by={"role": who.role, "token_id": who.token_id},
                        uploaded_at=utcnow(), label=query.label)
    body = _view(record)
    store = blobs()
    store.save(record, content)

    def change_of(state: CaseState) -> Change:
        return on_attachment(state, record, utcnow())

    def idempotency(_change: Change) -> Idempotency | None:
        return None if key is None else Idempotency(scope, key, hashed, 201, json.dumps(body))

    try:
        _change, replayed, _events = apply(visit.case_key, change_of, idempotency)
    except (IdempotencyMismatch, ApiError):
        store.delete(record["attachment_id"])  # the case never listed it
        raise
    if replayed is not None:  # the same upload, sent twice at once: the first one stays
        store.delete(record["attachment_id"])
        return replay(replayed)
    log.info("attachment %s (%s, %d bytes) for visit %s on %s by %s", record["attachment_id"], media_type,
             len(content), visit_id, date, who.token_id or who.role)
    return jsonify(body), 201


@bp.get("/attachments/<attachment_id>")
@roles("dispatcher", "agent", "system")
@doc(tags=("outcomes",), ok={"HTTP_200": None})
def read_attachment(attachment_id: str):  # type: ignore[no-untyped-def]
    """Download a photo or recording (the bytes, with their type; the header
    ``Repr-Digest`` and ``X-Content-SHA256`` give the SHA-256). For the roles
    of config/cases.toml ``[attachments] readers``; an agent token only for its
    own crew's visits."""
    who = principal()
    store = blobs()
    record = store.record(attachment_id[:100]) if attachment_id.startswith("att_") else None
    if record is None:
        raise not_found(f"no attachment {attachment_id[:100]!r}")
    may_read(who, record)
    if not acceptable(record["content_type"]) and not acceptable("application/octet-stream"):
        raise not_acceptable((record["content_type"],))  # e.g. Accept: image/* for a recording
    content = store.content(attachment_id)
    if content is None:
        raise not_found(f"the bytes of attachment {attachment_id!r} are missing from the store or folder")
    digest = hashlib.sha256(content).digest()
    response = Response(content, mimetype=record["content_type"])
    response.headers["X-Content-SHA256"] = digest.hex()
    response.headers["Repr-Digest"] = f"sha-256=:{base64.b64encode(digest).decode('ascii')}:"
    response.headers["ETag"] = f'"{record["sha256"]}"'
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    log.info("attachment %s read by %s", attachment_id, who.token_id or who.role)
    return response
