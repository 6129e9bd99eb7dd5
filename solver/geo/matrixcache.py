"""Content-addressed cache of travel matrices, in memory and optionally on disk.

A matrix is determined by three things: the network (its nodes, edges and
speed settings), the travel mode and the point set. :func:`matrix_key`
hashes all three into a hex digest, so two :class:`~solver.geo.network.RoadNetwork`
objects built from the same graph and settings — in two processes, or on
two days — share entries, and any change to the network or its speeds gives
new keys.

:class:`MatrixCache` keeps the most recently used matrices in memory and,
given a folder, also writes each one there as ``<key>.npz`` (numpy's
uncompressed archive; a 1,000-point matrix is about 17 MB) so that a
restarted service finds it again.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import NotRequired, TypedDict

import numpy as np
import numpy.typing as npt

from solver.travel import TravelMatrix

__all__ = ["MatrixCache", "matrix_key"]

#: Points are hashed at this many decimal places of a degree (about 1 cm).
_DECIMALS = 7


class _Arrays(TypedDict):
    """The arrays of a :class:`~solver.travel.TravelMatrix` as stored in a ``.npz`` file."""

    durations: npt.NDArray[np.int64]
    distances: npt.NDArray[np.int64]
    reachable: NotRequired[npt.NDArray[np.bool_]]


def matrix_key(network_id: str, mode: str, lats: npt.NDArray[np.float64], lons: npt.NDArray[np.float64]) -> str:
    """The content address of a matrix.

    Parameters
    ----------
    network_id : str
        Fingerprint of the network and its settings.
    mode : str
        Travel mode.
    lats, lons : numpy.ndarray
        The points, WGS-84, in order.

    Returns
    -------
    str
        SHA-256 hex digest of the three, points rounded to 1e-7 degree.
    """
    digest = hashlib.sha256()
    digest.update(network_id.encode())
    digest.update(b"\0" + mode.encode() + b"\0")
    points = np.round(np.column_stack([np.asarray(lats, float), np.asarray(lons, float)]), _DECIMALS)
    digest.update(np.ascontiguousarray(points + 0.0).tobytes())  # + 0.0 turns -0.0 into 0.0
    return digest.hexdigest()


class MatrixCache:
    """Least-recently-used matrices in memory, optionally mirrored to a folder.

    Parameters
    ----------
    size : int, optional
        Matrices kept in memory.
    directory : str or pathlib.Path, optional
        Folder for ``<key>.npz`` files; created when needed. None: memory only.

    Notes
    -----
    Thread-safe. :meth:`get` returns copies, so callers may change what they
    get. A damaged or unreadable file counts as a miss.
    """

    def __init__(self, size: int = 16, directory: str | Path | None = None) -> None:
        self.size = int(size)
        self.directory = None if directory in (None, "") else Path(directory)
        self._memory: OrderedDict[str, TravelMatrix] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.disk_hits = 0
        self.misses = 0

    def _path(self, key: str) -> Path:
        assert self.directory is not None
        return self.directory / f"{key}.npz"

    @staticmethod
    def _copy(matrix: TravelMatrix) -> TravelMatrix:
        return TravelMatrix(
            durations=matrix.durations.copy(),
            distances=matrix.distances.copy(),
            reachable=None if matrix.reachable is None else matrix.reachable.copy(),
        )

    def _remember(self, key: str, matrix: TravelMatrix) -> None:
        with self._lock:
            self._memory[key] = matrix
            self._memory.move_to_end(key)
            while len(self._memory) > self.size:
                self._memory.popitem(last=False)

    def get(self, key: str) -> TravelMatrix | None:
        """The matrix stored under ``key`` (a copy), or None.

        Parameters
        ----------
        key : str
            From :func:`matrix_key`.

        Returns
        -------
        solver.travel.TravelMatrix or None
        """
        with self._lock:
            found = self._memory.get(key)
            if found is not None:
                self._memory.move_to_end(key)
                self.hits += 1
                return self._copy(found)
        if self.directory is not None:
            path = self._path(key)
            if path.is_file():
                try:
                    with np.load(path) as archive:
                        found = TravelMatrix(
                            durations=archive["durations"],
                            distances=archive["distances"],
                            reachable=archive["reachable"] if "reachable" in archive.files else None,
                        )
                except (OSError, ValueError, KeyError):
                    found = None
                if found is not None:
                    self._remember(key, found)
                    with self._lock:
                        self.disk_hits += 1
                    return self._copy(found)
        with self._lock:
            self.misses += 1
        return None

    def put(self, key: str, matrix: TravelMatrix) -> None:
        """Store a matrix under ``key`` (in memory, and on disk when configured).

        Parameters
        ----------
        key : str
            From :func:`matrix_key`.
        matrix : solver.travel.TravelMatrix
            Stored as a copy.
        """
        stored = self._copy(matrix)
        self._remember(key, stored)
        if self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        arrays: _Arrays = {"durations": stored.durations, "distances": stored.distances}
        if stored.reachable is not None:
            arrays["reachable"] = stored.reachable
        handle, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as out:
                np.savez(out, **arrays)
            os.replace(tmp, self._path(key))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def clear_memory(self) -> None:
        """Forget the in-memory entries (files stay)."""
        with self._lock:
            self._memory.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._memory)
