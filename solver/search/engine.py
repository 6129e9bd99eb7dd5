"""The search of a day: :func:`search`.

Days PyVRP can express (:func:`solver.search.expressible`) go to PyVRP's
iterated local search (:mod:`solver.search.ils`, on ``Options.threads``
cores: :mod:`solver.search.portfolio`), its routes timed by
:func:`solver.timing.simulate`. Other days, re-plans and the days PyVRP
gives up on go to OR-Tools (:mod:`solver.search.ortools_model`):

Search: a ``PARALLEL_CHEAPEST_INSERTION`` first solution (it finds solutions
on tightly windowed instances such as Solomon R101, where
``PATH_CHEAPEST_ARC`` does not) and a greedy descent, then iterated ruin and
recreate (:class:`~solver.search.ruin_recreate.RuinAndRecreate`) until the
time limit: each repair is an OR-Tools descent in a sub-model of the routes
around the ruin, or of the whole day where workload balance couples the
routes. A warm start from given routes (re-plans) runs guided local search
instead.

:func:`search` returns :class:`~solver.search.raw.RawSolution`: for each
crew the sequence of nodes with the service start the search chose, the
feasible start range, and the breaks.
"""

from __future__ import annotations

import time

from solver.compile import RoutingData
from solver.search.costs import price, separable, visit_of
from solver.search.deadline import Deadline
from solver.search.ortools_model import STATUS, build_model, descent_parameters, restore, routes_of, search_parameters
from solver.search.params import SearchParams
from solver.search.raw import RawRoute, RawSolution, RawStop, timed_route
from solver.search.ruin_recreate import RuinAndRecreate


def search(
    data: RoutingData,
    *,
    time_limit_s: float | None = None,
    deadline: Deadline | None = None,
    initial_routes: list[list[int]] | None = None,
    preferred_vehicle: dict[int, int] | None = None,
    stability_cost: int = 0,
    log: bool = False,
    params: SearchParams | None = None,
) -> RawSolution:
    """Solve the routing problem in ``data`` with PyVRP or OR-Tools.

    The search ends by ``deadline`` (:class:`~solver.search.deadline.Deadline`;
    default: ``time_limit_s`` from now, else the day's
    ``Options.time_limit_s``), model building, repairs and the read-back
    included: stages that cannot start in time are skipped, the best found
    is kept. ``initial_routes`` (visit nodes per vehicle) warm-starts the
    search when they are feasible. ``preferred_vehicle`` maps visit nodes to
    the crew that had them before; serving such a node with another crew
    costs ``stability_cost`` (a secondary goal: re-plans move little).
    ``params`` tune the searches (default
    :class:`~solver.search.params.SearchParams`), stopped after
    ``Options.max_iterations`` iterations when the day's options ask for it.
    """
    problem = data.problem
    options = problem.options
    search_params = (params or SearchParams()).for_options(options)
    started = time.perf_counter()
    if deadline is None:
        deadline = Deadline.after(options.time_limit_s if time_limit_s is None else time_limit_s)
    if search_params.use_ils and initial_routes is None and not preferred_vehicle and not stability_cost:
        raw = search_ils(data, deadline, search_params)
        if raw is None:  # PyVRP on the day with its breaks relaxed, OR-Tools for the breaks
            from solver.search.hybrid import hybrid_search

            raw = hybrid_search(data, deadline, params=search_params)
        if raw is not None:
            return raw
        # PyVRP cannot express the day, or gave up without a feasible solution: OR-Tools has the rest
        started = time.perf_counter()
    n_vehicles = len(data.vehicles)
    rr_params, model_params, budget = search_params.ruin_recreate, search_params.model, search_params.budget
    if deadline.expired() and initial_routes is None:
        # no time left for a model (the last territories of a day whose
        # limit is too short): cheapest insertion, shortly past the deadline
        fallback = inserted_from_empty(data, deadline.end() + budget.fallback_grace_s, started)
        if fallback is not None:
            return fallback
    building = time.perf_counter()
    model = build_model(data, preferred_vehicle, stability_cost, params=model_params)
    built_s = time.perf_counter() - building
    manager, routing, index_of = model.manager, model.routing, model.index_of

    # -- search ---------------------------------------------------------------- #
    params_gls = search_parameters(deadline.remaining())
    params_gls.log_search = log
    if model_params.solution_limit is not None:
        params_gls.solution_limit = model_params.solution_limit
    solution = None
    if initial_routes is not None:
        routing.CloseModelWithParameters(params_gls)
        start = routing.ReadAssignmentFromRoutes(
            [[index_of[n] for n in route] for route in initial_routes], True
        )
        if start is not None:
            params_gls.time_limit.FromMilliseconds(max(100, int(deadline.remaining() * 1000)))
            solution = routing.SolveFromAssignmentWithParameters(start, params_gls)
    rr_stats = (0, 0)
    status_code = None
    if solution is None and deadline.remaining() >= budget.min_descent_s:
        # first solution and a plain descent to its local optimum (may take
        # most of the time on a large day), then ruin and recreate. OR-Tools
        # builds its operators once, when the model closes: later solves
        # ignore the operators in their parameters, so the light set is
        # chosen here, for the descent and every whole-day repair after it
        solution = routing.SolveWithParameters(descent_parameters(deadline.remaining(), False, rr_params))
        # the search's outcome; the read-back below stops at its first solution on purpose
        status_code = routing.status()
        if solution is not None:
            heavy = None
            if (rr_params.heavy_share > 0 and not separable(data)
                    and deadline.remaining() > budget.heavy_build_factor * built_s):
                # a second model of the same data, closed with OR-Tools' full operator set
                heavy = build_model(data, preferred_vehicle, stability_cost, params=model_params)
                heavy.routing.CloseModelWithParameters(descent_parameters(1.0, True, rr_params))
            rr = RuinAndRecreate(data, model.costs, options.seed, preferred_vehicle=preferred_vehicle,
                                 stability_cost=stability_cost, whole=(model, heavy),
                                 params=rr_params, model_params=model_params)
            best, _ = rr.run(routes_of(model, solution), solution.ObjectiveValue(), deadline)
            rr_stats = (rr.iterations, rr.improvements)
            if rr.improvements:
                solution = restore(model, best) or solution
    if solution is None:
        params_gls.time_limit.FromMilliseconds(max(100, int(deadline.remaining() * 1000)))
        solution = routing.SolveWithParameters(params_gls)
        status_code = routing.status()
    if status_code is None:
        status_code = routing.status()
    status = STATUS.get(status_code, str(status_code))
    if solution is None:
        # no first solution within the limit (a loaded machine, a too-short
        # limit): visits placed one by one by cheapest insertion instead of a
        # failed job; a day whose empty routes cannot even be timed fails
        fallback = inserted_from_empty(data, deadline.end() + budget.fallback_grace_s, started)
        if fallback is None:
            raise RuntimeError(f"OR-Tools found no solution (status {status})")
        return fallback

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
            visited.add(visit_of(data, node))
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


def inserted_from_empty(data: RoutingData, deadline: float, started: float) -> RawSolution | None:
    """A day built from empty routes by cheapest insertion
    (:func:`solver.search.territories.insert_dropped`, most important visits
    first) until ``deadline``: what a search that found no first solution
    returns. None when a crew's empty route cannot be timed."""
    from solver.search.territories import insert_dropped

    routes: list[RawRoute] = []
    for v in range(len(data.vehicles)):
        route = timed_route(data, v, [])
        if route is None:
            return None
        routes.append(route)
    raw = RawSolution(routes=routes, dropped=list(data.visit_nodes), objective=None, status="fail_timeout",
                      seconds=0.0, first_solution="cheapest insertion (OR-Tools found no first solution in time)",
                      metaheuristic="none")
    insert_dropped(data, raw, deadline)
    raw.seconds = time.perf_counter() - started
    return raw


def search_ils(data: RoutingData, deadline: Deadline, params: SearchParams | None = None,
               ) -> RawSolution | None:
    """Search ``data`` with PyVRP (on :func:`~solver.search.threads.search_threads`
    cores) until ``deadline`` when it can express the day, and time its
    routes with :func:`solver.timing.simulate`; None when it cannot (or the
    budget is too short): OR-Tools searches then.
    A route PyVRP returns that cannot be timed (an infeasible best solution:
    required visits that do not all fit) keeps the visits it can make in its
    order; the others are left out."""
    from solver.search.ils import expressible
    from solver.search.portfolio import portfolio_search
    from solver.search.threads import search_threads
    from solver.timing import simulate

    params = params or SearchParams()
    started = time.perf_counter()
    if expressible(data) is not None:
        return None
    options = data.problem.options
    threads = search_threads(options, params.portfolio)
    result = portfolio_search(data, deadline.remaining(), threads=threads, seed=options.seed,
                              params=params.ils, portfolio=params.portfolio)
    if result is None or (not result.feasible and deadline.remaining() >= params.budget.min_descent_s):
        return None
    routes: list[RawRoute] = []
    visited: set[int] = set()
    for v, sequence in enumerate(result.routes):
        route = timed_route(data, v, sequence)
        if route is None:
            kept: list[int] = []
            for n in sequence:
                if simulate(data.route_timing(v, [*kept, n])) is not None:
                    kept.append(n)
            sequence = kept
            route = timed_route(data, v, sequence)
        if route is None:  # not even the empty route: the shift itself is impossible
            return None
        routes.append(route)
        visited.update(visit_of(data, n) for n in sequence)
    costs = price(data, None, 0, params.model)
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
