"""The houses of an extract by street and house number, in flat numpy arrays.

A city extract (or the synthetic city of the benchmarks) can list millions of
addressed objects. Kept as Python dicts of lists of tuples, every house costs
some 300 bytes and the index does not fit a small server; :class:`HouseIndex`
keeps them column-wise instead (about 50 bytes a house, in arrays a stored
gazetteer memory-maps, see :mod:`solver.geo.gazetteerstore`), and is built in
one streaming pass over the address points, so the points themselves need
not be held in a list.

The answers are those of the dict-based index it replaces, to the last bit:
a house number maps to the mean of the points tagged with it (summed in the
order they came), the numbered houses of a street to their first point sorted
by number, and a street known only from its houses to the mean of all its
points in the order a dict of lists would give them.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Collection, Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

from solver.geo.address import housenumber_key, normalize_text
from solver.geo.osmfile import AddressPoint

__all__ = ["HouseIndex"]

_LEADING_INT = re.compile(r"\d+")

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


class HouseIndex:
    """Houses by street and house-number key, column-wise.

    Build it with :meth:`build`; the constructor takes the arrays (as a
    stored index gives them back, possibly memory-mapped).

    Parameters
    ----------
    streets : tuple of str
        Street names (:func:`~solver.geo.address.normalize_text` form) in
        the order they first appear in the data.
    keys : tuple of str
        Distinct house-number keys (:func:`~solver.geo.address.housenumber_key`).
    group_start : numpy.ndarray of int64
        ``len(streets) + 1`` offsets: the (street, key) groups of street
        ``s`` are ``group_start[s]:group_start[s + 1]``, sorted by key id.
    group_key : numpy.ndarray of int32
        Key id (index into ``keys``) of each group.
    group_first : numpy.ndarray of float64, shape (groups, 2)
        ``(lat, lon)`` of each group's first point.
    mean_group : numpy.ndarray of int64
        The groups of more than one point, sorted.
    mean_point : numpy.ndarray of float64, shape (len(mean_group), 2)
        The mean of their points (the point of such a house).
    numbered_start : numpy.ndarray of int64
        ``len(streets) + 1`` offsets into the numbered arrays.
    numbered_number : numpy.ndarray of int32 or int64
        The leading integer of each group's key (groups without one are
        left out), sorted by street, number, then first point; int32 when
        every number fits (:meth:`numbered` gives them as int64).
    numbered_group : numpy.ndarray of int32
        The group of each of them.
    centre : numpy.ndarray of float64, shape (streets, 2)
        Mean of each street's points (NaN for the streets built
        ``with_geometry``).
    extent : numpy.ndarray of float64, shape (4,)
        ``(min lat, min lon, max lat, max lon)`` of all points (NaN when empty).
    """

    def __init__(
        self,
        streets: tuple[str, ...],
        keys: tuple[str, ...],
        *,
        group_start: Ints,
        group_key: npt.NDArray[np.int32],
        group_first: Floats,
        mean_group: Ints,
        mean_point: Floats,
        numbered_start: Ints,
        numbered_number: Ints,
        numbered_group: npt.NDArray[np.int32],
        centre: Floats,
        extent: Floats,
    ) -> None:
        self.streets = streets
        self.keys = keys
        self.group_start = group_start
        self.group_key = group_key
        self.group_first = group_first
        self.mean_group = mean_group
        self.mean_point = mean_point
        self.numbered_start = numbered_start
        self.numbered_number = numbered_number
        self.numbered_group = numbered_group
        self.centre = centre
        self.extent = extent
        self._street_ids = {name: k for k, name in enumerate(streets)}
        self._key_ids = {key: k for k, key in enumerate(keys)}

    # ------------------------------------------------------------------ #
    # Pickling: the arrays and names only (the lookup dicts are rebuilt)
    # ------------------------------------------------------------------ #
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_street_ids"], state["_key_ids"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._street_ids = {name: k for k, name in enumerate(self.streets)}
        self._key_ids = {key: k for k, key in enumerate(self.keys)}

    # ------------------------------------------------------------------ #
    @classmethod
    def build(cls, addresses: Iterable[AddressPoint], with_geometry: Collection[str] = ()) -> HouseIndex:
        """Index address points in one pass.

        Parameters
        ----------
        addresses : iterable of solver.geo.osmfile.AddressPoint
            Read once; a generator is fine (nothing but a few numbers per
            point is kept while reading).
        with_geometry : collection of str, optional
            Streets placed from their own geometry: their centre
            (:meth:`street_centre`) is not computed.

        Returns
        -------
        HouseIndex
        """
        street_of_raw: dict[str, int] = {}
        street_ids: dict[str, int] = {}
        key_of_raw: dict[str, int] = {}
        key_ids: dict[str, int] = {}
        key_numbers = array("q")
        street_col, key_col, lat_col, lon_col = array("i"), array("i"), array("d"), array("d")
        for point in addresses:
            s = street_of_raw.get(point.street)
            if s is None:
                s = street_ids.setdefault(normalize_text(point.street), len(street_ids))
                street_of_raw[point.street] = s
            k = key_of_raw.get(point.housenumber)
            if k is None:
                key = housenumber_key(point.housenumber)
                k = key_ids.get(key, -1)
                if k < 0:
                    k = key_ids[key] = len(key_ids)
                    m = _LEADING_INT.match(key)
                    key_numbers.append(int(m.group(0)) if m else -1)
                key_of_raw[point.housenumber] = k
            street_col.append(s)
            key_col.append(k)
            lat_col.append(point.lat)
            lon_col.append(point.lon)
        del street_of_raw, key_of_raw
        n_streets = len(street_ids)
        numbers = np.frombuffer(key_numbers, dtype=np.int64) if key_numbers else np.zeros(0, np.int64)
        lat = np.frombuffer(lat_col, dtype=np.float64) if lat_col else np.zeros(0)
        lon = np.frombuffer(lon_col, dtype=np.float64) if lon_col else np.zeros(0)
        # Working arrays in int32 (positions and ids all fit): the peak of a build is a few of them.
        street = np.frombuffer(street_col, dtype=np.int32) if street_col else np.zeros(0, np.int32)
        key_id = np.frombuffer(key_col, dtype=np.int32) if key_col else np.zeros(0, np.int32)

        # Groups: one per (street, key), their points in the order they came (lexsort is stable).
        order = np.lexsort((key_id, street)).astype(np.int32)
        new = np.ones(len(order), dtype=bool)
        sorted_ids = street[order]
        new[1:] = sorted_ids[1:] != sorted_ids[:-1]
        sorted_ids = key_id[order]
        new[1:] |= sorted_ids[1:] != sorted_ids[:-1]
        del sorted_ids
        first = np.flatnonzero(new).astype(np.int32)  # group g's points: order[first[g]:first[g] + count[g]]
        del new
        count = np.diff(np.append(first, np.int32(len(order))))
        head = order[first]  # each group's first point
        group_street, group_key = street[head], key_id[head]
        del street, key_id, street_col, key_col  # (the views first, then their buffers)
        group_first = np.empty((len(head), 2))
        group_first[:, 0] = lat[head]
        group_first[:, 1] = lon[head]
        mean_group = np.flatnonzero(count > 1)
        mean_point = group_first[mean_group]
        pairs = np.flatnonzero(count[mean_group] == 2)
        if pairs.size:
            second = order[first[mean_group[pairs]] + 1]
            mean_point[pairs, 0] = (mean_point[pairs, 0] + lat[second]) / 2
            mean_point[pairs, 1] = (mean_point[pairs, 1] + lon[second]) / 2
            del second
        del pairs
        for j in np.flatnonzero(count[mean_group] > 2).tolist():  # summed one by one, as a dict of lists did
            g = int(mean_group[j])
            members = order[first[g] : first[g] + count[g]].tolist()
            mean_point[j, 0] = sum(lat[m] for m in members) / len(members)
            mean_point[j, 1] = sum(lon[m] for m in members) / len(members)
        group_start = np.searchsorted(group_street, np.arange(n_streets + 1)).astype(np.int64)

        # Centres of the streets without geometry: their points, keys in the order they first
        # came and each key's points in the order they came (as a dict of lists iterates).
        centre = np.full((n_streets, 2), np.nan)
        wanted = [k for name, k in street_ids.items() if name not in with_geometry]
        for s in wanted:
            groups = np.arange(group_start[s], group_start[s + 1])
            groups = groups[np.argsort(head[groups], kind="stable")]
            members = np.concatenate([order[first[g] : first[g] + count[g]] for g in groups.tolist()])
            points = np.column_stack([lat[members], lon[members]])
            centre[s] = (float(points[:, 0].mean()), float(points[:, 1].mean()))
        del order, first, count
        extent = np.array([lat.min(), lon.min(), lat.max(), lon.max()]) if len(lat) else np.full(4, np.nan)
        del head, lat, lon, lat_col, lon_col  # (the views first, then their buffers)

        # Numbered houses: each group's first point, sorted by (street, number, lat, lon).
        keep = np.flatnonzero(numbers[group_key] >= 0) if len(numbers) else np.zeros(0, np.int64)
        keep = keep.astype(np.int32)
        if len(numbers) and int(numbers.max()) < 2**31:
            numbers = numbers.astype(np.int32)  # widened again on reading (see numbered)
        kept_number = numbers[group_key[keep]]
        kept_street = group_street[keep]
        del group_street
        by_number = np.lexsort((group_first[keep, 1], group_first[keep, 0], kept_number, kept_street))
        numbered_start = np.searchsorted(kept_street[by_number], np.arange(n_streets + 1)).astype(np.int64)
        del kept_street
        numbered_number = kept_number[by_number]
        del kept_number
        numbered_group = np.asarray(keep[by_number], dtype=np.int32)
        del keep, by_number
        return cls(
            tuple(street_ids),
            tuple(key_ids),
            group_start=group_start,
            group_key=group_key,
            group_first=group_first,
            mean_group=mean_group.astype(np.int64),
            mean_point=mean_point,
            numbered_start=numbered_start,
            numbered_number=numbered_number,
            numbered_group=numbered_group,
            centre=centre,
            extent=extent,
        )

    # ------------------------------------------------------------------ #
    # Lookups
    # ------------------------------------------------------------------ #
    def __len__(self) -> int:
        """Number of distinct (street, house-number key) pairs."""
        return int(self.group_start[-1]) if len(self.group_start) else 0

    def __contains__(self, street: object) -> bool:
        return street in self._street_ids

    def point(self, street: str, key: str) -> tuple[float, float] | None:
        """``(lat, lon)`` of the house ``key`` of ``street`` (the mean of its points), or None."""
        s, k = self._street_ids.get(street), self._key_ids.get(key)
        if s is None or k is None:
            return None
        lo, hi = int(self.group_start[s]), int(self.group_start[s + 1])
        at = lo + int(np.searchsorted(self.group_key[lo:hi], k))
        if at >= hi or int(self.group_key[at]) != k:
            return None
        j = int(np.searchsorted(self.mean_group, at))
        if j < len(self.mean_group) and int(self.mean_group[j]) == at:
            return float(self.mean_point[j, 0]), float(self.mean_point[j, 1])
        return float(self.group_first[at, 0]), float(self.group_first[at, 1])

    def numbered(self, street: str) -> tuple[Ints, Floats] | None:
        """House numbers of ``street`` with a leading integer and their points, sorted; None when none."""
        s = self._street_ids.get(street)
        if s is None:
            return None
        lo, hi = int(self.numbered_start[s]), int(self.numbered_start[s + 1])
        if lo == hi:
            return None
        groups = np.asarray(self.numbered_group[lo:hi])
        return np.asarray(self.numbered_number[lo:hi], dtype=np.int64), np.asarray(self.group_first[groups])

    def street_centre(self, street: str) -> tuple[float, float]:
        """Mean ``(lat, lon)`` of all the houses of ``street``.

        Raises
        ------
        KeyError
            If no house of the index is on ``street``.
        ValueError
            If the street's centre was not computed (it has geometry).
        """
        s = self._street_ids[street]
        lat, lon = float(self.centre[s, 0]), float(self.centre[s, 1])
        if lat != lat:
            raise ValueError(f"the centre of {street!r} was not computed (it has its own geometry)")
        return lat, lon
