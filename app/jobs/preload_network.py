"""The job forkserver's road network, loaded once for every job that prices on it.

Imported by the forkserver of an app whose jobs travel on the road network
(:data:`app.jobs.process.PRELOAD_NETWORK`, before :mod:`app.jobs.preload`).
It builds the configured travel model (:func:`app.jobs.travel.preload_travel`:
the stored network, or an OSRM/Valhalla client) and warms it: numba and its
compiled kernels, each mode's hierarchy and segment index. Every job process
is a fork of the server and inherits them (:func:`app.jobs.travel.job_travel`);
without this, each job loaded them again, about 1 s of CPU per job before its
first matrix (``bench/memory.py --spawn``: a 5-visit job on the road network
took 1.0 s, on straight lines 0.15 s).

The memory is shared: the network's arrays are memory-mapped files, and the
rest stays on pages the children only read (:mod:`app.jobs.preload` freezes
the heap for the garbage collector). The server's warm-up builds nothing the
first job would not have built: on a machine where the network is not stored
yet, the first job waits for the server to build and store it.

It never raises (the forkserver dies of an exception other than
``ImportError`` in a preloaded module, and then no job could start): when
loading fails, each job builds its travel model itself and fails, or not, as
it did before.
"""

from __future__ import annotations

import logging

from app.jobs.travel import preload_travel

__all__: list[str] = []

log = logging.getLogger("doorstep.jobs")

try:
    log.info("job forkserver: road network loaded and warmed in %.1f s", preload_travel("network"))
except Exception as exc:  # noqa: BLE001 - see the module's doc: the jobs load it themselves
    log.warning("job forkserver: the road network was not preloaded: %s", type(exc).__name__)
