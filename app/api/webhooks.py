"""Webhook delivery state: ``GET /v1/webhooks/deliveries`` (newest first,
``?status=pending|delivered|dead``) and ``POST
/v1/webhooks/deliveries/{id}/retry`` (deliver a dead one again).

A delivery shows the event id and type, attempts, the last answer and the
history of attempts, never the event body (read it at ``GET /v1/events``), so
``system`` tokens may see it too.
"""

from __future__ import annotations

import time

from flask import Blueprint, jsonify, request

from app.api.common import dump, services
from app.api.openapi import doc
from app.api.schemas import DeliveriesQuery, DeliveryList, DeliveryView, ErrorBody
from app.auth import roles
from app.errors import conflict, not_found, validation_error
from app.webhooks import delivery_view

bp = Blueprint("webhooks", __name__)


@bp.get("/webhooks/deliveries")
@roles("dispatcher", "system")
@doc(tags=("events",), query=DeliveriesQuery, ok={"HTTP_200": DeliveryList})
def list_deliveries():  # type: ignore[no-untyped-def]
    """Webhook deliveries, newest first: status, attempts, last answer, history."""
    from pydantic import ValidationError

    try:
        query = DeliveriesQuery.model_validate(request.args.to_dict())
    except ValidationError as exc:
        raise validation_error(exc) from None
    deliveries = services().store.list_deliveries(query.status, query.limit)
    return jsonify(dump(DeliveryList, {"deliveries": [delivery_view(d) for d in deliveries]}))


@bp.post("/webhooks/deliveries/<delivery_id>/retry")
@roles("dispatcher", "system")
@doc(tags=("events",), ok={"HTTP_200": DeliveryView},
     errors={"HTTP_409": (ErrorBody, "The delivery is not dead (pending or delivered)")})
def retry_delivery(delivery_id: str):  # type: ignore[no-untyped-def]
    """Deliver a dead delivery again, now, with a fresh attempt budget."""
    store = services().store
    retried = store.retry_delivery(delivery_id, time.time())
    if retried is None:
        current = store.get_delivery(delivery_id)
        if current is None:
            raise not_found(f"no delivery {delivery_id[:40]!r}")
        raise conflict("not_dead", f"the delivery is {current.status}; only a dead one can be retried")
    services().webhook.send([retried])  # wake this process's deliverer, if any
    return jsonify(dump(DeliveryView, delivery_view(retried)))
