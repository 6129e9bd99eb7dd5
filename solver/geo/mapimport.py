"""Importing a city's OSM extract: build its indexes once, register it by name.

:func:`import_map` reads an extract (OSM XML or PBF, with pyosmium), builds
the road network and the gazetteer and stores both in the index store
(:mod:`solver.geo.network.store`, :mod:`solver.geo.gazetteerstore`) under the
same keys the service computes when it starts on that file, so that a
service started with the map (``[map] path`` or ``doorstep --map``) loads
instead of building. The import is recorded in ``maps.json`` of the store
(name → file), so ``--map NAME`` works too (:func:`resolve_map`).

* :class:`MapSummary` — what was imported: nodes, edges per mode, addresses,
  street names, bounding box, seconds.
* :func:`import_map` — the import, with a progress callback per stage.
* :func:`resolve_map` — a ``--map`` value (a file or an imported name) → the file.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from solver.model import TRAVEL_MODES

__all__ = ["STAGES", "MapSummary", "import_map", "resolve_map"]

#: The stages reported to the progress callback, in order.
STAGES = ("read", "street graph", "road network", "gazetteer", "stored")


@dataclass(frozen=True)
class MapSummary:
    """What :func:`import_map` imported.

    Attributes
    ----------
    name : str
        The map's name in the store's ``maps.json``.
    path : str
        The file, absolute.
    nodes : int
        Street graph nodes.
    edges : dict of str to int
        Directed edges of each travel mode's routable component.
    addresses : int
        Addressed objects (street + house number) of the extract.
    street_names : int
        Distinct street names.
    bbox : tuple of float
        ``(south, west, north, east)``, degrees WGS-84.
    seconds : float
        Wall time of the import.
    network_key : str
        Folder of the stored network in the store.
    """

    name: str
    path: str
    nodes: int
    edges: dict[str, int]
    addresses: int
    street_names: int
    bbox: tuple[float, float, float, float]
    seconds: float
    network_key: str = ""
    stages: dict[str, float] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """The summary as text lines, for the CLI."""
        south, west, north, east = self.bbox
        edges = ", ".join(f"{mode} {count:,}" for mode, count in self.edges.items())
        return [
            f"map {self.name!r}: {self.path}",
            f"  nodes {self.nodes:,}; edges per mode: {edges}",
            f"  addresses {self.addresses:,}; street names {self.street_names:,}",
            f"  bbox south {south:.5f}, west {west:.5f}, north {north:.5f}, east {east:.5f}",
            f"  imported in {self.seconds:.1f} s ("
            + ", ".join(f"{stage} {sec:.1f} s" for stage, sec in self.stages.items())
            + ")",
        ]


def _registry_path(store: Path) -> Path:
    return store / "maps.json"


def _read_registry(store: Path) -> dict[str, dict[str, object]]:
    path = _registry_path(store)
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def _write_registry(store: Path, registry: dict[str, dict[str, object]]) -> None:
    store.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".maps.", dir=store)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(registry, handle, ensure_ascii=False, indent=2)
        os.replace(tmp, _registry_path(store))
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def import_map(
    path: str | Path,
    *,
    name: str | None = None,
    store_dir: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> MapSummary:
    """Import an OSM extract: build and store its road network and gazetteer.

    Parameters
    ----------
    path : str or pathlib.Path
        OSM XML (optionally compressed) or PBF.
    name : str, optional
        Its name in the store (default: the file name without its suffixes).
    store_dir : str or pathlib.Path, optional
        The index store; default ``[map] index_dir``.
    progress : callable, optional
        Called with each stage of :data:`STAGES` when it is done.

    Returns
    -------
    MapSummary

    Raises
    ------
    ValueError
        If the store is switched off (``index_dir = "off"``) or the extract
        has no streets.
    """
    from solver.geo.gazetteer import Gazetteer, configured_districts
    from solver.geo.gazetteerstore import map_gazetteer
    from solver.geo.loading import graph_from_osm_data
    from solver.geo.network import RoadNetwork
    from solver.geo.network.store import default_store_dir, file_digest, store_key, stored_network
    from solver.geo.osmfile import read_osm

    source = Path(path).resolve()
    store = default_store_dir() if store_dir is None else Path(store_dir)
    if store is None:
        raise ValueError('the index store is off ([map] index_dir = "off"): nothing to import into')
    started = time.perf_counter()
    stages: dict[str, float] = {}
    mark = [started]

    def done(stage: str) -> None:
        now = time.perf_counter()
        stages[stage] = now - mark[0]
        mark[0] = now
        if progress is not None:
            progress(stage)

    data = read_osm(source)
    addresses = data.address_points()
    places = data.named_places()
    done("read")
    graph = graph_from_osm_data(data)
    done("street graph")
    net = stored_network(source, store_dir=store, build=lambda: RoadNetwork(graph))
    if net.engine == "ch":  # contraction hierarchies stored beside the network: services never build them
        from solver.geo.network.chengine import prepare_hierarchies

        prepare_hierarchies(net)
    done("road network")
    gazetteer = map_gazetteer(
        source,
        lambda: Gazetteer(graph, addresses=addresses, places=places, districts=configured_districts()),
        store_dir=store,
    )
    del gazetteer
    done("gazetteer")
    key = store_key(file_digest(source), net.settings)
    label = name or source.name.split(".")[0]
    registry = _read_registry(store)
    registry[label] = {"path": str(source), "network_key": key}
    _write_registry(store, registry)
    done("stored")
    return MapSummary(
        name=label,
        path=str(source),
        nodes=int(graph.number_of_nodes()),
        edges={mode: net.edge_count(mode) for mode in TRAVEL_MODES},
        addresses=len(addresses),
        street_names=len(net.street_names()),
        bbox=net.bounds,
        seconds=time.perf_counter() - started,
        network_key=key,
        stages=stages,
    )


def resolve_map(value: str, *, store_dir: str | Path | None = None) -> Path:
    """The map file a ``--map`` value names.

    Parameters
    ----------
    value : str
        A file path, or the name of a map imported with :func:`import_map`.
    store_dir : str or pathlib.Path, optional
        The index store holding ``maps.json``; default ``[map] index_dir``.

    Returns
    -------
    pathlib.Path
        The file, absolute.

    Raises
    ------
    FileNotFoundError
        If ``value`` is neither an existing file nor an imported name.
    """
    from solver.geo.network.store import default_store_dir

    candidate = Path(value)
    if candidate.is_file():
        return candidate.resolve()
    store = default_store_dir() if store_dir is None else Path(store_dir)
    entry = _read_registry(store).get(value) if store is not None else None
    if entry is not None and Path(str(entry["path"])).is_file():
        return Path(str(entry["path"]))
    raise FileNotFoundError(f"no map file or imported map named {value!r}")
