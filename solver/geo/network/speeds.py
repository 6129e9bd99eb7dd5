"""Which streets each travel mode may use, and how fast it goes on them.

* :data:`EXCLUDED_HIGHWAYS` — highway classes closed to each mode.
* :func:`parse_maxspeed_kmh` — an OSM ``maxspeed`` tag as km/h.
* :func:`edge_speed_kmh` — the speed of one street edge for one mode, from
  its tags and the ``[speeds_kmh]`` settings (None when the mode may not use
  it).
* :func:`access_speeds_kmh` — the speed of the leg between a point and its
  projection on the street, per mode.

Driving goes at the tagged ``maxspeed`` or the per-highway-class table of
``config/defaults.toml``, scaled by the urban traffic factor; e-bikes at
their configured speed but never above a lower ``maxspeed`` (a 10 km/h living
street); walkers at a constant speed. Non-motorised modes avoid motorways,
urban expressways (``trunk``) and road tunnels, which in Chinese city centres
are closed to them; ways with ``access=no|private`` are closed to drive and
e-bike but open to walkers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from solver.travel import DEFAULT_SPEEDS_KMH

__all__ = [
    "EXCLUDED_HIGHWAYS",
    "access_speeds_kmh",
    "edge_speed_kmh",
    "first_text",
    "highway_class",
    "parse_maxspeed_kmh",
    "street_names_of",
]

#: Highway values no travel mode routes on (not built, closed, or not a way).
_NOT_ROUTABLE = frozenset(
    {
        "abandoned",
        "construction",
        "disused",
        "planned",
        "platform",
        "proposed",
        "raceway",
        "razed",
        "rest_area",
        "services",
        "via_ferrata",
    }
)

#: Highway classes each mode may not use. Urban expressways (``trunk`` in
#: Chinese cities is typically an elevated road such as 延安高架路) and
#: motorways are closed to e-bikes and pedestrians.
EXCLUDED_HIGHWAYS: dict[str, frozenset[str]] = {
    "drive": _NOT_ROUTABLE
    | {
        "bridleway",
        "bus_guideway",
        "busway",
        "corridor",
        "cycleway",
        "elevator",
        "escalator",
        "footway",
        "path",
        "pedestrian",
        "steps",
    },
    "ebike": _NOT_ROUTABLE
    | {
        "bridleway",
        "bus_guideway",
        "busway",
        "corridor",
        "elevator",
        "escalator",
        "footway",
        "motorway",
        "motorway_link",
        "pedestrian",
        "steps",
        "trunk",
        "trunk_link",
    },
    "walk": _NOT_ROUTABLE | {"bus_guideway", "busway", "motorway", "motorway_link", "trunk", "trunk_link"},
}

#: ``access`` values that close a way to vehicles (walkers may still pass).
_CLOSED_ACCESS = frozenset({"no", "private"})

#: Drive speed, km/h, for highway classes missing from the configured table.
_UNKNOWN_CLASS_DRIVE_KMH = 25.0

#: Access-leg speed for driving when the table has no ``service`` class, km/h.
_DRIVE_ACCESS_KMH = 15.0

_MPH_KMH = 1.609344
_KNOTS_KMH = 1.852


def parse_maxspeed_kmh(value: Any) -> float | None:
    """Read an OSM ``maxspeed`` tag as km/h.

    Parameters
    ----------
    value : Any
        The tag value as osmnx stores it: a string such as ``"40"``,
        ``"30 mph"``, ``"40;50"``, a list of such strings (merged edges), or
        None.

    Returns
    -------
    float or None
        The lowest speed found, in km/h; None when nothing numeric is tagged
        (``"none"``, ``"signals"``, ``"CN:urban"``, missing).
    """
    if value is None:
        return None
    values = value if isinstance(value, (list, tuple)) else [value]
    speeds: list[float] = []
    for item in values:
        for part in re.split(r"[;,|]", str(item)):
            match = re.match(r"\s*(\d+(?:\.\d+)?)\s*(mph|knots)?", part.strip().lower())
            if not match:
                continue
            speed = float(match.group(1))
            if match.group(2) == "mph":
                speed *= _MPH_KMH
            elif match.group(2) == "knots":
                speed *= _KNOTS_KMH
            if speed > 0:
                speeds.append(speed)
    return min(speeds) if speeds else None


#: Road classes from the most to the least important: a merged edge (osmnx
#: simplification joins ways whose tags differ into one edge with a *list* of
#: values, in set order, which changes from one process to the next) takes the
#: most important of its classes, so that every process builds the same network.
_CLASS_RANK = {
    name: rank
    for rank, name in enumerate(
        [
            "motorway",
            "motorway_link",
            "trunk",
            "trunk_link",
            "primary",
            "primary_link",
            "secondary",
            "secondary_link",
            "tertiary",
            "tertiary_link",
            "unclassified",
            "residential",
            "living_street",
            "service",
            "road",
        ]
    )
}


def highway_class(value: Any) -> str | None:
    """The highway class of an edge; the most important one of a list (merged edges).

    Parameters
    ----------
    value : Any
        The edge's ``highway`` attribute (a string, a list or None).

    Returns
    -------
    str or None
        For a list: the first in :data:`_CLASS_RANK` order, then alphabetical
        (deterministic whatever order osmnx stored the list in).
    """
    if isinstance(value, (list, tuple)):
        classes = sorted({str(v) for v in value if v is not None}, key=lambda c: (_CLASS_RANK.get(c, 99), c))
        return classes[0] if classes else None
    return None if value is None else str(value)


def _base_class(highway: str) -> str:
    """``primary_link`` → ``primary``; other classes unchanged."""
    return highway[: -len("_link")] if highway.endswith("_link") else highway


def first_text(value: Any) -> str | None:
    """One value of a tag that merged edges may hold as a list (the first in sorted order).

    Parameters
    ----------
    value : Any
        A string, a list of strings or None.

    Returns
    -------
    str or None
    """
    if isinstance(value, (list, tuple)):
        values = sorted(str(v) for v in value if v is not None)
        return values[0] if values else None
    return None if value is None else str(value)


def _is_tunnel(value: Any) -> bool:
    values = value if isinstance(value, (list, tuple)) else [value]
    return any(v not in (None, "no", "false", "0") for v in values)


def street_names_of(value: Any) -> list[str]:
    """Street names of an edge's ``name`` attribute (merged edges may carry several).

    Parameters
    ----------
    value : Any
        A string, a list of strings or None.

    Returns
    -------
    list of str
        The non-empty names, stripped, in order.
    """
    if value is None:
        return []
    values = value if isinstance(value, (list, tuple)) else [value]
    return [str(v).strip() for v in values if v is not None and str(v).strip()]


def edge_speed_kmh(speeds: Mapping[str, Any], mode: str, data: Mapping[str, Any]) -> float | None:
    """Speed of one street edge for ``mode``, km/h.

    Parameters
    ----------
    speeds : Mapping
        Settings shaped like the ``[speeds_kmh]`` table of
        ``config/defaults.toml``.
    mode : {"drive", "ebike", "walk"}
        Travel mode.
    data : Mapping
        The osmnx edge attributes (``highway``, optional ``maxspeed``,
        ``access``, ``tunnel``).

    Returns
    -------
    float or None
        km/h; None when the mode may not use the edge.
    """
    highway = highway_class(data.get("highway"))
    if highway is None or highway in EXCLUDED_HIGHWAYS[mode]:
        return None
    if mode != "walk" and first_text(data.get("access")) in _CLOSED_ACCESS:
        return None
    if mode != "drive" and _is_tunnel(data.get("tunnel")):
        return None
    if mode == "walk":
        return float(speeds.get(mode, DEFAULT_SPEEDS_KMH[mode]))
    speed = parse_maxspeed_kmh(data.get("maxspeed"))
    if mode == "ebike":  # the e-bike's own speed, but never above a lower limit (living streets)
        own = float(speeds.get(mode, DEFAULT_SPEEDS_KMH[mode]))
        return own if speed is None else min(own, speed)
    if speed is None:
        table = speeds.get("drive_by_highway", {})
        speed = float(table.get(highway, table.get(_base_class(highway), _UNKNOWN_CLASS_DRIVE_KMH)))
    return speed * float(speeds.get("drive_traffic_factor", 1.0))


def access_speeds_kmh(speeds: Mapping[str, Any], overrides: Mapping[str, float] | None = None) -> dict[str, float]:
    """Speed of the access leg between a point and its projection, per mode.

    Parameters
    ----------
    speeds : Mapping
        ``[speeds_kmh]``-shaped settings.
    overrides : Mapping, optional
        Speeds given explicitly, km/h per mode.

    Returns
    -------
    dict
        km/h per mode: the given ones, else walking speed for ``walk``, the
        e-bike speed for ``ebike`` and the ``service`` road speed (15 km/h)
        for ``drive``.
    """
    access = dict(overrides or {})
    drive_table = speeds.get("drive_by_highway", {})
    access.setdefault("walk", float(speeds.get("walk", DEFAULT_SPEEDS_KMH["walk"])))
    access.setdefault("ebike", float(speeds.get("ebike", DEFAULT_SPEEDS_KMH["ebike"])))
    access.setdefault("drive", float(drive_table.get("service", _DRIVE_ACCESS_KMH)))
    return access
