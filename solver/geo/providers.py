"""Online geocoding providers behind geopy, configured from TOML.

Each entry of ``[[geocoding.providers]]`` in the configuration becomes an
:class:`OnlineProvider`: a geopy geocoder (Nominatim at any domain, Baidu,
Google, ArcGIS, or the AMap and Tencent geocoders defined here in geopy's
style) wrapped in geopy's :class:`~geopy.extra.rate_limiter.RateLimiter`
(minimum delay between calls, retries after server errors and timeouts),
with a per-call timeout. Its answer is turned into a
:class:`~solver.geo.results.GeocodeResult`:

* coordinates converted to WGS-84 — Baidu answers in BD-09, AMap and Tencent
  in GCJ-02 (:mod:`solver.geo.coords`); the datum of any provider can be set
  with ``crs``;
* a confidence and a precision read from what the provider says about its
  own answer (Nominatim's ``place_rank``, Baidu's ``confidence`` and
  ``level``, AMap's ``level``, Tencent's ``reliability`` and ``level``,
  Google's ``location_type``, ArcGIS's ``score`` and ``Addr_type``).

API keys are never in the configuration: a provider names the environment
variable holding its key (``api_key_env``); :func:`build_providers` skips a
provider whose key is missing and says why.

Errors are raised by :meth:`OnlineProvider.geocode` (after the configured
retries); :class:`~solver.geo.chain.GeocodingChain` catches them, reports
them and moves on to the next provider.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypedDict
from urllib.parse import urlencode

from geopy.exc import (
    GeocoderAuthenticationFailure,
    GeocoderQueryError,
    GeocoderQuotaExceeded,
    GeocoderServiceError,
)
from geopy.extra.rate_limiter import RateLimiter
from geopy.geocoders import ArcGIS, BaiduV3, GoogleV3, Nominatim
from geopy.geocoders.base import DEFAULT_SENTINEL, Geocoder
from geopy.location import Location as GeopyLocation

from solver.geo.coords import location_from
from solver.geo.results import DEFAULT_FLAG_BELOW, GeocodeResult, Precision, utc_now

__all__ = [
    "PROVIDER_KINDS",
    "AMap",
    "OnlineProvider",
    "ProviderSettings",
    "Tencent",
    "build_provider",
    "build_providers",
]


# --------------------------------------------------------------------------- #
# geopy geocoders for AMap and Tencent (not shipped by geopy)
# --------------------------------------------------------------------------- #
class _KeyedGeocoder(Geocoder):  # type: ignore[misc]  # geopy ships no type hints: Geocoder is Any
    """A geopy geocoder for a web service that takes an API key and answers at
    ``{scheme}://{domain}{geocode_path}``; ``default_domain`` is the public host."""

    geocode_path = "/"
    default_domain = ""

    def __init__(
        self,
        api_key: str,
        *,
        domain: str | None = None,
        scheme: str | None = None,
        timeout: Any = DEFAULT_SENTINEL,
        proxies: Any = DEFAULT_SENTINEL,
        user_agent: str | None = None,
        ssl_context: Any = DEFAULT_SENTINEL,
        adapter_factory: Any = None,
    ) -> None:
        super().__init__(scheme=scheme, timeout=timeout, proxies=proxies, user_agent=user_agent,
                         ssl_context=ssl_context, adapter_factory=adapter_factory)
        self.api_key = api_key
        host = (domain or self.default_domain).strip("/")
        self.api = f"{self.scheme}://{host}{self.geocode_path}"


class AMap(_KeyedGeocoder):
    """Geocoder for AutoNavi / AMap (高德) Web Service API, in geopy's style.

    Parameters
    ----------
    api_key : str
        The Web Service key.
    domain : str, optional
        API host.
    scheme, timeout, proxies, user_agent, ssl_context, adapter_factory
        As for any :class:`geopy.geocoders.base.Geocoder`.

    Notes
    -----
    Answers are in GCJ-02; ``raw`` is the ``geocodes`` entry (``location``
    as ``"lon,lat"``, ``level`` such as 门牌号, 道路, 区县).
    """

    geocode_path = "/v3/geocode/geo"

    default_domain = "restapi.amap.com"

    def geocode(
        self, query: str, *, exactly_one: bool = True, timeout: Any = DEFAULT_SENTINEL
    ) -> GeopyLocation | list[GeopyLocation] | None:
        """Geocode ``query``; see :meth:`geopy.geocoders.base.Geocoder.geocode`."""
        url = f"{self.api}?{urlencode({'address': query, 'key': self.api_key, 'output': 'JSON'})}"
        return self._call_geocoder(url, partial(self._parse, exactly_one=exactly_one), timeout=timeout)

    @staticmethod
    def _parse(page: Mapping[str, Any], exactly_one: bool) -> GeopyLocation | list[GeopyLocation] | None:
        if str(page.get("status")) != "1":
            code = str(page.get("infocode", ""))
            message = f"AMap error {code}: {page.get('info', 'unknown')}"
            if code in {"10001", "10002", "10005", "10006", "10007", "10008", "10009", "10010", "10011", "10012"}:
                raise GeocoderAuthenticationFailure(message)
            if code in {"10003", "10004", "10014", "10019", "10020", "10021", "10044", "10045"}:
                raise GeocoderQuotaExceeded(message)
            if code.startswith("2"):
                raise GeocoderQueryError(message)
            raise GeocoderServiceError(message)
        found = []
        for item in page.get("geocodes") or []:
            lon, lat = (float(v) for v in str(item["location"]).split(","))
            found.append(GeopyLocation(item.get("formatted_address") or "", (lat, lon), item))
        if not found:
            return None
        return found[0] if exactly_one else found


class Tencent(_KeyedGeocoder):
    """Geocoder for Tencent Location Service (腾讯位置服务) WebService API, in geopy's style.

    Parameters
    ----------
    api_key : str
        The WebService key.
    domain : str, optional
        API host.
    scheme, timeout, proxies, user_agent, ssl_context, adapter_factory
        As for any :class:`geopy.geocoders.base.Geocoder`.

    Notes
    -----
    Answers are in GCJ-02; ``raw`` is the ``result`` object (``location``,
    ``reliability`` 1–10, ``level`` 1–11).
    """

    geocode_path = "/ws/geocoder/v1/"

    default_domain = "apis.map.qq.com"

    def geocode(
        self, query: str, *, exactly_one: bool = True, timeout: Any = DEFAULT_SENTINEL
    ) -> GeopyLocation | list[GeopyLocation] | None:
        """Geocode ``query``; see :meth:`geopy.geocoders.base.Geocoder.geocode`."""
        url = f"{self.api}?{urlencode({'address': query, 'key': self.api_key})}"
        return self._call_geocoder(url, partial(self._parse, exactly_one=exactly_one), timeout=timeout)

    @staticmethod
    def _parse(page: Mapping[str, Any], exactly_one: bool) -> GeopyLocation | list[GeopyLocation] | None:
        status = int(page.get("status", -1))
        if status == 347:  # no result for the address
            return None
        if status != 0:
            message = f"Tencent error {status}: {page.get('message', 'unknown')}"
            if status in (110, 111, 112, 113, 190, 199, 311):
                raise GeocoderAuthenticationFailure(message)
            if status in (120, 121, 160, 161):
                raise GeocoderQuotaExceeded(message)
            if 300 <= status < 400:
                raise GeocoderQueryError(message)
            raise GeocoderServiceError(message)
        result = page.get("result")
        if not result:
            return None
        place = GeopyLocation(result.get("title") or "", (result["location"]["lat"], result["location"]["lng"]),
                              result)
        return place if exactly_one else [place]


# --------------------------------------------------------------------------- #
# Reading each provider's opinion of its own answer
# --------------------------------------------------------------------------- #
Interpretation = tuple[float, Precision]


def _nominatim(raw: Mapping[str, Any]) -> Interpretation:
    """Nominatim: ``place_rank`` 30 is a building, 26–27 a street, 16–25 a quarter."""
    rank = int(raw.get("place_rank") or 0)
    kind = str(raw.get("class", raw.get("category", "")))
    has_number = bool((raw.get("address") or {}).get("house_number"))
    if rank >= 28 or has_number:
        return 0.9, "exact"
    if kind == "highway" or rank >= 26:
        return 0.65, "street"
    if rank >= 16:
        return 0.35, "district"
    return 0.15, "district"


_BAIDU_LEVELS: dict[str, Precision] = {
    "门址": "exact", "门牌": "exact", "门牌号": "exact", "地产小区": "exact", "楼号": "exact",
    "道路": "street", "道路交叉口": "intersection", "交叉路口": "intersection", "交叉口": "intersection",
    "区县": "district", "乡镇": "district", "村庄": "district", "商圈": "district", "城市": "district",
    "省": "district", "国家": "district", "开发区": "district",
}


def _baidu(raw: Mapping[str, Any]) -> Interpretation:
    """Baidu: ``confidence`` (100: error under 20 m, 50: under 1 km) and ``level``."""
    level = str(raw.get("level", ""))
    precise = int(raw.get("precise", 0) or 0)
    precision = _BAIDU_LEVELS.get(level, "exact" if precise else "street")
    confidence = min(0.95, float(raw.get("confidence", 50) or 0) / 100.0 * 0.95)
    if precision == "district":
        confidence = min(confidence, 0.35)
    return confidence, precision


_AMAP_LEVELS: dict[str, Interpretation] = {
    "门牌号": (0.9, "exact"), "单元号": (0.9, "exact"), "楼层": (0.9, "exact"), "房间": (0.9, "exact"),
    "兴趣点": (0.8, "exact"), "公交站台、地铁站": (0.75, "exact"), "道路交叉路口": (0.7, "intersection"),
    "道路": (0.6, "street"), "村庄": (0.35, "district"), "热点商圈": (0.35, "district"), "乡镇": (0.3, "district"),
    "开发区": (0.3, "district"), "区县": (0.3, "district"), "城市": (0.1, "district"), "省": (0.05, "district"),
    "国家": (0.01, "district"),
}


def _amap(raw: Mapping[str, Any]) -> Interpretation:
    """AMap: the answer's ``level``."""
    return _AMAP_LEVELS.get(str(raw.get("level", "")), (0.4, "street"))


def _tencent(raw: Mapping[str, Any]) -> Interpretation:
    """Tencent: ``reliability`` 1–10 (7 and up is reliable) and ``level`` 1–11."""
    reliability = float(raw.get("reliability", 5) or 0)
    level = int(raw.get("level", 0) or 0)
    precision: Precision
    if level >= 9:
        precision = "exact"
    elif level == 8:
        precision = "intersection"
    elif level == 7:
        precision = "street"
    else:
        precision = "district"
    confidence = min(0.95, reliability / 10.0 * 0.95)
    if precision == "district":
        confidence = min(confidence, 0.35)
    return confidence, precision


def _google(raw: Mapping[str, Any]) -> Interpretation:
    """Google: ``geometry.location_type`` and the result ``types``."""
    location_type = str((raw.get("geometry") or {}).get("location_type", ""))
    types = set(raw.get("types") or [])
    if location_type == "ROOFTOP":
        out: Interpretation = (0.95, "exact")
    elif location_type == "RANGE_INTERPOLATED":
        out = (0.75, "street")
    elif "intersection" in types:
        out = (0.75, "intersection")
    elif "route" in types:
        out = (0.6, "street")
    elif types & {"premise", "subpremise", "establishment", "point_of_interest", "street_address"}:
        out = (0.7, "exact")
    else:
        out = (0.25, "district")
    if raw.get("partial_match"):
        out = (out[0] * 0.8, out[1])
    return out


def _arcgis(raw: Mapping[str, Any]) -> Interpretation:
    """ArcGIS: ``score`` 0–100 and ``attributes.Addr_type`` (when requested)."""
    score = float(raw.get("score", 50) or 0) / 100.0
    kind = str((raw.get("attributes") or {}).get("Addr_type", ""))
    precision: Precision
    if kind in ("PointAddress", "Subaddress", "POI"):
        precision = "exact"
    elif kind in ("StreetAddress", "StreetAddressExt", "StreetName"):
        precision = "street"
    elif kind == "StreetInt":
        precision = "intersection"
    elif kind:
        precision = "district"
        score = min(score, 0.35)
    else:
        precision = "street"
        score = min(score, 0.6)
    return min(0.95, score * 0.95), precision


#: Every provider kind: the datum its answers are in, and how to read its confidence and precision.
PROVIDER_KINDS: dict[str, tuple[str, Callable[[Mapping[str, Any]], Interpretation]]] = {
    "nominatim": ("wgs84", _nominatim),
    "baidu": ("bd09", _baidu),
    "amap": ("gcj02", _amap),
    "tencent": ("gcj02", _tencent),
    "google": ("wgs84", _google),
    "arcgis": ("wgs84", _arcgis),
}

#: Provider kinds that cannot work without an API key.
_NEEDS_KEY = frozenset({"baidu", "amap", "tencent", "google"})


@dataclass(frozen=True)
class ProviderSettings:
    """One ``[[geocoding.providers]]`` entry.

    Attributes
    ----------
    name : str
        Reported in results and attempts.
    kind : str
        One of :data:`PROVIDER_KINDS`.
    enabled : bool
        Disabled providers are not built.
    domain : str or None
        API host (``"127.0.0.1:8080"``, ``"nominatim.example.org"``); None:
        the provider's public host.
    scheme : str
        ``"https"`` or ``"http"``.
    api_key_env : str or None
        Environment variable holding the API key.
    timeout_s : float
        Seconds to wait for one answer.
    retries : int
        Extra tries after a server error or timeout.
    min_delay_s : float
        Least time between two calls (rate limit).
    error_wait_s : float
        Wait before a retry (at least ``min_delay_s``).
    crs : str or None
        Datum of the answers; None: the kind's (BD-09 for Baidu, GCJ-02 for
        AMap and Tencent, else WGS-84).
    user_agent : str
        HTTP User-Agent.
    options : dict
        Extra keyword arguments for the geopy ``geocode`` call (for example
        Nominatim's ``country_codes``).
    """

    name: str
    kind: str
    enabled: bool = False
    domain: str | None = None
    scheme: str = "https"
    api_key_env: str | None = None
    timeout_s: float = 5.0
    retries: int = 1
    min_delay_s: float = 0.0
    error_wait_s: float = 1.0
    crs: str | None = None
    user_agent: str = "doorstep-geocoder/0.1"
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any], *, user_agent: str | None = None) -> ProviderSettings:
        """Read one TOML table.

        Raises
        ------
        ValueError
            On an unknown ``kind``, a missing ``name``, or negative numbers.
        """
        known = {f for f in cls.__dataclass_fields__ if f != "options"}
        values = {k: v for k, v in table.items() if k in known}
        options = {k: v for k, v in table.items() if k not in known}
        kind = str(values.get("kind", values.get("name", "")))
        values["kind"] = kind
        if "name" not in values:
            values["name"] = kind
        if kind not in PROVIDER_KINDS:
            raise ValueError(f"unknown geocoding provider kind {kind!r}; use one of {', '.join(PROVIDER_KINDS)}")
        if user_agent and "user_agent" not in values:
            values["user_agent"] = user_agent
        settings = cls(**values, options=options)
        if settings.timeout_s <= 0 or settings.retries < 0 or settings.min_delay_s < 0 or settings.error_wait_s < 0:
            raise ValueError(f"provider {settings.name}: timeout must be positive, retries and delays not negative")
        return settings


class OnlineProvider:
    """An online geocoder with rate limiting, retries and datum conversion.

    Parameters
    ----------
    settings : ProviderSettings
        Name, limits and datum.
    geocoder : geopy.geocoders.base.Geocoder
        The geopy geocoder to call.

    Notes
    -----
    :meth:`geocode` raises geopy's errors (after retries); the chain catches
    and reports them.
    """

    def __init__(self, settings: ProviderSettings, geocoder: Geocoder) -> None:
        self.settings = settings
        self.name = settings.name
        self.geocoder = geocoder
        native_crs, self._interpret = PROVIDER_KINDS[settings.kind]
        self.crs = settings.crs or native_crs
        options = dict(settings.options)
        if settings.kind == "arcgis":
            options.setdefault("out_fields", ["Addr_type"])
        if settings.kind == "nominatim":
            options.setdefault("addressdetails", True)
        self._call = RateLimiter(
            partial(geocoder.geocode, exactly_one=True, **options),
            min_delay_seconds=settings.min_delay_s,
            max_retries=settings.retries,
            error_wait_seconds=max(settings.error_wait_s, settings.min_delay_s),
            swallow_exceptions=False,
        )

    def geocode(self, text: str, *, flag_below: float = DEFAULT_FLAG_BELOW) -> GeocodeResult | None:
        """Ask the provider about one address.

        Parameters
        ----------
        text : str
            Address as written.
        flag_below : float, optional
            Confidence below which the result is flagged.

        Returns
        -------
        GeocodeResult or None
            WGS-84 point, the provider's confidence and precision; None when
            the provider knows no such place.

        Raises
        ------
        geopy.exc.GeopyError
            When the provider fails or times out after its retries.
        ValueError
            When the provider's answer is not a valid point.
        """
        found = self._call(text)
        if found is None:
            return None
        location = location_from(found.latitude, found.longitude, self.crs)
        confidence, precision = self._interpret(found.raw if isinstance(found.raw, Mapping) else {})
        confidence = round(float(confidence), 3)
        return GeocodeResult(
            location=location,
            confidence=confidence,
            precision=precision,
            matched=str(found.address or ""),
            provider=self.name,
            flagged=confidence < flag_below,
            geocoded_at=utc_now(),
        )


def _adapter_factory() -> Callable[..., Any]:
    """geopy's HTTP adapter without hidden retries.

    geopy's requests adapter retries a read timeout twice inside urllib3 and
    then reports it as "unavailable"; the configured ``retries`` and
    ``timeout_s`` should mean what they say, so those retries are switched off.
    """
    from geopy.adapters import RequestsAdapter, URLLibAdapter

    factory: Callable[..., Any]  # geopy is untyped: its adapters are Any
    if RequestsAdapter.is_available:
        factory = partial(RequestsAdapter, max_retries=0)
    else:  # pragma: no cover - requests is installed with geopy's usual extras
        factory = URLLibAdapter
    return factory



class _GeocoderOptions(TypedDict):
    """The keyword arguments every geocoder built here is given."""

    scheme: str
    timeout: float
    user_agent: str
    adapter_factory: Callable[..., Any]


def build_provider(settings: ProviderSettings, environ: Mapping[str, str] | None = None) -> OnlineProvider:
    """Build the geopy geocoder a :class:`ProviderSettings` describes.

    Parameters
    ----------
    settings : ProviderSettings
        The entry.
    environ : Mapping, optional
        Where API keys are read; default: ``os.environ``.

    Returns
    -------
    OnlineProvider

    Raises
    ------
    LookupError
        When the provider needs an API key and its variable is unset or empty.
    """
    env = os.environ if environ is None else environ
    key = env.get(settings.api_key_env, "") if settings.api_key_env else ""
    if settings.kind in _NEEDS_KEY and not key:
        variable = settings.api_key_env or "(no api_key_env configured)"
        raise LookupError(f"provider {settings.name}: API key variable {variable} is not set")
    common: _GeocoderOptions = {"scheme": settings.scheme, "timeout": settings.timeout_s,
                                "user_agent": settings.user_agent, "adapter_factory": _adapter_factory()}
    kind = settings.kind
    geocoder: Geocoder
    if kind == "nominatim":
        geocoder = Nominatim(domain=settings.domain or "nominatim.openstreetmap.org", **common)
    elif kind == "baidu":
        geocoder = BaiduV3(api_key=key, **common)
        if settings.domain:
            geocoder.api = f"{geocoder.scheme}://{settings.domain.strip('/')}{geocoder.api_path}"
    elif kind == "amap":
        geocoder = AMap(key, domain=settings.domain or None, **common)
    elif kind == "tencent":
        geocoder = Tencent(key, domain=settings.domain or None, **common)
    elif kind == "google":
        geocoder = GoogleV3(api_key=key, domain=settings.domain or "maps.googleapis.com", **common)
    else:  # arcgis
        geocoder = ArcGIS(domain=settings.domain or "geocode.arcgis.com", **common)
    return OnlineProvider(settings, geocoder)


def build_providers(
    tables: list[Mapping[str, Any]], *, user_agent: str | None = None, environ: Mapping[str, str] | None = None
) -> tuple[list[OnlineProvider], dict[str, str]]:
    """Build every enabled provider of a ``[[geocoding.providers]]`` list.

    Parameters
    ----------
    tables : list of Mapping
        The entries, in the order they are to be asked.
    user_agent : str, optional
        Default User-Agent for entries that set none.
    environ : Mapping, optional
        Where API keys are read; default: ``os.environ``.

    Returns
    -------
    tuple of (list of OnlineProvider, dict of str to str)
        The providers built, and for every enabled provider that could not
        be built (missing key) the reason, by name.

    Raises
    ------
    ValueError
        On an invalid entry (unknown kind, bad numbers).
    """
    providers: list[OnlineProvider] = []
    skipped: dict[str, str] = {}
    for table in tables:
        settings = ProviderSettings.from_mapping(table, user_agent=user_agent)
        if not settings.enabled:
            continue
        try:
            providers.append(build_provider(settings, environ))
        except LookupError as exc:
            skipped[settings.name] = str(exc)
    return providers, skipped
