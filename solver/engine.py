"""The OR-Tools routing engine.

:func:`search` builds a ``RoutingModel`` from :class:`~solver.compile.RoutingData`
and returns :class:`RawSolution`: for each crew the sequence of nodes with the
service start the solver chose, the feasible start range, and the breaks.

Model
-----
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

Search: a ``PARALLEL_CHEAPEST_INSERTION`` first solution (it finds solutions
on tightly windowed instances such as Solomon R101, where
``PATH_CHEAPEST_ARC`` does not) and a greedy descent, then iterated ruin and
recreate (:class:`_RuinAndRecreate`) until the time limit: each repair is an
OR-Tools descent in a sub-model of the routes around the ruin, or of the
whole day where workload balance couples the routes. A warm start from given
routes (re-plans) runs guided local search instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from solver.compile import RoutingData

_STATUS = {
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
class RawStop:
    node: int
    start: int  # chosen service start, seconds


@dataclass
class RawRoute:
    vehicle: int
    start: int  # time the crew leaves its start place
    end: int  # time it reaches its end place
    stops: list[RawStop] = field(default_factory=list)
    breaks: list[tuple[int, int]] = field(default_factory=list)  # (start, duration)


@dataclass
class RawSolution:
    routes: list[RawRoute]
    dropped: list[int]  # visit indices left out
    objective: int | None
    status: str
    seconds: float
    first_solution: str
    metaheuristic: str


#: Balance: cost of each visit above a crew's fair share (seconds of travel).
BALANCE_VISIT_COST_S = 1200
#: Balance: cost of each second of work above a crew's fair share.
BALANCE_TIME_COST = 2


def _balance(routing: Any, data: RoutingData, time_dim: Any) -> None:
    """Soft upper bounds at each crew's fair share of the day.

    ``visits``: the fair share is the number of visits over the crews (by
    proportion of each crew's shift length); every visit above it costs
    :data:`BALANCE_VISIT_COST_S`. ``time``: the fair share of working time
    (service plus an estimate of travel) per crew, by shift length; each
    second above it costs :data:`BALANCE_TIME_COST` seconds of travel.
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
            count_dim.SetCumulVarSoftUpperBound(routing.End(v), share, BALANCE_VISIT_COST_S)
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
        time_dim.SetSoftSpanUpperBoundForVehicle(pywrapcp.BoundCost(share, BALANCE_TIME_COST), v)


def search_parameters(time_limit_s: float) -> Any:
    """OR-Tools search parameters: parallel cheapest insertion, then guided
    local search until the time limit."""
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION
    params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    params.time_limit.FromMilliseconds(max(100, int(time_limit_s * 1000)))
    return params


#: Largest nodes² × crews for which re-plans price stability per crew (else warm start only).
STABILITY_MATRIX_LIMIT = 30_000_000
#: Chance that a ruin empties a short route instead of a cluster of visits.
ROUTE_RUIN_PROBABILITY = 0.15
#: Largest ruin, as a share of the visits, and at most this many visits.
RUIN_SHARE = 0.3
RUIN_MAX = 20
#: The descents (after the first solution and after each ruin) skip OR-Tools'
#: slow large-neighbourhood operators: 3.5 times as many ruin-and-recreate
#: iterations in the same time on Solomon instances.
RR_LIGHT_OPERATORS = True
RR_HEAVY_OPERATORS = (
    "use_global_cheapest_insertion_path_lns",
    "use_local_cheapest_insertion_path_lns",
    "use_relocate_path_global_cheapest_insertion_insert_unperformed",
    "use_global_cheapest_insertion_visit_types_lns",
    "use_local_cheapest_insertion_visit_types_lns",
    "use_shortest_path_swap_active",
    "use_shortest_path_two_opt",
    "use_swap_active_chain",
    "use_make_chain_inactive",
    "use_relocate_expensive_chain",
    "use_lin_kernighan",
)
#: Share of the repairs made with OR-Tools' full operator set.
RR_HEAVY_SHARE = 0.3
#: Record-to-record acceptance: a worse solution within this share of the
#: best cost may become the current one (the share shrinks to zero).
ACCEPT_THRESHOLD = 0.01
#: Repairs in a sub-model: the ruined routes and the routes nearest the ruin,
#: added until they hold about this many visits (a descent over 200 visits
#: takes ten times as long as one over 60).
SCOPE_VISITS = 60
#: Empty crews (nearest the ruin first) a sub-model repair may open a route with.
SCOPE_EMPTY_CREWS = 1
#: While visits are left out, share of the repairs made on the whole day: a
#: left-out visit may fit only a crew far from it (skills, crew size, pinning),
#: which no sub-model around it holds.
RR_WHOLE_SHARE = 0.2
#: ... on days of at most this many visits: above it a whole-day repair costs
#: more than it brings (measured: on the ~150-visit territories of
#: bench/day.py travel rose 5 % on two seeds; on the 100-visit demo day the
#: objective fell 28 %, mean of three seeds).
RR_WHOLE_MAX_VISITS = 120


@dataclass
class _Model:
    """One OR-Tools model of the routing data and what the read-back needs."""

    # OR-Tools' pywrapcp objects (untyped)
    manager: Any
    routing: Any
    index_of: list[int]
    time_dim: Any
    break_vars: dict[int, list[Any]]
    costs: _Costs


@dataclass
class _Costs:
    """The model's objective, priced outside OR-Tools: arc costs per travel
    mode (node × node), the stability cost of entering each node per crew
    (or ``None``), and the cost of leaving each visit out. With no workload
    balance this is the whole objective (:func:`_separable`)."""

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


def _visit_of(data: RoutingData, node: int) -> int:
    """The visit (index into the problem's visits) a visit node serves."""
    visit = data.nodes[node].visit
    assert visit is not None, node  # routes hold visit nodes only
    return visit


def _separable(data: RoutingData) -> bool:
    """Whether the objective is a sum over routes and left-out visits (arc
    costs, stability, drop penalties), so that a repair of a few routes can
    be priced alone. Workload balance ties every route to the day's fair
    share: such days are repaired whole."""
    return data.problem.options.balance == "none"


def _routes_of(model: _Model, solution: Any) -> list[list[int]]:
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


def _descent_parameters(time_limit_s: float, heavy: bool) -> Any:
    """A greedy descent; without ``heavy``, OR-Tools' large-neighbourhood
    operators are off (effective only when the model closes with them)."""
    params = search_parameters(time_limit_s)
    params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GREEDY_DESCENT
    if not heavy and RR_LIGHT_OPERATORS:
        for name in RR_HEAVY_OPERATORS:
            setattr(params.local_search_operators, name, 2)  # BOOL_FALSE
    return params


def _assignment(model: _Model, routes: list[list[int]], time_limit_s: float, heavy: bool = False) -> Any:
    """Solve ``model`` by a greedy descent from ``routes`` (visit nodes per
    crew; visits on none are left out for the descent to insert).
    ``RoutesToAssignment`` only sets the next variables; the solve restores
    the rest under its own limits (``ReadAssignmentFromRoutes`` restores under
    the previous search's spent time limit and then fails every time)."""
    return _solve_from(model, routes, _descent_parameters(time_limit_s, heavy))


def _restore(model: _Model, routes: list[list[int]]) -> Any:
    """The full assignment (times, breaks) of ``routes`` in ``model``, as
    they are: the search stops at the first solution, the routes restored."""
    params = search_parameters(60.0)
    params.solution_limit = 1
    return _solve_from(model, routes, params)


def _solve_from(model: _Model, routes: list[list[int]], params: Any) -> Any:
    """Solve ``model`` with ``params`` from ``routes`` (visit nodes per crew;
    visits on none start inactive); None when the routes do not fit it."""
    start = model.routing.solver().Assignment()
    indices = [[model.index_of[n] for n in route] for route in routes]
    if not model.routing.RoutesToAssignment(indices, True, True, start):
        return None
    return model.routing.SolveFromAssignmentWithParameters(start, params)


class _RuinAndRecreate:
    """Iterated ruin and recreate around OR-Tools.

    Each iteration ruins the current solution around a random seed visit in
    one of three ways: a cluster of the visits nearest to it; strings
    (consecutive visits) cut from the routes passing nearest to it; or,
    with probability :data:`ROUTE_RUIN_PROBABILITY`, every visit of a short
    route. OR-Tools re-inserts the removed visits (its local search makes
    unperformed visits active) and descends to a local optimum, with its
    light operator set or, with probability :data:`RR_HEAVY_SHARE`, its full
    one (large-neighbourhood operators included).

    Where the objective is a sum over routes (:func:`_separable`), a repair
    is made in a sub-model of the ruined routes and the routes nearest the
    ruin (:data:`SCOPE_VISITS`), an empty crew nearest it and the left-out
    visits near it, and priced with :class:`_Costs`: on 200 visits a repair
    takes 40 ms instead of 400. Otherwise, and in :data:`RR_WHOLE_SHARE` of
    the repairs of a small day (:data:`RR_WHOLE_MAX_VISITS`) while it leaves
    visits out, the whole day is repaired in its prebuilt model (light, or
    heavy where there is one).

    The result replaces the current solution when it is better, or within a
    threshold that shrinks from :data:`ACCEPT_THRESHOLD` of the best cost to
    zero over the budget (record-to-record travel); the best is kept apart.
    """

    def __init__(self, data: RoutingData, costs: _Costs, seed: int, *,
                 preferred_vehicle: dict[int, int] | None = None, stability_cost: int = 0,
                 whole: tuple[_Model, _Model | None] | None = None,
                 feasible: Callable[[int, list[int]], bool] | None = None) -> None:
        """``costs`` prices ``data`` (:func:`_price`, with the same
        ``preferred_vehicle`` and ``stability_cost``); days that are not
        :func:`_separable` need ``whole``: the light and (optional) heavy
        models of the whole day, closed. ``feasible`` vets each route a
        repair changed (a repair with one it refuses is discarded)."""
        import random

        self.data, self.costs = data, costs
        self.rng = random.Random(seed)
        self.preferred_vehicle, self.stability_cost = preferred_vehicle, stability_cost
        self.separable = _separable(data)
        if not self.separable and whole is None:
            raise ValueError("a day with workload balance is repaired whole: pass its models")
        self.light: _Model | None
        self.heavy: _Model | None
        self.light, self.heavy = whole if whole is not None else (None, None)
        self.feasible = feasible
        self.visit_nodes = [n for n, node in enumerate(data.nodes) if node.kind == "visit"]
        self.matrix = data.matrices[data.vehicles[0].mode].durations
        self.point = [node.point for node in data.nodes]
        self.k_remove = max(4, min(RUIN_MAX, int(len(self.visit_nodes) * RUIN_SHARE)))
        self.iterations = self.improvements = 0

    def cost(self, routes: list[list[int]]) -> int:
        """The objective of a whole solution (separable days only)."""
        costs, served = self.costs, {self.data.nodes[n].visit for route in routes for n in route}
        return (sum(costs.route(self.data, v, route) for v, route in enumerate(routes))
                + sum(c for vi, c in costs.drop.items() if vi not in served))

    def run(self, routes: list[list[int]], cost: int, budget_s: float) -> tuple[list[list[int]], int]:
        """Improve ``routes`` (visit nodes per crew, objective ``cost``) until
        ``budget_s`` runs out; returns the best routes and their cost."""
        begin = time.perf_counter()
        deadline = begin + budget_s
        best, best_cost = routes, cost
        current, current_cost = routes, cost
        if not self.visit_nodes:
            return best, best_cost
        while True:
            now = time.perf_counter()
            remaining = deadline - now
            if remaining < 0.05:
                break
            self.iterations += 1
            seed = self.visit_nodes[self.rng.randrange(len(self.visit_nodes))]
            sp = self.point[seed]
            assert sp is not None  # visit nodes have a place
            near = sorted(self.visit_nodes,
                          key=lambda n: self.matrix[sp, self.point[n]] + self.matrix[self.point[n], sp])
            removed = self._ruin(current, near)
            heavy = self.rng.random() < RR_HEAVY_SHARE
            limit = min(remaining, 1.0)
            whole = self.light is not None and (
                not self.separable
                or (len(self.data.visit_nodes) <= RR_WHOLE_MAX_VISITS and self.rng.random() < RR_WHOLE_SHARE
                    and self._leaves_out(current))
            )
            repaired = (self._repair_whole(current, removed, heavy, limit) if whole
                        else self._repair_part(current, removed, near, sp, heavy, limit, current_cost))
            if repaired is None:
                continue
            candidate, cost = repaired
            if self.feasible is not None and not all(
                self.feasible(v, route) for v, route in enumerate(candidate) if route is not current[v]
            ):
                continue
            threshold = ACCEPT_THRESHOLD * best_cost * max(0.0, 1 - (now - begin) / budget_s)
            if cost < current_cost or cost < best_cost + threshold:
                current, current_cost = candidate, cost
                if cost < best_cost:
                    best, best_cost = candidate, cost
                    self.improvements += 1
        return best, best_cost

    def _leaves_out(self, routes: list[list[int]]) -> bool:
        """Whether ``routes`` leave a visit out."""
        return sum(len(route) for route in routes) < len(self.data.visit_nodes)

    def _ruin(self, routes: list[list[int]], near: list[int]) -> set[int]:
        """Visit nodes to take out of ``routes``, around ``near[0]``."""
        rng = self.rng
        size = rng.randint(max(2, self.k_remove // 2), self.k_remove)
        roll = rng.random()
        if roll < ROUTE_RUIN_PROBABILITY:
            # empty a short route: its visits must find room elsewhere
            used = [r for r in routes if r]
            if not used:
                return set()
            shortest = min(rng.sample(used, min(3, len(used))), key=len)
            return set(shortest)
        if roll < 0.6:
            return set(near[:size])
        position = {n: (r, k) for r, route in enumerate(routes) for k, n in enumerate(route)}
        removed: set[int] = set()
        cut_routes: set[int] = set()
        for n in near:
            if len(cut_routes) >= 3 or len(removed) >= size or n not in position:
                continue
            r, k = position[n]
            if r in cut_routes:
                continue
            cut_routes.add(r)
            route = routes[r]
            length = rng.randint(1, max(1, min(10, len(route), size - len(removed))))
            first = max(0, min(k - rng.randint(0, length - 1), len(route) - length))
            removed.update(route[first:first + length])
        return removed

    def _repair_whole(self, routes: list[list[int]], removed: set[int], heavy: bool,
                      limit_s: float) -> tuple[list[list[int]], int] | None:
        """Repair the whole day in the light or heavy prebuilt model; returns
        (routes, their cost) or None."""
        model = self.heavy if heavy and self.heavy is not None else self.light
        assert model is not None  # whole-day repairs run only with the prebuilt models
        solution = _assignment(model, [[n for n in r if n not in removed] for r in routes], limit_s, heavy)
        if solution is None:
            return None
        return _routes_of(model, solution), solution.ObjectiveValue()

    def _repair_part(self, routes: list[list[int]], removed: set[int], near: list[int], sp: int, heavy: bool,
                     limit_s: float, cost: int) -> tuple[list[list[int]], int] | None:
        """Repair the routes around the ruin in a sub-model; ``cost`` is the
        objective of ``routes``. Returns (routes, their cost) or None."""
        data, costs = self.data, self.costs
        vehicle_of = {n: v for v, route in enumerate(routes) for n in route}
        scope = sorted({vehicle_of[n] for n in removed if n in vehicle_of})
        held = sum(len(routes[v]) for v in scope)
        for n in near:
            if held >= SCOPE_VISITS:
                break
            v = vehicle_of.get(n)
            if v is not None and v not in scope:
                scope.append(v)
                held += len(routes[v])
        empty = [v for v, route in enumerate(routes) if not route]
        empty.sort(key=lambda v: self.matrix[self.point[data.vehicles[v].start_node], sp])
        scope += empty[:SCOPE_EMPTY_CREWS]
        if not scope:
            return None
        served = {_visit_of(data, n) for route in routes for n in route}
        visits = [_visit_of(data, n) for v in scope for n in routes[v]]
        left_out = {_visit_of(data, n) for n in near[:SCOPE_VISITS]} - served
        visits += sorted(left_out)
        before = sum(costs.route(data, v, routes[v]) for v in scope) + sum(costs.drop[vi] for vi in left_out)

        sub, node_map, _ = data.subset(scope, visits)
        preferred = None
        if any(entering is not None for entering in costs.entering):
            # the day prices stability (small enough): so does the sub-model
            assert self.preferred_vehicle is not None  # only preferred crews price stability (_price)
            crew = {v: k for k, v in enumerate(scope)}
            preferred = {k: crew.get(self.preferred_vehicle[n], -1)
                         for k, n in enumerate(node_map) if n in self.preferred_vehicle}
        model = _build_model(sub, preferred, self.stability_cost, schedule=False)
        model.routing.CloseModelWithParameters(_descent_parameters(limit_s, heavy))
        sub_node = {n: k for k, n in enumerate(node_map)}
        partial = [[sub_node[n] for n in routes[v] if n not in removed] for v in scope]
        solution = _assignment(model, partial, limit_s, heavy)
        if solution is None:
            return None
        candidate = list(routes)
        for k, route in enumerate(_routes_of(model, solution)):
            candidate[scope[k]] = [node_map[n] for n in route]
        served_after = {_visit_of(data, n) for v in scope for n in candidate[v]}
        after = (sum(costs.route(data, v, candidate[v]) for v in scope)
                 + sum(costs.drop[vi] for vi in visits if vi not in served_after))
        return candidate, cost - before + after


def polish(data: RoutingData, routes: list[list[int]], budget_s: float, *, seed: int = 0,
           feasible: Callable[[int, list[int]], bool] | None = None,
           ) -> tuple[list[list[int]], int | None, tuple[int, int]]:
    """Improve a day's ``routes`` (visit nodes per crew, feasible) by ruin and
    recreate in sub-models for ``budget_s`` seconds, without a model of the
    whole day: for days solved in parts (:mod:`solver.territories`), whose
    borders the parts' own searches could not cross. Returns the best routes
    (untimed), their objective, and (iterations, improvements); a day with
    workload balance comes back as it was, its objective ``None``.
    ``feasible(crew, visit nodes)``, when given, must accept every route a
    repair changes (e.g. the caller can time it)."""
    if not _separable(data):
        return routes, None, (0, 0)
    rr = _RuinAndRecreate(data, _price(data, None, 0), seed, feasible=feasible)
    best, cost = rr.run(routes, rr.cost(routes), budget_s)
    return best, cost, (rr.iterations, rr.improvements)


def _node_matrix(data: RoutingData, values: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
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


def _price(data: RoutingData, preferred_vehicle: dict[int, int] | None, stability_cost: int) -> _Costs:
    """The objective's terms (:class:`_Costs`) for ``data``: travel seconds
    or metres between nodes per mode; entering a visit node that
    ``preferred_vehicle`` gives another crew costs ``stability_cost`` (where
    nodes² × crews stays within :data:`STABILITY_MATRIX_LIMIT`); leaving a
    visit out costs its penalty (seconds, or metres at about 25 km/h)."""
    options = data.problem.options
    n_nodes, n_vehicles = len(data.nodes), len(data.vehicles)
    arcs = {}
    for mode, matrix in data.matrices.items():
        arcs[mode] = _node_matrix(data, matrix.durations if options.objective == "time" else matrix.distances)
    entering: list[npt.NDArray[np.int64] | None] = [None] * n_vehicles
    if preferred_vehicle and stability_cost and n_nodes * n_nodes * n_vehicles <= STABILITY_MATRIX_LIMIT:
        for v in range(n_vehicles):
            entering[v] = np.array([stability_cost if preferred_vehicle.get(j, v) != v else 0
                                    for j in range(n_nodes)])
    cost_scale = 1 if options.objective == "time" else 7  # ~25 km/h: metres per second
    drop = {vi: data.penalties[vi] * cost_scale for vi in data.visit_nodes}
    return _Costs(arcs, entering, drop)


def _build_model(data: RoutingData, preferred_vehicle: dict[int, int] | None, stability_cost: int,
                 *, schedule: bool = True) -> _Model:
    """The OR-Tools model of ``data`` (not yet closed), with what the
    read-back needs: see :class:`_Model`. Without ``schedule`` the solutions'
    times are any feasible ones (no finalizer chooses them): for repairs,
    whose routes are timed later."""
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
    costs = _price(data, preferred_vehicle, stability_cost)
    service = np.array([node.service_s for node in data.nodes], dtype=np.int64)
    time_callbacks: dict[str, int] = {}
    cost_callbacks: dict[str, int] = {}
    for mode, matrix in data.matrices.items():
        # with the objective "time" the arc costs are the travel times already
        travel = costs.arcs[mode] if options.objective == "time" else _node_matrix(data, matrix.durations)
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
    _balance(routing, data, time_dim)
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

    return _Model(manager, routing, index_of, time_dim, break_vars, costs)


def search(
    data: RoutingData,
    *,
    time_limit_s: float | None = None,
    initial_routes: list[list[int]] | None = None,
    preferred_vehicle: dict[int, int] | None = None,
    stability_cost: int = 0,
    log: bool = False,
) -> RawSolution:
    """Solve the routing problem in ``data`` with OR-Tools.

    ``initial_routes`` (visit nodes per vehicle) warm-starts the search when
    they are feasible. ``preferred_vehicle`` maps visit nodes to the crew that
    had them before; serving such a node with another crew costs
    ``stability_cost`` (a secondary goal: re-plans move little).
    """
    problem = data.problem
    options = problem.options
    started = time.perf_counter()
    limit = options.time_limit_s if time_limit_s is None else time_limit_s
    if USE_ILS and initial_routes is None and not preferred_vehicle and not stability_cost:
        raw = _search_ils(data, limit, started)
        if raw is None:  # PyVRP on the day with its breaks relaxed, OR-Tools for the breaks
            from solver.search.hybrid import hybrid_search
            raw = hybrid_search(data, limit - (time.perf_counter() - started))
        if raw is not None:
            return raw
        # PyVRP cannot express the day, or gave up without a feasible solution: OR-Tools has the rest
        limit -= time.perf_counter() - started
        started = time.perf_counter()
    n_vehicles = len(data.vehicles)
    model = _build_model(data, preferred_vehicle, stability_cost)
    manager, routing, index_of = model.manager, model.routing, model.index_of

    # -- search ---------------------------------------------------------------- #
    params = search_parameters(limit)
    params.log_search = log
    solution = None
    if initial_routes is not None:
        routing.CloseModelWithParameters(params)
        start = routing.ReadAssignmentFromRoutes(
            [[index_of[n] for n in route] for route in initial_routes], True
        )
        if start is not None:
            solution = routing.SolveFromAssignmentWithParameters(start, params)
    rr_stats = (0, 0)
    status_code = None
    if solution is None and limit >= 1.0:
        # first solution and a plain descent to its local optimum (may take
        # most of the time on a large day), then ruin and recreate. OR-Tools
        # builds its operators once, when the model closes: later solves
        # ignore the operators in their parameters, so the light set is
        # chosen here, for the descent and every whole-day repair after it
        solution = routing.SolveWithParameters(_descent_parameters(limit, heavy=False))
        # the search's outcome; the read-back below stops at its first solution on purpose
        status_code = routing.status()
        if solution is not None:
            remaining = limit - (time.perf_counter() - started)
            heavy = None
            if RR_HEAVY_SHARE > 0 and not _separable(data):
                # a second model of the same data, closed with OR-Tools' full operator set
                heavy = _build_model(data, preferred_vehicle, stability_cost)
                heavy.routing.CloseModelWithParameters(_descent_parameters(1.0, heavy=True))
            rr = _RuinAndRecreate(data, model.costs, options.seed, preferred_vehicle=preferred_vehicle,
                                  stability_cost=stability_cost, whole=(model, heavy))
            best, _ = rr.run(_routes_of(model, solution), solution.ObjectiveValue(), remaining)
            rr_stats = (rr.iterations, rr.improvements)
            if rr.improvements:
                solution = _restore(model, best) or solution
    if solution is None:
        solution = routing.SolveWithParameters(params)
        status_code = routing.status()
    if status_code is None:
        status_code = routing.status()
    status = _STATUS.get(status_code, str(status_code))
    if solution is None:
        raise RuntimeError(f"OR-Tools found no solution (status {status})")

    # -- read back ---------------------------------------------------------- #
    time_dim, break_vars = model.time_dim, model.break_vars
    routes: list[RawRoute] = []
    visited: set[int] = set()
    interval_container = solution.IntervalVarContainer()
    break_values = {}
    for k in range(interval_container.Size()):
        element = interval_container.Element(k)
        break_values[element.Var().Name()] = (element.StartValue(), element.DurationValue())
    for v in range(n_vehicles):
        index = routing.Start(v)
        start = solution.Value(time_dim.CumulVar(index))
        stops: list[RawStop] = []
        index = solution.Value(routing.NextVar(index))
        while not routing.IsEnd(index):
            node = manager.IndexToNode(index)
            stops.append(RawStop(node, solution.Value(time_dim.CumulVar(index))))
            visited.add(_visit_of(data, node))
            index = solution.Value(routing.NextVar(index))
        end = solution.Value(time_dim.CumulVar(index))
        breaks = [break_values[b.Name()] for b in break_vars.get(v, []) if b.Name() in break_values]
        routes.append(RawRoute(v, start, end, stops, sorted(breaks)))
    dropped = [vi for vi in data.visit_nodes if vi not in visited]
    return RawSolution(
        routes=routes,
        dropped=dropped,
        objective=solution.ObjectiveValue(),
        status=status,
        seconds=time.perf_counter() - started,
        first_solution="PARALLEL_CHEAPEST_INSERTION",
        metaheuristic=("GUIDED_LOCAL_SEARCH" if not rr_stats[0] else
                       f"descent + ruin-and-recreate ({rr_stats[0]} iterations, "
                       f"{rr_stats[1]} improvements)"),
    )


#: Days PyVRP can express (:func:`solver.search.expressible`) are searched by
#: PyVRP's iterated local search (:mod:`solver.search.ils`) instead of OR-Tools.
USE_ILS = True


def _search_ils(data: RoutingData, limit: float, started: float) -> RawSolution | None:
    """Search ``data`` with PyVRP (on ``Options.threads`` cores) when it can
    express the day, and time its routes with :func:`solver.timing.simulate`;
    None when it cannot (or the budget is too short): OR-Tools searches then.
    A route PyVRP returns that cannot be timed (an infeasible best solution:
    required visits that do not all fit) keeps the visits it can make in its
    order; the others are left out."""
    from solver.search import available_cores, expressible, portfolio_search
    from solver.timing import simulate

    if expressible(data) is not None:
        return None
    options = data.problem.options
    threads = options.threads or available_cores()
    result = portfolio_search(data, limit - (time.perf_counter() - started), threads=threads, seed=options.seed)
    if result is None or (not result.feasible and limit - (time.perf_counter() - started) >= 1.0):
        return None
    routes: list[RawRoute] = []
    visited: set[int] = set()
    for v, sequence in enumerate(result.routes):
        schedule = simulate(data.route_timing(v, sequence))
        if schedule is None:
            kept: list[int] = []
            for n in sequence:
                if simulate(data.route_timing(v, [*kept, n])) is not None:
                    kept.append(n)
            sequence = kept
            schedule = simulate(data.route_timing(v, sequence))
        if schedule is None:  # not even the empty route: the shift itself is impossible
            return None
        routes.append(RawRoute(v, schedule.leave, schedule.end,
                               [RawStop(n, t) for n, t in zip(sequence, schedule.starts)], list(schedule.breaks)))
        visited.update(_visit_of(data, n) for n in sequence)
    costs = _price(data, None, 0)
    objective = (sum(costs.route(data, r.vehicle, [s.node for s in r.stops]) for r in routes)
                 + sum(c for vi, c in costs.drop.items() if vi not in visited))
    return RawSolution(
        routes=routes,
        dropped=[vi for vi in data.visit_nodes if vi not in visited],
        objective=objective,
        status="success" if result.feasible else "partial_success_infeasible_repaired",
        seconds=time.perf_counter() - started,
        first_solution="PyVRP",
        metaheuristic=(f"PyVRP iterated local search ({result.searches} searches, "
                       f"{result.iterations} iterations)"),
    )
