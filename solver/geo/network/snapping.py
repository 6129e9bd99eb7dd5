"""Snapping points onto the streets of a mode graph, and joining them to it.

Every point is projected onto the nearest street *segment* of the mode's
component (a :class:`shapely.STRtree` over the edges' geometry in locally
projected metres), not merely the nearest node: a visit in the middle of a
400 m block joins the street where it stands. The gap from the point to its
projection is travelled as an *access leg* at the mode's access speed and
reported as :attr:`Snap.distance_m`.

From its projection a point reaches the edge's ends along the edge: the far
end in the direction of travel and, when the street is two-way for the mode,
the near end too; the cost is the fraction of the edge's travel time and
length (:func:`attach`). Two points on the same street piece also get the
direct way between them, downstream only on a one-way street
(:func:`same_piece_links`).

* :func:`build_pieces` — street pieces and their polylines (the snapping
  index's data, stored with the network).
* :func:`segment_tree` — the segment index, built on first use.
* :func:`snap_arrays` — project points onto their nearest piece.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypedDict

import numpy as np
import shapely

from solver.geo.network.graph import EdgeTable, Floats, Ints, ModeGraph, Projection
from solver.model import Location
from solver.travel import EARTH_RADIUS_M

__all__ = [
    "Attachments",
    "Snap",
    "Snapped",
    "attach",
    "build_pieces",
    "haversine_block_m",
    "haversine_pairs_m",
    "same_piece_links",
    "segment_tree",
    "snap_arrays",
]


class Pieces(TypedDict):
    """The street-piece fields of a :class:`~solver.geo.network.graph.ModeGraph` (see there)."""

    piece_a: Ints
    piece_b: Ints
    piece_fwd: Ints
    piece_bwd: Ints
    vert_start: Ints
    vert_xy: Floats
    vert_latlon: Floats
    vert_cum: Floats
    seg_vertex: Ints
    seg_piece: Ints


class Snapped(TypedDict):
    """Points projected onto their nearest street piece: the piece, the
    fraction along it, the projection's WGS-84 coordinates and its distance
    from the point (metres)."""

    piece: Ints
    fraction: Floats
    lat: Floats
    lon: Floats
    gap: Floats


@dataclass(frozen=True)
class Snap:
    """Where a point joins the road network of one travel mode.

    Attributes
    ----------
    node : int
        Index, in the network's node table, of the end of the snapped edge
        nearer to the projection (``RoadNetwork.node_ids[node]`` is its OSM id).
    distance_m : float
        Great-circle distance from the point to its projection on the
        nearest street segment, metres.
    snapped : bool
        False when ``distance_m`` exceeds the network's ``snap_max_m``: the
        point is flagged and priced with the straight-line model.
    edge : tuple of (int, int)
        Network node indices ``(a, b)`` of the street piece the point snapped
        to, ``fraction`` measured from ``a``.
    fraction : float
        Position of the projection along the piece's geometry, 0 at ``a`` and
        1 at ``b``.
    lat, lon : float
        The projection, WGS-84.
    two_way : bool
        Whether the mode may travel the piece in both directions (False on a
        one-way street for driving and e-biking).
    """

    node: int
    distance_m: float
    snapped: bool
    edge: tuple[int, int] = (-1, -1)
    fraction: float = 0.0
    lat: float = math.nan
    lon: float = math.nan
    two_way: bool = True

    @property
    def flagged(self) -> bool:
        """True when the point is too far from every street (``not snapped``)."""
        return not self.snapped

    @property
    def projection(self) -> Location:
        """The point on the street where the access leg ends."""
        return Location(lat=self.lat, lon=self.lon, crs="wgs84")


@dataclass(frozen=True)
class Attachments:
    """How snapped points join a mode graph: up to two exits and two entries each.

    For point ``i``: ``exit_node[i, k]`` (local index, -1 if none) is reached
    from the point's projection after ``exit_time[i, k]`` seconds and
    ``exit_len[i, k]`` metres along its edge; ``entry_node[i, k]`` leads to
    the projection in ``entry_time[i, k]`` / ``entry_len[i, k]``.
    """

    piece: Ints  # (k,)
    fraction: Floats  # (k,)
    exit_node: Ints  # (k, 2)
    exit_time: Floats
    exit_len: Floats
    entry_node: Ints  # (k, 2)
    entry_time: Floats
    entry_len: Floats


def build_pieces(
    edges: EdgeTable, projection: Projection, n: int, nodes: Ints, lt: Ints, lh: Ints, edge_source: Ints
) -> Pieces:
    """Street pieces (unordered node pairs) of a mode graph and their polylines.

    Parameters
    ----------
    edges : EdgeTable
        The network's edges (for the OSM shapes and node coordinates).
    projection : Projection
        Local projection, metres.
    n : int
        Nodes of the mode graph.
    nodes : numpy.ndarray
        Network index of each local node.
    lt, lh : numpy.ndarray
        Local tail and head of the mode's edges, in key order.
    edge_source : numpy.ndarray
        Edge-table index of each mode edge.

    Returns
    -------
    Pieces
        The piece fields of :class:`~solver.geo.network.graph.ModeGraph`.
    """
    lats, lons = edges.lats, edges.lons
    position = np.arange(lt.size, dtype=np.int64)
    a, b = np.minimum(lt, lh), np.maximum(lt, lh)
    piece_keys, piece_of = np.unique(a * n + b, return_inverse=True)
    piece_of = piece_of.ravel()
    p = piece_keys.size
    piece_a, piece_b = np.divmod(piece_keys, n)
    fwd = np.full(p, -1, dtype=np.int64)
    bwd = np.full(p, -1, dtype=np.int64)
    forward = lt < lh
    fwd[piece_of[forward]] = position[forward]
    bwd[piece_of[~forward]] = position[~forward]

    # Geometry: the forward edge's when it exists, else the backward edge's.
    shape_edge = edge_source[np.where(fwd >= 0, fwd, bwd)]
    counts = np.full(p, 2, dtype=np.int64)
    has_shape = (edges.geom_start[shape_edge + 1] - edges.geom_start[shape_edge]) >= 2
    shaped = np.flatnonzero(has_shape)
    counts[shaped] = edges.geom_start[shape_edge[shaped] + 1] - edges.geom_start[shape_edge[shaped]]
    vert_start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    latlon = np.empty((int(vert_start[-1]), 2), dtype=float)
    na, nb = nodes[piece_a], nodes[piece_b]
    for q in shaped.tolist():
        coords = edges.geom_lonlat[edges.geom_start[shape_edge[q]] : edges.geom_start[shape_edge[q] + 1], ::-1]
        start = (lats[na[q]], lons[na[q]])
        end = (lats[nb[q]], lons[nb[q]])
        c0, c1 = coords[0], coords[-1]
        forward_cost = (c0[0] - start[0]) ** 2 + (c0[1] - start[1]) ** 2 + (c1[0] - end[0]) ** 2 + (c1[1] - end[1]) ** 2
        reverse_cost = (c1[0] - start[0]) ** 2 + (c1[1] - start[1]) ** 2 + (c0[0] - end[0]) ** 2 + (c0[1] - end[1]) ** 2
        latlon[vert_start[q] : vert_start[q + 1]] = coords[::-1] if forward_cost > reverse_cost else coords
    # The ends are exactly the nodes (shapes included).
    latlon[vert_start[:-1]] = np.column_stack([lats[na], lons[na]])
    latlon[vert_start[1:] - 1] = np.column_stack([lats[nb], lons[nb]])
    xy = projection.xy(latlon[:, 0], latlon[:, 1])

    last = np.zeros(len(xy), dtype=bool)
    last[vert_start[1:] - 1] = True
    seg_vertex = np.flatnonzero(~last)
    seg_len = np.hypot(*(xy[seg_vertex + 1] - xy[seg_vertex]).T)
    step = np.zeros(len(xy))
    step[seg_vertex + 1] = seg_len
    cum = np.cumsum(step)
    vertex_piece = np.repeat(np.arange(p), counts)
    cum -= cum[vert_start[vertex_piece]]
    seg_piece = vertex_piece[seg_vertex]
    # Zero-length segments cannot be nearest to anything a longer one is not.
    seg_vertex, seg_piece = seg_vertex[seg_len > 0], seg_piece[seg_len > 0]
    return {
        "piece_a": piece_a.astype(np.int64),
        "piece_b": piece_b.astype(np.int64),
        "piece_fwd": fwd,
        "piece_bwd": bwd,
        "vert_start": vert_start,
        "vert_xy": xy,
        "vert_latlon": latlon,
        "vert_cum": cum,
        "seg_vertex": seg_vertex.astype(np.int64),
        "seg_piece": seg_piece.astype(np.int64),
    }


def segment_tree(g: ModeGraph) -> shapely.STRtree:
    """The segment index of ``g``, built on first use (thread-safe).

    Parameters
    ----------
    g : ModeGraph
        Mode graph.

    Returns
    -------
    shapely.STRtree
        Over the street segments ``vert_xy[seg_vertex[k]] → vert_xy[seg_vertex[k] + 1]``.
    """
    tree = g.lazy.get("seg_tree")
    if tree is None:
        with g.lock:
            tree = g.lazy.get("seg_tree")
            if tree is None:
                xy = np.asarray(g.vert_xy)
                lines = shapely.linestrings(np.stack([xy[g.seg_vertex], xy[g.seg_vertex + 1]], axis=1))
                tree = g.lazy["seg_tree"] = shapely.STRtree(lines)
    return tree


def snap_arrays(g: ModeGraph, projection: Projection, lats: Floats, lons: Floats) -> Snapped:
    """Project WGS-84 points onto the nearest street segment of ``g``.

    Parameters
    ----------
    g : ModeGraph
        Mode graph.
    projection : Projection
        The network's local projection.
    lats, lons : numpy.ndarray
        Points, WGS-84.

    Returns
    -------
    Snapped
    """
    xy = projection.xy(lats, lons)
    found = segment_tree(g).query_nearest(shapely.points(xy), all_matches=False)
    segment = np.empty(len(xy), dtype=np.int64)
    segment[found[0]] = found[1]
    v0 = g.seg_vertex[segment]
    piece = g.seg_piece[segment]
    start, end = g.vert_xy[v0], g.vert_xy[v0 + 1]
    span = end - start
    span2 = np.maximum((span * span).sum(axis=1), 1e-12)
    t = np.clip(((xy - start) * span).sum(axis=1) / span2, 0.0, 1.0)
    along = g.vert_cum[v0] + t * np.sqrt(span2)
    total = g.piece_length(piece)
    fraction = np.where(total > 0, np.clip(along / np.where(total > 0, total, 1.0), 0.0, 1.0), 0.0)
    proj = g.vert_latlon[v0] + t[:, None] * (g.vert_latlon[v0 + 1] - g.vert_latlon[v0])
    gap = haversine_pairs_m(lats, lons, proj[:, 0], proj[:, 1])
    return {"piece": piece, "fraction": fraction, "lat": proj[:, 0], "lon": proj[:, 1], "gap": gap}


def attach(g: ModeGraph, piece: Ints, fraction: Floats) -> Attachments:
    """Exits from and entries to each projection along its piece's edges.

    Parameters
    ----------
    g : ModeGraph
        Mode graph.
    piece, fraction : numpy.ndarray
        Each point's piece and position along it.

    Returns
    -------
    Attachments
    """
    fwd, bwd = g.piece_fwd[piece], g.piece_bwd[piece]
    has_f, has_b = fwd >= 0, bwd >= 0
    tf = np.where(has_f, g.edge_time_s[fwd], np.nan)
    lf = np.where(has_f, g.edge_length_m[fwd], np.nan)
    tb = np.where(has_b, g.edge_time_s[bwd], np.nan)
    lb = np.where(has_b, g.edge_length_m[bwd], np.nan)
    a, b, f = g.piece_a[piece], g.piece_b[piece], fraction
    none = np.int64(-1)
    return Attachments(
        piece=piece,
        fraction=f,
        exit_node=np.column_stack([np.where(has_f, b, none), np.where(has_b, a, none)]),
        exit_time=np.column_stack([(1 - f) * tf, f * tb]),
        exit_len=np.column_stack([(1 - f) * lf, f * lb]),
        entry_node=np.column_stack([np.where(has_f, a, none), np.where(has_b, b, none)]),
        entry_time=np.column_stack([f * tf, (1 - f) * tb]),
        entry_len=np.column_stack([f * lf, (1 - f) * lb]),
    )


def same_piece_links(g: ModeGraph, att: Attachments) -> tuple[Ints, Ints, Floats, Floats]:
    """Direct ways between points on the same piece.

    Parameters
    ----------
    g : ModeGraph
        Mode graph.
    att : Attachments
        The points.

    Returns
    -------
    tuple of numpy.ndarray
        ``(from, to, seconds, metres)`` point indices and costs.
    """
    order = np.argsort(att.piece, kind="stable")
    sorted_piece = att.piece[order]
    bounds = np.flatnonzero(np.diff(sorted_piece)) + 1
    groups = [grp for grp in np.split(order, bounds) if grp.size > 1]
    rows, cols, secs, lens = [], [], [], []
    for grp in groups:
        q = int(att.piece[grp[0]])
        i, j = (x.ravel() for x in np.meshgrid(grp, grp, indexing="ij"))
        off = i != j
        i, j = i[off], j[off]
        fi, fj = att.fraction[i], att.fraction[j]
        best_t = np.full(i.size, np.inf)
        best_l = np.full(i.size, np.inf)
        for edge, ahead in ((g.piece_fwd[q], fj >= fi), (g.piece_bwd[q], fi >= fj)):
            if edge < 0:
                continue
            t = np.abs(fj - fi) * g.edge_time_s[edge]
            length = np.abs(fj - fi) * g.edge_length_m[edge]
            better = ahead & (t < best_t)
            best_t[better], best_l[better] = t[better], length[better]
        ok = np.isfinite(best_t)
        rows.append(i[ok])
        cols.append(j[ok])
        secs.append(best_t[ok])
        lens.append(best_l[ok])
    if not rows:
        empty_i, empty_f = np.empty(0, dtype=np.int64), np.empty(0)
        return empty_i, empty_i, empty_f, empty_f
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(secs), np.concatenate(lens)


def haversine_pairs_m(lat_a: Floats, lon_a: Floats, lat_b: Floats, lon_b: Floats) -> Floats:
    """Great-circle metres between ``a[i]`` and ``b[i]``."""
    pa, la, pb, lb = (np.radians(np.asarray(v, dtype=float)) for v in (lat_a, lon_a, lat_b, lon_b))
    h = np.sin((pb - pa) / 2) ** 2 + np.cos(pa) * np.cos(pb) * np.sin((lb - la) / 2) ** 2
    metres: Floats = 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(h)))
    return metres


def haversine_block_m(lat_a: Floats, lon_a: Floats, lat_b: Floats, lon_b: Floats) -> Floats:
    """Great-circle metres from each point ``a`` (rows) to each point ``b`` (columns)."""
    pa, la = np.radians(lat_a)[:, None], np.radians(lon_a)[:, None]
    pb, lb = np.radians(lat_b)[None, :], np.radians(lon_b)[None, :]
    h = np.sin((pb - pa) / 2) ** 2 + np.cos(pa) * np.cos(pb) * np.sin((lb - la) / 2) ** 2
    metres: Floats = 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(h)))
    return metres
