"""Record what a product function reads from an OSM extract, without reading the file twice."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import pytest

from solver.geo.osmfile import OsmData, read_osm

__all__ = ["recorded_reads"]


@contextmanager
def recorded_reads(module: ModuleType) -> Iterator[list[OsmData]]:
    """Within the block, ``module.read_osm`` is the real :func:`read_osm` that also appends each
    :class:`OsmData` it returns to the list yielded: a test takes the expected houses or addresses
    from the read the product made (reading the extract again beside it cost 0.45-0.6 s of CPU)."""
    read: list[OsmData] = []

    def recording(path: str | Path) -> OsmData:
        read.append(read_osm(path))
        return read[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, "read_osm", recording)
        yield read
