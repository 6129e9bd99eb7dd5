"""Travel models of jobs, named so that another process can build the same one.

A job runs in another process than the web app (a child process, or an RQ
work horse on any machine), so it gets its travel model by *name*:

``"network"`` (or ``""`` / None)
    The configured road travel (``[routing] provider``: the bundled road
    network by default, or an OSRM/Valhalla server), built by the process
    that runs the job (:func:`solver.geo.routing.travel_model_from_config`).
``"straight"``
    :class:`solver.travel.StraightLineTravel` (tests, ``--travel straight``).
``"package.module:factory"``
    ``factory()`` from that module: any callable returning a
    :class:`solver.travel.TravelModel` (a class, a function). Tests name
    models that crash on purpose this way.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time

from solver.travel import StraightLineTravel, TravelModel

__all__ = [
    "TravelProvider",
    "build_travel",
    "doorstep_environ",
    "job_travel",
    "preload_travel",
    "warm_travel",
    "worker_travel",
]

log = logging.getLogger("doorstep.jobs")


def build_travel(name: str) -> TravelModel:
    """The travel model named ``name`` (see the module's doc), built now."""
    if name == "straight":
        return StraightLineTravel()
    if name in ("network", ""):
        from solver.geo.routing import travel_model_from_config

        started = time.perf_counter()
        model = travel_model_from_config()
        log.info("travel model %s ready in %.1f s", type(model).__name__, time.perf_counter() - started)
        return model
    module_name, sep, attr = name.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"unknown travel model {name!r}: use 'network', 'straight' or 'package.module:factory'")
    target: object = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise TypeError(f"travel factory {name!r} is not callable")
    return target()  # type: ignore[no-any-return]


class TravelProvider:
    """The travel model of an app: an injected model or a name (see the
    module's doc). :meth:`get` builds it in this process on first use (the
    web app does so only for its own needs, e.g. slot offers and maps; jobs
    get :attr:`name` and build their own)."""

    def __init__(self, travel: TravelModel | str | None = None) -> None:
        self._name: str | None = None
        if isinstance(travel, str) or travel is None:
            self._name = "network" if travel in (None, "", "network") else travel
            self._travel: TravelModel | None = StraightLineTravel() if travel == "straight" else None
        else:
            self._travel = travel
            if isinstance(travel, StraightLineTravel) and travel == StraightLineTravel():
                self._name = "straight"
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """How another process builds the same model: "straight", "network" or
        "module:factory". An injected model other than the default straight
        line has no name: ``"injected"`` (jobs refuse it)."""
        return self._name if self._name is not None else "injected"

    def job_travel(self) -> str:
        """:attr:`name`, or ValueError when jobs cannot build this model."""
        if self._name is None:
            raise ValueError(
                f"an injected travel model ({type(self._travel).__name__}) cannot be rebuilt by a job process: "
                "name it as 'package.module:factory'"
            )
        return self._name

    def get(self) -> TravelModel:
        """The model, built in this process on first use."""
        if self._travel is None:
            with self._lock:
                if self._travel is None:
                    self._travel = build_travel(self._name or "network")
        return self._travel


_WORKER_TRAVEL: dict[str, TravelProvider] = {}
#: Travel name -> the ``DOORSTEP_*`` environment its :func:`worker_travel` was preloaded under.
_PRELOADED: dict[str, dict[str, str]] = {}


def doorstep_environ() -> dict[str, str]:
    """This process's ``DOORSTEP_*`` environment variables (the configuration
    folder, limits, routing): a job runs with the settings of the process that
    submitted it, not those the forkserver had when it started."""
    return {key: value for key, value in os.environ.items() if key.startswith("DOORSTEP_")}


def worker_travel(name: str) -> TravelProvider:
    """A process-wide provider per travel name (an RQ worker preloads the
    network before forking its work horses, which inherit it)."""
    if name not in _WORKER_TRAVEL:
        _WORKER_TRAVEL[name] = TravelProvider(name)
    return _WORKER_TRAVEL[name]


def preload_travel(name: str) -> float:
    """Build :func:`worker_travel` ``(name)`` in this process and warm it (:func:`warm_travel`), before
    this process forks the processes that run jobs (the job forkserver: :mod:`app.jobs.preload_network`).

    A forked job process then gets it from :func:`job_travel` when its own ``DOORSTEP_*``
    environment is the one it was built under. Returns the seconds it took."""
    started = time.perf_counter()
    environ = doorstep_environ()
    warm_travel(worker_travel(name).get())
    _PRELOADED[name] = environ
    return time.perf_counter() - started


def job_travel(name: str) -> TravelProvider:
    """The travel provider of a job process: the one its server preloaded (:func:`preload_travel`)
    when this process's ``DOORSTEP_*`` environment is the one it was built under, else a new
    provider that builds the model on first use."""
    if name in _PRELOADED and _PRELOADED[name] == doorstep_environ():
        return worker_travel(name)
    return TravelProvider(name)


def warm_travel(model: TravelModel) -> float:
    """Have this process load what ``model``'s first matrix per mode loads (a road network's compiled
    kernels, hierarchies and segment indexes: :func:`solver.geo.network.chengine.warm`), so that the
    processes it forks inherit them; other models need nothing. Returns the seconds it took."""
    started = time.perf_counter()
    from solver.geo.network import RoadNetwork

    if isinstance(model, RoadNetwork):
        from solver.geo.network.chengine import warm

        modes = warm(model)
        log.info("travel model warmed (%s) in %.1f s", ", ".join(modes), time.perf_counter() - started)
    return time.perf_counter() - started
