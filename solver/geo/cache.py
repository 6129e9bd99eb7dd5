"""Caches of geocoding results, keyed by normalised address text.

The geocoding chain asks its cache first and stores what the providers
answered, with the provider's name and the time of the answer. The interface
is deliberately small — :class:`GeocodeCache` — so that the service's own
store (SQLite or Redis) can implement it later; two implementations ship:

* :class:`MemoryGeocodeCache` — a dictionary, for one process;
* :class:`SQLiteGeocodeCache` — a table in a SQLite file, shared by
  processes and kept across restarts.

Keys are :func:`cache_key` of the address text, so ``"西藏中路４５号"`` and
``"西藏中路 45号"`` share an entry. An entry older than the cache's
``max_age`` is treated as missing.
"""

from __future__ import annotations

import abc
import datetime as dt
import re
import sqlite3
import threading
from pathlib import Path
from typing import TypedDict

from solver.geo.address import normalize_text
from solver.geo.results import GeocodeResult, Precision, utc_now
from solver.model import Location

__all__ = ["GeocodeCache", "MemoryGeocodeCache", "SQLiteGeocodeCache", "cache_key"]


def cache_key(text: str) -> str:
    """The key an address text is cached under.

    Parameters
    ----------
    text : str
        Address as written.

    Returns
    -------
    str
        :func:`~solver.geo.address.normalize_text` (full-width to half-width,
        whitespace collapsed), case-folded, with the spaces around CJK
        characters and digits removed (``"西藏中路 45 号"`` → ``"西藏中路45号"``).
    """
    text = normalize_text(text).casefold()
    return re.sub(r"(?<=[^\x00-\x7f]) | (?=[^\x00-\x7f])", "", text)


class GeocodeCache(abc.ABC):
    """Where geocoding results are kept between requests.

    Parameters
    ----------
    max_age : datetime.timedelta, optional
        Entries older than this (by :attr:`GeocodeResult.geocoded_at`) are
        not returned. None: kept forever.

    Notes
    -----
    Implementations store and return :class:`~solver.geo.results.GeocodeResult`
    objects by :func:`cache_key`; ``attempts`` are not kept. They must be
    safe to use from several threads.
    """

    def __init__(self, max_age: dt.timedelta | None = None) -> None:
        self.max_age = max_age

    def _fresh(self, result: GeocodeResult | None) -> GeocodeResult | None:
        if result is None or self.max_age is None or result.geocoded_at is None:
            return result
        return result if utc_now() - result.geocoded_at <= self.max_age else None

    def get(self, text: str) -> GeocodeResult | None:
        """The cached result for an address text, or None.

        Parameters
        ----------
        text : str
            Address as written (keyed by :func:`cache_key`).

        Returns
        -------
        GeocodeResult or None
            None when missing or older than ``max_age``.
        """
        return self._fresh(self._get(cache_key(text)))

    def put(self, text: str, result: GeocodeResult) -> None:
        """Store the result for an address text (replacing any earlier one).

        Parameters
        ----------
        text : str
            Address as written.
        result : GeocodeResult
            Stored without its attempts; stamped with the current time when
            it has none.
        """
        if result.geocoded_at is None:
            result = GeocodeResult(**(_fields(result) | {"geocoded_at": utc_now()}))
        self._put(cache_key(text), result)

    @abc.abstractmethod
    def _get(self, key: str) -> GeocodeResult | None:
        """The stored result under ``key``."""

    @abc.abstractmethod
    def _put(self, key: str, result: GeocodeResult) -> None:
        """Store ``result`` under ``key``."""

    @abc.abstractmethod
    def __len__(self) -> int:
        """Number of entries."""

    @abc.abstractmethod
    def clear(self) -> None:
        """Remove every entry."""


class _StoredFields(TypedDict):
    """The fields of a :class:`GeocodeResult` a cache keeps."""

    location: Location
    confidence: float
    precision: Precision
    matched: str
    house_number: str | None
    provider: str
    flagged: bool
    geocoded_at: dt.datetime | None


def _fields(result: GeocodeResult) -> _StoredFields:
    """The stored fields of a result (no attempts, not marked cached)."""
    return {
        "location": result.location,
        "confidence": result.confidence,
        "precision": result.precision,
        "matched": result.matched,
        "house_number": result.house_number,
        "provider": result.provider,
        "flagged": result.flagged,
        "geocoded_at": result.geocoded_at,
    }


class MemoryGeocodeCache(GeocodeCache):
    """Results in a dictionary, for one process.

    Parameters
    ----------
    max_age : datetime.timedelta, optional
        See :class:`GeocodeCache`.
    """

    def __init__(self, max_age: dt.timedelta | None = None) -> None:
        super().__init__(max_age)
        self._entries: dict[str, GeocodeResult] = {}
        self._lock = threading.Lock()

    def _get(self, key: str) -> GeocodeResult | None:
        with self._lock:
            return self._entries.get(key)

    def _put(self, key: str, result: GeocodeResult) -> None:
        with self._lock:
            self._entries[key] = GeocodeResult(**_fields(result))

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class SQLiteGeocodeCache(GeocodeCache):
    """Results in a table of a SQLite file, kept across restarts.

    Parameters
    ----------
    path : str or pathlib.Path
        The database file (created with its folder when missing). Other
        tables in the file are left alone.
    max_age : datetime.timedelta, optional
        See :class:`GeocodeCache`.

    Notes
    -----
    One connection per cache object, used under a lock; SQLite's own
    locking lets several processes share the file.
    """

    _SCHEMA = """
        CREATE TABLE IF NOT EXISTS geocode_cache (
            key TEXT PRIMARY KEY,
            lat REAL NOT NULL,
            lon REAL NOT NULL,
            confidence REAL NOT NULL,
            precision TEXT NOT NULL,
            matched TEXT NOT NULL,
            house_number TEXT,
            provider TEXT NOT NULL,
            flagged INTEGER NOT NULL,
            geocoded_at TEXT NOT NULL
        )
    """

    def __init__(self, path: str | Path, max_age: dt.timedelta | None = None) -> None:
        super().__init__(max_age)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=10.0)
        with self._lock, self._db:
            self._db.execute(self._SCHEMA)

    def _get(self, key: str) -> GeocodeResult | None:
        with self._lock:
            row = self._db.execute(
                "SELECT lat, lon, confidence, precision, matched, house_number, provider, flagged, geocoded_at "
                "FROM geocode_cache WHERE key = ?",
                (key,),
            ).fetchone()
        if row is None:
            return None
        lat, lon, confidence, precision, matched, house_number, provider, flagged, at = row
        return GeocodeResult(
            location=Location(lat=lat, lon=lon, crs="wgs84"),
            confidence=confidence,
            precision=precision,
            matched=matched,
            house_number=house_number,
            provider=provider,
            flagged=bool(flagged),
            geocoded_at=dt.datetime.fromisoformat(at),
        )

    def _put(self, key: str, result: GeocodeResult) -> None:
        at = (result.geocoded_at or utc_now()).isoformat()
        loc = result.location
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO geocode_cache VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key, loc.lat, loc.lon, result.confidence, result.precision, result.matched,
                 result.house_number, result.provider, int(result.flagged), at),
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM geocode_cache").fetchone()[0])

    def clear(self) -> None:
        with self._lock, self._db:
            self._db.execute("DELETE FROM geocode_cache")

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()
