"""Geography for Doorstep: datums, geocoding, the road network and synthetic cities.

* :mod:`solver.geo.coords` — WGS-84 / GCJ-02 / BD-09 conversions and
  validated locations.
* :mod:`solver.geo.address` — address text: normalisation, parsing, match keys.
* :mod:`solver.geo.results` — geocoding results, attempts and outcomes.
* :mod:`solver.geo.gazetteer` — :class:`Gazetteer`, the offline geocoder
  (streets, intersections, houses, named places, districts of an extract).
* :mod:`solver.geo.providers` — online geocoders behind geopy, from config.
* :mod:`solver.geo.cache` — geocode caches (memory, SQLite).
* :mod:`solver.geo.chain` — :class:`GeocodingChain`: cache → providers →
  gazetteer, batch geocoding.
* :mod:`solver.geo.osmfile` — reading OSM extracts (XML, PBF): addresses,
  named places, street ways.
* :mod:`solver.geo.loading` — street graphs from extracts, graphml or a
  one-time download.
* :mod:`solver.geo.network` — :class:`RoadNetwork`, the road-network travel
  model (a package: speeds, mode graphs, edge snapping, many-to-many matrices
  with pluggable engines, leg geometry, and the store that keeps a built
  network as memory-mapped arrays per map file).
* :mod:`solver.geo.gazetteerstore` — the gazetteer index stored per map file.
* :mod:`solver.geo.mapimport` — ``doorstep map import``: build and store a
  city's indexes once.
* :mod:`solver.geo.matrixcache` — content-addressed matrix cache.
* :mod:`solver.geo.synthetic` — :func:`synthetic_city`, a generated
  grid-and-arterial city with addresses for tests and benchmarks.

The names below are re-exported lazily, so importing :mod:`solver.geo.coords`
does not load networkx, scipy, geopy or rapidfuzz.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from solver.geo.cache import GeocodeCache, MemoryGeocodeCache, SQLiteGeocodeCache
    from solver.geo.chain import GeocodingChain
    from solver.geo.coords import (
        bd09_to_gcj02,
        bd09_to_wgs84,
        gcj02_to_bd09,
        gcj02_to_wgs84,
        location_from,
        to_wgs84,
        wgs84_to_bd09,
        wgs84_to_gcj02,
    )
    from solver.geo.gazetteer import Gazetteer, load_bundled_gazetteer
    from solver.geo.network import RoadNetwork, Snap, load_bundled_network
    from solver.geo.results import Attempt, GeocodeOutcome, GeocodeResult
    from solver.geo.synthetic import SyntheticCity, synthetic_city

_EXPORTS = {
    "to_wgs84": "coords",
    "location_from": "coords",
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
    "load_bundled_gazetteer": "gazetteer",
    "GeocodeResult": "results",
    "GeocodeOutcome": "results",
    "Attempt": "results",
    "GeocodingChain": "chain",
    "GeocodeCache": "cache",
    "MemoryGeocodeCache": "cache",
    "SQLiteGeocodeCache": "cache",
    "SyntheticCity": "synthetic",
    "synthetic_city": "synthetic",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'solver.geo' has no attribute {name!r}")
    return getattr(importlib.import_module(f"solver.geo.{module}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
