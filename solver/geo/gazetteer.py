"""Offline geocoder built from the street names of an OSM extract.

:class:`Gazetteer` answers Chinese postal addresses without any network
service, from nothing but the named streets of the road graph:

* ``"上海市黄浦区西藏中路45号3楼"`` → a point on 西藏中路 placed by the house
  number (precision ``"street"``);
* ``"西藏中路"`` → the middle of the street (precision ``"street"``);
* ``"西藏中路与福州路交叉口"``, ``"西藏中路 & 福州路"`` → the junction of the
  two streets (precision ``"intersection"``).

OpenStreetMap extracts of Chinese cities rarely carry house numbers, and the
bundled one has none, so a house number can only be *interpolated*: the
street's spine (its longest run, see :class:`Street`) is walked from its
numbering origin, about :data:`METRES_PER_NUMBER` metres per number. Such a
point is consistent and on the right street but not the building's true
position, which is why street-level results never claim more than
:data:`STREET_NUMBER_CONFIDENCE`.

Street names are matched exactly first (also when the street is embedded in
longer text), then fuzzily with :mod:`rapidfuzz` so that a one-character typo
in a name of four or more characters is still found, at a lower confidence.
A fuzzy match must keep the direction and ordinal characters (东西南北中,
一二三…) of the text: 南京东路 never resolves to 南京西路 or 北京东路, which
are different roads.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import networkx as nx
import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from solver.geo.network import load_bundled_graph, load_osm_graph
from solver.model import Location
from solver.travel import EARTH_RADIUS_M

__all__ = [
    "FUZZY_SCORE_CUTOFF",
    "METRES_PER_NUMBER",
    "GeocodeResult",
    "Gazetteer",
    "ParsedAddress",
    "Precision",
    "Street",
    "load_bundled_gazetteer",
    "normalize_text",
    "parse_address",
]

#: How precisely a result locates the address.
Precision = Literal["exact", "street", "intersection", "district"]

#: Interpolated spacing of house numbers along a street, metres per number.
METRES_PER_NUMBER = 5.0

#: Lowest normalised Levenshtein similarity (rapidfuzz) accepted for a fuzzy
#: street match. One wrong character in a four-character name such as
#: 西藏中路 scores exactly 0.75; in a three-character name 0.67 (rejected).
FUZZY_SCORE_CUTOFF = 0.75

#: Confidence of an exact street match with an (interpolated) house number.
STREET_NUMBER_CONFIDENCE = 0.7
#: Confidence of an exact street match without a house number (midpoint).
STREET_CONFIDENCE = 0.6
#: Confidence of an exact intersection at a node both streets share.
INTERSECTION_CONFIDENCE = 0.8
#: Confidence of an intersection where the streets only pass close by.
NEAR_INTERSECTION_CONFIDENCE = 0.6
#: Streets that share no node but come this close count as meeting, metres.
NEAR_INTERSECTION_M = 50.0
#: Shared nodes of one street pair within this distance form one junction.
_JUNCTION_CLUSTER_M = 80.0
#: Factor on confidence when the street was found inside surrounding text.
_EMBEDDED_FACTOR = 0.9

_DIRECTIONS = "东西南北中"
_ORDINALS = "一二三四五六七八九十"
#: Characters a fuzzy match may not change: directions and ordinals tell
#: different roads apart (河南中路 / 河南北路, 中山东一路 / 中山东二路).
_SIGNIFICANT = frozenset(_DIRECTIONS + _ORDINALS + "0123456789")
#: Generic suffixes of street names, longest first.
_STREET_SUFFIXES = ("高架路", "隧道", "大道", "大街", "公路", "路", "街", "道", "弄", "巷", "里", "坊")
_COUNTRY_PREFIXES = ("中华人民共和国", "中国")
#: City names written without 市 that are stripped as a prefix.
_BARE_CITIES = ("上海",)
#: One administrative prefix: a short name ending in 省/市/区/县/... and
#: containing no street-like character.
_ADMIN_PREFIX = re.compile(r"^[^\d路街道弄巷号]{1,7}?(?:特别行政区|自治区|自治州|新区|省|市|区|县|镇|乡)")
_SUBDISTRICT_PREFIX = re.compile(r"^[^\d路弄巷号]{1,6}?街道")
#: A house-number component: ``45号``, ``100弄``, ``5栋`` (ranges ``12-14号``).
_NUMBER_PART = re.compile(r"(\d+)(?:\s*[-~至]\s*\d+)?\s*(支弄|弄|号|栋|幢|座)")
#: A bare number right after a street suffix: ``西藏中路45``.
_BARE_NUMBER = re.compile(r"(?<=[路街道巷])\s*(\d+)(?!\d)")
_INTERSECTION_TAILS = (
    "十字路口",
    "交叉路口",
    "交叉口",
    "交汇处",
    "交界处",
    "交界",
    "交口",
    "路口",
    "附近",
)
#: Separators of two street names, tried in this order.
_INTERSECTION_SEPARATORS = (
    re.compile(r"\s*与\s*"),
    re.compile(r"\s*&\s*"),
    re.compile(r"\s+and\s+", re.IGNORECASE),
    re.compile(r"\s*/\s*"),
    re.compile(r"\s*、\s*"),
    re.compile(r"\s*和\s*"),
    re.compile(r"\s*交\s*"),
)


# --------------------------------------------------------------------------- #
# Results and parsed text
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class GeocodeResult:
    """A geocoded address.

    Attributes
    ----------
    location : solver.model.Location
        The point, WGS-84.
    confidence : float
        0 (guess) to 1 (certain).
    precision : {"exact", "street", "intersection", "district"}
        What the point stands for. The offline gazetteer only returns
        ``"street"`` and ``"intersection"``; the other values exist for
        geocoders that know buildings or only the district.
    matched : str
        The street name matched, or ``"A/B"`` for an intersection.
    house_number : str or None
        The house number read from the text (``"45号"``, ``"100弄5号"``).
    """

    location: Location
    confidence: float
    precision: Precision
    matched: str
    house_number: str | None = None


@dataclass(frozen=True)
class ParsedAddress:
    """An address split into its parts by :func:`parse_address`.

    Attributes
    ----------
    streets : tuple of str
        One street text, or two for an intersection, as written (normalised,
        administrative prefixes removed).
    body : str
        The whole normalised text without administrative prefixes.
    house_number : str or None
        Street-level number designation, such as ``"45号"`` or ``"100弄5号"``
        (floors, rooms and units are dropped).
    number : int or None
        The number that positions the address along the street: the lane
        (弄) number when there is one, else the house (号) number.
    """

    streets: tuple[str, ...]
    body: str = ""
    house_number: str | None = None
    number: int | None = None

    @property
    def is_intersection(self) -> bool:
        return len(self.streets) == 2


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


# --------------------------------------------------------------------------- #
# Text handling
# --------------------------------------------------------------------------- #
def normalize_text(text: str) -> str:
    """Normalise address text for parsing.

    Parameters
    ----------
    text : str
        Address as written.

    Returns
    -------
    str
        NFKC-normalised (full-width digits, letters, spaces and punctuation
        become half-width), traditional 號 read as 号, runs of whitespace
        collapsed to one space, ends stripped.
    """
    text = unicodedata.normalize("NFKC", text).replace("號", "号").replace("衖", "弄")
    return re.sub(r"\s+", " ", text).strip()


def _strip_prefixes(text: str, known: frozenset[str] = frozenset()) -> str:
    """Drop country, province, city, district and subdistrict prefixes.

    Stops as soon as the text starts with a known street name, so that a
    street such as 重庆中路 is never mistaken for a city.
    """
    text = text.strip(" ,，")
    changed = True
    while changed and text:
        changed = False
        if any(text.startswith(name) for name in known):
            break
        for prefix in _COUNTRY_PREFIXES:
            if text.startswith(prefix):
                text, changed = text[len(prefix) :].lstrip(" ,，"), True
                break
        if changed:
            continue
        for pattern in (_ADMIN_PREFIX, _SUBDISTRICT_PREFIX):
            match = pattern.match(text)
            if match:
                text, changed = text[match.end() :].lstrip(" ,，"), True
                break
        if changed:
            continue
        for prefix in _BARE_CITIES:
            if text.startswith(prefix):
                text, changed = text[len(prefix) :].lstrip(" ,，"), True
                break
    return text


def _split_number(text: str) -> tuple[str, str | None, int | None]:
    """Split ``street + number + details`` into street text, designation and number."""
    match = _NUMBER_PART.search(text)
    if match is None:
        bare = _BARE_NUMBER.search(text)
        if bare is None:
            return text.strip(), None, None
        return text[: bare.start()].strip(), bare.group(1), int(bare.group(1))
    street = text[: match.start()].strip()
    parts: list[str] = []
    pos = match.start()
    while True:
        part = _NUMBER_PART.match(text, pos)
        if part is None:
            break
        parts.append(re.sub(r"\s+", "", part.group(0)))
        pos = part.end()
        while pos < len(text) and text[pos] == " ":
            pos += 1
    return street, "".join(parts), int(match.group(1))


def parse_address(text: str, known_streets: frozenset[str] | set[str] = frozenset()) -> ParsedAddress:
    """Split a Chinese address into street(s) and house number.

    Parameters
    ----------
    text : str
        Address as written, e.g. ``"上海市黄浦区西藏中路 45 号 3楼"``,
        ``"人民路100弄5号601室"``, ``"西藏中路与福州路交叉口"``,
        ``"西藏中路 & 福州路"``.
    known_streets : set of str, optional
        Street names that must never be read as an administrative prefix.

    Returns
    -------
    ParsedAddress
        For an intersection, the two street texts; otherwise the street text
        (possibly with surrounding words) and the house number.

    Raises
    ------
    ValueError
        If ``text`` is empty or only whitespace.
    """
    if not text or not text.strip():
        raise ValueError("address text is empty")
    known = frozenset(known_streets)
    body = _strip_prefixes(normalize_text(text), known)
    trimmed = body
    for tail in _INTERSECTION_TAILS:
        if trimmed.endswith(tail):
            trimmed = trimmed[: -len(tail)].rstrip()
            break
    for separator in _INTERSECTION_SEPARATORS:
        pieces = separator.split(trimmed, maxsplit=1)
        if len(pieces) == 2 and all(len(p.strip()) >= 2 for p in pieces):
            first, second = (p.strip() for p in pieces)
            if not _NUMBER_PART.search(second):
                return ParsedAddress(streets=(first, second), body=body)
    return _single_street(body)


def _single_street(body: str) -> ParsedAddress:
    street, house_number, number = _split_number(body)
    return ParsedAddress(streets=(street,), body=body, house_number=house_number, number=number)


def _significant_key(name: str) -> str:
    """The direction and ordinal characters of a name, in order (河南中路 → 南中)."""
    return "".join(ch for ch in name if ch in _SIGNIFICANT)


# --------------------------------------------------------------------------- #
# Geometry helpers
# --------------------------------------------------------------------------- #
def _segment_lengths_m(coords: np.ndarray) -> np.ndarray:
    """Great-circle lengths of consecutive segments of ``(lat, lon)`` rows."""
    lat = np.radians(coords[:, 0])
    lon = np.radians(coords[:, 1])
    h = np.sin(np.diff(lat) / 2) ** 2 + np.cos(lat[:-1]) * np.cos(lat[1:]) * np.sin(np.diff(lon) / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(h)))


def _metres_xy(coords: np.ndarray, lat0: float) -> np.ndarray:
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


# --------------------------------------------------------------------------- #
# The gazetteer
# --------------------------------------------------------------------------- #
class Gazetteer:
    """Offline street-level geocoder over the named streets of a road graph.

    Parameters
    ----------
    graph : networkx.MultiDiGraph
        An osmnx graph in WGS-84 whose edges carry ``name`` tags.

    Notes
    -----
    There are no house numbers in the data: numbered addresses are placed by
    interpolation (:meth:`fraction_for_number`) and their confidence is
    capped at 0.7. A street without a number resolves to the middle of its
    spine with confidence at most 0.6; an intersection to the junction node(s)
    the two streets share, confidence at most 0.8.
    """

    def __init__(self, graph: nx.MultiDiGraph) -> None:
        pieces: dict[str, dict[frozenset, tuple[Any, Any, list[tuple[float, float]], float]]] = {}
        node_names: dict[Any, set[str]] = {}
        for u, v, data in graph.edges(data=True):
            for name in _edge_names(data.get("name")):
                edges = pieces.setdefault(name, {})
                key = frozenset((u, v))
                if key not in edges:
                    edges[key] = (u, v, _edge_coords(graph, u, v, data), float(data.get("length", 0.0)))
                node_names.setdefault(u, set()).add(name)
                node_names.setdefault(v, set()).add(name)
        if not pieces:
            raise ValueError("the road graph has no named streets")
        self._graph_nodes = {n: (float(graph.nodes[n]["y"]), float(graph.nodes[n]["x"])) for n in node_names}
        self._streets: dict[str, Street] = {
            name: self._build_street(name, edges) for name, edges in sorted(pieces.items())
        }
        self._names: list[str] = sorted(self._streets)
        self._name_set = frozenset(self._names)
        self._keys = {name: _significant_key(name) for name in self._names}
        self._junctions = self._build_junctions(node_names)
        lats = [lat for s in self._streets.values() for line in s.lines for lat, _ in line]
        lons = [lon for s in self._streets.values() for line in s.lines for _, lon in line]
        self.bounds = (min(lats), min(lons), max(lats), max(lons))

    # ------------------------------------------------------------------ #
    # Construction
    # ------------------------------------------------------------------ #
    @classmethod
    def from_osm(cls, path: str | Path) -> Gazetteer:
        """Build a gazetteer from an OSM XML extract.

        Parameters
        ----------
        path : str or pathlib.Path
            OSM XML file.

        Returns
        -------
        Gazetteer
        """
        return cls(load_osm_graph(path))

    @staticmethod
    def _build_street(name: str, edges: dict[frozenset, tuple[Any, Any, list, float]]) -> Street:
        """Merge a street's edges into polylines and choose its spine."""
        g = nx.Graph()
        for u, v, coords, length in edges.values():
            if u != v:
                g.add_edge(u, v, coords=(u, coords), length=length)
        loops = [(u, coords, length) for u, v, coords, length in edges.values() if u == v]

        def oriented(a: Any, b: Any) -> list[tuple[float, float]]:
            tail, coords = g.edges[a, b]["coords"]
            return coords if tail == a else coords[::-1]

        # Polylines: maximal runs through nodes of degree two.
        lines: list[tuple[tuple[float, float], ...]] = []
        seen: set[frozenset] = set()
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
            for a, b in zip(path[:-1], path[1:]):
                coords = oriented(a, b)
                spine.extend(coords if not spine else coords[1:])
        else:
            spine = list(max((c for _, c, _ in loops), key=len))
        spine_arr = np.asarray(spine, dtype=float)
        if _runs_backwards(spine_arr):
            spine_arr = spine_arr[::-1]
        spine_length = float(_segment_lengths_m(spine_arr).sum()) if len(spine_arr) > 1 else 0.0
        return Street(
            name=name,
            lines=tuple(lines),
            length_m=float(total),
            spine=tuple((float(a), float(b)) for a, b in spine_arr),
            spine_length_m=spine_length,
        )

    def _build_junctions(self, node_names: dict[Any, set[str]]) -> dict[tuple[str, str], Location]:
        """Junction point of every pair of streets that share a node."""
        shared: dict[tuple[str, str], list[Any]] = {}
        for node, names in node_names.items():
            ordered = sorted(names)
            for i, first in enumerate(ordered):
                for second in ordered[i + 1 :]:
                    shared.setdefault((first, second), []).append(node)
        junctions: dict[tuple[str, str], Location] = {}
        for pair, nodes in shared.items():
            coords = np.array([self._graph_nodes[n] for n in sorted(nodes, key=str)], dtype=float)
            cluster = _largest_cluster(coords, _JUNCTION_CLUSTER_M)
            lat, lon = coords[cluster].mean(axis=0)
            junctions[pair] = Location(lat=float(lat), lon=float(lon))
        return junctions

    # ------------------------------------------------------------------ #
    # Lookups
    # ------------------------------------------------------------------ #
    def street_names(self) -> list[str]:
        """Sorted names of every street in the gazetteer."""
        return list(self._names)

    def street(self, name: str) -> Street:
        """The :class:`Street` called exactly ``name``.

        Raises
        ------
        KeyError
            If there is no such street.
        """
        try:
            return self._streets[name]
        except KeyError:
            raise KeyError(f"no street named {name!r} in the gazetteer") from None

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
        pair = (first, second) if first <= second else (second, first)
        junction = self._junctions.get(pair)
        if junction is not None:
            return junction, True
        a, b = self.street(first), self.street(second)
        pa = np.array([p for line in a.lines for p in line], dtype=float)
        pb = np.array([p for line in b.lines for p in line], dtype=float)
        lat0 = float(pa[:, 0].mean())
        xa, xb = _metres_xy(pa, lat0), _metres_xy(pb, lat0)
        gaps = np.hypot(xa[:, None, 0] - xb[None, :, 0], xa[:, None, 1] - xb[None, :, 1])
        i, j = np.unravel_index(int(np.argmin(gaps)), gaps.shape)
        if gaps[i, j] > NEAR_INTERSECTION_M:
            return None
        mid = (pa[i] + pb[j]) / 2
        return Location(lat=float(mid[0]), lon=float(mid[1])), False

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
        length = self.street(street).spine_length_m
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
        spine = np.asarray(self.street(name).spine, dtype=float)
        if len(spine) == 1:
            return Location(lat=float(spine[0, 0]), lon=float(spine[0, 1]))
        cumulative = np.concatenate([[0.0], np.cumsum(_segment_lengths_m(spine))])
        target = min(1.0, max(0.0, float(fraction))) * cumulative[-1]
        k = int(np.clip(np.searchsorted(cumulative, target, side="right") - 1, 0, len(spine) - 2))
        span = cumulative[k + 1] - cumulative[k]
        t = 0.0 if span <= 0 else (target - cumulative[k]) / span
        lat, lon = spine[k] + t * (spine[k + 1] - spine[k])
        return Location(lat=float(lat), lon=float(lon))

    def match_street(self, text: str) -> tuple[str, float] | None:
        """Find the street a piece of text names.

        Parameters
        ----------
        text : str
            Normalised street text, possibly with surrounding words.

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
        text = text.strip()
        if not text:
            return None
        if text in self._name_set:
            return text, 1.0
        compact = text.replace(" ", "")
        if compact in self._name_set:
            return compact, 1.0
        embedded = [name for name in self._names if name in compact]
        if embedded:
            # The longest name wins (西藏中路 over 中路); ties: the last one written.
            best = max(embedded, key=lambda name: (len(name), compact.rfind(name)))
            return best, _EMBEDDED_FACTOR
        key = _significant_key(compact)
        choices = [name for name in self._names if self._keys[name] == key]
        found = process.extractOne(
            compact, choices, scorer=Levenshtein.normalized_similarity, score_cutoff=FUZZY_SCORE_CUTOFF
        )
        return None if found is None else (found[0], float(found[1]))

    # ------------------------------------------------------------------ #
    # Geocoding
    # ------------------------------------------------------------------ #
    def geocode(self, text: str) -> GeocodeResult | None:
        """Geocode a Chinese address against the gazetteer's streets.

        Parameters
        ----------
        text : str
            Address as written; full-width characters, leading country /
            province / city / district, and trailing floor or room details are
            accepted.

        Returns
        -------
        GeocodeResult or None
            ``"street"`` precision for a street (the number interpolated
            along it, else its midpoint), ``"intersection"`` for two streets;
            None when no street matches.

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
        parsed = parse_address(text, self._name_set)
        if parsed.is_intersection:
            result = self._geocode_intersection(*parsed.streets)
            if result is not None:
                return result
            # "和"/"交" may belong to a name: retry the whole text as one street.
            parsed = _single_street(parsed.body)
        found = self.match_street(parsed.streets[0])
        if found is None:
            return None
        name, quality = found
        if parsed.number is not None:
            location = self.point_on_street(name, self.fraction_for_number(name, parsed.number))
            confidence = STREET_NUMBER_CONFIDENCE * quality
        else:
            location = self.point_on_street(name, 0.5)
            confidence = STREET_CONFIDENCE * quality
        return GeocodeResult(
            location=location,
            confidence=round(confidence, 3),
            precision="street",
            matched=name,
            house_number=parsed.house_number,
        )

    def _geocode_intersection(self, first: str, second: str) -> GeocodeResult | None:
        a, b = self.match_street(first), self.match_street(second)
        if a is None or b is None or a[0] == b[0]:
            return None
        found = self.intersection(a[0], b[0])
        if found is None:
            return None
        location, shared = found
        base = INTERSECTION_CONFIDENCE if shared else NEAR_INTERSECTION_CONFIDENCE
        return GeocodeResult(
            location=location,
            confidence=round(base * min(a[1], b[1]), 3),
            precision="intersection",
            matched=f"{a[0]}/{b[0]}",
        )


def _farthest(graph: nx.Graph, source: Any) -> tuple[Any, list[Any]]:
    """The node farthest (by ``length``) from ``source`` and the path to it."""
    lengths, paths = nx.single_source_dijkstra(graph, source, weight="length")
    target = max(sorted(lengths, key=str), key=lambda n: lengths[n])
    return target, paths[target]


def _runs_backwards(spine: np.ndarray) -> bool:
    """Whether a spine starts at the wrong end for numbering.

    East–west streets are numbered from their east end, north–south streets
    from their south end (Shanghai's convention).
    """
    if len(spine) < 2:
        return False
    d_lat = spine[-1, 0] - spine[0, 0]
    d_lon = (spine[-1, 1] - spine[0, 1]) * math.cos(math.radians(spine[0, 0]))
    if abs(d_lon) >= abs(d_lat):
        return d_lon > 0  # starts in the west
    return d_lat < 0  # starts in the north


def _largest_cluster(coords: np.ndarray, radius_m: float) -> np.ndarray:
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


@functools.cache
def load_bundled_gazetteer() -> Gazetteer:
    """The gazetteer of the bundled demo map (built once per process)."""
    return Gazetteer(load_bundled_graph())
