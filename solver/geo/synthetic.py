"""A synthetic city: a realistic grid-and-arterial street network with addresses.

The bundled OSM extract is 2.4 km across; city-scale tests and benchmarks need
a network of tens of thousands of edges that is the same on every machine.
:func:`synthetic_city` builds one, deterministically from a seed:

* a ``size × size`` grid of blocks 100–200 m long (so the default 125 × 125 is
  about 19 km across), every intersection jittered by a few metres;
* every ``arterial_every``-th street an arterial (``primary`` at 60 km/h or
  ``secondary`` at 50 km/h, tagged ``maxspeed``), a few ``tertiary``
  collectors, the rest ``residential`` at the configured class speed;
* one-way couplets: pairs of neighbouring minor streets one-way in opposite
  directions;
* a few diagonal avenues (大道) cutting across the grid, and a small share of
  residential blocks pedestrianised (so driving paths are not plain Manhattan);
* Chinese street names: each east–west street split into 西/中/东 segments
  (长安西路, 长安中路, 长安东路), each north–south street into 南/中/北
  segments; four districts (quadrants).

The graph is an osmnx-compatible :class:`networkx.MultiDiGraph` (node
``x``/``y``, edge ``length``/``highway``/``name``/``oneway``/``maxspeed``,
graph ``crs`` EPSG:4326) centred on Shanghai-like coordinates, so
:class:`~solver.geo.network.RoadNetwork` and
:class:`~solver.geo.gazetteer.Gazetteer` take it as they take an extract.

Houses are numbered like Shanghai's: from the east end of an east–west street
and the south end of a north–south one, odd numbers on the left and even on
the right, :data:`METRES_PER_NUMBER` metres per number.
:meth:`SyntheticCity.addresses` draws random addressed visits (text and true
point) and :meth:`SyntheticCity.address_points` lists house points as an
addressed OSM extract would.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import numpy.typing as npt

from solver.geo.osmfile import AddressPoint
from solver.model import Location
from solver.travel import EARTH_RADIUS_M

__all__ = [
    "METRES_PER_NUMBER",
    "SyntheticAddress",
    "SyntheticCity",
    "synthetic_city",
]

#: Spacing of house numbers along a street, metres per number (both sides
#: together: numbers 1 and 2 face each other).
METRES_PER_NUMBER = 5.0

#: Houses stand this far from the street's centre line, metres.
SETBACK_M = 12.0

#: Characters street base names are made of: no direction (东西南北中) or
#: ordinal (一二三…) characters, which tell roads apart.
_NAME_CHARS = "安平长和华兴光明福康宁泰嘉瑞丰盛永昌德顺庆祥益鸿达文春秋松柏桂兰金银玉宝晨阳新民建江湖海山林"

_DISTRICTS = ("临江区", "望湖区", "青松区", "白鹭区")  # NW, NE, SW, SE quadrants
_CITY = "申江市"


@dataclass(frozen=True)
class SyntheticAddress:
    """A random address of the synthetic city.

    Attributes
    ----------
    text : str
        The address as a customer file would give it.
    location : solver.model.Location
        Its true WGS-84 point.
    street : str
        The street it is on (the first street of an intersection).
    house_number : str or None
        ``"128号"``, ``"128弄5号"``; None for an intersection.
    kind : {"house", "lane", "intersection"}
        What the text names.
    """

    text: str
    location: Location
    street: str
    house_number: str | None
    kind: str


@dataclass
class SyntheticCity:
    """A generated city: its street graph, streets, districts and houses.

    Attributes
    ----------
    graph : networkx.MultiDiGraph
        The osmnx-compatible street graph.
    streets : dict
        Street name → node ids in numbering order (from the east or south end).
    districts : dict
        District name → the district's centre (WGS-84).
    city : str
        The city's name (used in address texts).
    seed : int
        The seed it was generated from.
    """

    graph: nx.MultiDiGraph
    streets: dict[str, list[int]]
    districts: dict[str, Location]
    city: str = _CITY
    seed: int = 0
    _lengths: dict[str, npt.NDArray[np.float64]] = field(default_factory=dict, repr=False)
    _xy: dict[str, npt.NDArray[np.float64]] = field(default_factory=dict, repr=False)

    # -------------------------------------------------------------- #
    @property
    def edge_count(self) -> int:
        """Number of directed edges."""
        edges: int = self.graph.number_of_edges()  # networkx is untyped
        return edges

    def _street_xy(self, name: str) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Local metres of a street's nodes in numbering order, and cumulative lengths."""
        xy = self._xy.get(name)
        if xy is None:
            nodes = self.streets[name]
            lat0 = self.graph.graph["lat0"]
            lat = np.array([self.graph.nodes[n]["y"] for n in nodes])
            lon = np.array([self.graph.nodes[n]["x"] for n in nodes])
            xy = np.column_stack(
                [np.radians(lon) * EARTH_RADIUS_M * math.cos(math.radians(lat0)), np.radians(lat) * EARTH_RADIUS_M]
            )
            self._xy[name] = xy
        cum = self._lengths.get(name)
        if cum is None:
            cum = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])
            self._lengths[name] = cum
        return xy, cum

    def street_length_m(self, name: str) -> float:
        """Length of a street along its centre line, metres."""
        return float(self._street_xy(name)[1][-1])

    def house_location(self, name: str, number: int) -> Location:
        """Where house ``number`` of street ``name`` stands.

        Parameters
        ----------
        name : str
            Street name.
        number : int
            House number, at least 1; at most the street's length divided by
            :data:`METRES_PER_NUMBER`.

        Returns
        -------
        solver.model.Location
            The point ``number × METRES_PER_NUMBER`` metres along the street
            from its numbering origin, :data:`SETBACK_M` to the left (odd
            numbers) or right (even numbers) of the centre line.
        """
        xy, cum = self._street_xy(name)
        along = number * METRES_PER_NUMBER
        if not 0 < along <= cum[-1]:
            raise ValueError(f"{name} has no house number {number}")
        k = int(np.clip(np.searchsorted(cum, along, side="right") - 1, 0, len(cum) - 2))
        direction = xy[k + 1] - xy[k]
        direction = direction / max(float(np.hypot(*direction)), 1e-9)
        point = xy[k] + direction * (along - cum[k])
        left = np.array([-direction[1], direction[0]])
        point = point + left * (SETBACK_M if number % 2 else -SETBACK_M)
        return _to_location(point, self.graph.graph["lat0"])

    def address_points(self, every: int = 1) -> list[AddressPoint]:
        """House points of every street, as an addressed OSM extract lists them.

        Parameters
        ----------
        every : int, optional
            Keep every ``every``-th number (1: all of them).

        Returns
        -------
        list of AddressPoint
            ``street``, ``housenumber`` (digits only, as OSM tags them),
            point and a synthetic id.
        """
        return list(self.iter_address_points(every))

    def iter_address_points(self, every: int = 1) -> Iterator[AddressPoint]:
        """The points of :meth:`address_points` one at a time (a city of millions need not be held in a list).

        Parameters
        ----------
        every : int, optional
            Keep every ``every``-th number (1: all of them).

        Yields
        ------
        AddressPoint
        """
        lat0 = self.graph.graph["lat0"]
        x_scale = EARTH_RADIUS_M * math.cos(math.radians(lat0))
        for name in sorted(self.streets):
            xy, cum = self._street_xy(name)
            top = int(cum[-1] // METRES_PER_NUMBER)
            numbers = np.arange(1, top + 1, every)
            # house_location for all the street's numbers at once (the same operations, element-wise)
            along = numbers * METRES_PER_NUMBER
            k = np.clip(np.searchsorted(cum, along, side="right") - 1, 0, len(cum) - 2)
            direction = xy[k + 1] - xy[k]
            direction = direction / np.maximum(np.hypot(direction[:, 0], direction[:, 1]), 1e-9)[:, None]
            point = xy[k] + direction * (along - cum[k])[:, None]
            left = np.column_stack([-direction[:, 1], direction[:, 0]])
            point = point + left * np.where(numbers % 2 == 1, SETBACK_M, -SETBACK_M)[:, None]
            for number, x, y in zip(numbers.tolist(), point[:, 0].tolist(), point[:, 1].tolist()):
                lat, lon = math.degrees(y / EARTH_RADIUS_M), math.degrees(x / x_scale)
                yield AddressPoint(name, str(number), lat, lon, f"synthetic:{name}:{number}")

    def house_point_count(self, every: int = 1) -> int:
        """How many points :meth:`address_points` lists (without making them)."""
        return sum(
            len(range(1, int(self.street_length_m(name) // METRES_PER_NUMBER) + 1, every)) for name in self.streets
        )

    def district_of(self, location: Location) -> str:
        """The district (quadrant) a point lies in."""
        lat0, lon0 = self.graph.graph["lat0"], self.graph.graph["lon0"]
        north, east = location.lat >= lat0, location.lon >= lon0
        return _DISTRICTS[(0 if north else 2) + (1 if east else 0)]

    def addresses(self, n: int, *, seed: int = 0) -> list[SyntheticAddress]:
        """Draw ``n`` random addresses with their true points.

        Parameters
        ----------
        n : int
            How many.
        seed : int, optional
            Random seed (independent of the city's).

        Returns
        -------
        list of SyntheticAddress
            About 70 % house numbers written in the ways customer files do
            (``"申江市临江区长安西路128号"``, ``"长安西路128号3楼"``,
            full-width digits), 20 % lane addresses (``"长安西路128弄5号601室"``,
            located at the lane entrance, number 128) and 10 % intersections
            (``"长安西路与华平北路交叉口"``).
        """
        rng = np.random.default_rng(seed)
        names = sorted(self.streets)
        usable = [s for s in names if self.street_length_m(s) >= 20 * METRES_PER_NUMBER]
        crossings = _crossings(self.streets)
        crossing_names = sorted(crossings)
        out: list[SyntheticAddress] = []
        for _ in range(n):
            draw = rng.random()
            if draw < 0.1 and crossing_names:
                pair = crossing_names[int(rng.integers(len(crossing_names)))]
                node = crossings[pair]
                loc = Location(lat=self.graph.nodes[node]["y"], lon=self.graph.nodes[node]["x"], crs="wgs84")
                a, b = pair if rng.random() < 0.5 else pair[::-1]
                text = f"{a}与{b}交叉口" if rng.random() < 0.7 else f"{a}{b}路口".replace("路路口", "路口")
                if text.endswith("路口") and "与" not in text:
                    text = f"{a}与{b}路口"
                out.append(SyntheticAddress(text, loc, a, None, "intersection"))
                continue
            street = usable[int(rng.integers(len(usable)))]
            top = int(self.street_length_m(street) // METRES_PER_NUMBER)
            number = int(rng.integers(1, top + 1))
            loc = self.house_location(street, number)
            district = self.district_of(loc)
            if draw < 0.3:
                sub = int(rng.integers(1, 40))
                room = int(rng.integers(1, 30)) * 100 + int(rng.integers(1, 5))
                text = f"{street}{number}弄{sub}号{room}室"
                if rng.random() < 0.5:
                    text = f"{self.city}{district}" + text
                out.append(SyntheticAddress(text, loc, street, f"{number}弄{sub}号", "lane"))
                continue
            style = rng.random()
            if style < 0.4:
                text = f"{self.city}{district}{street}{number}号"
            elif style < 0.7:
                text = f"{street}{number}号{int(rng.integers(1, 30))}楼"
            elif style < 0.85:
                text = f"{district}{street}{_full_width(str(number))}号"
            else:
                text = f"{self.city}{street} {number} 号"
            out.append(SyntheticAddress(text, loc, street, f"{number}号", "house"))
        return out


def _full_width(digits: str) -> str:
    return "".join(chr(ord(ch) - ord("0") + ord("０")) for ch in digits)


def _crossings(streets: dict[str, list[int]]) -> dict[tuple[str, str], int]:
    """One shared node for every pair of streets that cross (first such node)."""
    where: dict[int, list[str]] = {}
    for name, nodes in streets.items():
        for node in nodes:
            where.setdefault(node, []).append(name)
    out: dict[tuple[str, str], int] = {}
    for node in sorted(where):
        names = sorted(set(where[node]))
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                out.setdefault((a, b), node)
    return out


def _to_location(xy: npt.NDArray[np.float64], lat0: float) -> Location:
    lat = math.degrees(float(xy[1]) / EARTH_RADIUS_M)
    lon = math.degrees(float(xy[0]) / (EARTH_RADIUS_M * math.cos(math.radians(lat0))))
    return Location(lat=lat, lon=lon, crs="wgs84")


def _base_names(count: int, rng: np.random.Generator) -> list[str]:
    """``count`` distinct two-character base names, shuffled by ``rng``."""
    chars = list(_NAME_CHARS)
    pairs = [a + b for a in chars for b in chars if a != b]
    if count > len(pairs):
        raise ValueError(f"at most {len(pairs)} street base names are available")
    order = rng.permutation(len(pairs))[:count]
    return [pairs[int(k)] for k in order]


def synthetic_city(
    size: int = 125,
    *,
    seed: int = 0,
    block_m: tuple[float, float] = (100.0, 200.0),
    jitter_m: float = 8.0,
    arterial_every: int = 8,
    diagonals: int = 3,
    closed_share: float = 0.02,
    centre: tuple[float, float] = (31.23, 121.47),
) -> SyntheticCity:
    """Generate a grid-and-arterial city.

    Parameters
    ----------
    size : int, optional
        Intersections per side (``size × size`` nodes). The default, 125,
        gives about 55,000 directed edges over roughly 19 km × 19 km.
    seed : int, optional
        Random seed; the same arguments always give the same city.
    block_m : tuple of float, optional
        Range of block lengths, metres.
    jitter_m : float, optional
        Each intersection is moved by up to this many metres in x and y.
    arterial_every : int, optional
        Every this-many-th street (in both directions) is an arterial.
    diagonals : int, optional
        Number of diagonal avenues.
    closed_share : float, optional
        Share of residential blocks pedestrianised (``highway=pedestrian``:
        closed to vehicles, open to walkers), for detours.
    centre : tuple of float, optional
        ``(lat, lon)`` of the city centre, WGS-84.

    Returns
    -------
    SyntheticCity

    Raises
    ------
    ValueError
        If ``size`` is below 4 or ``block_m`` is not a positive range.
    """
    if size < 4:
        raise ValueError("a synthetic city needs at least 4 × 4 intersections")
    if not 0 < block_m[0] <= block_m[1]:
        raise ValueError("block_m must be a positive (low, high) range")
    rng = np.random.default_rng(seed)
    lat0, lon0 = centre
    xs = np.concatenate([[0.0], np.cumsum(rng.uniform(*block_m, size - 1))])
    ys = np.concatenate([[0.0], np.cumsum(rng.uniform(*block_m, size - 1))])
    xs -= xs[-1] / 2
    ys -= ys[-1] / 2
    jitter = rng.uniform(-jitter_m, jitter_m, size=(size, size, 2))
    gx = xs[None, :] + jitter[:, :, 0]  # [row, col]
    gy = ys[:, None] + jitter[:, :, 1]
    scale_x = EARTH_RADIUS_M * math.cos(math.radians(lat0))
    lon = lon0 + np.degrees(gx / scale_x)
    lat = lat0 + np.degrees(gy / EARTH_RADIUS_M)

    def node(r: int, c: int) -> int:
        return r * size + c + 1

    graph = nx.MultiDiGraph(crs="epsg:4326", created_with="doorstep synthetic_city", simplified=True,
                            lat0=lat0, lon0=lon0, seed=seed)
    for r in range(size):
        for c in range(size):
            graph.add_node(node(r, c), y=float(lat[r, c]), x=float(lon[r, c]), street_count=4)

    bases = _base_names(2 * size + diagonals, rng)
    streets: dict[str, list[int]] = {}
    way_id = [0]

    def metres(u: int, v: int) -> float:
        (ru, cu), (rv, cv) = divmod(u - 1, size), divmod(v - 1, size)
        p1, p2 = math.radians(lat[ru, cu]), math.radians(lat[rv, cv])
        dl = math.radians(lon[rv, cv] - lon[ru, cu])
        h = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
        return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))

    def classify(k: int) -> tuple[str, str | None, str]:
        """Highway class, maxspeed and lanes of the k-th street of a direction."""
        if k % arterial_every == 0:
            return ("primary", "60", "6") if k % (2 * arterial_every) == 0 else ("secondary", "50", "4")
        if k % arterial_every == arterial_every // 2:
            return "tertiary", "40", "2"
        return "residential", None, "2"

    def direction_of(k: int) -> int:
        """+1 / -1 for the streets of a one-way couplet, 0 for two-way streets."""
        phase = k % arterial_every
        if arterial_every >= 6 and phase == 2:
            return 1
        if arterial_every >= 6 and phase == 3:
            return -1
        return 0

    def add_street(chain: list[int], name: str, highway: str, maxspeed: str | None, lanes: str,
                   oneway: int) -> None:
        """Add the edges along ``chain`` (numbering order) as one named way."""
        way_id[0] += 1
        for u, v in itertools.pairwise(chain):
            attrs = {"osmid": way_id[0], "highway": highway, "name": name, "lanes": lanes,
                     "length": metres(u, v)}
            if maxspeed is not None:
                attrs["maxspeed"] = maxspeed
            direction = oneway
            if highway == "residential" and rng.random() < closed_share:
                # A pedestrianised block: closed to vehicles, open to walkers.
                attrs.update(highway="pedestrian", lanes="0")
                direction = 0
            if direction == 0:
                graph.add_edge(u, v, oneway=False, reversed=False, **attrs)
                graph.add_edge(v, u, oneway=False, reversed=True, **attrs)
            elif direction > 0:
                graph.add_edge(u, v, oneway=True, reversed=False, **attrs)
            else:
                graph.add_edge(v, u, oneway=True, reversed=False, **attrs)
        streets[name] = list(chain)

    thirds = [(0, size // 3), (size // 3, 2 * size // 3), (2 * size // 3, size)]
    # East–west streets (rows), numbered from the east: 东 segment first.
    for r in range(size):
        highway, maxspeed, lanes = classify(r)
        base = bases[r]
        for (lo, hi), part in zip(reversed(thirds), ("东", "中", "西")):
            chain = [node(r, c) for c in range(min(hi, size - 1), lo - 1, -1)]
            add_street(chain, f"{base}{part}路", highway, maxspeed, lanes, -direction_of(r))
    # North–south streets (columns), numbered from the south: 南 segment first.
    for c in range(size):
        highway, maxspeed, lanes = classify(c)
        base = bases[size + c]
        for (lo, hi), part in zip(thirds, ("南", "中", "北")):
            chain = [node(r, c) for r in range(lo, min(hi, size - 1) + 1)]
            add_street(chain, f"{base}{part}路", highway, maxspeed, lanes, direction_of(c))
    # Diagonal avenues from the south-west towards the north-east.
    for k in range(diagonals):
        r0 = int(rng.integers(0, size // 3))
        c0 = int(rng.integers(0, size // 3))
        steps = min(size - 1 - r0, size - 1 - c0, int(size * 0.6))
        chain = [node(r0 + i, c0 + i) for i in range(steps + 1)]
        add_street(chain, f"{bases[2 * size + k]}大道", "secondary", "50", "4", 0)

    # Number every street as Shanghai does (and as the gazetteer interpolates):
    # an east-west street from its east end, a north-south one from its south end.
    for name, chain in streets.items():
        d_lat = lat.flat[chain[-1] - 1] - lat.flat[chain[0] - 1]
        d_lon = (lon.flat[chain[-1] - 1] - lon.flat[chain[0] - 1]) * math.cos(math.radians(lat0))
        if (abs(d_lon) >= abs(d_lat) and d_lon > 0) or (abs(d_lon) < abs(d_lat) and d_lat < 0):
            streets[name] = chain[::-1]
    districts = {}
    half = [(-1, -1), (-1, 1), (1, -1), (1, 1)]  # (north?, east?) signs for NW, NE, SW, SE
    for name, (ns, ew) in zip(_DISTRICTS, half):
        y = -ns * ys[-1] / 2
        x = ew * xs[-1] / 2
        districts[name] = _to_location(np.array([x, y]), lat0)
        districts[name] = Location(lat=districts[name].lat + lat0, lon=districts[name].lon + lon0, crs="wgs84")
    return SyntheticCity(graph=graph, streets=streets, districts=districts, seed=seed)
