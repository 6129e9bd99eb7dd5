"""Reading OpenStreetMap extracts: nodes, ways, addresses and named places.

osmnx turns an extract's streets into a routable graph but throws away what
a geocoder needs besides: buildings and entrances with ``addr:street`` +
``addr:housenumber``, and named places (shops, banks, hospitals, squares,
quarters). This module reads an extract once into :class:`OsmData` and
derives from it:

* :meth:`OsmData.address_points` — one :class:`AddressPoint` per addressed
  node or way (a way at the mean of its nodes);
* :meth:`OsmData.named_places` — one :class:`NamedPlace` per named object
  that is not a street (``highway=*`` ways are streets; their names are the
  gazetteer's streets already);
* :meth:`OsmData.write_highway_xml` — an OSM XML file with only the street
  ways and their nodes, which is what :func:`osmnx.graph_from_xml` should be
  given: it would otherwise turn every building outline into "streets", and
  it fails on ways that refer to nodes missing from a clipped extract.

Formats: OSM XML (``.osm``, ``.xml``, also ``.bz2``/``.gz`` compressed) is
read with the standard library; PBF (``.pbf``) needs the optional
``osmium`` package (pyosmium). Relations (multipolygon buildings, boundaries)
are not read.
"""

from __future__ import annotations

import bz2
import gzip
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, cast
from xml.etree import ElementTree
from xml.sax.saxutils import quoteattr

__all__ = [
    "DISTRICT_PLACES",
    "PLACE_KEYS",
    "AddressPoint",
    "NamedPlace",
    "OsmData",
    "largest_street_component",
    "read_osm",
]

#: Tag keys that make a named object a *place* the gazetteer may answer with.
PLACE_KEYS = (
    "amenity",
    "shop",
    "office",
    "tourism",
    "leisure",
    "historic",
    "healthcare",
    "craft",
    "building",
    "place",
    "public_transport",
    "railway",
    "landuse",
    "man_made",
)

#: ``place=*`` values that name an area of a city: answered at district precision.
DISTRICT_PLACES = frozenset({"borough", "city_district", "district", "suburb", "quarter", "neighbourhood"})

#: ``place=*`` values too large to locate anything (a whole city or country).
_TOO_LARGE_PLACES = frozenset({"continent", "country", "state", "region", "province", "county", "city", "town",
                               "municipality", "island", "archipelago"})

#: Extra name tags read as aliases of a place.
_ALIAS_KEYS = ("name:zh", "name:zh-Hans", "name:en", "name:fr", "alt_name", "old_name", "short_name", "official_name")


@dataclass(frozen=True)
class AddressPoint:
    """An addressed object of the extract.

    Attributes
    ----------
    street : str
        ``addr:street``.
    housenumber : str
        ``addr:housenumber`` as tagged (``"7"``, ``"45号"``, ``"12-14"``).
    lat, lon : float
        WGS-84 point: the node, or the mean of the way's nodes.
    osm_id : str
        ``"n123"`` or ``"w456"``.
    """

    street: str
    housenumber: str
    lat: float
    lon: float
    osm_id: str = ""


@dataclass(frozen=True)
class NamedPlace:
    """A named object that is not a street.

    Attributes
    ----------
    name : str
        The ``name`` tag.
    kind : str
        ``"key=value"`` of the tag that makes it a place (``"amenity=bank"``,
        ``"place=suburb"``).
    lat, lon : float
        WGS-84 point: the node, or the mean of the way's nodes.
    aliases : tuple of str
        Other names (``name:en``, ``alt_name``…).
    osm_id : str
        ``"n123"`` or ``"w456"``.
    """

    name: str
    kind: str
    lat: float
    lon: float
    aliases: tuple[str, ...] = ()
    osm_id: str = ""

    @property
    def is_district(self) -> bool:
        """True for areas of a city (``place=suburb``, ``quarter``…)."""
        key, _, value = self.kind.partition("=")
        return key == "place" and value in DISTRICT_PLACES


@dataclass
class OsmData:
    """The nodes and ways of an OSM extract.

    Attributes
    ----------
    coords : dict
        Node id → ``(lat, lon)`` for every node.
    node_tags : dict
        Node id → tags, for tagged nodes only.
    ways : dict
        Way id → ``(node ids, tags)``.
    source : str
        The file it was read from.
    """

    coords: dict[int, tuple[float, float]] = field(default_factory=dict)
    node_tags: dict[int, dict[str, str]] = field(default_factory=dict)
    ways: dict[int, tuple[list[int], dict[str, str]]] = field(default_factory=dict)
    source: str = ""

    # -------------------------------------------------------------- #
    # Derived views
    # -------------------------------------------------------------- #
    def _way_point(self, refs: list[int]) -> tuple[float, float] | None:
        """Mean of a way's nodes present in the extract (a closed way counts its first node once)."""
        if len(refs) > 1 and refs[0] == refs[-1]:
            refs = refs[:-1]
        pts = [self.coords[r] for r in refs if r in self.coords]
        if not pts:
            return None
        return sum(p[0] for p in pts) / len(pts), sum(p[1] for p in pts) / len(pts)

    def _objects(self) -> Iterable[tuple[str, dict[str, str], tuple[float, float]]]:
        for node, tags in self.node_tags.items():
            if node in self.coords:
                yield f"n{node}", tags, self.coords[node]
        for way, (refs, tags) in self.ways.items():
            point = self._way_point(refs)
            if point is not None:
                yield f"w{way}", tags, point

    def address_points(self) -> list[AddressPoint]:
        """Every node and way with both ``addr:street`` and ``addr:housenumber``.

        Returns
        -------
        list of AddressPoint
            In file order, nodes first. A ``addr:housenumber`` listing several
            numbers (``"1;3"``, ``"1,3"``) gives one point per number.
        """
        points = []
        for osm_id, tags, (lat, lon) in self._objects():
            street = tags.get("addr:street", "").strip()
            numbers = tags.get("addr:housenumber", "").strip()
            if not street or not numbers:
                continue
            for number in numbers.replace(",", ";").split(";"):
                if number.strip():
                    points.append(AddressPoint(street, number.strip(), lat, lon, osm_id))
        return points

    def named_places(self) -> list[NamedPlace]:
        """Every named object that is not a street and not larger than a district.

        Returns
        -------
        list of NamedPlace
            Objects with a ``name`` and one of :data:`PLACE_KEYS`; streets
            (``highway=*`` ways), boundaries and whole cities or countries are
            left out. Nodes first, in file order.
        """
        places = []
        for osm_id, tags, (lat, lon) in self._objects():
            name = tags.get("name", "").strip()
            if not name or "boundary" in tags:
                continue
            if osm_id.startswith("w") and "highway" in tags:
                continue
            kind = next((f"{key}={tags[key]}" for key in PLACE_KEYS if key in tags), None)
            if kind is None:
                continue
            if kind.startswith("place=") and tags["place"] in _TOO_LARGE_PLACES:
                continue
            aliases = tuple(dict.fromkeys(tags[k].strip() for k in _ALIAS_KEYS if tags.get(k, "").strip()))
            places.append(NamedPlace(name, kind, lat, lon, tuple(a for a in aliases if a != name), osm_id))
        return places

    def highway_ways(self) -> dict[int, tuple[list[int], dict[str, str]]]:
        """The ways tagged ``highway=*``, their node lists cut to nodes present."""
        out = {}
        for way, (refs, tags) in self.ways.items():
            if "highway" not in tags:
                continue
            present = [r for r in refs if r in self.coords]
            if len(present) >= 2:
                out[way] = (present, tags)
        return out

    def write_highway_xml(self, path: str | Path, *, largest_component: bool = False) -> Path:
        """Write the street ways and their nodes as OSM XML.

        Parameters
        ----------
        path : str or pathlib.Path
            Output file (overwritten).
        largest_component : bool, optional
            Write only the ways and nodes of the largest connected component
            of the street network (:func:`largest_street_component`): the
            graph osmnx builds from the file is then the one it would keep of
            the whole file (``retain_all=False``), without copying it out of
            a larger graph (half a second of CPU on Monaco). The test suite
            checks the graphs are the same, ties included.

        Returns
        -------
        pathlib.Path
            ``path``. The file holds every ``highway=*`` way, cut to the nodes
            present in the extract, and those nodes with their tags; it loads
            with :func:`osmnx.graph_from_xml`.

        Raises
        ------
        ValueError
            If the extract has no street.
        """
        ways = self.highway_ways()
        if not ways:
            raise ValueError(f"the OSM extract {self.source or ''} has no highway ways".replace("  ", " "))
        if largest_component:
            keep = largest_street_component(ways)
            ways = {way: (refs, tags) for way, (refs, tags) in ways.items() if refs[0] in keep}
        used = sorted({r for refs, _ in ways.values() for r in refs})
        path = Path(path)
        with open(path, "w", encoding="utf-8") as out:
            out.write('<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6" generator="doorstep">\n')
            for node in used:
                lat, lon = self.coords[node]
                tags = self.node_tags.get(node)
                if tags:
                    out.write(f' <node id="{node}" lat="{lat!r}" lon="{lon!r}" version="1">\n')
                    _write_tags(out, tags)
                    out.write(" </node>\n")
                else:
                    out.write(f' <node id="{node}" lat="{lat!r}" lon="{lon!r}" version="1"/>\n')
            for way in sorted(ways):
                refs, tags = ways[way]
                out.write(f' <way id="{way}" version="1">\n')
                for ref in refs:
                    out.write(f'  <nd ref="{ref}"/>\n')
                _write_tags(out, tags)
                out.write(" </way>\n")
            out.write("</osm>\n")
        return path


def largest_street_component(ways: Mapping[int, tuple[list[int], dict[str, str]]]) -> set[int]:
    """The nodes of the largest connected component of ``ways`` (way id → (node ids, tags)).

    Consecutive nodes of a way are connected, as in the graph osmnx builds
    from them; on a tie, the component holding the lowest node id wins, as
    osmnx's ``largest_component`` picks the first largest of the components
    found in node order (its nodes are in ascending id order when read from
    :meth:`OsmData.write_highway_xml`'s file).
    """
    parent: dict[int, int] = {}

    def root(node: int) -> int:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for refs, _ in ways.values():
        first = root(refs[0])
        for ref in refs[1:]:
            other = root(ref)
            if other != first:
                parent[other] = first
    members: dict[int, list[int]] = {}
    for node in parent:
        members.setdefault(root(node), []).append(node)
    best = max(members.values(), key=lambda nodes: (len(nodes), -min(nodes)))
    return set(best)


def _write_tags(out: IO[str], tags: dict[str, str]) -> None:
    for key, value in tags.items():
        out.write(f"  <tag k={quoteattr(key)} v={quoteattr(value)}/>\n")


def _open_text(path: Path) -> io.BufferedIOBase:
    if path.suffix == ".bz2":
        return bz2.open(path, "rb")
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    return open(path, "rb")


def _read_xml(path: Path) -> OsmData:
    data = OsmData(source=str(path))
    current_tags: dict[str, str] | None = None
    current_refs: list[int] | None = None
    current_id = 0
    with _open_text(path) as handle:
        for event, elem in ElementTree.iterparse(handle, events=("start", "end")):
            tag = elem.tag
            if event == "start":
                if tag == "node":
                    current_id = int(elem.attrib["id"])
                    lat, lon = elem.attrib.get("lat"), elem.attrib.get("lon")
                    if lat is not None and lon is not None:
                        data.coords[current_id] = (float(lat), float(lon))
                    current_tags, current_refs = {}, None
                elif tag == "way":
                    current_id = int(elem.attrib["id"])
                    current_tags, current_refs = {}, []
                elif tag == "relation":
                    current_tags, current_refs = None, None
                elif tag == "tag" and current_tags is not None:
                    current_tags[elem.attrib["k"]] = elem.attrib.get("v", "")
                elif tag == "nd" and current_refs is not None:
                    current_refs.append(int(elem.attrib["ref"]))
                continue
            if tag == "node":
                if current_tags:
                    data.node_tags[current_id] = current_tags
                current_tags = None
            elif tag == "way":
                data.ways[current_id] = (current_refs or [], current_tags or {})
                current_tags, current_refs = None, None
            elif tag in ("relation", "osm"):
                current_tags, current_refs = None, None
            if tag in ("node", "way", "relation"):
                elem.clear()
    return data


def _read_pbf(path: Path) -> OsmData:
    try:
        import osmium
    except ImportError:  # pragma: no cover - depends on the installation
        raise ImportError(
            f"reading {path.name} needs the 'osmium' package (pyosmium): pip install osmium; "
            "or convert the extract to OSM XML"
        ) from None
    data = OsmData(source=str(path))
    # the NODE | WAY filter yields only nodes and ways; is_node() does not narrow the type
    objects = cast("Iterable[osmium.osm.Node | osmium.osm.Way]",
                   osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY))
    for obj in objects:
        if obj.is_node():
            node = cast("osmium.osm.Node", obj)
            if node.location.valid():
                data.coords[node.id] = (node.location.lat, node.location.lon)
            if len(node.tags):
                data.node_tags[node.id] = {t.k: t.v for t in node.tags}
        elif obj.is_way():
            way = cast("osmium.osm.Way", obj)
            data.ways[way.id] = ([n.ref for n in way.nodes], {t.k: t.v for t in way.tags})
    return data


def read_osm(path: str | Path) -> OsmData:
    """Read an OSM extract's nodes and ways.

    Parameters
    ----------
    path : str or pathlib.Path
        OSM XML (``.osm``/``.xml``, optionally ``.bz2``/``.gz``) or PBF
        (``.pbf``, needs pyosmium).

    Returns
    -------
    OsmData

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ImportError
        For a PBF file when pyosmium is not installed.
    ValueError
        If the file is not readable as OSM data.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"OSM file not found: {path}")
    if path.suffix == ".pbf":
        return _read_pbf(path)
    try:
        return _read_xml(path)
    except ElementTree.ParseError as exc:
        raise ValueError(f"{path} is not readable OSM XML: {exc}") from None
