"""What the job forkserver loads once, so that no job process loads it again.

Job processes are forks of one server process (:mod:`app.jobs.process`,
multiprocessing's *forkserver*), which imports the modules of
:data:`app.jobs.process.PRELOAD` when it starts. A child inherits them; what
a job imports after the fork is imported again by every job, and lost when
it ends. This module, the last of that list:

* imports what every plan job imports lazily: the split-day job
  (:mod:`app.jobs.split`), the hybrid search and its PyVRP engine (when
  installed) and OR-Tools' search-parameter messages (their protobuf
  descriptors are built on first use). A 6-visit job imported 60 modules
  after the fork, about 40 ms of CPU of its 0.17 s;
* then freezes the server's heap for the garbage collector
  (:func:`gc.freeze`): a child's full collections no longer walk the
  millions of objects it inherited, which would cost CPU and copy every
  page they sit on (the pages stay shared with the server).

It never raises: the forkserver ignores an ``ImportError`` in a preloaded
module but dies of any other exception, and then no job could start. What
failed here is imported again by the job that needs it.
"""

from __future__ import annotations

import gc
import importlib
import logging

__all__ = ["MODULES", "preload"]

log = logging.getLogger("doorstep.jobs")

#: Modules every plan job imports after the fork unless the server has them.
MODULES = (
    "app.jobs.split",
    "solver.search.hybrid",
    "solver.search.split",
    "solver.geo.results",
    "pyvrp",  # the hybrid search's engine; optional (solver.search.ils.available)
)


def preload() -> list[str]:
    """Import :data:`MODULES`, build OR-Tools' default search parameters once, freeze the heap.

    Returns
    -------
    list of str
        The modules that could not be imported (none, when every optional
        engine is installed).
    """
    missing = []
    for name in MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - optional (pyvrp) or broken: the job imports it again, and says so
            missing.append(name)
    try:
        from ortools.constraint_solver import pywrapcp

        pywrapcp.DefaultRoutingSearchParameters()  # imports and builds the routing parameter messages
    except Exception:  # noqa: BLE001 - as above
        missing.append("ortools.constraint_solver.routing_parameters_pb2")
    gc.collect()
    gc.freeze()
    return missing


_missing = preload()
if _missing:
    log.info("job forkserver: not preloaded: %s", ", ".join(_missing))
