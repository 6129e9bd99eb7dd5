"""Offline geocoder built from an OSM extract: streets, houses, places, districts.

:class:`Gazetteer` answers addresses without any network service, from the
data of one extract (and an optional table of district seats):

* ``"上海市黄浦区西藏中路45号3楼"`` → the house when the extract has it
  (``addr:street`` + ``addr:housenumber``, precision ``"exact"``), else a
  point on 西藏中路 interpolated between the nearest known house numbers, or
  along the street's spine from its numbering origin (precision ``"street"``);
* ``"西藏中路"`` → the middle of the street (``"street"``);
* ``"西藏中路与福州路交叉口"``, ``"西藏中路 & 福州路"``, ``"Rue Grimaldi and
  Rue Princesse Caroline"`` → the junction of the two streets
  (``"intersection"``);
* ``"Casino de Monte-Carlo"``, ``"人民广场"`` → a named place of the extract
  (a shop, bank, square… that is not a street; ``"exact"``);
* ``"上海市黄浦区"``, or an address whose street is unknown but whose district
  is known → the district's seat or the centre of a ``place=suburb|quarter``
  of the extract (``"district"``, low confidence).

Every answer carries a confidence; those below the configured threshold
(``[geocoding] flag_below_confidence``, default 0.5) are *flagged*: the
dispatcher must confirm them before they are used.

OpenStreetMap extracts of Chinese cities rarely carry house numbers, and the
bundled one has none, so there a house number can only be *interpolated*: the
street's spine (its longest run, see :class:`Street`) is walked from its
numbering origin, about :data:`METRES_PER_NUMBER` metres per number. Such a
point is consistent and on the right street but not the building's true
position, which is why street-level results never claim more than
:data:`STREET_NUMBER_CONFIDENCE`.

Names are compared in :func:`~solver.geo.address.match_key` form
(case-folded, no spaces or punctuation): exactly first, then as a part of the
text (any name written inside longer text, found by a scan of the text's
substrings, so the cost does not grow with the number of names), then
fuzzily with :mod:`rapidfuzz`, so that a one-character typo in a name of four
or more characters is still found, at a lower confidence. A fuzzy match must
keep the direction and ordinal characters (东西南北中, 一二三…) of the text:
南京东路 never resolves to 南京西路 or 北京东路, which are different roads.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import numpy.typing as npt
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from solver.config import config_dir, defaults
from solver.geo.address import (
    ParsedAddress,
    housenumber_key,
    match_key,
    normalize_text,
    parse_address,
    significant_key,
    single_street,
    western_house_number,
)
from solver.geo.houseindex import HouseIndex
from solver.geo.loading import graph_from_osm_data, load_bundled_graph, load_bundled_osm_data
from solver.geo.osmfile import AddressPoint, NamedPlace, read_osm
from solver.geo.results import DEFAULT_FLAG_BELOW, GeocodeResult, Precision, utc_now
from solver.model import Location
from solver.travel import EARTH_RADIUS_M, haversine_m

__all__ = [
    "DISTRICT_CONFIDENCE",
    "EXACT_CONFIDENCE",
    "FUZZY_SCORE_CUTOFF",
    "METRES_PER_NUMBER",
    "PLACE_CONFIDENCE",
    "STREET_CONFIDENCE",
    "STREET_NUMBER_CONFIDENCE",
    "Gazetteer",
    "GeocodeResult",
    "ParsedAddress",
    "Precision",
    "Street",
    "configured_districts",
    "load_bundled_gazetteer",
    "normalize_text",
    "parse_address",
]

#: Interpolated spacing of house numbers along a street, metres per number.
METRES_PER_NUMBER = 5.0

#: Lowest normalised Levenshtein similarity (rapidfuzz) accepted for a fuzzy
#: name match. One wrong character in a four-character name such as
#: 西藏中路 scores exactly 0.75; in a three-character name 0.67 (rejected).
FUZZY_SCORE_CUTOFF = 0.75

#: Confidence of a house found in the extract's addresses.
EXACT_CONFIDENCE = 0.95
#: Confidence of a named place found by its whole name.
PLACE_CONFIDENCE = 0.85
#: Confidence of a number placed between known house numbers of its street.
BETWEEN_HOUSES_CONFIDENCE = 0.75
#: Confidence of an exact street match with an (interpolated) house number.
STREET_NUMBER_CONFIDENCE = 0.7
#: Confidence of an exact street match without a house number (midpoint).
STREET_CONFIDENCE = 0.6
#: Confidence of an exact intersection at a node both streets share.
INTERSECTION_CONFIDENCE = 0.8
#: Confidence of an intersection where the streets only pass close by.
NEAR_INTERSECTION_CONFIDENCE = 0.6
#: Confidence of a district-level answer (always below the default flag threshold).
DISTRICT_CONFIDENCE = 0.3
#: Confidence of a place name shared by places far apart (which one is meant?).
AMBIGUOUS_PLACE_CONFIDENCE = 0.4
#: Places of the same name within this distance count as one, metres.
_SAME_PLACE_M = 250.0
#: Streets that share no node but come this close count as meeting, metres.
NEAR_INTERSECTION_M = 50.0
#: Shared nodes of one street pair within this distance form one junction.
_JUNCTION_CLUSTER_M = 80.0
#: Factor on confidence when the name was found inside surrounding text.
_EMBEDDED_FACTOR = 0.9
#: Known house numbers farther than this (in numbers) from the one sought
#: interpolate with lower confidence.
_NEAR_NUMBERS = 20

_CJK = re.compile(r"[\u3400-\u9fff]")


@dataclass(frozen=True)
class Street:
    """A named street of the gazetteer.

    Attributes
    ----------
    name : str
        The OSM ``name``.
    lines : tuple of tuple of (float, float)
        The street's geometry merged into polylines of ``(lat, lon)``; one per
        carriageway or disconnected piece.
    length_m : float
        Total length of all its edges (both carriageways when divided).
    spine : tuple of (float, float)
        The run used to place house numbers: the longest path through the
        street's largest connected piece, starting at its numbering origin
        (the east end of an east–west street, the south end of a north–south
        one, as in Shanghai).
    spine_length_m : float
        Length of ``spine``.
    """

    name: str
    lines: tuple[tuple[tuple[float, float], ...], ...]
    length_m: float
    spine: tuple[tuple[float, float], ...]
    spine_length_m: float


@dataclass(frozen=True)
class _StreetGeometry:
    """How the gazetteer keeps a :class:`Street`: a few arrays instead of a tuple per vertex.

    Attributes
    ----------
    length_m, spine_length_m : float
        As in :class:`Street`.
    spine : numpy.ndarray
        ``(k, 2)`` ``(lat, lon)`` rows of the spine.
    points : numpy.ndarray
        ``(p, 2)`` ``(lat, lon)`` rows of every polyline, one after the other.
    line_starts : numpy.ndarray
        ``(lines + 1,)`` offsets of the polylines in ``points``.
    """

    length_m: float
    spine: npt.NDArray[np.float64]
    spine_length_m: float
    points: npt.NDArray[np.float64]
    line_starts: npt.NDArray[np.int64]


# --------------------------------------------------------------------------- #
# Geometry helpers
# --------------------------------------------------------------------------- #
def _segment_lengths_m(coords: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Great-circle lengths of consecutive segments of ``(lat, lon)`` rows."""
    lat = np.radians(coords[:, 0])
    lon = np.radians(coords[:, 1])
    h = np.sin(np.diff(lat) / 2) ** 2 + np.cos(lat[:-1]) * np.cos(lat[1:]) * np.sin(np.diff(lon) / 2) ** 2
    lengths: npt.NDArray[np.float64] = 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(h)))
    return lengths


def _metres_xy(coords: npt.NDArray[np.float64], lat0: float) -> npt.NDArray[np.float64]:
    """Local equirectangular metres of ``(lat, lon)`` rows."""
    return np.column_stack(
        [
            np.radians(coords[:, 1]) * EARTH_RADIUS_M * math.cos(math.radians(lat0)),
            np.radians(coords[:, 0]) * EARTH_RADIUS_M,
        ]
    )


def _edge_coords(graph: nx.MultiDiGraph, u: Any, v: Any, data: dict[str, Any]) -> list[tuple[float, float]]:
    """``(lat, lon)`` vertices of an edge from ``u`` to ``v``."""
    start = (float(graph.nodes[u]["y"]), float(graph.nodes[u]["x"]))
    end = (float(graph.nodes[v]["y"]), float(graph.nodes[v]["x"]))
    geometry = data.get("geometry")
    if geometry is None:
        return [start, end]
    shape = [(float(lat), float(lon)) for lon, lat in geometry.coords]
    d_keep = (shape[0][0] - start[0]) ** 2 + (shape[0][1] - start[1]) ** 2
    d_flip = (shape[-1][0] - start[0]) ** 2 + (shape[-1][1] - start[1]) ** 2
    return shape[::-1] if d_flip < d_keep else shape


def _edge_names(value: Any) -> list[str]:
    values = value if isinstance(value, (list, tuple)) else [value]
    return [str(v).strip() for v in values if v is not None and str(v).strip()]


class _NameIndex:
    """Names by :func:`~solver.geo.address.match_key`, for exact, embedded and fuzzy lookup.

    Parameters
    ----------
    names : Mapping of str to str
        Written form → canonical name (an alias maps to its place's name).
    """

    def __init__(self, names: Mapping[str, str]) -> None:
        self.by_key: dict[str, str] = {}
        for written, canonical in names.items():
            key = match_key(written)
            if key:
                self.by_key.setdefault(key, canonical)
        self.lengths = sorted({len(k) for k in self.by_key if len(k) >= 2}, reverse=True)
        self.by_significant: dict[str, list[str]] = {}
        for key in sorted(self.by_key):
            self.by_significant.setdefault(significant_key(key), []).append(key)

    def __len__(self) -> int:
        return len(self.by_key)

    def exact(self, text: str) -> str | None:
        """The name ``text`` is (in key form), or None."""
        return self.by_key.get(match_key(text))

    def embedded(self, text: str) -> str | None:
        """The longest name written inside ``text`` (ties: the last written), or None."""
        key = match_key(text)
        for length in self.lengths:
            if length >= len(key):
                continue
            for start in range(len(key) - length, -1, -1):
                found = self.by_key.get(key[start : start + length])
                if found is not None:
                    return found
        return None

    def find(self, text: str, *, fuzzy: bool = True) -> tuple[str, float] | None:
        """Find the name ``text`` means.

        Returns
        -------
        tuple of (str, float) or None
            The canonical name and a match quality in ``(0, 1]``: 1 for the
            exact name, 0.9 for a name inside longer text, the normalised
            Levenshtein similarity (at least :data:`FUZZY_SCORE_CUTOFF`) for a
            fuzzy match of the whole text with the same direction and
            ordinal characters.
        """
        key = match_key(text)
        if not key:
            return None
        if key in self.by_key:
            return self.by_key[key], 1.0
        inside = self.embedded(text)
        if inside is not None:
            return inside, _EMBEDDED_FACTOR
        if not fuzzy:
            return None
        choices = self.by_significant.get(significant_key(key), [])
        found = process.extractOne(
            key, choices, scorer=Levenshtein.normalized_similarity, score_cutoff=FUZZY_SCORE_CUTOFF
        )
        return None if found is None else (self.by_key[found[0]], float(found[1]))


# --------------------------------------------------------------------------- #
# The gazetteer
# --------------------------------------------------------------------------- #
class Gazetteer:
    """Offline geocoder over the streets, houses and places of an extract.

    Parameters
    ----------
    graph : networkx.MultiDiGraph
        An osmnx graph in WGS-84 whose edges carry ``name`` tags.
    addresses : iterable of solver.geo.osmfile.AddressPoint, optional
        Houses of the extract (``addr:street`` + ``addr:housenumber``);
        :meth:`from_osm` reads them from the file.
    places : iterable of solver.geo.osmfile.NamedPlace, optional
        Named places of the extract that are not streets.
    districts : Mapping of str to Location, optional
        District name (``"黄浦区"``) → its seat or centre, for the
        district-level fallback; ``place=suburb|quarter|…`` places are added.
    flag_below : float, optional
        Results with a lower confidence are flagged. Default: ``[geocoding]
        flag_below_confidence`` of the configuration (0.5).

    Raises
    ------
    ValueError
        If there is nothing to geocode against: no named street, house or
        place.

    Notes
    -----
    Without houses in the data, numbered addresses are placed by
    interpolation along the street (:meth:`fraction_for_number`) and their
    confidence is capped at 0.7; a street without a number resolves to the
    middle of its spine (at most 0.6); an intersection to the junction
    node(s) the two streets share (at most 0.8); a house of the extract or
    a place named in full is exact (0.95, 0.85); a district 0.3.
    """

    def __init__(
        self,
        graph: nx.MultiDiGraph,
        *,
        addresses: Iterable[AddressPoint] = (),
        places: Iterable[NamedPlace] = (),
        districts: Mapping[str, Location] | None = None,
        flag_below: float | None = None,
    ) -> None:
        if flag_below is None:
            flag_below = float(defaults().get("geocoding", {}).get("flag_below_confidence", DEFAULT_FLAG_BELOW))
        self.flag_below = float(flag_below)
        # Each street's edges (one per node pair, either direction): the edge data by reference,
        # the coordinates read street by street (few objects live at once on a whole city).
        pieces: dict[str, dict[tuple[Any, Any], tuple[Any, Any, dict[str, Any]]]] = {}
        node_names: dict[Any, set[str]] = {}
        for u, v, data in graph.edges(data=True):
            for name in _edge_names(data.get("name")):
                edges = pieces.setdefault(name, {})
                if (u, v) not in edges and (v, u) not in edges:
                    edges[(u, v)] = (u, v, data)
                node_names.setdefault(u, set()).add(name)
                node_names.setdefault(v, set()).add(name)
        # Street geometry as arrays (see _StreetGeometry); Street objects are made on request.
        self._streets: dict[str, _StreetGeometry] = {}
        for name in sorted(pieces):
            self._streets[name] = self._build_street(graph, pieces.pop(name))
        self._names: list[str] = sorted(self._streets)
        self._name_set = frozenset(self._names)
        self._name_ids = {name: k for k, name in enumerate(self._names)}
        graph_nodes = {n: (float(graph.nodes[n]["y"]), float(graph.nodes[n]["x"])) for n in node_names}
        self._junction_keys, self._junction_points = self._build_junctions(node_names, graph_nodes)
        del graph_nodes, node_names, pieces

        # Houses: column-wise by street and house-number key (see HouseIndex).
        self._houses = HouseIndex.build(addresses, with_geometry=self._name_set)

        # Named places (district-level ones also serve the district fallback).
        self._places: dict[str, list[NamedPlace]] = {}
        place_names: dict[str, str] = {}
        area_names: dict[str, Location] = {}
        for place in places:
            self._places.setdefault(place.name, []).append(place)
            place_names.setdefault(place.name, place.name)
            for alias in place.aliases:
                place_names.setdefault(alias, place.name)
            if place.is_district:
                area_names.setdefault(place.name, Location(lat=place.lat, lon=place.lon, crs="wgs84"))
        self._districts: dict[str, Location] = {**area_names, **dict(districts or {})}

        if not self._streets and not len(self._houses) and not self._places:
            raise ValueError("the map has no named streets, houses or places to geocode against")
        self._street_index = _NameIndex({name: name for name in [*self._names, *self._houses.streets]})
        self._place_index = _NameIndex(place_names)
        self._district_index = _NameIndex({name: name for name in self._districts})
        self._known = frozenset([*self._names, *self._houses.streets, *place_names])

        lats = [float(v) for geo in self._streets.values() if len(geo.points) for v in geo.points[:, 0]]
        lons = [float(v) for geo in self._streets.values() if len(geo.points) for v in geo.points[:, 1]]
        lats += [p.lat for ps in self._places.values() for p in ps]
        lons += [p.lon for ps in self._places.values() for p in ps]
        if len(self._houses):
            south, west, north, east = (float(v) for v in self._houses.extent)
            lats += [south, north]
            lons += [west, east]
        self.bounds = (min(lats), min(lons), max(lats), max(lons))

    # ------------------------------------------------------------------ #
    # Construction
    # ------------------------------------------------------------------ #
    @classmethod
    def from_osm(
        cls,
        path: str | Path,
        *,
        districts: Mapping[str, Location] | None = None,
        flag_below: float | None = None,
    ) -> Gazetteer:
        """Build a gazetteer from an OSM extract: streets, houses and named places.

        Parameters
        ----------
        path : str or pathlib.Path
            OSM XML (optionally compressed) or PBF (with pyosmium).
        districts : Mapping of str to Location, optional
            District seats for the district fallback.
        flag_below : float, optional
            Flagging threshold; see :class:`Gazetteer`.

        Returns
        -------
        Gazetteer
        """
        data = read_osm(path)
        return cls(
            graph_from_osm_data(data),
            addresses=data.address_points(),
            places=data.named_places(),
            districts=districts,
            flag_below=flag_below,
        )

    @staticmethod
    def _build_street(
        graph: nx.MultiDiGraph, edges: dict[tuple[Any, Any], tuple[Any, Any, dict[str, Any]]]
    ) -> _StreetGeometry:
        """Merge a street's edges into polylines and choose its spine."""
        g = nx.Graph()
        loops: list[tuple[Any, list[tuple[float, float]], float]] = []
        for u, v, data in edges.values():
            coords, length = _edge_coords(graph, u, v, data), float(data.get("length", 0.0))
            if u != v:
                g.add_edge(u, v, coords=(u, coords), length=length)
            else:
                loops.append((u, coords, length))

        def oriented(a: Any, b: Any) -> list[tuple[float, float]]:
            edge: tuple[Any, list[tuple[float, float]]] = g.edges[a, b]["coords"]  # networkx is untyped
            tail, coords = edge
            return coords if tail == a else coords[::-1]

        # Polylines: maximal runs through nodes of degree two.
        lines: list[tuple[tuple[float, float], ...]] = []
        seen: set[frozenset[Any]] = set()
        for start in sorted(g.nodes, key=lambda n: (g.degree(n) == 2, str(n))):
            for nxt in sorted(g.neighbors(start), key=str):
                if frozenset((start, nxt)) in seen:
                    continue
                run = list(oriented(start, nxt))
                seen.add(frozenset((start, nxt)))
                prev, cur = start, nxt
                while g.degree(cur) == 2 and cur != start:
                    following = next(n for n in g.neighbors(cur) if n != prev)
                    if frozenset((cur, following)) in seen:
                        break
                    run.extend(oriented(cur, following)[1:])
                    seen.add(frozenset((cur, following)))
                    prev, cur = cur, following
                lines.append(tuple(run))
        lines.extend(tuple(coords) for _, coords, _ in loops)
        total = sum(d["length"] for *_, d in g.edges(data=True)) + sum(length for *_, length in loops)

        # Spine: double-sweep longest path in the largest (by length) piece.
        if g.number_of_edges():
            pieces = sorted(
                (sorted(c, key=str) for c in nx.connected_components(g)),
                key=lambda c: (-g.subgraph(c).size(weight="length"), str(c[0])),
            )
            piece = g.subgraph(pieces[0])
            far_a = _farthest(piece, pieces[0][0])[0]
            path = _farthest(piece, far_a)[1]
            spine: list[tuple[float, float]] = []
            for a, b in itertools.pairwise(path):
                coords = oriented(a, b)
                spine.extend(coords if not spine else coords[1:])
        else:
            longest = max((c for _, c, _ in loops), key=len)
            spine = list(longest)
        spine_arr = np.asarray(spine, dtype=float)
        if _runs_backwards(spine_arr):
            spine_arr = spine_arr[::-1]
        spine_length = float(_segment_lengths_m(spine_arr).sum()) if len(spine_arr) > 1 else 0.0
        points = np.array([p for line in lines for p in line], dtype=float).reshape(-1, 2)
        starts = np.concatenate([[0], np.cumsum([len(line) for line in lines], dtype=np.int64)]).astype(np.int64)
        return _StreetGeometry(
            length_m=float(total),
            spine=np.ascontiguousarray(spine_arr, dtype=float),
            spine_length_m=spine_length,
            points=points,
            line_starts=starts,
        )

    def _build_junctions(
        self, node_names: dict[Any, set[str]], graph_nodes: Mapping[Any, tuple[float, float]]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Junctions of every pair of streets that share a node, sorted by :meth:`_pair_key`.

        Returns
        -------
        tuple of numpy.ndarray
            The pairs' keys, sorted, and their junction points ``(lat, lon)``.
        """
        shared: dict[tuple[str, str], list[Any]] = {}
        for node, names in node_names.items():
            ordered = sorted(names)
            for i, first in enumerate(ordered):
                for second in ordered[i + 1 :]:
                    shared.setdefault((first, second), []).append(node)
        keys = np.empty(len(shared), dtype=np.int64)
        points = np.empty((len(shared), 2))
        for k, (pair, nodes) in enumerate(shared.items()):
            coords = np.array([graph_nodes[n] for n in sorted(nodes, key=str)], dtype=float)
            cluster = _largest_cluster(coords, _JUNCTION_CLUSTER_M)
            keys[k] = self._pair_key(*pair)
            points[k] = coords[cluster].mean(axis=0)
        order = np.argsort(keys)
        return keys[order], points[order]

    def _pair_key(self, first: str, second: str) -> int:
        """Junction key of two street names (-1 when either has no geometry)."""
        a, b = self._name_ids.get(first, -1), self._name_ids.get(second, -1)
        if a < 0 or b < 0:
            return -1
        lo, hi = min(a, b), max(a, b)
        return lo * len(self._names) + hi

    def _geometry(self, name: str) -> _StreetGeometry:
        try:
            return self._streets[name]
        except KeyError:
            raise KeyError(f"no street named {name!r} in the gazetteer") from None

    # ------------------------------------------------------------------ #
    # Lookups
    # ------------------------------------------------------------------ #
    def street_names(self) -> list[str]:
        """Sorted names of every street with geometry in the gazetteer."""
        return list(self._names)

    def place_names(self) -> list[str]:
        """Sorted names of the named places."""
        return sorted(self._places)

    def district_names(self) -> list[str]:
        """Sorted names of the districts known for the district fallback."""
        return sorted(self._districts)

    @property
    def house_count(self) -> int:
        """Number of distinct (street, house number) pairs."""
        return len(self._houses)

    def street(self, name: str) -> Street:
        """The :class:`Street` called exactly ``name``.

        Raises
        ------
        KeyError
            If there is no such street.
        """
        geo = self._geometry(name)
        points, starts = geo.points, geo.line_starts.tolist()
        return Street(
            name=name,
            lines=tuple(
                tuple((float(a), float(b)) for a, b in points[lo:hi].tolist()) for lo, hi in itertools.pairwise(starts)
            ),
            length_m=geo.length_m,
            spine=tuple((float(a), float(b)) for a, b in geo.spine.tolist()),
            spine_length_m=geo.spine_length_m,
        )

    def intersection(self, first: str, second: str) -> tuple[Location, bool] | None:
        """Where two streets (exact names) meet.

        Parameters
        ----------
        first, second : str
            Street names as in :meth:`street_names`.

        Returns
        -------
        tuple of (Location, bool) or None
            The junction and True when they share a node (the centre of the
            largest group of shared nodes, so a crossing of two divided roads
            is its middle); the midpoint of their closest approach and False
            when they come within :data:`NEAR_INTERSECTION_M` without a shared
            node; None otherwise.
        """
        key = self._pair_key(first, second)
        at = int(np.searchsorted(self._junction_keys, key))
        if key >= 0 and at < len(self._junction_keys) and int(self._junction_keys[at]) == key:
            lat, lon = self._junction_points[at]
            return Location(lat=float(lat), lon=float(lon), crs="wgs84"), True
        pa, pb = self._geometry(first).points, self._geometry(second).points
        lat0 = float(pa[:, 0].mean())
        xa, xb = _metres_xy(pa, lat0), _metres_xy(pb, lat0)
        gaps = np.hypot(xa[:, None, 0] - xb[None, :, 0], xa[:, None, 1] - xb[None, :, 1])
        i, j = np.unravel_index(int(np.argmin(gaps)), gaps.shape)
        if gaps[i, j] > NEAR_INTERSECTION_M:
            return None
        mid = (pa[i] + pb[j]) / 2
        return Location(lat=float(mid[0]), lon=float(mid[1]), crs="wgs84"), False

    def fraction_for_number(self, street: str, number: int) -> float:
        """Where house number ``number`` lies along ``street``'s spine.

        Parameters
        ----------
        street : str
            Exact street name.
        number : int
            House (or lane) number.

        Returns
        -------
        float
            ``min(1, number × METRES_PER_NUMBER / spine_length_m)`` clamped to
            ``[0, 1]``: about 5 m per number from the numbering origin, numbers
            beyond the street's end placed at its end.
        """
        length = self._geometry(street).spine_length_m
        if length <= 0:
            return 0.0
        return float(min(1.0, max(0.0, number * METRES_PER_NUMBER / length)))

    def point_on_street(self, name: str, fraction: float) -> Location:
        """The point a given fraction of the way along a street's spine.

        Parameters
        ----------
        name : str
            Exact street name.
        fraction : float
            0 at the numbering origin, 1 at the far end; clamped to ``[0, 1]``.

        Returns
        -------
        solver.model.Location
            WGS-84 point on the street's geometry.
        """
        spine = self._geometry(name).spine
        if len(spine) == 1:
            return Location(lat=float(spine[0, 0]), lon=float(spine[0, 1]), crs="wgs84")
        cumulative = np.concatenate([[0.0], np.cumsum(_segment_lengths_m(spine))])
        target = min(1.0, max(0.0, float(fraction))) * cumulative[-1]
        k = int(np.clip(np.searchsorted(cumulative, target, side="right") - 1, 0, len(spine) - 2))
        span = cumulative[k + 1] - cumulative[k]
        t = 0.0 if span <= 0 else (target - cumulative[k]) / span
        lat, lon = spine[k] + t * (spine[k + 1] - spine[k])
        return Location(lat=float(lat), lon=float(lon), crs="wgs84")

    def match_street(self, text: str) -> tuple[str, float] | None:
        """Find the street a piece of text names.

        Parameters
        ----------
        text : str
            Street text, possibly with surrounding words.

        Returns
        -------
        tuple of (str, float) or None
            The street name and a match quality in ``(0, 1]``: 1 for the exact
            name, 0.9 for the exact name inside longer text, the normalised
            Levenshtein similarity (at least :data:`FUZZY_SCORE_CUTOFF`) for a
            fuzzy match; None when nothing matches.

        Notes
        -----
        A fuzzy match must have the same direction and ordinal characters
        (东西南北中, 一二三…) in the same order as the text: these tell
        different roads apart, so 南京东路 never resolves to 北京东路 and
        西藏路 (ambiguous) not to 西藏中路. Fuzzy matching applies to the
        street text as a whole, not to names buried in longer text.
        """
        return self._street_index.find(text)

    # ------------------------------------------------------------------ #
    # Geocoding
    # ------------------------------------------------------------------ #
    def _result(
        self,
        location: Location,
        confidence: float,
        precision: Precision,
        matched: str,
        house_number: str | None = None,
    ) -> GeocodeResult:
        confidence = round(float(confidence), 3)
        return GeocodeResult(
            location=location,
            confidence=confidence,
            precision=precision,
            matched=matched,
            house_number=house_number,
            provider="gazetteer",
            flagged=confidence < self.flag_below,
            geocoded_at=utc_now(),
        )

    def geocode(self, text: str) -> GeocodeResult | None:
        """Geocode an address against the gazetteer.

        Parameters
        ----------
        text : str
            Address as written; full-width characters, leading country /
            province / city / district, and trailing floor or room details are
            accepted.

        Returns
        -------
        GeocodeResult or None
            In this order: an intersection of two streets; a place named by
            the whole text; a street — its house from the extract
            (``"exact"``), else the number interpolated between known houses
            or along the street, else its midpoint (``"street"``); a place
            named inside the text; the district named in the text
            (``"district"``, flagged). None when nothing matches.

        Raises
        ------
        ValueError
            If ``text`` is empty or only whitespace.

        Examples
        --------
        >>> gaz = load_bundled_gazetteer()
        >>> gaz.geocode("上海市黄浦区西藏中路45号").precision
        'street'
        """
        parsed = parse_address(text, self._known)
        if parsed.is_intersection:
            result = self._geocode_intersection(*parsed.streets)
            if result is not None:
                return result
            # "和"/"交"/"and" may belong to a name: retry the whole text as one street.
            parsed = single_street(parsed.body, parsed.admin)
        if parsed.body:
            place = self._place_index.exact(parsed.body)
            if place is not None:
                return self._place_result(place, 1.0)
            found = self._street_index.find(parsed.streets[0]) if parsed.streets[0] else None
            if found is None and parsed.streets[0] != parsed.body:
                found = self._street_index.find(parsed.body, fuzzy=False)
            if found is not None:
                return self._geocode_on_street(found[0], found[1], parsed)
            place_match = self._place_index.find(parsed.body)
            if place_match is not None:
                return self._place_result(*place_match)
        return self._district_fallback(parsed)

    def _geocode_on_street(self, name: str, quality: float, parsed: ParsedAddress) -> GeocodeResult:
        """A point on street ``name`` for the number in ``parsed`` (if any)."""
        house_number, number = parsed.house_number, parsed.number
        if number is None and not _CJK.search(name):
            western = western_house_number(parsed.body, name)
            if western is not None:
                house_number, number = western
        has_houses = name in self._houses
        if number is not None and has_houses:
            for key in dict.fromkeys((housenumber_key(house_number or ""), str(number))):
                point = self._houses.point(name, key)
                if point is not None:
                    lat, lon = point
                    return self._result(
                        Location(lat=lat, lon=lon, crs="wgs84"), EXACT_CONFIDENCE * quality, "exact", name, house_number
                    )
            between = self._between_houses(name, number, has_spine=name in self._streets)
            if between is not None:
                location, confidence = between
                return self._result(location, confidence * quality, "street", name, house_number)
        if name not in self._streets:
            # A street known only from its houses: their centre.
            lat, lon = self._houses.street_centre(name)
            location = Location(lat=lat, lon=lon, crs="wgs84")
            return self._result(location, STREET_CONFIDENCE * 0.8 * quality, "street", name, house_number)
        if number is not None:
            location = self.point_on_street(name, self.fraction_for_number(name, number))
            confidence = STREET_NUMBER_CONFIDENCE * quality
        else:
            location = self.point_on_street(name, 0.5)
            confidence = STREET_CONFIDENCE * quality
        return self._result(location, confidence, "street", name, house_number)

    def _between_houses(self, street: str, number: int, *, has_spine: bool) -> tuple[Location, float] | None:
        """Interpolate ``number`` between the nearest known houses of its street.

        Numbers of the same parity (the same side of the street) are
        preferred. With known numbers on both sides the point is interpolated
        linearly; with numbers on one side only, the nearest house is used
        when the street has no geometry to interpolate along (else None).
        """
        known = self._houses.numbered(street)
        if known is None:
            return None
        numbers, points = known
        same_side = (numbers % 2) == (number % 2)
        if same_side.any():
            numbers, points = numbers[same_side], points[same_side]
        below = np.flatnonzero(numbers < number)
        above = np.flatnonzero(numbers > number)
        if below.size and above.size:
            lo, hi = below[-1], above[0]
            t = (number - numbers[lo]) / (numbers[hi] - numbers[lo])
            lat, lon = points[lo] + t * (points[hi] - points[lo])
            near = numbers[hi] - numbers[lo] <= 2 * _NEAR_NUMBERS
            confidence = BETWEEN_HOUSES_CONFIDENCE if near else STREET_NUMBER_CONFIDENCE
            return Location(lat=float(lat), lon=float(lon), crs="wgs84"), confidence
        if has_spine:
            return None
        nearest = int(np.argmin(np.abs(numbers - number)))
        lat, lon = points[nearest]
        return Location(lat=float(lat), lon=float(lon), crs="wgs84"), STREET_CONFIDENCE

    def _place_result(self, name: str, quality: float) -> GeocodeResult:
        """The place called ``name``; a name shared by places far apart is flagged as ambiguous."""
        places = self._places[name]
        first = Location(lat=places[0].lat, lon=places[0].lon, crs="wgs84")
        spread = max(haversine_m(first, Location(lat=p.lat, lon=p.lon, crs="wgs84")) for p in places)
        if places[0].is_district:
            return self._result(first, DISTRICT_CONFIDENCE * quality, "district", name)
        if spread > _SAME_PLACE_M:
            return self._result(first, AMBIGUOUS_PLACE_CONFIDENCE * quality, "exact", name)
        lat = sum(p.lat for p in places) / len(places)
        lon = sum(p.lon for p in places) / len(places)
        return self._result(Location(lat=lat, lon=lon, crs="wgs84"), PLACE_CONFIDENCE * quality, "exact", name)

    def _district_fallback(self, parsed: ParsedAddress) -> GeocodeResult | None:
        """The most specific known district named in the prefixes or the text."""
        for part in reversed(parsed.admin):
            name = self._district_index.exact(part)
            if name is not None:
                return self._result(self._districts[name], DISTRICT_CONFIDENCE, "district", name)
        if parsed.body:
            name = self._district_index.exact(parsed.body) or self._district_index.embedded(parsed.body)
            if name is not None:
                return self._result(self._districts[name], DISTRICT_CONFIDENCE, "district", name)
        return None

    def _geocode_intersection(self, first: str, second: str) -> GeocodeResult | None:
        a, b = self.match_street(first), self.match_street(second)
        if a is None or b is None or a[0] == b[0] or a[0] not in self._streets or b[0] not in self._streets:
            return None
        found = self.intersection(a[0], b[0])
        if found is None:
            return None
        location, shared = found
        base = INTERSECTION_CONFIDENCE if shared else NEAR_INTERSECTION_CONFIDENCE
        return self._result(location, base * min(a[1], b[1]), "intersection", f"{a[0]}/{b[0]}")


def _farthest(graph: nx.Graph, source: Any) -> tuple[Any, list[Any]]:
    """The node farthest (by ``length``) from ``source`` and the path to it."""
    lengths, paths = nx.single_source_dijkstra(graph, source, weight="length")
    target = max(sorted(lengths, key=str), key=lambda n: lengths[n])
    return target, paths[target]


def _runs_backwards(spine: npt.NDArray[np.float64]) -> bool:
    """Whether a spine starts at the wrong end for numbering.

    East–west streets are numbered from their east end, north–south streets
    from their south end (Shanghai's convention).
    """
    if len(spine) < 2:
        return False
    d_lat = spine[-1, 0] - spine[0, 0]
    d_lon = (spine[-1, 1] - spine[0, 1]) * math.cos(math.radians(spine[0, 0]))
    if abs(d_lon) >= abs(d_lat):
        return bool(d_lon > 0)  # starts in the west
    return bool(d_lat < 0)  # starts in the north


def _largest_cluster(coords: npt.NDArray[np.float64], radius_m: float) -> npt.NDArray[np.intp]:
    """Indices of the largest single-linkage group of points within ``radius_m``."""
    if len(coords) == 1:
        return np.array([0])
    xy = _metres_xy(coords, float(coords[:, 0].mean()))
    near = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1]) <= radius_m
    labels = np.full(len(coords), -1)
    for start in range(len(coords)):
        if labels[start] >= 0:
            continue
        labels[start] = start
        stack = [start]
        while stack:
            k = stack.pop()
            for j in np.flatnonzero(near[k] & (labels < 0)):
                labels[j] = start
                stack.append(int(j))
    counts = np.bincount(labels)
    return np.flatnonzero(labels == int(np.argmax(counts)))


def configured_districts(settings: Mapping[str, Any] | None = None) -> dict[str, Location]:
    """District seats from the file named by ``[geocoding] districts_file``.

    Parameters
    ----------
    settings : Mapping, optional
        A ``[geocoding]`` table; default: the configuration's.

    Returns
    -------
    dict of str to Location
        District name → seat, WGS-84, over every city of the file (a name
        listed under two cities keeps the first). Empty when no file is
        configured.
    """
    section = dict(defaults().get("geocoding", {}) if settings is None else settings)
    name = section.get("districts_file")
    if not name:
        return {}
    with open(config_dir() / name, "rb") as handle:
        table = tomllib.load(handle)
    out: dict[str, Location] = {}
    for city in table.values():
        for district, (lat, lon) in city.items():
            out.setdefault(district, Location(lat=float(lat), lon=float(lon), crs="wgs84"))
    return out


@functools.cache
def load_bundled_gazetteer() -> Gazetteer:
    """The gazetteer of the configured map (built once per process).

    Streets from the map, houses and named places when the map is an OSM
    extract that has them, districts from :func:`configured_districts`.
    Loaded from the index store (:func:`solver.geo.gazetteerstore.stored_gazetteer`,
    ``[map] index_dir``) when it holds this map with these districts; built
    and stored otherwise.
    """
    from solver.config import bundled_map_path
    from solver.geo.gazetteerstore import map_gazetteer

    def build() -> Gazetteer:
        graph = load_bundled_graph()
        try:
            data = load_bundled_osm_data()
            addresses, places = data.address_points(), data.named_places()
        except (ValueError, OSError):  # a graphml map has neither
            addresses, places = [], []
        return Gazetteer(graph, addresses=addresses, places=places, districts=configured_districts())

    return map_gazetteer(bundled_map_path(), build)
