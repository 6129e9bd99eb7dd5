"""Preferred crews: :attr:`solver.model.Visit.preferred_agents` as the engine
takes them.

The engine prices a soft crew preference per routing node
(:func:`solver.search.search`'s ``preferred_vehicle`` and ``stability_cost``,
the same mechanism re-plans use to keep visits with their crew). A visit's
first preferred crew that works the day is its preferred vehicle; serving
it with any other crew costs ``Options.preferred_agent_cost_s`` seconds of
travel. Crews named but not in the day are skipped, so a preference never
makes a visit infeasible.
"""

from __future__ import annotations

from solver.compile import RoutingData

__all__ = ["preferred_vehicles"]


def preferred_vehicles(data: RoutingData) -> dict[int, int]:
    """Visit node -> the vehicle index its visit prefers (every alternative
    address of the visit), for the visits of ``data`` that name a crew of
    the day in ``preferred_agents``; empty when none do or when
    ``Options.preferred_agent_cost_s`` is 0."""
    if not data.problem.options.preferred_agent_cost_s:
        return {}
    vehicle_of = {veh.agent.id: v for v, veh in enumerate(data.vehicles)}
    preferred: dict[int, int] = {}
    for vi, nodes in data.visit_nodes.items():
        visit = data.problem.visits[vi]
        vehicle = next((vehicle_of[a] for a in visit.preferred_agents if a in vehicle_of), None)
        if vehicle is None:
            continue
        for n in nodes:
            allowed = data.nodes[n].vehicles
            if not allowed or vehicle in allowed:  # a crew that may not make it is no preference
                preferred[n] = vehicle
    return preferred
