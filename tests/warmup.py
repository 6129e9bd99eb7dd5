"""Warm-up the test controller starts beside its workers (``tests/conftest.py``).

Every test process that prices a route on the bundled map needs the road
network and its contraction hierarchies stored under the index folder, and
numba's compiled kernels in their on-disk cache. A fresh clone has neither:
without this, the first tests of each xdist worker to reach the map would
all build and compile the same things at once (about 30 s of CPU each for
the kernels alone). One process builds them here while the workers run the
tests that need no map; a worker that gets there first still builds for
itself, so this changes how long the suite takes, never what it tests. A test
early in the order that needs the map asks for the ``warm_map`` fixture, which
waits for the file this process creates when it ends
(``$DOORSTEP_TEST_WARMUP_DONE``).

Run by hand: ``python -m tests.warmup``.
"""

from __future__ import annotations

import logging
import os
from typing import get_args

import numpy as np

from solver.geo.gazetteer import load_bundled_gazetteer
from solver.geo.network import load_bundled_network
from solver.geo.network.ch import build
from solver.model import Location, TravelMode


def main() -> None:
    """Load (or build) the gazetteer, contract a toy graph, build (or load) the bundled network, price a small
    matrix per mode. The gazetteer first: it takes a second, and the web tests at the head of the suite's order
    geocode with it (each worker built it for itself when the warm-up got there last)."""
    logging.basicConfig(level=logging.WARNING)
    load_bundled_gazetteer()
    ring = np.arange(4, dtype=np.int64)
    build(4, np.concatenate([ring, (ring + 1) % 4]), np.concatenate([(ring + 1) % 4, ring]), np.full(8, 10, np.int64))
    net = load_bundled_network()
    # three points of central Shanghai (the bundled Huangpu extract)
    points = [Location(lat=31.2304, lon=121.4737), Location(lat=31.2397, lon=121.4900),
              Location(lat=31.2200, lon=121.4800)]
    for mode in get_args(TravelMode):
        net.matrix(points, mode)


if __name__ == "__main__":
    try:
        main()
    finally:  # the tests waiting for it (tests/conftest.py: warm_map) go on, whatever happened here
        done = os.environ.get("DOORSTEP_TEST_WARMUP_DONE")
        if done:
            open(done, "w").close()
