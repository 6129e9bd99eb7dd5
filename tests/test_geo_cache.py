"""Geocode caches (solver.geo.cache): memory and SQLite, keys and ages."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading

import pytest

from solver.geo.cache import MemoryGeocodeCache, SQLiteGeocodeCache, cache_key
from solver.geo.chain import cache_from_config
from solver.geo.results import Attempt, GeocodeResult, utc_now
from solver.model import Location


def result(provider: str = "nominatim", at: dt.datetime | None = None) -> GeocodeResult:
    return GeocodeResult(
        location=Location(lat=31.2304, lon=121.4737), confidence=0.42, precision="street", matched="西藏中路",
        house_number="45号", provider=provider, flagged=True, geocoded_at=at or utc_now(),
        attempts=(Attempt("nominatim", "found", 0.1),),
    )


@pytest.fixture(params=["memory", "sqlite"])
def cache(request, tmp_path):
    if request.param == "memory":
        yield MemoryGeocodeCache()
    else:
        store = SQLiteGeocodeCache(tmp_path / "sub" / "cache.sqlite")
        yield store
        store.close()


def test_keys_ignore_width_case_and_spacing():
    assert cache_key("西藏中路 ４５ 号") == cache_key("西藏中路45号")
    assert cache_key(" Avenue  Princesse Grace 7") == cache_key("avenue princesse grace 7")
    assert cache_key("Avenue Princesse Grace 7") != cache_key("AvenuePrincesseGrace7")


def test_round_trip_keeps_provider_time_and_flag(cache):
    stored = result()
    cache.put("西藏中路 45 号", stored)
    got = cache.get("西藏中路45号")
    assert got == stored  # location, confidence, precision, matched, number, provider, flag
    assert got.geocoded_at == stored.geocoded_at and got.attempts == ()
    assert cache.get("福州路1号") is None and len(cache) == 1
    cache.put("西藏中路45号", result("baidu"))
    assert cache.get("西藏中路45号").provider == "baidu" and len(cache) == 1
    cache.clear()
    assert len(cache) == 0


def test_old_entries_are_not_served(tmp_path):
    for cache in (MemoryGeocodeCache(dt.timedelta(days=30)),
                  SQLiteGeocodeCache(tmp_path / "c.sqlite", dt.timedelta(days=30))):
        cache.put("old", result(at=utc_now() - dt.timedelta(days=31)))
        cache.put("new", result(at=utc_now() - dt.timedelta(days=29)))
        assert cache.get("old") is None and cache.get("new") is not None


def test_sqlite_cache_is_shared_and_persistent(tmp_path):
    path = tmp_path / "cache.sqlite"
    first = SQLiteGeocodeCache(path)
    first.put("西藏中路45号", result())
    second = SQLiteGeocodeCache(path)
    assert second.get("西藏中路45号").provider == "nominatim"
    with sqlite3.connect(path) as db:  # a plain table others (the service's store) can read
        assert db.execute("SELECT provider, precision FROM geocode_cache").fetchall() == [("nominatim", "street")]
    # Safe from several threads.
    errors = []

    def write(k: int) -> None:
        try:
            for i in range(20):
                first.put(f"addr {k}-{i}", result())
                assert first.get(f"addr {k}-{i}") is not None
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(second) == 81


def test_cache_from_config(tmp_path):
    assert isinstance(cache_from_config({"cache": "memory"}), MemoryGeocodeCache)
    assert cache_from_config({"cache": "none"}) is None
    sqlite = cache_from_config({"cache": "sqlite", "cache_path": "g.sqlite", "cache_ttl_days": 2}, data_dir=tmp_path)
    assert isinstance(sqlite, SQLiteGeocodeCache) and sqlite.path == tmp_path / "g.sqlite"
    assert sqlite.max_age == dt.timedelta(days=2)
    with pytest.raises(ValueError, match="unknown geocode cache 'redis'"):
        cache_from_config({"cache": "redis"})
