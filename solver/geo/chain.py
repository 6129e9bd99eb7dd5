"""The geocoding chain: cache → online providers → offline gazetteer.

:class:`GeocodingChain` is the geocoder the solver uses. For each address it
asks, in order:

1. its :class:`~solver.geo.cache.GeocodeCache`;
2. each configured online provider (:mod:`solver.geo.providers`) — none by
   default, so the default chain is fully offline;
3. the offline :class:`~solver.geo.gazetteer.Gazetteer`.

The first answer whose confidence reaches the flag threshold is accepted.
A weaker answer is kept while later providers are asked; the best one wins
in the end (and is flagged). A provider that raises — HTTP error, bad key,
quota, timeout, unreadable answer — gives way to the next; what happened is
recorded as an :class:`~solver.geo.results.Attempt` in the result and the
outcome, never raised. Answers are cached, except when a provider failed on
the way (a later try may do better).

:meth:`GeocodingChain.geocode` has the shape the solver expects (a result
with ``.location``, or None); :meth:`GeocodingChain.lookup` also reports the
attempts and a bad text; :meth:`GeocodingChain.geocode_many` geocodes a
batch with de-duplication and progress.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from geopy.exc import GeocoderTimedOut, GeocoderUnavailable

from solver.config import defaults
from solver.geo.cache import GeocodeCache, MemoryGeocodeCache, SQLiteGeocodeCache, cache_key
from solver.geo.results import (
    DEFAULT_FLAG_BELOW,
    Attempt,
    AttemptStatus,
    GeocodeOutcome,
    GeocodeResult,
    utc_now,
)
from solver.model import Location

__all__ = ["BatchProgress", "GeocodingChain", "Provider", "cache_from_config"]

#: Batch progress callback: ``progress(done, total)`` over distinct addresses.
BatchProgress = Callable[[int, int], None]


class Provider(Protocol):
    """Anything the chain can ask: a name and ``geocode(text)``."""

    name: str

    def geocode(self, text: str, *, flag_below: float = DEFAULT_FLAG_BELOW) -> GeocodeResult | None:
        """A result, None for "no such place", or an exception on failure."""
        ...


class _GazetteerProvider:
    """The offline gazetteer as the chain's last provider, built on first use."""

    name = "gazetteer"

    def __init__(self, gazetteer: Any) -> None:
        self._source = gazetteer
        self._built: Any = None if callable(gazetteer) and not hasattr(gazetteer, "geocode") else gazetteer
        self._lock = threading.Lock()

    @property
    def gazetteer(self) -> Any:
        if self._built is None:
            with self._lock:
                if self._built is None:
                    self._built = self._source()
        return self._built

    def geocode(self, text: str, *, flag_below: float = DEFAULT_FLAG_BELOW) -> GeocodeResult | None:
        result: GeocodeResult | None = self.gazetteer.geocode(text)
        if result is None:
            return None
        return replace(result, provider=self.name, flagged=result.confidence < flag_below)


class GeocodingChain:
    """Cache, then online providers, then the offline gazetteer.

    Parameters
    ----------
    providers : sequence of Provider, optional
        Online providers, asked in order.
    gazetteer : Gazetteer or callable, optional
        The offline gazetteer, or a function that builds it (called on first
        use, so a chain whose providers answer everything never builds it).
        None: no offline fallback.
    cache : GeocodeCache, optional
        None: nothing is cached.
    flag_below : float, optional
        Results below this confidence are flagged, and the chain keeps asking
        later providers for a better one.
    skipped : Mapping of str to str, optional
        Providers configured but not built (name → reason), reported as
        ``skipped`` attempts.

    Examples
    --------
    >>> chain = GeocodingChain.from_config()  # offline by default
    >>> chain.geocode("上海市黄浦区西藏中路45号").provider
    'gazetteer'
    """

    def __init__(
        self,
        providers: Sequence[Provider] = (),
        *,
        gazetteer: Any = None,
        cache: GeocodeCache | None = None,
        flag_below: float = DEFAULT_FLAG_BELOW,
        skipped: Mapping[str, str] | None = None,
    ) -> None:
        self.providers: list[Provider] = list(providers)
        self._gazetteer = None if gazetteer is None else _GazetteerProvider(gazetteer)
        self.cache = cache
        self.flag_below = float(flag_below)
        self.skipped = dict(skipped or {})

    # ------------------------------------------------------------------ #
    # Construction
    # ------------------------------------------------------------------ #
    @classmethod
    def from_config(
        cls,
        settings: Mapping[str, Any] | None = None,
        *,
        gazetteer: Any = None,
        cache: GeocodeCache | None = None,
        data_dir: str | Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> GeocodingChain:
        """Build the chain the ``[geocoding]`` configuration describes.

        Parameters
        ----------
        settings : Mapping, optional
            A ``[geocoding]`` table; default: the configuration's.
        gazetteer : Gazetteer or callable, optional
            The offline gazetteer; default: the bundled map's
            (:func:`~solver.geo.gazetteer.load_bundled_gazetteer`, built on
            first use) when ``offline_gazetteer`` is true.
        cache : GeocodeCache, optional
            Replaces the configured cache (for example the service's store).
        data_dir : str or pathlib.Path, optional
            Folder for a relative SQLite ``cache_path``; default: ``[service]
            data_dir``.
        environ : Mapping, optional
            Where API keys are read; default: ``os.environ``.

        Returns
        -------
        GeocodingChain

        Raises
        ------
        ValueError
            On an invalid provider entry or cache setting.
        """
        from solver.geo.providers import build_providers

        config = defaults()
        section = dict(config.get("geocoding", {}) if settings is None else settings)
        flag_below = float(section.get("flag_below_confidence", DEFAULT_FLAG_BELOW))
        providers, skipped = build_providers(
            list(section.get("providers", [])), user_agent=section.get("user_agent"), environ=environ
        )
        if gazetteer is None and section.get("offline_gazetteer", True):
            from solver.geo.gazetteer import load_bundled_gazetteer

            gazetteer = load_bundled_gazetteer
        if cache is None:
            if data_dir is None:
                data_dir = config.get("service", {}).get("data_dir", "var")
            cache = cache_from_config(section, data_dir=data_dir)
        return cls(providers, gazetteer=gazetteer, cache=cache, flag_below=flag_below, skipped=skipped)

    @property
    def provider_names(self) -> list[str]:
        """Names of the sources asked after the cache, in order."""
        return [p.name for p in self.providers] + ([self._gazetteer.name] if self._gazetteer else [])

    # ------------------------------------------------------------------ #
    # Geocoding
    # ------------------------------------------------------------------ #
    def lookup(self, text: object) -> GeocodeOutcome:
        """Geocode one address and report how.

        Parameters
        ----------
        text : str
            Address as written.

        Returns
        -------
        GeocodeOutcome
            The result (or None) and every attempt. An empty or non-text
            address gives ``error`` (``"address text is empty"``) and no
            attempt; nothing is raised.
        """
        if not isinstance(text, str) or not text.strip():
            return GeocodeOutcome(query=str(text) if text is not None else "", result=None,
                                  error="address text is empty")
        attempts: list[Attempt] = []
        if self.cache is not None:
            started = time.perf_counter()
            cached = self.cache.get(text)
            if cached is not None:
                attempts.append(Attempt("cache", "cached", time.perf_counter() - started, None, cached.confidence))
                result = replace(cached, cached=True, attempts=tuple(attempts))
                return GeocodeOutcome(query=text, result=result, attempts=tuple(attempts))
        for name, reason in self.skipped.items():
            attempts.append(Attempt(name, "skipped", 0.0, reason))
        best: GeocodeResult | None = None
        sources: list[Provider] = [*self.providers, *([self._gazetteer] if self._gazetteer else [])]
        for provider in sources:
            started = time.perf_counter()
            try:
                found = provider.geocode(text, flag_below=self.flag_below)
            except Exception as exc:  # noqa: BLE001 - any provider failure falls through to the next one
                timed_out = isinstance(exc, GeocoderTimedOut) or (
                    isinstance(exc, GeocoderUnavailable) and "timed out" in str(exc).lower()
                )
                status: AttemptStatus = "timeout" if timed_out else "failed"
                attempts.append(Attempt(provider.name, status, time.perf_counter() - started, _describe(exc)))
                continue
            seconds = time.perf_counter() - started
            if found is None:
                attempts.append(Attempt(provider.name, "not_found", seconds))
                continue
            attempts.append(Attempt(provider.name, "found", seconds, None, found.confidence))
            if best is None or found.confidence > best.confidence:
                best = found
            if not found.flagged:
                break
        if best is None:
            return GeocodeOutcome(query=text, result=None, attempts=tuple(attempts))
        best = replace(best, attempts=tuple(attempts), geocoded_at=best.geocoded_at or utc_now())
        transient = any(a.status in ("failed", "timeout") for a in attempts)
        if self.cache is not None and not transient:
            self.cache.put(text, best)
        return GeocodeOutcome(query=text, result=best, attempts=tuple(attempts))

    def geocode(self, text: str) -> GeocodeResult | None:
        """Geocode one address (the solver's geocoder interface).

        Parameters
        ----------
        text : str
            Address as written.

        Returns
        -------
        GeocodeResult or None
            The accepted result, with its ``attempts``; None when no source
            found the address.

        Raises
        ------
        ValueError
            If ``text`` is empty or only whitespace ("address text is empty").
        """
        outcome = self.lookup(text)
        if outcome.error is not None:
            raise ValueError(outcome.error)
        return outcome.result

    def geocode_many(self, texts: Sequence[object], progress: BatchProgress | None = None) -> list[GeocodeOutcome]:
        """Geocode a batch of addresses, each distinct address once.

        Parameters
        ----------
        texts : sequence of str
            Addresses as written; repeats (also repeats that differ only in
            full-width characters, case or spacing) are geocoded once.
        progress : callable, optional
            Called as ``progress(done, total)`` after each distinct address
            (``total`` distinct addresses), and once with ``(0, total)``
            before the first.

        Returns
        -------
        list of GeocodeOutcome
            One per input text, in order. Bad texts get an outcome with
            ``error``; nothing is raised.
        """
        keys: list[str | None] = []
        order: dict[str, str] = {}
        for text in texts:
            if not isinstance(text, str) or not text.strip():
                keys.append(None)
                continue
            key = cache_key(text)
            keys.append(key)
            order.setdefault(key, text)
        total = len(order)
        if progress is not None:
            progress(0, total)
        outcomes: dict[str, GeocodeOutcome] = {}
        for done, (key, text) in enumerate(order.items(), start=1):
            outcomes[key] = self.lookup(text)
            if progress is not None:
                progress(done, total)
        out = []
        for text, text_key in zip(texts, keys):
            if text_key is None:
                out.append(GeocodeOutcome(query="" if text is None else str(text), result=None,
                                          error="address text is empty"))
            else:
                assert isinstance(text, str)  # only texts get a key
                shared = outcomes[text_key]
                out.append(shared if shared.query == text else replace(shared, query=text))
        return out

    def confirm(self, text: str, location: Location, *, by: str = "dispatcher") -> GeocodeResult:
        """Record a point confirmed by a person for an address.

        Parameters
        ----------
        text : str
            Address as written.
        location : solver.model.Location
            The confirmed point (any datum; stored in WGS-84).
        by : str, optional
            Recorded as the provider.

        Returns
        -------
        GeocodeResult
            Confidence 1, precision ``"exact"``, not flagged; stored in the
            cache (when there is one) so later plans use it.
        """
        from solver.geo.coords import to_wgs84

        result = GeocodeResult(location=to_wgs84(location), confidence=1.0, precision="exact",
                               matched=text, provider=by, flagged=False, geocoded_at=utc_now())
        if self.cache is not None:
            self.cache.put(text, result)
        return result


def _describe(exc: BaseException) -> str:
    """``"ClassName: message"`` of an exception, for attempts."""
    message = str(exc).strip()
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def cache_from_config(settings: Mapping[str, Any], *, data_dir: str | Path = "var") -> GeocodeCache | None:
    """The geocode cache a ``[geocoding]`` table describes.

    Parameters
    ----------
    settings : Mapping
        ``cache`` (``"memory"``, ``"sqlite"`` or ``"none"``), ``cache_path``
        and ``cache_ttl_days``.
    data_dir : str or pathlib.Path, optional
        Folder a relative ``cache_path`` is under.

    Returns
    -------
    GeocodeCache or None

    Raises
    ------
    ValueError
        On an unknown cache kind.
    """
    kind = str(settings.get("cache", "memory")).lower()
    ttl = settings.get("cache_ttl_days")
    max_age = dt.timedelta(days=float(ttl)) if ttl else None
    if kind == "none":
        return None
    if kind == "memory":
        return MemoryGeocodeCache(max_age)
    if kind == "sqlite":
        path = Path(settings.get("cache_path", "geocode-cache.sqlite"))
        if not path.is_absolute():
            path = Path(data_dir) / path
        return SQLiteGeocodeCache(path, max_age)
    raise ValueError(f"unknown geocode cache {kind!r}; use memory, sqlite or none")
