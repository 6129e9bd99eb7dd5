"""Street geometry: the shape of a fastest path, and every street edge of a network.

* :func:`fastest_path` — the polyline of the fastest path between two
  points (used by :meth:`RoadNetwork.path`).
* :class:`StreetEdge` and :func:`street_edges` — the public view of a
  network's street edges (ends, length, class, name, OSM shape) for maps and
  exports; callers need not read the network's arrays.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.sparse.csgraph import dijkstra

from solver.geo.coords import to_wgs84
from solver.geo.network.graph import EdgeTable, ModeGraph
from solver.geo.network.matrix import augmented
from solver.geo.network.snapping import attach, snap_arrays
from solver.model import Location, TravelMode

if TYPE_CHECKING:  # pragma: no cover
    from solver.geo.network.core import RoadNetwork

__all__ = ["StreetEdge", "fastest_path", "street_edges"]


@dataclass(frozen=True)
class StreetEdge:
    """One directed edge of the source street graph.

    Attributes
    ----------
    tail, head : int
        Network node indices (``RoadNetwork.node_ids[tail]`` is the OSM id).
    length_m : float
        The edge's ``length`` attribute, metres.
    highway : str or None
        Highway class (the first one of merged edges).
    name : str or None
        Street name (the first one of merged edges).
    coords : list of tuple of float
        ``(lon, lat)`` vertices: the OSM shape when the edge has one, else
        its two end nodes.
    """

    tail: int
    head: int
    length_m: float
    highway: str | None
    name: str | None
    coords: list[tuple[float, float]]


def street_edges(edges: EdgeTable) -> Iterator[StreetEdge]:
    """Every edge of a network's street table, in the source graph's order.

    Parameters
    ----------
    edges : EdgeTable
        The table (``RoadNetwork.edges``).

    Yields
    ------
    StreetEdge
    """
    classes, names = edges.classes, edges.names
    for e in range(edges.size):
        u, v = int(edges.tail[e]), int(edges.head[e])
        shape = edges.shape(e)
        if shape is None:
            coords = [(float(edges.lons[u]), float(edges.lats[u])), (float(edges.lons[v]), float(edges.lats[v]))]
        else:
            coords = [(float(x), float(y)) for x, y in shape]
        h, n = int(edges.highway[e]), int(edges.name[e])
        yield StreetEdge(
            tail=u,
            head=v,
            length_m=float(edges.length[e]),
            highway=classes[h] if h >= 0 else None,
            name=names[n] if n >= 0 else None,
            coords=coords,
        )


def fastest_path(net: RoadNetwork, a: Location, b: Location, mode: TravelMode) -> list[tuple[float, float]]:
    """Street geometry of the fastest path from ``a`` to ``b``.

    Parameters
    ----------
    net : RoadNetwork
        The network.
    a, b : solver.model.Location
        End points in any supported datum.
    mode : {"drive", "ebike", "walk"}
        Travel mode.

    Returns
    -------
    list of tuple of float
        ``(lat, lon)`` vertices, WGS-84 (see :meth:`RoadNetwork.path`).
    """
    g = net.mode_graph(mode)
    wa, wb = to_wgs84(a), to_wgs84(b)
    straight = [(wa.lat, wa.lon), (wb.lat, wb.lon)]
    if (wa.lat, wa.lon) == (wb.lat, wb.lon):
        return straight
    s = snap_arrays(g, net.projection, np.array([wa.lat, wb.lat]), np.array([wa.lon, wb.lon]))
    if not (s["gap"] <= net.snap_max_m).all():
        return straight
    att = attach(g, s["piece"], s["fraction"])
    times_graph = augmented(g, att).seconds_graph()
    src, dst = g.size, g.size + 3
    dist, pred = dijkstra(times_graph, directed=True, indices=src, return_predecessors=True)
    if not np.isfinite(dist[dst]):
        return straight
    chain = [dst]
    while chain[-1] != src:
        chain.append(int(pred[chain[-1]]))
    chain.reverse()
    inner = chain[1:-1]  # mode-graph nodes (local indices)
    fa, fb = float(s["fraction"][0]), float(s["fraction"][1])
    pa, pb = int(s["piece"][0]), int(s["piece"][1])
    coords: list[tuple[float, float]] = [(wa.lat, wa.lon), (float(s["lat"][0]), float(s["lon"][0]))]
    if not inner:  # along one street piece
        coords.extend(_piece_between(g, pa, fa, fb))
    else:
        exit_at = 1.0 if inner[0] == g.piece_b[pa] else 0.0
        coords.extend(_piece_between(g, pa, fa, exit_at))
        for tail, head in itertools.pairwise(inner):
            coords.extend(_edge_coords(net.edges, g, tail, head))
        entry_at = 1.0 if inner[-1] == g.piece_b[pb] else 0.0
        coords.extend(_piece_between(g, pb, entry_at, fb))
    coords.append((float(s["lat"][1]), float(s["lon"][1])))
    coords.append((wb.lat, wb.lon))
    return [c for i, c in enumerate(coords) if i == 0 or c != coords[i - 1]]


def _piece_between(g: ModeGraph, piece: int, f_from: float, f_to: float) -> list[tuple[float, float]]:
    """Vertices of a piece's polyline from fraction ``f_from`` to ``f_to``, both ends included."""
    lo, hi = int(g.vert_start[piece]), int(g.vert_start[piece + 1])
    cum = g.vert_cum[lo:hi]
    latlon = g.vert_latlon[lo:hi]
    total = float(cum[-1])

    def at(fraction: float) -> tuple[float, float]:
        d = fraction * total
        k = int(np.clip(np.searchsorted(cum, d, side="right") - 1, 0, len(cum) - 2))
        span = cum[k + 1] - cum[k]
        t = 0.0 if span <= 0 else (d - cum[k]) / span
        lat, lon = latlon[k] + t * (latlon[k + 1] - latlon[k])
        return float(lat), float(lon)

    d_from, d_to = f_from * total, f_to * total
    if d_from <= d_to:
        middle = [k for k in range(len(cum)) if d_from < cum[k] < d_to]
    else:
        middle = [k for k in range(len(cum) - 1, -1, -1) if d_to < cum[k] < d_from]
    inner = [(float(latlon[k, 0]), float(latlon[k, 1])) for k in middle]
    return [at(f_from), *inner, at(f_to)]


def _edge_coords(edges: EdgeTable, g: ModeGraph, tail: int, head: int) -> list[tuple[float, float]]:
    """Vertices of the mode edge ``tail → head`` (local indices), head included, tail excluded."""
    pos = int(g.edge_index(np.array([tail]), np.array([head]))[0])
    shape_lonlat = edges.shape(int(g.edge_source[pos]))
    u, v = int(g.nodes[tail]), int(g.nodes[head])
    end = (float(edges.lats[v]), float(edges.lons[v]))
    if shape_lonlat is None:
        return [end]
    shape = [(float(lat), float(lon)) for lon, lat in shape_lonlat]
    start = (float(edges.lats[u]), float(edges.lons[u]))
    # Orient the shape from tail to head whichever way it was stored.
    if _sq(shape[0], start) + _sq(shape[-1], end) > _sq(shape[-1], start) + _sq(shape[0], end):
        shape.reverse()
    return [*shape[1:], end] if shape[-1] != end else shape[1:]


def _sq(p: tuple[float, float], q: tuple[float, float]) -> float:
    return (p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2
