"""Road network travel model: OSM streets → points snapped to edges → travel matrices.

:class:`RoadNetwork` takes an osmnx street graph, derives one routable graph
per travel mode and prices travel between arbitrary points. One job per
module:

* :mod:`~solver.geo.network.speeds` — which streets each mode may use and
  how fast (``maxspeed``, the per-class table, traffic factor).
* :mod:`~solver.geo.network.graph` — the street table (:class:`EdgeTable`)
  and each mode's routable graph over its largest component
  (:class:`ModeGraph`).
* :mod:`~solver.geo.network.snapping` — projecting points onto the nearest
  street segment (:class:`Snap`), joining them mid-edge.
* :mod:`~solver.geo.network.matrix` — many-to-many matrices with packed
  (time, length) weights and pluggable shortest-path engines.
* :mod:`~solver.geo.network.ch` — a contraction hierarchy with bucket-based
  many-to-many queries (numba), and
  :mod:`~solver.geo.network.chengine` — the ``"ch"`` engine that builds,
  stores and queries one per mode graph (the default when numba is there).
* :mod:`~solver.geo.network.geometry` — fastest-path polylines and the
  public view of street edges (:class:`StreetEdge`).
* :mod:`~solver.geo.network.store` — networks built once per map file and
  memory-mapped afterwards (:func:`stored_network`).
* :mod:`~solver.geo.network.core` — :class:`RoadNetwork` itself.

A :class:`RoadNetwork` implements the :class:`~solver.travel.TravelModel`
protocol. It is read-only after construction and safe to share between
threads. Matrices are cached by content — (network, mode, point set) — in
memory and optionally as ``.npz`` files (:mod:`solver.geo.matrixcache`).
"""

from __future__ import annotations

import functools

from solver.geo.loading import load_bundled_graph, load_graph, load_osm_graph
from solver.geo.network.core import RoadNetwork
from solver.geo.network.geometry import StreetEdge
from solver.geo.network.graph import EdgeTable, ModeGraph
from solver.geo.network.matrix import ENGINES, available_engines
from solver.geo.network.snapping import Snap
from solver.geo.network.speeds import EXCLUDED_HIGHWAYS, parse_maxspeed_kmh
from solver.geo.network.store import NetworkStore, default_store_dir, stored_network

__all__ = [
    "ENGINES",
    "EXCLUDED_HIGHWAYS",
    "EdgeTable",
    "ModeGraph",
    "NetworkStore",
    "RoadNetwork",
    "Snap",
    "StreetEdge",
    "available_engines",
    "default_store_dir",
    "load_bundled_graph",
    "load_bundled_network",
    "load_graph",
    "load_osm_graph",
    "parse_maxspeed_kmh",
    "stored_network",
]


@functools.cache
def load_bundled_network() -> RoadNetwork:
    """The road network of the configured map (once per process).

    Loaded from the network store (:func:`stored_network`, ``[map]
    index_dir``) when it holds this map with these settings; built from the
    map and stored otherwise.
    """
    from solver.config import bundled_map_path

    return stored_network(bundled_map_path(), build=lambda: RoadNetwork(load_bundled_graph()))
