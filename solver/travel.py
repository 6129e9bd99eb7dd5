"""Travel-time and distance matrices, and the models that produce them.

A *travel model* turns a list of WGS-84 points and a travel mode into a
:class:`TravelMatrix` of whole seconds and whole metres. The engine and the
plan checker both read travel through this one interface, so a plan is always
checked against the same numbers it was planned with.

Models here:

* :class:`StraightLineTravel` — great-circle distance times a detour factor at
  a per-mode speed; the fallback when no road network is loaded.
* :class:`PlanarTravel` — Euclidean distance on the plane (lat/lon read as
  x/y), truncated like the DIMACS VRPTW convention; for benchmarks and
  hand-checkable tests.

The road-network model lives in :mod:`solver.geo.network`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from solver.model import Location, TravelMode

EARTH_RADIUS_M = 6_371_008.8

#: Default speeds in km/h for the straight-line model.
DEFAULT_SPEEDS_KMH: dict[str, float] = {"drive": 25.0, "ebike": 15.0, "walk": 4.5}


@dataclass(frozen=True)
class TravelMatrix:
    """Square matrices over a list of points: ``durations[i, j]`` seconds and
    ``distances[i, j]`` metres from point ``i`` to point ``j`` (int64).
    ``reachable[i, j]`` is False where no path exists (the duration then holds
    a large sentinel)."""

    durations: npt.NDArray[np.int64]
    distances: npt.NDArray[np.int64]
    reachable: npt.NDArray[np.bool_] | None = None

    def __post_init__(self) -> None:
        n = self.durations.shape[0]
        if self.durations.shape != (n, n) or self.distances.shape != (n, n):
            raise ValueError("durations and distances must be square matrices of the same size")

    @property
    def size(self) -> int:
        return int(self.durations.shape[0])

    def is_reachable(self, i: int, j: int) -> bool:
        return True if self.reachable is None else bool(self.reachable[i, j])


#: Duration used for "no path"; large but safe to add inside OR-Tools int64.
UNREACHABLE_S = 10**7


@runtime_checkable
class TravelModel(Protocol):
    """Anything that can price travel between points for a mode."""

    def matrix(self, points: Sequence[Location], mode: TravelMode) -> TravelMatrix:
        """Travel matrix over ``points`` (WGS-84) for ``mode``."""
        ...


def haversine_m(a: Location, b: Location) -> float:
    """Great-circle distance in metres between two WGS-84 points."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a.lat, a.lon, b.lat, b.lon))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def haversine_matrix_m(lats: npt.NDArray[np.float64], lons: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Pairwise great-circle distances in metres (float64)."""
    lat = np.radians(lats)[:, None]
    lon = np.radians(lons)[:, None]
    dlat = lat - lat.T
    dlon = lon - lon.T
    h = np.sin(dlat / 2) ** 2 + np.cos(lat) * np.cos(lat.T) * np.sin(dlon / 2) ** 2
    metres: npt.NDArray[np.float64] = 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(h)))
    return metres


@dataclass(frozen=True)
class StraightLineTravel:
    """Great-circle distance × ``detour_factor`` at a constant speed per mode."""

    speeds_kmh: dict[str, float] | None = None
    detour_factor: float = 1.35

    def speed_mps(self, mode: TravelMode) -> float:
        speeds = self.speeds_kmh or DEFAULT_SPEEDS_KMH
        return speeds[mode] / 3.6

    def matrix(self, points: Sequence[Location], mode: TravelMode) -> TravelMatrix:
        lats = np.array([p.lat for p in points], dtype=float)
        lons = np.array([p.lon for p in points], dtype=float)
        metres = haversine_matrix_m(lats, lons) * self.detour_factor
        durations = np.rint(metres / self.speed_mps(mode)).astype(np.int64)
        return TravelMatrix(durations=durations, distances=np.rint(metres).astype(np.int64))


@dataclass(frozen=True)
class PlanarTravel:
    """Euclidean distance on the plane, reading ``lon`` as x and ``lat`` as y.

    Distances are truncated to ``1/precision`` of a unit (DIMACS VRPTW uses
    ``floor(10 d) / 10``). One unit of distance takes ``seconds_per_unit``
    seconds and counts ``metres_per_unit`` metres, so with the defaults a
    Solomon instance's times are minutes and its distances are reported in
    tenths of a unit (metres = 10 × distance).
    """

    seconds_per_unit: int = 60
    metres_per_unit: int = 10
    precision: int = 10
    scale: float = 1.0  # coordinates are multiplied by this before measuring

    def matrix(self, points: Sequence[Location], mode: TravelMode) -> TravelMatrix:
        xs = np.array([p.lon for p in points], dtype=float)
        ys = np.array([p.lat for p in points], dtype=float)
        euclid = np.hypot(xs[:, None] - xs[None, :], ys[:, None] - ys[None, :]) * self.scale
        # floor(precision * d) computed with a tiny epsilon against float noise
        ticks = np.floor(euclid * self.precision + 1e-7).astype(np.int64)
        durations = ticks * self.seconds_per_unit // self.precision
        distances = ticks * self.metres_per_unit // self.precision
        if (ticks * self.seconds_per_unit % self.precision).any() or (
            ticks * self.metres_per_unit % self.precision
        ).any():
            raise ValueError("seconds_per_unit and metres_per_unit must be multiples of 1/precision")
        return TravelMatrix(durations=durations, distances=distances)
