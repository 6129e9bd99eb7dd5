"""The objective of a day, priced outside OR-Tools.

:class:`Costs` holds the terms of the engine's objective — arc costs per
travel mode, the stability cost of entering a node per crew, the cost of
leaving each visit out — so that a repair of a few routes can be priced
alone (:mod:`solver.search.ruin_recreate`) and a PyVRP solution priced as
OR-Tools would (:mod:`solver.search.engine`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from solver.compile import RoutingData
from solver.search.params import ModelParams

#: Metres per second of leaving a visit out with the ``distance`` objective (about 25 km/h).
DISTANCE_COST_SCALE = 7


@dataclass
class Costs:
    """The model's objective, priced outside OR-Tools: arc costs per travel
    mode (node × node), the stability cost of entering each node per crew
    (or ``None``), and the cost of leaving each visit out. With no workload
    balance this is the whole objective (:func:`separable`)."""

    arcs: dict[str, npt.NDArray[np.int64]]
    entering: list[npt.NDArray[np.int64] | None]
    drop: dict[int, int]

    def route(self, data: RoutingData, vehicle: int, sequence: list[int]) -> int:
        """What crew ``vehicle`` making the visit nodes ``sequence`` costs."""
        veh = data.vehicles[vehicle]
        places = [veh.start_node, *sequence, veh.end_node]
        cost = int(self.arcs[veh.mode][places[:-1], places[1:]].sum())
        entering = self.entering[vehicle]
        if entering is not None:
            cost += int(entering[places[1:]].sum())
        return cost


def visit_of(data: RoutingData, node: int) -> int:
    """The visit (index into the problem's visits) a visit node serves."""
    visit = data.nodes[node].visit
    assert visit is not None, node  # routes hold visit nodes only
    return visit


def separable(data: RoutingData) -> bool:
    """Whether the objective is a sum over routes and left-out visits (arc
    costs, stability, drop penalties), so that a repair of a few routes can
    be priced alone. Workload balance ties every route to the day's fair
    share: such days are repaired whole."""
    return data.problem.options.balance == "none"


def node_matrix(data: RoutingData, values: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """``values`` (point × point) between ``data``'s nodes; an open end (no
    point) is 0 to and from everywhere. Costs O(nodes²) whatever the size of
    ``values``: a sub-model of a large day reads only its own rows."""
    open_end = np.array([node.point is None for node in data.nodes], dtype=bool)
    index = np.array([0 if node.point is None else node.point for node in data.nodes])
    matrix: npt.NDArray[np.int64] = values[np.ix_(index, index)]
    if open_end.any():
        matrix[open_end, :] = 0
        matrix[:, open_end] = 0
    return matrix


def price(data: RoutingData, preferred_vehicle: dict[int, int] | None, stability_cost: int,
          params: ModelParams | None = None) -> Costs:
    """The objective's terms (:class:`Costs`) for ``data``: travel seconds
    or metres between nodes per mode; entering a visit node that
    ``preferred_vehicle`` gives another crew costs ``stability_cost`` (where
    nodes² × crews stays within :attr:`ModelParams.stability_matrix_limit`);
    leaving a visit out costs its penalty (seconds, or metres at about
    25 km/h)."""
    params = params or ModelParams()
    options = data.problem.options
    n_nodes, n_vehicles = len(data.nodes), len(data.vehicles)
    arcs = {}
    for mode, matrix in data.matrices.items():
        arcs[mode] = node_matrix(data, matrix.durations if options.objective == "time" else matrix.distances)
    entering: list[npt.NDArray[np.int64] | None] = [None] * n_vehicles
    if preferred_vehicle and stability_cost and n_nodes * n_nodes * n_vehicles <= params.stability_matrix_limit:
        for v in range(n_vehicles):
            entering[v] = np.array([stability_cost if preferred_vehicle.get(j, v) != v else 0
                                    for j in range(n_nodes)])
    cost_scale = 1 if options.objective == "time" else DISTANCE_COST_SCALE
    drop = {vi: data.penalties[vi] * cost_scale for vi in data.visit_nodes}
    return Costs(arcs, entering, drop)
