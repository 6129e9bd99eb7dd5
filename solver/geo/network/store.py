"""Stored road networks: built once per map file, memory-mapped on every later load.

A network is determined by its map file's *content*, the store's
:data:`FORMAT_VERSION` and the settings that shape it (speeds, snapping
distance, access speeds). :func:`store_key` hashes the three; a
:class:`NetworkStore` keeps one folder per key::

    <root>/<key>/manifest.json     settings, fingerprint, string tables
    <root>/<key>/edges.<name>.npy  the street table (EdgeTable)
    <root>/<key>/<mode>.<name>.npy each mode graph (ModeGraph)
    <root>/<key>/<mode>.ch1.*      its contraction hierarchy, written on first use
                                   (:mod:`solver.geo.network.chengine`)

Arrays are plain ``.npy`` files opened with ``numpy.load(mmap_mode="r")``:
loading reads only the manifest, and every process that loads the same
network (the server, ``doorstep worker``, a job's child process) shares the
pages through the operating system's file cache instead of holding a copy.
The segment index of a mode (:func:`~solver.geo.network.snapping.segment_tree`)
is rebuilt on first use.

Writes are concurrency-safe: a network is written into a temporary folder
beside its final place and renamed into place in one step; when another
process got there first its copy is kept and ours discarded. A changed map
file, format or setting gives a new key, hence a new folder (old ones are
left for :meth:`NetworkStore.prune`).

* :func:`file_digest` — SHA-256 of a file's content.
* :func:`store_key` — the key of (content, settings).
* :class:`NetworkStore` — load, save, load-or-build.
* :func:`stored_network` — the network of a map file, from the store when
  present (built and stored otherwise).
* :func:`default_store_dir` — ``[map] index_dir`` of the configuration.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from solver.config import defaults
from solver.geo.network.core import RoadNetwork
from solver.geo.network.graph import EdgeTable, ModeGraph

__all__ = ["FORMAT_VERSION", "NetworkStore", "default_store_dir", "file_digest", "store_key", "stored_network"]

logger = logging.getLogger(__name__)

#: Bumped whenever the stored layout or the way a network is built changes.
FORMAT_VERSION = "network-store-2"

_EDGE_ARRAYS = ("node_ids", "lats", "lons", "tail", "head", "length", "highway", "name", "geom_start", "geom_lonlat")


def file_digest(path: str | Path) -> str:
    """SHA-256 hex digest of a file's content.

    Parameters
    ----------
    path : str or pathlib.Path
        The file.

    Returns
    -------
    str
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def store_key(source: str, settings: Mapping[str, Any]) -> str:
    """The store key of a network.

    Parameters
    ----------
    source : str
        What the network is built from: a map file's :func:`file_digest`, or
        any string that names the content exactly (``"synthetic:400:1"``).
    settings : Mapping
        The resolved settings that shape it (``RoadNetwork.settings``).

    Returns
    -------
    str
        32 hex digits.
    """
    digest = hashlib.sha256(FORMAT_VERSION.encode() + b"\0" + source.encode() + b"\0")
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:32]


def default_store_dir() -> Path | None:
    """The configured store folder.

    Returns
    -------
    pathlib.Path or None
        ``DOORSTEP_INDEX_DIR`` when set, else ``[map] index_dir`` of the
        configuration, or ``<[service] data_dir>/network-index`` when that is
        empty; None when it is ``"off"``.
    """
    config = defaults()
    configured = os.environ.get("DOORSTEP_INDEX_DIR") or str(config.get("map", {}).get("index_dir", "") or "")
    if configured.lower() == "off":
        return None
    if configured:
        return Path(configured)
    return Path(config.get("service", {}).get("data_dir", "var")) / "network-index"


class NetworkStore:
    """Road networks stored as memory-mapped arrays under one folder.

    Parameters
    ----------
    root : str or pathlib.Path
        The folder (created when first written).

    Attributes
    ----------
    builds : int
        Networks this store object had to build (:meth:`load_or_build`).
    loads : int
        Networks it loaded from disk.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.builds = 0
        self.loads = 0

    def path(self, key: str) -> Path:
        """The folder of ``key``."""
        return self.root / key

    def has(self, key: str) -> bool:
        """Whether a complete network is stored under ``key``."""
        return (self.path(key) / "manifest.json").is_file()

    def save(self, key: str, net: RoadNetwork, source: str = "") -> Path:
        """Store ``net`` under ``key`` (atomically; a copy already there is kept).

        Parameters
        ----------
        key : str
            Its :func:`store_key`.
        net : RoadNetwork
            The network.
        source : str, optional
            Recorded in the manifest (a file name, for people).

        Returns
        -------
        pathlib.Path
            The folder.
        """
        final = self.path(key)
        if self.has(key):
            return final
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=self.root))
        try:
            edges = net.edges
            for name in _EDGE_ARRAYS:
                np.save(tmp / f"edges.{name}.npy", np.ascontiguousarray(getattr(edges, name)))
            modes: dict[str, dict[str, float]] = {}
            for mode, g in net._modes.items():
                for name in ModeGraph.ARRAYS:
                    np.save(tmp / f"{mode}.{name}.npy", np.ascontiguousarray(getattr(g, name)))
                modes[mode] = {"access_mps": g.access_mps, "fallback_kmh": g.fallback_kmh}
            manifest = {
                "format": FORMAT_VERSION,
                "key": key,
                "source": source,
                "network_id": net.network_id,
                "settings": net.settings,
                "modes": modes,
                "classes": edges.classes,
                "names": edges.names,
            }
            (tmp / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, default=str))
            try:
                os.rename(tmp, final)
            except OSError:  # another process stored it first (the folder exists and is not empty)
                if not self.has(key):
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return final

    def load(self, key: str, **options: Any) -> RoadNetwork:
        """Load the network stored under ``key``, its arrays memory-mapped.

        Parameters
        ----------
        key : str
            Its :func:`store_key`.
        **options
            ``matrix_cache_dir``, ``matrix_cache_size``, ``engine`` of
            :class:`~solver.geo.network.core.RoadNetwork`.

        Returns
        -------
        RoadNetwork

        Raises
        ------
        FileNotFoundError
            When nothing is stored under ``key``.
        """
        folder = self.path(key)
        manifest = json.loads((folder / "manifest.json").read_text())
        if manifest.get("format") != FORMAT_VERSION:
            raise FileNotFoundError(f"{folder} holds format {manifest.get('format')!r}, not {FORMAT_VERSION!r}")

        def array(name: str) -> Any:
            return np.load(folder / f"{name}.npy", mmap_mode="r")

        edges = EdgeTable(
            **{name: array(f"edges.{name}") for name in _EDGE_ARRAYS},
            classes=list(manifest["classes"]),
            names=list(manifest["names"]),
        )
        modes = {
            mode: ModeGraph(
                mode=mode,
                **{name: array(f"{mode}.{name}") for name in ModeGraph.ARRAYS},
                access_mps=float(scalars["access_mps"]),
                fallback_kmh=float(scalars["fallback_kmh"]),
            )
            for mode, scalars in manifest["modes"].items()
        }
        for g in modes.values():  # where the "ch" engine keeps each mode's hierarchy (chengine.STORE_DIR_KEY)
            g.lazy["store_dir"] = str(folder)
        self.loads += 1
        return RoadNetwork.from_parts(edges, modes, manifest["settings"], network_id=manifest["network_id"], **options)

    def load_or_build(
        self, key: str, build: Callable[[], RoadNetwork], *, source: str = "", **options: Any
    ) -> RoadNetwork:
        """The network under ``key``; built with ``build()`` and stored when missing.

        Parameters
        ----------
        key : str
            Its :func:`store_key`.
        build : callable
            Returns the network when it is not stored yet.
        source : str, optional
            Recorded in the manifest.
        **options
            Passed to :meth:`load`.

        Returns
        -------
        RoadNetwork
            The stored copy (memory-mapped), also right after a build; the
            network built in memory when it cannot be stored (read-only or
            full store: logged as a warning).
        """
        if not self.has(key):
            net = build()
            self.builds += 1
            try:
                self.save(key, net, source)
            except OSError as exc:  # a read-only or full store: serve the network built in memory
                logger.warning("could not store the road network in %s: %s", self.root, exc)
                return net
        return self.load(key, **options)

    def keys(self) -> list[str]:
        """Keys of the networks stored."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "manifest.json").is_file())

    def prune(self, keep: set[str]) -> list[str]:
        """Delete stored networks whose key is not in ``keep``; returns the keys deleted."""
        gone = [key for key in self.keys() if key not in keep]
        for key in gone:
            shutil.rmtree(self.path(key), ignore_errors=True)
        return gone


def stored_network(
    path: str | Path,
    *,
    store_dir: str | Path | None = None,
    build: Callable[[], RoadNetwork] | None = None,
    speeds: Mapping[str, Any] | None = None,
    snap_max_m: float | None = None,
    access_speeds_kmh: Mapping[str, float] | None = None,
    **options: Any,
) -> RoadNetwork:
    """The road network of a map file, from the store when it holds it.

    Parameters
    ----------
    path : str or pathlib.Path
        The map (anything :meth:`RoadNetwork.from_file` reads).
    store_dir : str or pathlib.Path, optional
        The store; default :func:`default_store_dir`. When that is None
        (``index_dir = "off"``) the network is built and not stored.
    build : callable, optional
        Builds the network when it is not stored (default:
        ``RoadNetwork.from_file(path, ...)``).
    speeds, snap_max_m, access_speeds_kmh
        Settings that shape the network (part of the key).
    **options
        ``matrix_cache_dir``, ``matrix_cache_size``, ``engine``.

    Returns
    -------
    RoadNetwork
    """
    shape = {"speeds": speeds, "snap_max_m": snap_max_m, "access_speeds_kmh": access_speeds_kmh}

    def default_build() -> RoadNetwork:
        return RoadNetwork.from_file(path, **shape, **options)

    root = default_store_dir() if store_dir is None else Path(store_dir)
    maker = build or default_build
    if root is None:
        return maker()
    settings = RoadNetwork._settings(speeds, snap_max_m, access_speeds_kmh)
    key = store_key(file_digest(path), settings)
    return NetworkStore(root).load_or_build(key, maker, source=Path(path).name, **options)
