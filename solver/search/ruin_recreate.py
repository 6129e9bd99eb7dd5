"""Iterated ruin and recreate around OR-Tools, and :func:`polish`.

:class:`RuinAndRecreate` improves a day's routes after OR-Tools' first
solution and descent (:func:`solver.search.search`); :func:`polish` runs it
over a day solved in parts (:mod:`solver.search.territories`) without a
model of the whole day.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from solver.compile import RoutingData
from solver.search.costs import Costs, price, separable, visit_of
from solver.search.deadline import Deadline
from solver.search.ortools_model import Model, assignment, build_model, descent_parameters, routes_of
from solver.search.params import ModelParams, RuinRecreateParams


class RuinAndRecreate:
    """Iterated ruin and recreate around OR-Tools.

    Each iteration ruins the current solution around a random seed visit in
    one of three ways: a cluster of the visits nearest to it; strings
    (consecutive visits) cut from the routes passing nearest to it; or,
    with probability :attr:`RuinRecreateParams.route_ruin_probability`,
    every visit of a short route. OR-Tools re-inserts the removed visits (its
    local search makes unperformed visits active) and descends to a local
    optimum, with its light operator set or, with probability
    :attr:`RuinRecreateParams.heavy_share`, its full one
    (large-neighbourhood operators included).

    Where the objective is a sum over routes (:func:`separable`), a repair is
    made in a sub-model of the ruined routes and the routes nearest the ruin
    (:attr:`RuinRecreateParams.scope_visits`), an empty crew nearest it and
    the left-out visits near it, and priced with :class:`Costs`: on 200
    visits a repair takes 40 ms instead of 400. Otherwise, and in
    :attr:`RuinRecreateParams.whole_share` of the repairs of a small day
    (:attr:`RuinRecreateParams.whole_max_visits`) while it leaves visits
    out, the whole day is repaired in its prebuilt model (light, or heavy
    where there is one).

    The result replaces the current solution when it is better, or within a
    threshold that shrinks from :attr:`RuinRecreateParams.accept_threshold`
    of the best cost to zero over the budget (record-to-record travel); the
    best is kept apart.
    """

    def __init__(self, data: RoutingData, costs: Costs, seed: int, *,
                 preferred_vehicle: dict[int, int] | None = None, stability_cost: int = 0,
                 whole: tuple[Model, Model | None] | None = None,
                 feasible: Callable[[int, list[int]], bool] | None = None,
                 params: RuinRecreateParams | None = None, model_params: ModelParams | None = None) -> None:
        """``costs`` prices ``data`` (:func:`price`, with the same
        ``preferred_vehicle`` and ``stability_cost``); days that are not
        :func:`separable` need ``whole``: the light and (optional) heavy
        models of the whole day, closed. ``feasible`` vets each route a
        repair changed (a repair with one it refuses is discarded).
        ``model_params`` build the sub-models."""
        self.params = params or RuinRecreateParams()
        self.model_params = model_params or ModelParams()
        self.data, self.costs = data, costs
        self.rng = random.Random(seed)
        self.preferred_vehicle, self.stability_cost = preferred_vehicle, stability_cost
        self.separable = separable(data)
        if not self.separable and whole is None:
            raise ValueError("a day with workload balance is repaired whole: pass its models")
        self.light: Model | None
        self.heavy: Model | None
        self.light, self.heavy = whole if whole is not None else (None, None)
        self.feasible = feasible
        self.visit_nodes = [n for n, node in enumerate(data.nodes) if node.kind == "visit"]
        self.matrix = data.matrices[data.vehicles[0].mode].durations
        self.point = [node.point for node in data.nodes]
        p = self.params
        self.k_remove = max(p.ruin_min, min(p.ruin_max, int(len(self.visit_nodes) * p.ruin_share)))
        self.iterations = self.improvements = 0

    def cost(self, routes: list[list[int]]) -> int:
        """The objective of a whole solution (separable days only)."""
        costs, served = self.costs, {self.data.nodes[n].visit for route in routes for n in route}
        return (sum(costs.route(self.data, v, route) for v, route in enumerate(routes))
                + sum(c for vi, c in costs.drop.items() if vi not in served))

    def run(self, routes: list[list[int]], cost: int, budget_s: float | Deadline) -> tuple[list[list[int]], int]:
        """Improve ``routes`` (visit nodes per crew, objective ``cost``) until
        ``budget_s`` (seconds from now, or a :class:`~solver.search.deadline.Deadline`)
        runs out or :attr:`RuinRecreateParams.max_iterations` iterations are
        made; returns the best routes and their cost (``routes`` and ``cost``
        when the deadline has passed already)."""
        p = self.params
        deadline = Deadline.of(budget_s)
        begin = time.perf_counter()
        budget = max(1e-9, deadline.remaining())
        best, best_cost = routes, cost
        current, current_cost = routes, cost
        if not self.visit_nodes:
            return best, best_cost
        made = 0
        while p.max_iterations is None or made < p.max_iterations:
            now = time.perf_counter()
            remaining = deadline.remaining()
            if remaining < p.min_remaining_s:
                break
            made += 1
            self.iterations += 1
            seed = self.visit_nodes[self.rng.randrange(len(self.visit_nodes))]
            sp = self.point[seed]
            assert sp is not None  # visit nodes have a place
            near = sorted(self.visit_nodes,
                          key=lambda n: self.matrix[sp, self.point[n]] + self.matrix[self.point[n], sp])
            removed = self._ruin(current, near)
            heavy = self.rng.random() < p.heavy_share
            limit = min(remaining, p.repair_limit_s)
            whole = self.light is not None and (
                not self.separable
                or (len(self.data.visit_nodes) <= p.whole_max_visits and self.rng.random() < p.whole_share
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
            threshold = p.accept_threshold * best_cost * max(0.0, 1 - (now - begin) / budget)
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
        rng, p = self.rng, self.params
        size = rng.randint(max(2, self.k_remove // 2), self.k_remove)
        roll = rng.random()
        if roll < p.route_ruin_probability:
            # empty a short route: its visits must find room elsewhere
            used = [r for r in routes if r]
            if not used:
                return set()
            shortest = min(rng.sample(used, min(3, len(used))), key=len)
            return set(shortest)
        if roll < p.cluster_ruin_until:
            return set(near[:size])
        position = {n: (r, k) for r, route in enumerate(routes) for k, n in enumerate(route)}
        removed: set[int] = set()
        cut_routes: set[int] = set()
        for n in near:
            if len(cut_routes) >= p.string_routes or len(removed) >= size or n not in position:
                continue
            r, k = position[n]
            if r in cut_routes:
                continue
            cut_routes.add(r)
            route = routes[r]
            length = rng.randint(1, max(1, min(p.string_max, len(route), size - len(removed))))
            first = max(0, min(k - rng.randint(0, length - 1), len(route) - length))
            removed.update(route[first:first + length])
        return removed

    def _repair_whole(self, routes: list[list[int]], removed: set[int], heavy: bool,
                      limit_s: float) -> tuple[list[list[int]], int] | None:
        """Repair the whole day in the light or heavy prebuilt model; returns
        (routes, their cost) or None."""
        model = self.heavy if heavy and self.heavy is not None else self.light
        assert model is not None  # whole-day repairs run only with the prebuilt models
        solution = assignment(model, [[n for n in r if n not in removed] for r in routes], limit_s, heavy,
                              self.params)
        if solution is None:
            return None
        return routes_of(model, solution), solution.ObjectiveValue()

    def _repair_part(self, routes: list[list[int]], removed: set[int], near: list[int], sp: int, heavy: bool,
                     limit_s: float, cost: int) -> tuple[list[list[int]], int] | None:
        """Repair the routes around the ruin in a sub-model; ``cost`` is the
        objective of ``routes``. Returns (routes, their cost) or None."""
        data, costs, p = self.data, self.costs, self.params
        vehicle_of = {n: v for v, route in enumerate(routes) for n in route}
        scope = sorted({vehicle_of[n] for n in removed if n in vehicle_of})
        held = sum(len(routes[v]) for v in scope)
        for n in near:
            if held >= p.scope_visits:
                break
            v = vehicle_of.get(n)
            if v is not None and v not in scope:
                scope.append(v)
                held += len(routes[v])
        empty = [v for v, route in enumerate(routes) if not route]
        empty.sort(key=lambda v: self.matrix[self.point[data.vehicles[v].start_node], sp])
        scope += empty[:p.scope_empty_crews]
        if not scope:
            return None
        served = {visit_of(data, n) for route in routes for n in route}
        visits = [visit_of(data, n) for v in scope for n in routes[v]]
        left_out = {visit_of(data, n) for n in near[:p.scope_visits]} - served
        visits += sorted(left_out)
        before = sum(costs.route(data, v, routes[v]) for v in scope) + sum(costs.drop[vi] for vi in left_out)

        sub, node_map, _ = data.subset(scope, visits)
        preferred = None
        if any(entering is not None for entering in costs.entering):
            # the day prices stability (small enough): so does the sub-model
            assert self.preferred_vehicle is not None  # only preferred crews price stability (price)
            crew = {v: k for k, v in enumerate(scope)}
            preferred = {k: crew.get(self.preferred_vehicle[n], -1)
                         for k, n in enumerate(node_map) if n in self.preferred_vehicle}
        model = build_model(sub, preferred, self.stability_cost, schedule=False, params=self.model_params)
        model.routing.CloseModelWithParameters(descent_parameters(limit_s, heavy, p))
        sub_node = {n: k for k, n in enumerate(node_map)}
        partial = [[sub_node[n] for n in routes[v] if n not in removed] for v in scope]
        solution = assignment(model, partial, limit_s, heavy, p)
        if solution is None:
            return None
        candidate = list(routes)
        for k, route in enumerate(routes_of(model, solution)):
            candidate[scope[k]] = [node_map[n] for n in route]
        served_after = {visit_of(data, n) for v in scope for n in candidate[v]}
        after = (sum(costs.route(data, v, candidate[v]) for v in scope)
                 + sum(costs.drop[vi] for vi in visits if vi not in served_after))
        return candidate, cost - before + after


def polish(data: RoutingData, routes: list[list[int]], budget_s: float | Deadline, *, seed: int = 0,
           feasible: Callable[[int, list[int]], bool] | None = None,
           params: RuinRecreateParams | None = None,
           ) -> tuple[list[list[int]], int | None, tuple[int, int]]:
    """Improve a day's ``routes`` (visit nodes per crew, feasible) by ruin and
    recreate in sub-models for ``budget_s`` seconds (or until a
    :class:`~solver.search.deadline.Deadline`), without a model of the
    whole day: for days solved in parts (:mod:`solver.search.territories`),
    whose borders the parts' own searches could not cross. Returns the best
    routes (untimed), their objective, and (iterations, improvements); a day
    with workload balance comes back as it was, its objective ``None``.
    ``feasible(crew, visit nodes)``, when given, must accept every route a
    repair changes (e.g. the caller can time it)."""
    deadline = Deadline.of(budget_s)
    if not separable(data):
        return routes, None, (0, 0)
    rr = RuinAndRecreate(data, price(data, None, 0), seed, feasible=feasible, params=params)
    best, cost = rr.run(routes, rr.cost(routes), deadline)
    return best, cost, (rr.iterations, rr.improvements)
