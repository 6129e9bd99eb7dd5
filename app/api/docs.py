"""GET /v1/openapi.json (the contract) and GET /v1/docs (offline HTML page)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from app.api.openapi import doc, docs_page, openapi_document

bp = Blueprint("docs", __name__)


@bp.get("/openapi.json")
@doc(tags=("docs",), ok={"HTTP_200": None}, public=True)
def openapi_json():  # type: ignore[no-untyped-def]
    """The OpenAPI 3.1 document of this API, generated from the pydantic models."""
    return jsonify(openapi_document(current_app))


@bp.get("/docs")
@doc(tags=("docs",), ok={"HTTP_200": None}, public=True)
def docs_html():  # type: ignore[no-untyped-def]
    """A self-contained HTML page listing the operations (works offline)."""
    return Response(docs_page(openapi_document(current_app)), mimetype="text/html")
