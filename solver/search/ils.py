"""PyVRP's iterated local search on the days it can express.

On VRPTW-like days (windows, shifts, capacities, no breaks) OR-Tools' local
search is the bottleneck: on Gehring–Homberger 1,000-customer instances at
60 s the OR-Tools engine stood 14 % above the best known distance where
PyVRP, in the same run, stood at 2 %. :func:`ils_search` translates
:class:`~solver.compile.RoutingData` into a ``pyvrp.ProblemData`` and runs
``pyvrp.solve`` within the time limit.

Translation
-----------
* Locations: one depot per distinct crew start or end place (an open end is
  a depot at zero travel from everywhere), then one client per visit node
  and service-start window. A node with several windows, and a visit with
  several addresses, become a client group (exactly one of its clients).
* Costs: the engine's arc costs (travel seconds, or metres with the
  ``distance`` objective) as PyVRP's distances, per travel mode (routing
  profile); travel seconds as durations; service times on clients.
* Visits: a required visit or an appointment (``HARD_PENALTY``) is a required
  client or group; any other is optional with its drop penalty as prize, so
  PyVRP's objective is the engine's.
* Crews: one vehicle type per start, end, shift, capacity, maximum span and
  travel mode; the shift bounds the route's start and end, the span is
  PyVRP's shift duration.

:func:`expressible` says why a day cannot go to PyVRP: breaks, crews
restricted per visit (skills, crew size, pinning), visit limits, workload
balance, a day without visits, or PyVRP not installed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from solver.compile import HARD_PENALTY, RoutingData

#: Metres per second of leaving a visit out with the ``distance`` objective
#: (as :func:`solver.search.costs.price`: about 25 km/h).
DISTANCE_COST_SCALE = 7


@dataclass(frozen=True)
class IlsParams:
    """Tuning of :func:`ils_search`.

    Parameters
    ----------
    reserve_s
        Seconds kept out of the budget for what follows the search (timing
        the routes, building the plan).
    reserve_per_visit_s
        ... plus this per visit.
    min_budget_s
        Below this budget the search is not started (OR-Tools answers
        faster).
    feasible_within
        Share of the budget after which a search that has found no feasible
        solution yet (required visits that do not all fit) gives up, so that
        OR-Tools, which drops what cannot fit, gets the rest.
    penalty_over_prize
        PyVRP's largest penalty per unit of excess (load, time warp) is at
        least this many times the largest prize (drop penalty).
    max_iterations
        Stop each search after this many iterations, before its budget is
        spent; ``None``: at the budget only.
    """

    reserve_s: float = 0.05
    reserve_per_visit_s: float = 0.0004
    min_budget_s: float = 0.3
    feasible_within: float = 0.3
    penalty_over_prize: float = 4.0
    max_iterations: int | None = None

    def budget(self, time_limit_s: float, n_visits: int) -> float:
        """Seconds of search within ``time_limit_s`` for ``n_visits`` visits."""
        return time_limit_s - self.reserve_s - self.reserve_per_visit_s * n_visits


@dataclass
class IlsResult:
    """What a search found: visit nodes per crew (in the crews' order),
    their objective as the engine prices it (arc costs and the penalties of
    visits left out), and the search's statistics."""

    routes: list[list[int]]
    cost: int
    feasible: bool
    iterations: int = 0
    seconds: float = 0.0
    searches: int = 1
    costs: list[int] = field(default_factory=list)  # each search's cost, when several ran


def available() -> bool:
    """Whether PyVRP can be imported."""
    try:
        import pyvrp  # noqa: F401
    except ImportError:
        return False
    return True


def expressible(data: RoutingData) -> str | None:
    """Why PyVRP cannot solve ``data`` as the engine would, or None when it can."""
    if not data.visit_nodes or not data.vehicles:
        return "no visits or no crews"
    if data.problem.options.balance != "none":
        return "workload balance"
    n_visits = len(data.visit_nodes)
    for veh in data.vehicles:
        if veh.breaks:
            return "breaks"
        if veh.max_visits < n_visits:
            return "visit limits"
    if any(data.nodes[n].vehicles for nodes in data.visit_nodes.values() for n in nodes):
        return "crews restricted per visit"
    if not available():
        return "pyvrp not installed"
    return None


def _node_values(data: RoutingData, values: npt.NDArray[Any], nodes: list[int]) -> npt.NDArray[np.int64]:
    """``values`` (point × point) between ``nodes``; an open end (no point)
    is 0 to and from everywhere."""
    open_end = np.array([data.nodes[n].point is None for n in nodes], dtype=bool)
    index = np.array([data.nodes[n].point or 0 for n in nodes])
    matrix = np.asarray(values[np.ix_(index, index)], dtype=np.int64)
    if open_end.any():
        matrix[open_end, :] = 0
        matrix[:, open_end] = 0
    np.fill_diagonal(matrix, 0)
    return matrix


@dataclass
class Translation:
    """A day as PyVRP sees it, and the maps back."""

    problem_data: Any  # pyvrp.ProblemData
    n_depots: int
    client_node: list[int]  # client k (location n_depots + k) -> visit node
    type_vehicles: list[list[int]]  # vehicle type -> crews (vehicle indices)
    arcs: dict[str, npt.NDArray[np.int64]]  # cost between the locations, per mode
    drop: dict[int, int]  # visit -> cost of leaving it out
    depot_of_node: dict[int, int]  # crew start or end node -> depot location
    max_prize: int  # the largest prize of an optional visit (0: none)
    duration_ratio: float  # typical distance over typical duration (PyVRP's units)


def translate(data: RoutingData) -> Translation:
    """``data`` as a ``pyvrp.ProblemData`` (see the module docstring)."""
    import pyvrp

    options = data.problem.options
    # -- locations: depots (by place), then clients ------------------------ #
    depot_of_point: dict[int | None, int] = {}
    depot_nodes: list[int] = []
    for veh in data.vehicles:
        for n in (veh.start_node, veh.end_node):
            point = data.nodes[n].point
            if point not in depot_of_point:
                depot_of_point[point] = len(depot_nodes)
                depot_nodes.append(n)
    client_node: list[int] = []
    client_window: list[tuple[int, int]] = []
    client_visit: list[int] = []
    for vi, nodes in data.visit_nodes.items():
        for n in nodes:
            for window in data.nodes[n].windows:
                client_node.append(n)
                client_window.append(window)
                client_visit.append(vi)
    nodes = depot_nodes + client_node
    n_depots = len(depot_nodes)

    # -- matrices per travel mode (routing profile) ------------------------- #
    modes = sorted(data.matrices)
    arcs: dict[str, npt.NDArray[np.int64]] = {}
    durations: list[Any] = []
    for mode in modes:
        matrix = data.matrices[mode]
        travel = _node_values(data, matrix.durations, nodes)
        arcs[mode] = travel if options.objective == "time" else _node_values(data, matrix.distances, nodes)
        durations.append(travel)

    # -- clients and groups ------------------------------------------------- #
    scale = 1 if options.objective == "time" else DISTANCE_COST_SCALE
    drop = {vi: data.penalties[vi] * scale for vi in data.visit_nodes}
    loads = [data.problem.visits[vi].load for vi in data.visit_nodes]
    with_load = any(loads) and any(veh.capacity is not None for veh in data.vehicles)
    per_visit: dict[int, list[int]] = {}
    for k, vi in enumerate(client_visit):
        per_visit.setdefault(vi, []).append(k)
    groups: list[Any] = []
    group_of: dict[int, int] = {}
    for vi, members in per_visit.items():
        if len(members) > 1:
            group_of[vi] = len(groups)
            groups.append(pyvrp.ClientGroup(list(members),
                                            required=data.penalties[vi] >= HARD_PENALTY))
    clients: list[Any] = []
    for k, (n, (lo, hi), vi) in enumerate(zip(client_node, client_window, client_visit)):
        hard = data.penalties[vi] >= HARD_PENALTY
        grouped = vi in group_of
        clients.append(pyvrp.Client(
            location=n_depots + k,
            delivery=[data.problem.visits[vi].load] if with_load else [],
            service_duration=data.nodes[n].service_s,
            tw_early=max(0, lo),
            tw_late=max(lo, min(hi, data.horizon)),
            prize=0 if hard else drop[vi],
            required=hard and not grouped,
            group=group_of.get(vi),
        ))

    # -- vehicle types ------------------------------------------------------- #
    big = sum(loads) + 1
    keys: dict[tuple[Any, ...], int] = {}
    type_vehicles: list[list[int]] = []
    for v, veh in enumerate(data.vehicles):
        key = (depot_of_point[data.nodes[veh.start_node].point], depot_of_point[data.nodes[veh.end_node].point],
               veh.shift, veh.capacity if with_load else None, veh.max_span_s, veh.mode)
        if key not in keys:
            keys[key] = len(type_vehicles)
            type_vehicles.append([])
        type_vehicles[keys[key]].append(v)
    vehicle_types = []
    for (start, end, shift, capacity, span, mode), vehicles in zip(keys, type_vehicles):
        vehicle_types.append(pyvrp.VehicleType(
            num_available=len(vehicles),
            capacity=[big if capacity is None else capacity] if with_load else [],
            start_depot=start,
            end_depot=end,
            tw_early=shift[0],
            tw_late=shift[1],
            shift_duration=span if span is not None else np.iinfo(np.int64).max,
            profile=modes.index(mode),
        ))
    locations = []
    for n in nodes:
        point = data.nodes[n].point
        loc = data.points[point] if point is not None else None
        locations.append(pyvrp.Location(x=loc.lon if loc else 0.0, y=loc.lat if loc else 0.0))
    depots = [pyvrp.Depot(location=d) for d in range(n_depots)]
    distances: list[Any] = [arcs[m] for m in modes]
    problem_data = pyvrp.ProblemData(
        locations=locations, clients=clients, depots=depots, vehicle_types=vehicle_types,
        distance_matrices=distances, duration_matrices=durations, groups=groups,
    )
    depot_of_node = {n: depot_of_point[data.nodes[n].point]
                     for veh in data.vehicles for n in (veh.start_node, veh.end_node)}
    max_prize = max((drop[vi] for vi in data.visit_nodes if data.penalties[vi] < HARD_PENALTY), default=0)
    typical_duration = float(np.mean(durations[0]))
    ratio = float(np.mean(distances[0])) / typical_duration if typical_duration > 0 else 1.0
    return Translation(problem_data, n_depots, client_node, type_vehicles, arcs, drop, depot_of_node, max_prize,
                       ratio if ratio > 0 else 1.0)


def solve_translation(translation: Translation, time_limit_s: float, seed: int,
                      params: IlsParams | None = None) -> tuple[list[list[int]], bool, int]:
    """Run PyVRP on ``translation`` for ``time_limit_s``; returns the best
    solution's clients per crew (vehicle indices of the day), its
    feasibility and PyVRP's iteration count. Runs in a worker process too."""
    import warnings


    params = params or IlsParams()
    with warnings.catch_warnings():
        # PyVRP warns when its penalties saturate: required visits that do not all fit
        warnings.simplefilter("ignore")
        result = _run(translation, _Stop(time_limit_s, params.feasible_within, params.max_iterations), seed, params)
    best = result.best
    routes: list[list[int]] = [[] for _ in range(sum(len(v) for v in translation.type_vehicles))]
    used = [0] * len(translation.type_vehicles)
    for route in best.routes():
        t = route.vehicle_type()
        vehicle = translation.type_vehicles[t][used[t]]
        used[t] += 1
        routes[vehicle] = [int(a.idx) for a in route if a.is_client()]
    return routes, bool(best.is_feasible()), int(result.num_iterations)


def _run(translation: Translation, stop: Any, seed: int, params: IlsParams) -> Any:
    """``pyvrp.solve`` with two changes to its penalty manager (its search is
    PyVRP's own, default parameters):

    * the time-warp penalty starts at PyVRP's midpoint times the ratio of a
      typical distance to a typical duration. PyVRP's defaults suit matrices
      where both are in the same unit (DIMACS); here distances are metres and
      durations seconds (on the benchmarks, one distance unit is six
      seconds, which made every second of lateness six times as dear);
    * so does the weight of waiting in the proximity that picks each
      client's neighbours (granular search);
    * the penalties may grow to :attr:`IlsParams.penalty_over_prize` times
      the largest prize. Prizes here are drop penalties (an hour of travel
      and more): under PyVRP's default cap (1e5 per unit of excess load),
      taking one more visit over capacity pays and no feasible solution is
      ever found.
    """
    from pyvrp import IteratedLocalSearch, RandomNumberGenerator, Solution
    from pyvrp.PenaltyManager import PenaltyManager, PenaltyParams
    from pyvrp.search import OPERATORS, LocalSearch, NeighbourhoodParams, PerturbationManager, compute_neighbours
    from pyvrp.search import PerturbationParams as _Perturbation

    data = translation.problem_data
    ratio = translation.duration_ratio
    default = PenaltyParams()
    penalty = PenaltyParams(min_penalty=default.min_penalty * min(1.0, ratio),
                            max_penalty=max(default.max_penalty, params.penalty_over_prize * translation.max_prize))
    midpoint = default.min_penalty + (default.max_penalty - default.min_penalty) / 2
    initial = ([midpoint] * data.num_load_dimensions, midpoint * ratio, midpoint)

    rng = RandomNumberGenerator(seed=seed)
    hood = NeighbourhoodParams()
    hood = NeighbourhoodParams(weight_wait_time=hood.weight_wait_time * ratio, num_neighbours=hood.num_neighbours,
                               symmetric_proximity=hood.symmetric_proximity)
    ls = LocalSearch(data, rng, compute_neighbours(data, hood), PerturbationManager(_Perturbation()))
    for op in OPERATORS:
        if op.supports(data):
            ls.add_operator(op(data))
    pm = PenaltyManager(initial, penalty)
    init = ls(Solution.make_random(data, rng), pm.max_cost_evaluator(), exhaustive=True)
    return IteratedLocalSearch(data, pm, ls, init).run(stop, False, False)


class _Stop:
    """PyVRP's stopping criterion: the budget is spent, or a share of it
    without a feasible solution, or ``max_iterations`` iterations were made
    (PyVRP asks once per iteration)."""

    def __init__(self, budget_s: float, feasible_within: float, max_iterations: int | None = None) -> None:
        # from now, not from the first call: PyVRP builds its neighbourhoods
        # and first solution before it asks (about 0.3 s on 1,000 visits)
        self.start = time.perf_counter()
        self.budget_s, self.give_up_s = budget_s, budget_s * feasible_within
        self.max_iterations, self.calls = max_iterations, 0

    def __call__(self, best_cost: float) -> bool:
        elapsed = time.perf_counter() - self.start
        infeasible = not best_cost < INFEASIBLE_COST
        self.calls += 1
        if self.max_iterations is not None and self.calls > self.max_iterations:
            return True
        return elapsed > self.budget_s or (infeasible and elapsed > self.give_up_s)


#: PyVRP prices an infeasible best solution at about the largest cost.
INFEASIBLE_COST = 2**62


def price(data: RoutingData, translation: Translation, routes: list[list[int]]) -> tuple[list[list[int]], int]:
    """Clients per crew → visit nodes per crew and the engine's objective."""
    sequences: list[list[int]] = []
    cost = 0
    served: set[int] = set()
    for v, clients in enumerate(routes):
        veh = data.vehicles[v]
        sequence = [translation.client_node[c] for c in clients]
        sequences.append(sequence)
        if not clients:
            continue
        arcs = translation.arcs[veh.mode]
        places = [translation.depot_of_node[veh.start_node], *(translation.n_depots + c for c in clients),
                  translation.depot_of_node[veh.end_node]]
        cost += int(arcs[places[:-1], places[1:]].sum())
        served.update(data.nodes[n].visit for n in sequence)  # type: ignore[misc]
    cost += sum(c for vi, c in translation.drop.items() if vi not in served)
    return sequences, cost


def ils_search(data: RoutingData, time_limit_s: float, *, seed: int = 0,
               params: IlsParams | None = None) -> IlsResult | None:
    """Solve ``data`` (which :func:`expressible` accepts) with PyVRP within
    ``time_limit_s``; None when the budget is too short."""
    params = params or IlsParams()
    started = time.perf_counter()
    translation = translate(data)
    budget = params.budget(time_limit_s, len(data.visit_nodes)) - (time.perf_counter() - started)
    if budget < params.min_budget_s:
        return None
    routes, feasible, iterations = solve_translation(translation, budget, seed, params)
    sequences, cost = price(data, translation, routes)
    return IlsResult(sequences, cost, feasible, iterations, time.perf_counter() - started)
