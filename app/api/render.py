"""Views of a stored plan: an agent's itinerary and the plan as GeoJSON.

Pure functions of (:class:`Problem`, :class:`Plan`): the plan carries the
times, the problem the visit details (case, borrower, purpose) and the crew.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

from solver.geo.coords import to_wgs84, wgs84_to_gcj02
from solver.model import Location, Plan, Problem, Route, TravelMode

#: A leg's geometry: ``path(a, b, mode) -> [(lat, lon), ...]`` (WGS-84).
PathFn = Callable[[Location, Location, TravelMode], Sequence[tuple[float, float]]]

#: Route colours for maps (Tableau 10).
PALETTE = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
)

_AMAP_MODE: dict[str, str] = {"drive": "car", "ebike": "ride", "walk": "walk"}


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _minutes(seconds: float) -> float:
    return round(seconds / 60.0, 1)


def navigation_links(location: Location, name: str, mode: TravelMode = "drive") -> dict[str, str]:
    """Links that open turn-by-turn navigation to a WGS-84 point.

    AMap (高德) reads GCJ-02, so the point is converted (outside China the
    converter leaves it as is). ``geo:`` is the platform-neutral link (WGS-84).
    """
    label = quote(name.replace(",", " "), safe="")
    lat, lon = wgs84_to_gcj02(location.lat, location.lon)
    amap_mode = _AMAP_MODE.get(mode, "car")
    amap = f"https://uri.amap.com/navigation?to={lon:.6f},{lat:.6f},{label}&mode={amap_mode}&coordinate=gaode"
    return {"amap": amap, "geo": f"geo:{location.lat:.6f},{location.lon:.6f}"}


def _clock(problem: Problem, value: Any) -> str:
    return problem.clock(problem.seconds(value)).isoformat()


# --------------------------------------------------------------------------- #
# Itinerary
# --------------------------------------------------------------------------- #
def itinerary(problem: Problem, plan: Plan, agent_id: str, *, version: int | None = None) -> dict[str, Any]:
    """One crew's day from a plan. Raises KeyError when the crew is not in the plan."""
    route = plan.route(agent_id)
    agent = problem.agent(agent_id)
    stops = []
    for sequence, stop in enumerate(route.stops, start=1):
        visit = problem.visit(stop.visit_id)
        name = stop.address_text or visit.case_id or visit.id
        borrower = visit.borrower
        stops.append(
            {
                "sequence": sequence,
                "visit_id": visit.id,
                "case_id": visit.case_id,
                "purpose": visit.purpose,
                "priority": visit.priority,
                "required": visit.required,
                "arrival": _iso(stop.arrival),
                "start": _iso(stop.start),
                "end": _iso(stop.end),
                "earliest_start": _iso(stop.earliest_start),
                "latest_start": _iso(stop.latest_start),
                "slot": None if stop.slot is None else {"start": _iso(stop.slot.start), "end": _iso(stop.slot.end)},
                "appointment": None
                if visit.appointment is None
                else {"start": _clock(problem, visit.appointment.start), "end": _clock(problem, visit.appointment.end)},
                "duration_min": visit.duration_min,
                "wait_min": _minutes(stop.wait_s),
                "travel_min_from_previous": _minutes(stop.travel_s),
                "distance_km_from_previous": round(stop.distance_m / 1000.0, 2),
                "address": {
                    "text": stop.address_text,
                    "kind": stop.address_kind,
                    "index": stop.address_index,
                    "location": {"lat": stop.location.lat, "lon": stop.location.lon, "crs": "wgs84"},
                },
                "navigation": navigation_links(stop.location, name, route.travel_mode),
                # personal data: the itinerary view removes it for roles that may not see it
                "borrower": None if borrower is None else {"name": borrower.name, "phone": borrower.phone},
                # the whole case: the itinerary view hides amounts from roles that may not see them
                "case": None if visit.case is None else visit.case.model_dump(mode="json"),
            }
        )
    return {
        "agent_id": agent.id,
        "date": plan.date.isoformat(),
        "timezone": plan.timezone,
        "version": version,
        "members": list(agent.members),
        "travel_mode": route.travel_mode,
        "shift": {"start": _clock(problem, agent.shift.start), "end": _clock(problem, agent.shift.end)},
        "start": {"text": agent.start.text, "location": route.start_location.model_dump(mode="json")},
        "end": None
        if route.end_location is None
        else {
            "text": (agent.end or agent.start).text,
            "location": route.end_location.model_dump(mode="json"),
        },
        "leaves_at": _iso(route.start),
        "returns_at": _iso(route.end),
        "stops": stops,
        "breaks": [
            {"start": _iso(b.start), "end": _iso(b.end), "duration_min": _minutes((b.end - b.start).total_seconds())}
            for b in route.breaks
        ],
        "totals": {
            "visits": len(route.stops),
            "travel_min": _minutes(route.travel_s),
            "distance_km": round(route.distance_m / 1000.0, 2),
            "wait_min": _minutes(sum(s.wait_s for s in route.stops)),
            "return_travel_min": _minutes(route.end_travel_s),
        },
    }


# --------------------------------------------------------------------------- #
# GeoJSON
# --------------------------------------------------------------------------- #
def _point(location: Location) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [location.lon, location.lat]}


def _route_line(route: Route, path: PathFn | None) -> list[list[float]]:
    places = [route.start_location, *(s.location for s in route.stops)]
    if route.end_location is not None:
        places.append(route.end_location)
    coords: list[list[float]] = []
    for a, b in itertools.pairwise(places):
        leg: Sequence[tuple[float, float]] = [(a.lat, a.lon), (b.lat, b.lon)]
        if path is not None:
            try:
                leg = path(a, b, route.travel_mode) or leg
            except Exception:  # noqa: BLE001 - no path (e.g. off the network): draw the straight leg
                pass
        for lat, lon in leg:
            point = [float(lon), float(lat)]
            if not coords or coords[-1] != point:
                coords.append(point)
    if len(coords) == 1:  # a LineString needs two positions
        coords.append(list(coords[0]))
    return coords


def _visit_location(problem: Problem, visit_id: str) -> Location | None:
    """The first point among a visit's addresses, in WGS-84, if any."""
    for address in problem.visit(visit_id).addresses:
        if address.location is not None:
            return to_wgs84(address.location)
    return None


def plan_geojson(problem: Problem, plan: Plan, path: PathFn | None = None) -> dict[str, Any]:
    """A FeatureCollection: per route a LineString (leg geometry from ``path``,
    straight lines without it) and a Point per stop; a Point per unassigned
    visit with its reason (null geometry when the visit has no point)."""
    features: list[dict[str, Any]] = []
    for index, route in enumerate(plan.routes):
        colour = PALETTE[index % len(PALETTE)]
        if not route.stops:
            continue
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": _route_line(route, path)},
                "properties": {
                    "kind": "route",
                    "agent_id": route.agent_id,
                    "colour": colour,
                    "travel_mode": route.travel_mode,
                    "visits": len(route.stops),
                    "travel_min": _minutes(route.travel_s),
                    "distance_km": round(route.distance_m / 1000.0, 2),
                    "start": _iso(route.start),
                    "end": _iso(route.end),
                },
            }
        )
        for sequence, stop in enumerate(route.stops, start=1):
            features.append(
                {
                    "type": "Feature",
                    "geometry": _point(stop.location),
                    "properties": {
                        "kind": "stop",
                        "agent_id": route.agent_id,
                        "colour": colour,
                        "sequence": sequence,
                        "visit_id": stop.visit_id,
                        "arrival": _iso(stop.arrival),
                        "start": _iso(stop.start),
                        "end": _iso(stop.end),
                        "slot_start": _iso(stop.slot.start) if stop.slot else None,
                        "slot_end": _iso(stop.slot.end) if stop.slot else None,
                    },
                }
            )
    for item in plan.unassigned:
        location = _visit_location(problem, item.visit_id)
        features.append(
            {
                "type": "Feature",
                "geometry": None if location is None else _point(location),  # not geocoded
                "properties": {"kind": "unassigned", "visit_id": item.visit_id, "code": item.code, "reason": item.reason},
            }
        )
    return {"type": "FeatureCollection", "features": features}


# --------------------------------------------------------------------------- #
# iCalendar
# --------------------------------------------------------------------------- #
def itinerary_ical(it: dict[str, Any]) -> bytes:
    """An itinerary (as :func:`itinerary` returns it, already filtered for the
    caller's role) as an iCalendar file: one VEVENT per stop, from the promised
    slot (or the planned start when there is none) to its end, with the
    address as LOCATION, the point as GEO, and a description with the purpose,
    the case, the borrower contact the role may see and the navigation link.
    Never amounts. UIDs are stable per date, crew and visit, and SEQUENCE is
    the plan version, so a phone that imports a newer version updates events."""
    from zoneinfo import ZoneInfo

    from icalendar import Calendar, Event

    tz = ZoneInfo(it["timezone"])
    cal = Calendar()
    cal.add("prodid", "-//Doorstep//itinerary//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", f"Doorstep {it['agent_id']} {it['date']}")
    cal.add("x-wr-timezone", it["timezone"])
    stamp = dt.datetime.now(dt.UTC).replace(microsecond=0)

    def when(value: str) -> dt.datetime:
        return dt.datetime.fromisoformat(value).astimezone(tz)

    for stop in it["stops"]:
        event = Event()
        event.add("uid", f"{it['date']}-{it['agent_id']}-{stop['visit_id']}@doorstep")
        event.add("dtstamp", stamp)
        event.add("sequence", int(it.get("version") or 0))
        slot = stop.get("slot")
        if slot:
            event.add("dtstart", when(slot["start"]))
            event.add("dtend", max(when(slot["end"]), when(slot["start"]) + dt.timedelta(minutes=1)))
        else:
            event.add("dtstart", when(stop["start"]))
            event.add("dtend", when(stop["end"]))
        label = stop.get("case_id") or stop["visit_id"]
        event.add("summary", f"{stop['sequence']}. Visit {label}" + (f" – {stop['purpose']}" if stop.get("purpose") else ""))
        address = stop["address"]
        if address.get("text"):
            event.add("location", address["text"])
        event.add("geo", (address["location"]["lat"], address["location"]["lon"]))
        lines = [
            f"Planned arrival {when(stop['arrival']).strftime('%H:%M')}, "
            f"visit {when(stop['start']).strftime('%H:%M')}–{when(stop['end']).strftime('%H:%M')} "
            f"({stop['duration_min']} min)",
        ]
        if slot:
            lines.append(f"Promised slot {when(slot['start']).strftime('%H:%M')}–{when(slot['end']).strftime('%H:%M')}")
        if stop.get("purpose"):
            lines.append(f"Purpose: {stop['purpose']}")
        lines.append(f"Case: {label}")
        borrower = stop.get("borrower")
        if borrower:
            contact = " ".join(x for x in (borrower.get("name"), borrower.get("phone")) if x)
            if contact:
                lines.append(f"Borrower: {contact}")
        lines.append(f"Navigation: {stop['navigation']['amap']}")
        event.add("description", "\n".join(lines))
        event.add("url", stop["navigation"]["amap"])
        cal.add_component(event)
    cal.add_missing_timezones()
    ical: bytes = cal.to_ical()
    return ical
