"""Stored gazetteers: the offline geocoder's index built once per map file.

Building a :class:`~solver.geo.gazetteer.Gazetteer` merges every named
street into polylines and spines and finds every junction, which takes tens
of seconds on a whole city. :func:`stored_gazetteer` keeps the built index in
the network store's folder (``[map] index_dir``, see
:func:`solver.geo.network.store.default_store_dir`) as one pickle per key —
the map's content hash, :data:`FORMAT_VERSION` and the settings that shape
the index (districts, flagging threshold) — and loads it on later starts.

The file is written to a temporary name and renamed into place, so
concurrent builders never leave a half-written index; the store is the
service's own data folder, trusted like the rest of it (pickles are not for
files from elsewhere).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from solver.config import defaults
from solver.geo.gazetteer import Gazetteer, configured_districts
from solver.geo.results import DEFAULT_FLAG_BELOW

__all__ = ["FORMAT_VERSION", "gazetteer_key", "map_gazetteer", "stored_gazetteer"]

logger = logging.getLogger(__name__)

#: Bumped whenever the gazetteer's structure or the way it is built changes.
FORMAT_VERSION = "gazetteer-store-1"


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
    if path.is_file():
        with open(path, "rb") as handle:
            loaded = pickle.load(handle)
        if isinstance(loaded, Gazetteer):
            return loaded
    gazetteer = build()
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=root)
    except OSError as exc:  # a read-only store: serve the index built in memory
        logger.warning("could not store the gazetteer index in %s: %s", root, exc)
        return gazetteer
    try:
        with os.fdopen(fd, "wb") as handle:
            pickle.dump(gazetteer, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError as exc:
        logger.warning("could not store the gazetteer index in %s: %s", root, exc)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
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
