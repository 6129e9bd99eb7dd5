"""The OR-Tools model of a day.

:func:`build_model` builds a ``RoutingModel`` from
:class:`~solver.compile.RoutingData`:

* Arc cost: travel seconds (objective ``time``) or metres (``distance``),
  per crew through its travel mode's matrix; service time is not a cost.
* Time dimension: transit ``service(i) + travel(i, j)``, waiting allowed
  (slack), cumul = service start. Several windows per node become a range
  with the gaps removed. Shifts bound each crew's start and end, and
  ``max_work_min`` bounds the span.
* Breaks: fixed-duration interval variables inside their windows
  (``SetBreakIntervalsOfVehicle``); they can interrupt travel or waiting but
  never a visit.
* Visits: the alternatives of a visit form one disjunction of cardinality 1
  whose penalty grows with priority (:func:`solver.compile.drop_penalty`);
  required visits and appointments carry a penalty no travel saving can beat,
  so the solver drops one only when it cannot be served, and we say which.
* Skills, crew size and pinning: allowed vehicles per node.
* Max visits per crew and generic capacity: count and load dimensions.
* Workload balance: soft upper bounds at each crew's fair share
  (:func:`balance`).

The helpers below solve such a model from given routes (a greedy descent,
or a restore that only times them) and read the routes back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from solver.compile import RoutingData
from solver.search.costs import Costs, node_matrix, price
from solver.search.params import ModelParams, RuinRecreateParams

#: OR-Tools' routing status codes, by name.
STATUS = {
    0: "not_solved",
    1: "success",
    2: "partial_success_time_limit",
    3: "fail",
    4: "fail_timeout",
    5: "invalid",
    6: "infeasible",
    7: "optimal",
}


@dataclass
class Model:
    """One OR-Tools model of the routing data and what the read-back needs."""

    # OR-Tools' pywrapcp objects (untyped)
    manager: Any
    routing: Any
    index_of: list[int]
    time_dim: Any
    break_vars: dict[int, list[Any]]
    costs: Costs


def balance(routing: Any, data: RoutingData, time_dim: Any, params: ModelParams) -> None:
    """Soft upper bounds at each crew's fair share of the day.

    ``visits``: the fair share is the number of visits over the crews (by
    proportion of each crew's shift length); every visit above it costs
    :attr:`ModelParams.balance_visit_cost_s`. ``time``: the fair share of
    working time (service plus an estimate of travel) per crew, by shift
    length; each second above it costs :attr:`ModelParams.balance_time_cost`
    seconds of travel.
    """
    mode = data.problem.options.balance
    if mode == "none" or not data.visit_nodes:
        return
    shifts = [max(1, veh.shift[1] - veh.shift[0]) for veh in data.vehicles]
    total_shift = sum(shifts)
    if mode == "visits":
        count_dim = routing.GetDimensionOrDie("visits")
        n = len(data.visit_nodes)
        for v, length in enumerate(shifts):
            share = -(-n * length // total_shift)
            count_dim.SetCumulVarSoftUpperBound(routing.End(v), share, params.balance_visit_cost_s)
        return
    work = 0
    for nodes in data.visit_nodes.values():
        node = data.nodes[nodes[0]]
        work += node.service_s
    # travel estimate: a typical leg, the median over each visit's nearest crew start
    legs = []
    for nodes in data.visit_nodes.values():
        n = nodes[0]
        legs.append(min(data.travel_s(veh.mode, veh.start_node, n) for veh in data.vehicles))
    legs.sort()
    work += legs[len(legs) // 2] * len(legs) // 2
    for v, length in enumerate(shifts):
        share = work * length // total_shift
        time_dim.SetSoftSpanUpperBoundForVehicle(pywrapcp.BoundCost(share, params.balance_time_cost), v)


def search_parameters(time_limit_s: float) -> Any:
    """OR-Tools search parameters: parallel cheapest insertion, then guided
    local search until the time limit."""
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION
    params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    params.time_limit.FromMilliseconds(max(100, int(time_limit_s * 1000)))
    return params


def descent_parameters(time_limit_s: float, heavy: bool, params: RuinRecreateParams | None = None) -> Any:
    """A greedy descent; without ``heavy``, OR-Tools' large-neighbourhood
    operators (:attr:`RuinRecreateParams.heavy_operators`) are off
    (effective only when the model closes with them)."""
    params = params or RuinRecreateParams()
    ortools = search_parameters(time_limit_s)
    ortools.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GREEDY_DESCENT
    if not heavy and params.light_operators:
        for name in params.heavy_operators:
            setattr(ortools.local_search_operators, name, 2)  # BOOL_FALSE
    return ortools


def routes_of(model: Model, solution: Any) -> list[list[int]]:
    """The visit nodes of each crew's route in ``solution``."""
    routing, manager = model.routing, model.manager
    routes: list[list[int]] = []
    for v in range(routing.vehicles()):
        index = solution.Value(routing.NextVar(routing.Start(v)))
        route: list[int] = []
        while not routing.IsEnd(index):
            route.append(manager.IndexToNode(index))
            index = solution.Value(routing.NextVar(index))
        routes.append(route)
    return routes


def assignment(model: Model, routes: list[list[int]], time_limit_s: float, heavy: bool = False,
               params: RuinRecreateParams | None = None) -> Any:
    """Solve ``model`` by a greedy descent from ``routes`` (visit nodes per
    crew; visits on none are left out for the descent to insert).
    ``RoutesToAssignment`` only sets the next variables; the solve restores
    the rest under its own limits (``ReadAssignmentFromRoutes`` restores under
    the previous search's spent time limit and then fails every time)."""
    return solve_from(model, routes, descent_parameters(time_limit_s, heavy, params))


def restore(model: Model, routes: list[list[int]]) -> Any:
    """The full assignment (times, breaks) of ``routes`` in ``model``, as
    they are: the search stops at the first solution, the routes restored."""
    params = search_parameters(60.0)
    params.solution_limit = 1
    return solve_from(model, routes, params)


def solve_from(model: Model, routes: list[list[int]], params: Any) -> Any:
    """Solve ``model`` with ``params`` from ``routes`` (visit nodes per crew;
    visits on none start inactive); None when the routes do not fit it."""
    start = model.routing.solver().Assignment()
    indices = [[model.index_of[n] for n in route] for route in routes]
    if not model.routing.RoutesToAssignment(indices, True, True, start):
        return None
    return model.routing.SolveFromAssignmentWithParameters(start, params)


def build_model(data: RoutingData, preferred_vehicle: dict[int, int] | None, stability_cost: int,
                *, schedule: bool = True, params: ModelParams | None = None) -> Model:
    """The OR-Tools model of ``data`` (not yet closed), with what the
    read-back needs: see :class:`Model`. Without ``schedule`` the solutions'
    times are any feasible ones (no finalizer chooses them): for repairs,
    whose routes are timed later."""
    params = params or ModelParams()
    problem = data.problem
    options = problem.options
    n_nodes = len(data.nodes)
    n_vehicles = len(data.vehicles)
    manager = pywrapcp.RoutingIndexManager(
        n_nodes,
        n_vehicles,
        [v.start_node for v in data.vehicles],
        [v.end_node for v in data.vehicles],
    )
    routing = pywrapcp.RoutingModel(manager)
    index_of = [manager.NodeToIndex(n) for n in range(n_nodes)]

    # -- transit matrices per mode: travel (cost) and service+travel (time) -- #
    costs = price(data, preferred_vehicle, stability_cost, params)
    service = np.array([node.service_s for node in data.nodes], dtype=np.int64)
    time_callbacks: dict[str, int] = {}
    cost_callbacks: dict[str, int] = {}
    for mode, matrix in data.matrices.items():
        # with the objective "time" the arc costs are the travel times already
        travel = costs.arcs[mode] if options.objective == "time" else node_matrix(data, matrix.durations)
        time_callbacks[mode] = routing.RegisterTransitMatrix((travel + service[:, None]).tolist())
        cost_callbacks[mode] = routing.RegisterTransitMatrix(costs.arcs[mode].tolist())
    for v, veh in enumerate(data.vehicles):
        entering = costs.entering[v]
        if entering is None:
            routing.SetArcCostEvaluatorOfVehicle(cost_callbacks[veh.mode], v)
        else:
            rows = (costs.arcs[veh.mode] + entering[None, :]).tolist()
            routing.SetArcCostEvaluatorOfVehicle(routing.RegisterTransitMatrix(rows), v)

    horizon = data.horizon
    routing.AddDimensionWithVehicleTransits(
        [time_callbacks[veh.mode] for veh in data.vehicles],
        horizon,  # waiting allowed up to the whole day
        horizon,
        False,
        "time",
    )
    time_dim = routing.GetDimensionOrDie("time")

    # -- windows -------------------------------------------------------------- #
    for n, node in enumerate(data.nodes):
        if node.kind != "visit":
            continue
        var = time_dim.CumulVar(index_of[n])
        lo, hi = node.windows[0][0], node.windows[-1][1]
        var.SetRange(max(0, lo), min(horizon, hi))
        for (_, gap_lo), (gap_hi, _) in zip(node.windows, node.windows[1:]):
            if gap_hi - gap_lo > 1:
                var.RemoveInterval(gap_lo + 1, gap_hi - 1)

    # Schedule: each visit as early as its route allows (margin for delays),
    # then each crew leaves as late as that allows (no idle wait at the door).
    for n, node in enumerate(data.nodes):
        if node.kind == "visit" and schedule:
            routing.AddVariableMinimizedByFinalizer(time_dim.CumulVar(index_of[n]))
    solver = routing.solver()
    for v, veh in enumerate(data.vehicles):
        start_var = time_dim.CumulVar(routing.Start(v))
        end_var = time_dim.CumulVar(routing.End(v))
        start_var.SetRange(veh.shift[0], veh.shift[1])
        end_var.SetRange(veh.shift[0], veh.shift[1])
        if veh.max_span_s is not None:
            time_dim.SetSpanUpperBoundForVehicle(veh.max_span_s, v)
        if schedule:
            routing.AddVariableMaximizedByFinalizer(start_var)
            routing.AddVariableMinimizedByFinalizer(end_var)

    # -- breaks ---------------------------------------------------------------- #
    node_visit_transit = [0] * routing.Size()
    for index in range(routing.Size()):
        node_visit_transit[index] = int(service[manager.IndexToNode(index)])
    break_vars: dict[int, list[Any]] = {}
    for v, veh in enumerate(data.vehicles):
        intervals = []
        for k, ((lo, hi), duration) in enumerate(veh.breaks):
            intervals.append(
                solver.FixedDurationIntervalVar(lo, hi - duration, duration, False, f"break-{v}-{k}")
            )
        if intervals:
            time_dim.SetBreakIntervalsOfVehicle(intervals, v, node_visit_transit)
            break_vars[v] = intervals

    # -- visit counts and loads --------------------------------------------- #
    is_visit = [1 if node.kind == "visit" else 0 for node in data.nodes]
    if options.balance == "visits" or any(veh.max_visits < len(data.visit_nodes) for veh in data.vehicles):
        count_cb = routing.RegisterUnaryTransitVector(is_visit)
        routing.AddDimensionWithVehicleCapacity(
            count_cb, 0, [veh.max_visits for veh in data.vehicles], True, "visits"
        )
    balance(routing, data, time_dim, params)
    loads = [0] * n_nodes
    for vi, nodes in data.visit_nodes.items():
        for n in nodes:
            loads[n] = problem.visits[vi].load
    if any(loads) and any(veh.capacity is not None for veh in data.vehicles):
        load_cb = routing.RegisterUnaryTransitVector(loads)
        big = sum(loads) + 1
        routing.AddDimensionWithVehicleCapacity(
            load_cb, 0, [big if veh.capacity is None else veh.capacity for veh in data.vehicles], True, "load"
        )

    # -- eligibility and disjunctions ------------------------------------------ #
    for vi, nodes in data.visit_nodes.items():
        for n in nodes:
            if data.nodes[n].vehicles:
                # -1 keeps the node droppable; SetAllowedVehiclesForIndex's
                # Span argument is not accepted by the Python binding.
                routing.VehicleVar(index_of[n]).SetValues([-1, *data.nodes[n].vehicles])
        routing.AddDisjunction([index_of[n] for n in nodes], costs.drop[vi], 1)

    return Model(manager, routing, index_of, time_dim, break_vars, costs)
