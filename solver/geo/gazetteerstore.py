"""Stored gazetteers: the offline geocoder's index built once per map file.

Building a :class:`~solver.geo.gazetteer.Gazetteer` merges every named
street into polylines and spines and finds every junction, which takes tens
of seconds on a whole city. :func:`stored_gazetteer` keeps the built index in
the network store's folder (``[map] index_dir``, see
:func:`solver.geo.network.store.default_store_dir`) as one pickle per key —
the map's content hash, :data:`FORMAT_VERSION` and the settings that shape
the index (districts, flagging threshold) — and loads it on later starts.

The large numpy arrays of the index (the house index of a city,
:class:`~solver.geo.houseindex.HouseIndex`) are not in the pickle: they are
written as ``.npy`` files to a folder beside it
(``gazetteer-KEY-TOKEN/``, named in the pickle) and loaded memory-mapped, so
a process that loads a stored city gazetteer maps its houses from the page
cache (shared between processes) instead of holding a private copy.

The arrays' folder and the pickle are written under temporary names and
renamed into place, the pickle last, so concurrent builders never leave a
half-written index; the store is the service's own data folder, trusted like
the rest of it (pickles are not for files from elsewhere).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import shutil
import tempfile
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from solver.config import defaults
from solver.geo.gazetteer import Gazetteer, configured_districts
from solver.geo.results import DEFAULT_FLAG_BELOW

__all__ = ["FORMAT_VERSION", "gazetteer_key", "map_gazetteer", "stored_gazetteer"]

logger = logging.getLogger(__name__)

#: Bumped whenever the gazetteer's structure or the way it is built changes.
FORMAT_VERSION = "gazetteer-store-4"

#: Arrays of at least this many bytes are stored as memory-mapped ``.npy`` files.
_ARRAY_FILE_BYTES = 1 << 16


class _ArrayPickler(pickle.Pickler):
    """Pickles large numpy arrays as references to ``.npy`` files written to ``folder``."""

    def __init__(self, handle: IO[bytes], folder: Path, name: str) -> None:
        super().__init__(handle, protocol=pickle.HIGHEST_PROTOCOL)
        self.folder, self.name, self.count = folder, name, 0

    def persistent_id(self, obj: Any) -> Any:
        if type(obj) is not np.ndarray and not isinstance(obj, np.memmap):
            return None
        if obj.nbytes < _ARRAY_FILE_BYTES or obj.dtype.hasobject:
            return None
        file = f"{self.count}.npy"
        self.count += 1
        np.save(self.folder / file, np.ascontiguousarray(obj), allow_pickle=False)
        return ("npy", f"{self.name}/{file}")


class _ArrayUnpickler(pickle.Unpickler):
    """Loads the ``.npy`` references of :class:`_ArrayPickler` memory-mapped from ``root``."""

    def __init__(self, handle: IO[bytes], root: Path) -> None:
        super().__init__(handle)
        self.root = root

    def persistent_load(self, pid: Any) -> Any:
        kind, relative = pid
        if kind != "npy" or Path(relative).is_absolute() or ".." in Path(relative).parts:
            raise pickle.UnpicklingError(f"unknown reference in a stored gazetteer: {pid!r}")
        return np.load(self.root / relative, mmap_mode="r", allow_pickle=False)


def _load(path: Path) -> Any:
    """A stored gazetteer (None when its files are incomplete)."""
    try:
        with open(path, "rb") as handle:
            return _ArrayUnpickler(handle, path.parent).load()
    except FileNotFoundError:  # its arrays were replaced by a concurrent builder's
        return None


def _save(gazetteer: Gazetteer, path: Path) -> None:
    """Write ``gazetteer`` to ``path`` and its arrays' folder; older folders of the key are removed."""
    root, stem = path.parent, path.name.removesuffix(".pickle")
    name = f"{stem}-{uuid.uuid4().hex[:12]}"
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=root)
        with os.fdopen(fd, "wb") as handle:
            pickler = _ArrayPickler(handle, staging, name)
            pickler.dump(gazetteer)
        if pickler.count:  # (a small map's index has no array large enough for a file)
            os.replace(staging, root / name)
        os.replace(tmp, path)
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        shutil.rmtree(staging, ignore_errors=True)
    for old in root.glob(f"{stem}-*"):
        if old.name != name and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)


def gazetteer_key(source: str, settings: Mapping[str, Any]) -> str:
    """The store key of a gazetteer.

    Parameters
    ----------
    source : str
        The map file's content hash, or any string naming the content exactly.
    settings : Mapping
        What else shapes the index (districts, ``flag_below``), JSON-serialisable.

    Returns
    -------
    str
        32 hex digits.
    """
    digest = hashlib.sha256(FORMAT_VERSION.encode() + b"\0" + source.encode() + b"\0")
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:32]


def stored_gazetteer(
    source: str,
    build: Callable[[], Gazetteer],
    *,
    settings: Mapping[str, Any] | None = None,
    store_dir: str | Path | None,
) -> Gazetteer:
    """The gazetteer of ``source``, from the store when present.

    Parameters
    ----------
    source : str
        The map file's content hash (:func:`solver.geo.network.store.file_digest`)
        or another exact name of the content.
    build : callable
        Builds the gazetteer when it is not stored.
    settings : Mapping, optional
        Part of the key (see :func:`gazetteer_key`).
    store_dir : str or pathlib.Path or None
        The store folder; None builds without storing.

    Returns
    -------
    Gazetteer
    """
    if store_dir is None:
        return build()
    root = Path(store_dir)
    path = root / f"gazetteer-{gazetteer_key(source, settings or {})}.pickle"
    for _ in range(2):  # a second time when a concurrent builder replaced it while it was read
        loaded = _load(path) if path.is_file() else None
        if isinstance(loaded, Gazetteer):
            return loaded
    gazetteer = build()
    try:
        root.mkdir(parents=True, exist_ok=True)
        _save(gazetteer, path)
    except OSError as exc:  # a read-only store: serve the index built in memory
        logger.warning("could not store the gazetteer index in %s: %s", root, exc)
    return gazetteer


def map_gazetteer(
    path: str | Path,
    build: Callable[[], Gazetteer] | None = None,
    *,
    store_dir: str | Path | bool | None = True,
) -> Gazetteer:
    """The gazetteer of a map file with the configured districts, from the store when present.

    Parameters
    ----------
    path : str or pathlib.Path
        The map (OSM XML, PBF or graphml).
    build : callable, optional
        Builds it when it is not stored; default: read the file (streets,
        houses and named places of an OSM extract; streets of a graphml).
    store_dir : str or pathlib.Path or None, optional
        The store; default (True) the configured one
        (:func:`solver.geo.network.store.default_store_dir`); None: do not store.

    Returns
    -------
    Gazetteer
    """
    from solver.geo.loading import load_graph
    from solver.geo.network.store import default_store_dir, file_digest

    districts = configured_districts()

    def default_build() -> Gazetteer:
        if Path(path).name.lower().endswith(".graphml"):
            return Gazetteer(load_graph(path), districts=districts)
        return Gazetteer.from_osm(path, districts=districts)

    settings = {
        "districts": {name: [loc.lat, loc.lon] for name, loc in sorted(districts.items())},
        "flag_below": defaults().get("geocoding", {}).get("flag_below_confidence", DEFAULT_FLAG_BELOW),
    }
    root = default_store_dir() if store_dir is True else (None if store_dir is False else store_dir)
    return stored_gazetteer(file_digest(path), build or default_build, settings=settings, store_dir=root)
