"""The visit record of an outcome (issue 15): who was met, attitude,
willingness and ability to pay, hardship, a new address or phone, and the
proof of visit — the phone's position on arrival or completion, checked
against the stop's point (``config/cases.toml`` ``[proof] geo_mismatch_m``,
default 200 m).

:func:`record_fields` splits what an outcome carries into what its answer
shows, what is only kept with the stored record (notes, the new address and
phone: personal data) and what its event may carry (categories, scores and
the mismatch flag: no personal data).
"""

from __future__ import annotations

from typing import Any

from app.api.amounts import case_settings
from app.api.common import current_day
from app.api.schemas import OutcomeRequest
from solver.geo.coords import to_wgs84
from solver.model import Location, Visit
from solver.travel import haversine_m

#: Kept with the stored outcome only: never in answers to other calls, events or logs.
PRIVATE_FIELDS = ("hardship_note", "income_note", "expense_note", "new_address", "new_phone")
#: Categories and scores: in the answer and the ``outcome.recorded`` event.
SHARED_FIELDS = ("met", "attitude", "willingness", "ability", "hardship")


def stop_point(date: str, visit: Visit) -> Location | None:
    """The WGS-84 point of the visit's stop in the date's current plan, else
    of the visit's first address with a point; None when there is none."""
    _version, plan, _problem = current_day(date)
    for route in plan.routes:
        for stop in route.stops:
            if stop.visit_id == visit.id:
                return stop.location
    for address in visit.addresses:
        if address.location is not None:
            return to_wgs84(address.location)
    return None


def record_fields(outcome: OutcomeRequest, date: str, visit: Visit) -> tuple[dict[str, Any], dict[str, Any],
                                                                               dict[str, Any]]:
    """(fields of the answer, fields kept only with the stored record, fields of the event)."""
    shared = {name: getattr(outcome, name) for name in SHARED_FIELDS}
    private = {name: getattr(outcome, name) for name in PRIVATE_FIELDS}
    contact_updated = outcome.new_address is not None or outcome.new_phone is not None
    distance: float | None = None
    mismatch: bool | None = None
    position = outcome.position
    if position is not None:
        point = stop_point(date, visit)
        if point is not None:
            here = to_wgs84(Location(lat=position.lat, lon=position.lon, crs=position.crs))
            distance = round(haversine_m(here, point), 1)
            mismatch = distance > case_settings().cases.proof.geo_mismatch_m
    instalments = None if outcome.instalments is None else [i.model_dump(mode="json") for i in outcome.instalments]
    view = {**shared, "instalments": instalments, "contact_updated": contact_updated,
            "position": None if position is None else position.model_dump(mode="json"),
            "distance_m": distance, "geo_mismatch": mismatch}
    event = {**shared, "contact_updated": contact_updated, "distance_m": distance, "geo_mismatch": mismatch}
    return view, private, event
