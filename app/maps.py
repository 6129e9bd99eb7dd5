"""The road network in the web process: loaded only for the map views.

Loading the bundled road network takes seconds and a few hundred MB per
process. A web process needs it only to draw maps: the street background of
the dispatcher page (``/web/api/network.geojson``) and route lines along the
streets (``/web/api/days/<date>``). Everything else — itinerary JSON and
iCalendar, plans, jobs, events, outcomes — never loads it; planning jobs get
their own travel model where they run.

:func:`map_network` loads it (once per process, on first use);
:func:`loaded_network` returns it only when this process has it already, so a
view that merely *could* use street geometry (the itinerary as GeoJSON) draws
straight legs rather than paying for a load.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from solver.geo.network import RoadNetwork

__all__ = ["is_loaded", "leg_paths", "loaded_network", "map_network"]

log = logging.getLogger("doorstep.maps")


def _injected(provider: Any) -> RoadNetwork | None:
    """The travel model itself when the app was given a road network object."""
    network_module = sys.modules.get("solver.geo.network")  # not imported: no network object exists
    model = getattr(provider, "_travel", None)
    if network_module is None or model is None:
        return None
    return model if isinstance(model, network_module.RoadNetwork) else None


def is_loaded() -> bool:
    """Whether this process has loaded the bundled road network (without
    importing the network code when nothing imported it yet)."""
    network_module = sys.modules.get("solver.geo.network")
    return network_module is not None and network_module.load_bundled_network.cache_info().currsize > 0


def map_network(provider: Any) -> tuple[RoadNetwork, str]:
    """The road network for map views and where it comes from, loading the
    bundled one on first use.

    ``provider`` is the app's travel provider (``services().travel``). Source
    ``"travel_model"``: the network planning uses (an injected
    :class:`RoadNetwork`, or the bundled one when jobs plan on the road
    network); ``"bundled"``: the bundled map as a background while jobs plan
    on straight lines (the demo days lie on it)."""
    from solver.geo.network import load_bundled_network

    injected = _injected(provider)
    if injected is not None:
        return injected, "travel_model"
    source = "travel_model" if getattr(provider, "name", "network") == "network" else "bundled"
    if not is_loaded():
        started = time.perf_counter()
        network = load_bundled_network()
        log.info("road network loaded for the map views in %.1f s", time.perf_counter() - started)
        return network, source
    return load_bundled_network(), source


def loaded_network(provider: Any) -> RoadNetwork | None:
    """The road network planning uses, only when it is in memory already
    (never loads); None otherwise, and with straight-line travel."""
    injected = _injected(provider)
    if injected is not None:
        return injected
    if getattr(provider, "name", "network") != "network" or not is_loaded():
        return None
    from solver.geo.network import load_bundled_network

    return load_bundled_network()


def leg_paths(provider: Any, *, load: bool) -> Any:
    """``path(a, b, mode)`` street geometry of the road network planning uses,
    or None (straight legs) with straight-line travel. With ``load=False`` it
    is None as well while the network is not loaded in this process."""
    if getattr(provider, "name", "network") != "network" and _injected(provider) is None:
        return None
    network = map_network(provider)[0] if load else loaded_network(provider)
    return None if network is None else network.path
