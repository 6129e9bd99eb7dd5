"""Conversions between the WGS-84, GCJ-02 and BD-09 datums used in China.

Doorstep works in WGS-84 (the datum of GPS and OpenStreetMap). Maps and
geocoders inside mainland China publish coordinates in one of two obfuscated
datums:

* **GCJ-02** ("Mars coordinates"), the state-mandated datum of AutoNavi/Amap,
  Tencent and Apple Maps in China: WGS-84 shifted by a smooth, non-linear
  offset of a few hundred metres.
* **BD-09**, Baidu's datum: GCJ-02 further shifted and slightly rotated.

The forward transforms (WGS-84 → GCJ-02 → BD-09) are the widely published
closed-form formulas. Their inverses have no closed form; this module inverts
them by fixed-point iteration, which converges to well under a centimetre in a
handful of steps (the offsets vary slowly, so the Jacobian is close to the
identity). The popular one-step inverse ``wgs ≈ 2·gcj − f(gcj)`` is off by up
to a couple of metres and is only used here as the starting guess.

Outside China (the customary rectangle of :func:`out_of_china`) GCJ-02 is
defined to equal WGS-84; BD-09 still applies its own shift there.

All functions take and return ``(lat, lon)`` in degrees, latitude first, like
:class:`~solver.model.Location`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from solver.model import CRS, Location

__all__ = [
    "CRS_ALIASES",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "location_from",
    "normalize_crs",
    "out_of_china",
    "to_wgs84",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

#: Semi-major axis of the Krasovsky 1940 ellipsoid used by GCJ-02, metres.
_KRASOVSKY_A = 6_378_245.0
#: First eccentricity squared of the Krasovsky 1940 ellipsoid.
_KRASOVSKY_EE = 0.00669342162296594323
#: The constant of the BD-09 shift (π · 3000 / 180).
_BD_X_PI = math.pi * 3000.0 / 180.0

#: Stop inverting when the forward transform of the estimate is this close to
#: the target, in degrees (1e-9° is about 0.1 mm).
_INVERSE_TOLERANCE_DEG = 1e-9
_INVERSE_MAX_ITERATIONS = 50


def out_of_china(lat: float, lon: float) -> bool:
    """Whether a point lies outside the rectangle where GCJ-02 applies.

    Parameters
    ----------
    lat, lon : float
        Point in degrees.

    Returns
    -------
    bool
        True outside the customary box (longitude 72.004–137.8347 E, latitude
        0.8293–55.8271 N). The box is coarse: it includes neighbouring
        countries, exactly as the published implementations do.
    """
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _offset_lat(x: float, y: float) -> float:
    """Raw latitude offset term; ``x``/``y`` are lon − 105 and lat − 35."""
    value = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    value += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    value += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    value += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return value


def _offset_lon(x: float, y: float) -> float:
    """Raw longitude offset term; ``x``/``y`` are lon − 105 and lat − 35."""
    value = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    value += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    value += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    value += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return value


def wgs84_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    """Convert a WGS-84 point to GCJ-02.

    Parameters
    ----------
    lat, lon : float
        WGS-84 point in degrees.

    Returns
    -------
    tuple of float
        ``(lat, lon)`` in GCJ-02; the input unchanged outside China.
    """
    if out_of_china(lat, lon):
        return lat, lon
    d_lat = _offset_lat(lon - 105.0, lat - 35.0)
    d_lon = _offset_lon(lon - 105.0, lat - 35.0)
    rad_lat = math.radians(lat)
    magic = 1.0 - _KRASOVSKY_EE * math.sin(rad_lat) ** 2
    sqrt_magic = math.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((_KRASOVSKY_A * (1.0 - _KRASOVSKY_EE)) / (magic * sqrt_magic) * math.pi)
    d_lon = (d_lon * 180.0) / (_KRASOVSKY_A / sqrt_magic * math.cos(rad_lat) * math.pi)
    return lat + d_lat, lon + d_lon


def _invert(
    forward: Callable[[float, float], tuple[float, float]], lat: float, lon: float, start: tuple[float, float]
) -> tuple[float, float]:
    """Solve ``forward(p) == (lat, lon)`` for ``p`` by fixed-point iteration.

    Parameters
    ----------
    forward : callable
        Transform ``(lat, lon) -> (lat, lon)`` close to a translation.
    lat, lon : float
        The target, in the forward transform's output datum.
    start : tuple of float
        First estimate of the solution.

    Returns
    -------
    tuple of float
        The estimate once the forward image is within
        ``_INVERSE_TOLERANCE_DEG`` of the target in both coordinates.
    """
    est_lat, est_lon = start
    for _ in range(_INVERSE_MAX_ITERATIONS):
        got_lat, got_lon = forward(est_lat, est_lon)
        err_lat, err_lon = got_lat - lat, got_lon - lon
        if abs(err_lat) < _INVERSE_TOLERANCE_DEG and abs(err_lon) < _INVERSE_TOLERANCE_DEG:
            break
        est_lat -= err_lat
        est_lon -= err_lon
    return est_lat, est_lon


def gcj02_to_wgs84(lat: float, lon: float) -> tuple[float, float]:
    """Convert a GCJ-02 point to WGS-84 by iterative inversion.

    Parameters
    ----------
    lat, lon : float
        GCJ-02 point in degrees.

    Returns
    -------
    tuple of float
        ``(lat, lon)`` in WGS-84 such that :func:`wgs84_to_gcj02` maps it back
        to the input within about 0.1 mm; the input unchanged outside China.
    """
    if out_of_china(lat, lon):
        return lat, lon
    fwd_lat, fwd_lon = wgs84_to_gcj02(lat, lon)
    start = (2.0 * lat - fwd_lat, 2.0 * lon - fwd_lon)
    return _invert(wgs84_to_gcj02, lat, lon, start)


def gcj02_to_bd09(lat: float, lon: float) -> tuple[float, float]:
    """Convert a GCJ-02 point to Baidu's BD-09.

    Parameters
    ----------
    lat, lon : float
        GCJ-02 point in degrees.

    Returns
    -------
    tuple of float
        ``(lat, lon)`` in BD-09.
    """
    z = math.hypot(lon, lat) + 0.00002 * math.sin(lat * _BD_X_PI)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * _BD_X_PI)
    return z * math.sin(theta) + 0.006, z * math.cos(theta) + 0.0065


def bd09_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    """Convert a BD-09 point to GCJ-02.

    The published closed-form inverse is used as the first estimate and
    refined by iteration, so the result maps back through
    :func:`gcj02_to_bd09` to within about 0.1 mm.

    Parameters
    ----------
    lat, lon : float
        BD-09 point in degrees.

    Returns
    -------
    tuple of float
        ``(lat, lon)`` in GCJ-02.
    """
    x, y = lon - 0.0065, lat - 0.006
    z = math.hypot(x, y) - 0.00002 * math.sin(y * _BD_X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * _BD_X_PI)
    start = (z * math.sin(theta), z * math.cos(theta))
    return _invert(gcj02_to_bd09, lat, lon, start)


def wgs84_to_bd09(lat: float, lon: float) -> tuple[float, float]:
    """Convert a WGS-84 point to BD-09 (through GCJ-02).

    Parameters
    ----------
    lat, lon : float
        WGS-84 point in degrees.

    Returns
    -------
    tuple of float
        ``(lat, lon)`` in BD-09.
    """
    return gcj02_to_bd09(*wgs84_to_gcj02(lat, lon))


def bd09_to_wgs84(lat: float, lon: float) -> tuple[float, float]:
    """Convert a BD-09 point to WGS-84 (through GCJ-02).

    Parameters
    ----------
    lat, lon : float
        BD-09 point in degrees.

    Returns
    -------
    tuple of float
        ``(lat, lon)`` in WGS-84.
    """
    return gcj02_to_wgs84(*bd09_to_gcj02(lat, lon))


def to_wgs84(loc: Location) -> Location:
    """Return ``loc`` in WGS-84, converting from GCJ-02 or BD-09 as tagged.

    Parameters
    ----------
    loc : solver.model.Location
        A point with its datum in ``loc.crs``.

    Returns
    -------
    solver.model.Location
        ``loc`` itself when it is already WGS-84, else a new location with
        ``crs="wgs84"``.
    """
    if loc.crs == "wgs84":
        return loc
    if loc.crs == "gcj02":
        lat, lon = gcj02_to_wgs84(loc.lat, loc.lon)
    elif loc.crs == "bd09":
        lat, lon = bd09_to_wgs84(loc.lat, loc.lon)
    else:  # pragma: no cover - guarded by the Location model's Literal
        raise ValueError(f"unknown coordinate system {loc.crs!r}")
    return Location(lat=lat, lon=lon, crs="wgs84")


#: Accepted spellings of the supported datums (case-insensitive).
CRS_ALIASES: dict[str, CRS] = {
    "wgs84": "wgs84", "wgs-84": "wgs84", "wgs 84": "wgs84", "epsg:4326": "wgs84", "4326": "wgs84", "gps": "wgs84",
    "gcj02": "gcj02", "gcj-02": "gcj02", "gcj": "gcj02", "mars": "gcj02",
    "bd09": "bd09", "bd-09": "bd09", "bd09ll": "bd09", "baidu": "bd09",
}


def normalize_crs(crs: str) -> CRS:
    """The canonical name of a datum.

    Parameters
    ----------
    crs : str
        ``"wgs84"``, ``"WGS-84"``, ``"EPSG:4326"``, ``"gcj02"``, ``"GCJ-02"``,
        ``"bd09"``, ``"bd09ll"``… (see :data:`CRS_ALIASES`).

    Returns
    -------
    str
        ``"wgs84"``, ``"gcj02"`` or ``"bd09"``.

    Raises
    ------
    ValueError
        For any other coordinate reference system, naming it and the
        supported ones (projected systems such as EPSG:3857 or BD-09 Mercator
        ``bd09mc`` are not accepted).
    """
    canonical = CRS_ALIASES.get(str(crs).strip().lower())
    if canonical is None:
        raise ValueError(f"unknown coordinate system {crs!r}; use wgs84, gcj02 or bd09 (degrees)")
    return canonical


def location_from(lat: float, lon: float, crs: str = "wgs84") -> Location:
    """A WGS-84 :class:`~solver.model.Location` from coordinates in any supported datum.

    Parameters
    ----------
    lat, lon : float
        Latitude and longitude in degrees.
    crs : str, optional
        Their datum (any spelling :func:`normalize_crs` accepts).

    Returns
    -------
    solver.model.Location
        The point in WGS-84.

    Raises
    ------
    ValueError
        When a coordinate is not a finite number, the latitude is outside
        [-90, 90] or the longitude outside [-180, 180] (with the value in the
        message; swapped coordinates are pointed out), or the datum is unknown.
    """
    canonical = normalize_crs(crs)
    try:
        lat, lon = float(lat), float(lon)
    except (TypeError, ValueError):
        raise ValueError(f"coordinates must be numbers, got lat={lat!r}, lon={lon!r}") from None
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise ValueError(f"coordinates must be finite, got lat={lat!r}, lon={lon!r}")
    if not -90.0 <= lat <= 90.0:
        hint = " (latitude and longitude swapped?)" if -90.0 <= lon <= 90.0 and abs(lat) <= 180.0 else ""
        raise ValueError(f"latitude {lat} is out of range [-90, 90]{hint}")
    if not -180.0 <= lon <= 180.0:
        raise ValueError(f"longitude {lon} is out of range [-180, 180]")
    return to_wgs84(Location(lat=lat, lon=lon, crs=canonical))
