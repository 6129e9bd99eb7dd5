"""Geography for Doorstep: datums, the road network and the offline gazetteer.

* :mod:`solver.geo.coords` — WGS-84 / GCJ-02 / BD-09 conversions.
* :mod:`solver.geo.network` — :class:`RoadNetwork`, the OSM road-network
  travel model (snapping, many-to-many matrices, leg geometry).
* :mod:`solver.geo.gazetteer` — :class:`Gazetteer`, street-level geocoding of
  Chinese addresses from the street names of an OSM extract.

The names below are re-exported lazily, so importing :mod:`solver.geo.coords`
does not load networkx, scipy or rapidfuzz.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from solver.geo.coords import (
        bd09_to_gcj02,
        bd09_to_wgs84,
        gcj02_to_bd09,
        gcj02_to_wgs84,
        to_wgs84,
        wgs84_to_bd09,
        wgs84_to_gcj02,
    )
    from solver.geo.gazetteer import Gazetteer, GeocodeResult, load_bundled_gazetteer
    from solver.geo.network import RoadNetwork, Snap, load_bundled_network

_EXPORTS = {
    "to_wgs84": "coords",
    "wgs84_to_gcj02": "coords",
    "gcj02_to_wgs84": "coords",
    "gcj02_to_bd09": "coords",
    "bd09_to_gcj02": "coords",
    "wgs84_to_bd09": "coords",
    "bd09_to_wgs84": "coords",
    "RoadNetwork": "network",
    "Snap": "network",
    "load_bundled_network": "network",
    "Gazetteer": "gazetteer",
    "GeocodeResult": "gazetteer",
    "load_bundled_gazetteer": "gazetteer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'solver.geo' has no attribute {name!r}")
    return getattr(importlib.import_module(f"solver.geo.{module}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
