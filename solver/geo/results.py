"""What a geocoder answers: results, attempts and per-address outcomes.

Every geocoder of :mod:`solver.geo` — the offline gazetteer, the online
providers and the chain that strings them together — answers with the types
defined here:

* :class:`GeocodeResult` — a WGS-84 point with its provider, confidence,
  precision, ``flagged`` (the dispatcher must confirm it) and the time it was
  found;
* :class:`Attempt` — one provider's try at an address (found, not found,
  failed, timed out, skipped), so that a failing provider is *reported*,
  never raised;
* :class:`GeocodeOutcome` — everything about one address text: the result
  (or None), the attempts, and the error when the text itself is bad.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

from solver.model import Location

__all__ = [
    "DEFAULT_FLAG_BELOW",
    "DEFAULT_MIN_PRECISION",
    "MIN_PRECISION_LEVELS",
    "PRECISIONS",
    "Attempt",
    "AttemptStatus",
    "GeocodeOutcome",
    "GeocodeResult",
    "Precision",
    "meets_precision",
    "min_precision_rank",
    "utc_now",
]

#: How precisely a result locates the address, best first.
Precision = Literal["exact", "street", "intersection", "district"]

#: The precisions, best first.
PRECISIONS: tuple[Precision, ...] = ("exact", "street", "intersection", "district")

#: How fine each precision is, for the ``[geocoding] min_precision`` policy:
#: a junction of two streets is as good as a point on the street.
PRECISION_RANK: dict[str, int] = {"exact": 3, "intersection": 2, "street": 2, "district": 1}

#: Names ``[geocoding] min_precision`` accepts, with the rank a result must
#: reach: ``rooftop``/``house``/``exact`` > ``street`` (or ``intersection``)
#: > ``district`` > ``city``/``any`` (every result; a city-level answer is
#: recorded as ``district``).
MIN_PRECISION_LEVELS: dict[str, int] = {
    "exact": 3, "rooftop": 3, "house": 3, "street": 2, "intersection": 2, "district": 1, "city": 0, "any": 0,
}

#: Visits whose only usable addresses are located less precisely than this
#: are left out until a dispatcher confirms a point.
DEFAULT_MIN_PRECISION = "street"


def min_precision_rank(level: str) -> int:
    """The rank a result must reach under ``[geocoding] min_precision = level``.

    Parameters
    ----------
    level : str
        A key of :data:`MIN_PRECISION_LEVELS` (case-insensitive).

    Returns
    -------
    int

    Raises
    ------
    ValueError
        On an unknown level.
    """
    try:
        return MIN_PRECISION_LEVELS[str(level).strip().lower()]
    except KeyError:
        raise ValueError(f"unknown min_precision {level!r}; use one of {', '.join(MIN_PRECISION_LEVELS)}") from None


def meets_precision(precision: str, level: str) -> bool:
    """Whether a result of ``precision`` is precise enough under ``min_precision = level``.

    Parameters
    ----------
    precision : str
        A result's :data:`Precision`.
    level : str
        A ``min_precision`` level (:data:`MIN_PRECISION_LEVELS`).

    Returns
    -------
    bool

    Examples
    --------
    >>> meets_precision("street", "street"), meets_precision("district", "street")
    (True, False)
    """
    return PRECISION_RANK.get(precision, 0) >= min_precision_rank(level)


#: Results whose confidence is below this are flagged for the dispatcher,
#: unless the configuration (``[geocoding] flag_below_confidence``) says
#: otherwise.
DEFAULT_FLAG_BELOW = 0.5

#: What happened when one provider was asked about one address.
AttemptStatus = Literal["found", "not_found", "failed", "timeout", "skipped", "cached"]


def utc_now() -> dt.datetime:
    """The current time, timezone-aware UTC (the stamp of new results)."""
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class GeocodeResult:
    """A geocoded address.

    Attributes
    ----------
    location : solver.model.Location
        The point, always WGS-84 (answers in GCJ-02 or BD-09 are converted).
    confidence : float
        0 (a guess) to 1 (certain).
    precision : {"exact", "street", "intersection", "district"}
        What the point stands for: the building or named place itself, a
        point on the right street (house number interpolated or unknown), the
        junction of two streets, or only the district.
    matched : str
        What was matched: the street name, ``"A/B"`` for an intersection, the
        place or district name, or the provider's formatted address.
    house_number : str or None
        The house number read from the text (``"45号"``, ``"100弄5号"``, ``"7"``).
    provider : str
        Who answered: ``"gazetteer"``, a configured provider's name, or
        ``"dispatcher"`` for a confirmed point.
    flagged : bool
        True when ``confidence`` is below the configured threshold: the
        dispatcher must confirm the point before it is trusted.
    geocoded_at : datetime.datetime or None
        When the answer was found (UTC). Not part of equality.
    attempts : tuple of Attempt
        How the chain got here (filled by :class:`~solver.geo.chain.GeocodingChain`).
        Not part of equality.
    cached : bool
        True when the chain served the result from its cache. Not part of
        equality.
    """

    location: Location
    confidence: float
    precision: Precision
    matched: str
    house_number: str | None = None
    provider: str = "gazetteer"
    flagged: bool = False
    geocoded_at: dt.datetime | None = field(default=None, compare=False)
    attempts: tuple[Attempt, ...] = field(default=(), compare=False)
    cached: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class Attempt:
    """One provider's try at one address.

    Attributes
    ----------
    provider : str
        The provider's configured name (``"cache"`` for the cache).
    status : {"found", "not_found", "failed", "timeout", "skipped", "cached"}
        ``found``: it answered with a point; ``not_found``: it answered that it
        knows no such place; ``failed``: an error (HTTP error, bad key, quota,
        unreadable answer); ``timeout``: no answer in time (after retries);
        ``skipped``: not asked (its API key is missing from the environment);
        ``cached``: served from the cache. Providers after the one whose
        answer was accepted are not asked and not listed.
    seconds : float
        Wall time spent on this provider, retries and rate-limit waits included.
    error : str or None
        The error message for ``failed`` and ``timeout``; the reason for
        ``skipped``.
    confidence : float or None
        The confidence of the provider's answer when it found one.
    """

    provider: str
    status: AttemptStatus
    seconds: float = 0.0
    error: str | None = None
    confidence: float | None = None


@dataclass(frozen=True)
class GeocodeOutcome:
    """Everything the chain learnt about one address text.

    Attributes
    ----------
    query : str
        The text as given.
    result : GeocodeResult or None
        The answer; None when no provider found the address or the text is bad.
    attempts : tuple of Attempt
        Every provider asked, in order, with what happened.
    error : str or None
        Why the text could not be geocoded at all (for instance ``"address
        text is empty"``); None when the text was valid.
    """

    query: str
    result: GeocodeResult | None
    attempts: tuple[Attempt, ...] = ()
    error: str | None = None

    @property
    def location(self) -> Location | None:
        """The result's point, or None."""
        return None if self.result is None else self.result.location

    @property
    def ok(self) -> bool:
        """True when there is a result."""
        return self.result is not None

    @property
    def flagged(self) -> bool:
        """True when there is no result or the result is flagged for confirmation."""
        return self.result is None or self.result.flagged

    @property
    def failures(self) -> tuple[Attempt, ...]:
        """The attempts that failed or timed out."""
        return tuple(a for a in self.attempts if a.status in ("failed", "timeout"))
