"""Days past one process: split into parts, solved anywhere, merged, polished.

A day above :attr:`SplitParams.split_above` visits is cut into *parts*
(:func:`split_problem`): the crews are bisected by where they start
(recursive coordinate bisection, so every part gets about as many crews and
its crews are neighbours), then each visit, most important first, goes to the
part whose nearest crew start is closest and which still has room (room in
proportion to the part's crews), among parts holding a crew able to make it
(pinned crew, skills, crew size). Every visit and every crew belongs to
exactly one part. A part is a :class:`~solver.model.Problem` of its own, so
it can be solved by :func:`solver.solve` in this process or in another one
(an RQ job on any machine: :mod:`app.jobs.split`); the caller decides by
passing ``solve_parts`` to :func:`solve_split`.

The problem's time limit is a wall-clock budget for the whole split day,
from when its job started (:func:`solve_split`): the split itself, then the
parts get what remains but :attr:`SplitParams.polish_share` of the limit,
as a *deadline* (a part queued behind others starts later and still ends in
time: it computes its travel matrices first and searches for what is left,
:func:`solve_part`); the merge and the border polish have the rest, and the
polish stops at the deadline (or, like every search of the day, after the
day's ``max_iterations`` iterations per window when its options ask for it).

The part plans are merged (:func:`merge_plans`); a part that could not be
solved leaves its crews idle and its visits unassigned with a reason. Then
the borders are polished (:func:`polish_borders`) until the deadline: for each pair of
neighbouring parts, a *window* of the crews of either side whose routes lie
closest to the other side, with their visits and the visits either part left
out, is compiled as a small problem of its own (no travel matrix of the whole
day is ever built), left-out visits are inserted with any of its crews
(:func:`solver.search.insert_dropped`) and ruin and recreate
(:func:`solver.search.polish`) moves visits across the border. A window's new
routes replace the old ones only when the independent checker accepts them
and they serve at least the same priority.

No Flask, no RQ: pure functions on problems and plans.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from solver.check import check_plan
from solver.compile import Geocoder, compile_problem
from solver.model import Agent, Location, Plan, Problem, Route, SolverStats, Unassigned, Visit
from solver.search.params import SearchParams
from solver.search.raw import RawSolution, timed_route
from solver.search.ruin_recreate import polish
from solver.search.split_report import SplitReport
from solver.search.territories import insert_dropped
from solver.slots import SlotParams, planning_data
from solver.solve import build_plan, default_geocoder, matrix_engine_of, solve, summarize
from solver.timing import simulate
from solver.travel import TravelModel

__all__ = [
    "DROPPED_CODES",
    "Part",
    "SolveParts",
    "SplitParams",
    "SplitReport",
    "merge_plans",
    "needs_split",
    "polish_borders",
    "solve_part",
    "solve_parts_inline",
    "solve_split",
    "split_problem",
]

log = logging.getLogger("doorstep.solver")

#: Reasons of visits a search left out (as opposed to visits no crew can make):
#: the border polish tries them again.
DROPPED_CODES = frozenset({"lower_priority", "capacity", "required_infeasible"})

#: ``solve_parts(parts, deadline, end)``: a plan per part, in order (None: the
#: part could not be solved), all of them made by ``deadline`` (``time.time()``);
#: a part late for it is still worth waiting for until ``end``, the end of the
#: day's budget (the border polish then has less time).
SolveParts = Callable[[Sequence["Part"], float, float], list[Plan | None]]


@dataclass(frozen=True)
class SplitParams:
    """Tuning of a split day.

    Parameters
    ----------
    split_above
        Days with more visits than this are split (0: never).
    part_visits
        Most visits per part; the number of parts is the visits over this,
        rounded up, then up to a multiple of ``solvers``.
    solvers
        Parts solved at the same time (workers); parts beyond it wait, so
        each part's time limit shrinks by the rounds needed.
    polish_share
        Share of the time limit kept for the merge and the border polish
        after the parts (the parts have the rest of the budget).
    border_crews
        Crews of each side in a border window.
    window_dropped
        Most left-out visits offered to a border window (nearest its crews).
    room_slack
        A part takes up to this factor of its fair share of visits before
        the next nearest part is tried.
    min_window_s
        A border window gets at least this many seconds, or is skipped.
    min_search_s
        A window's search gets at least this many seconds after compiling
        it, or the window is given up.
    check_share
        Time kept after a window's search for timing and checking its
        routes, as a share of the time its compiling took (both price
        travel between its points).
    min_part_s
        A part searches at least this long, even when its deadline is
        nearer (a loaded machine): a late plan beats none.
    part_margin_s
        A part stops searching this long before its deadline, to build its
        plan (timing its routes and cutting slots: seconds for 1,300 visits)
        and send it back.
    search_share
        A part's search is given this share of the time left after its
        travel matrices: the search of a big part overruns its limit on a
        loaded machine (by a quarter at load 13 on 2 cores).
    """

    split_above: int = 1500
    part_visits: int = 1250
    solvers: int = 1
    polish_share: float = 0.15
    border_crews: int = 15
    window_dropped: int = 150
    room_slack: float = 1.05
    min_window_s: float = 4.0
    min_search_s: float = 2.0
    check_share: float = 0.6
    min_part_s: float = 3.0
    part_margin_s: float = 5.0
    search_share: float = 0.75


@dataclass
class Part:
    """One part of a split day: its own problem, and where it came from."""

    index: int
    problem: Problem
    visit_ids: list[str]
    agent_ids: list[str]


def needs_split(problem: Problem, params: SplitParams) -> bool:
    """Whether ``problem`` is big enough to split (and has crews to share)."""
    return params.split_above > 0 and len(problem.visits) > params.split_above and len(problem.agents) > 1


def part_count(visits: int, agents: int, params: SplitParams) -> int:
    """How many parts a day of ``visits`` visits and ``agents`` crews is cut into."""
    parts = max(1, math.ceil(visits / max(1, params.part_visits)))
    solvers = max(1, params.solvers)
    parts = math.ceil(parts / solvers) * solvers if parts > 1 else parts
    return max(1, min(parts, agents))


# --------------------------------------------------------------------------- #
# Splitting
# --------------------------------------------------------------------------- #
def _xy(loc: Location, lat0: float) -> tuple[float, float]:
    """Planar metres (equirectangular), enough to tell near from far in a city."""
    return loc.lon * 111_320.0 * math.cos(math.radians(lat0)), loc.lat * 110_540.0


def _visit_location(visit: Visit) -> Location | None:
    return next((a.location for a in visit.addresses if a.location is not None), None)


def _bisect(crews: list[int], points: list[tuple[float, float]], k: int) -> list[list[int]]:
    """``crews`` cut into ``k`` groups of nearly equal size by recursive
    coordinate bisection of their ``points`` (along the longer side)."""
    if k <= 1 or len(crews) <= 1:
        return [crews]
    xs = [points[c][0] for c in crews]
    ys = [points[c][1] for c in crews]
    axis = 0 if max(xs) - min(xs) >= max(ys) - min(ys) else 1
    ordered = sorted(crews, key=lambda c: (points[c][axis], points[c][1 - axis], c))
    k1 = k // 2
    cut = round(len(ordered) * k1 / k)
    return _bisect(ordered[:cut], points, k1) + _bisect(ordered[cut:], points, k - k1)


def _can_make(agent: Agent, visit: Visit) -> bool:
    """Whether crew ``agent`` may make ``visit`` at all (pin, skills, size)."""
    if visit.pinned_agent is not None and visit.pinned_agent != agent.id:
        return False
    if not set(visit.skills) <= set(agent.skills):
        return False
    return visit.crew_size <= max(1, len(agent.members))


def split_problem(problem: Problem, params: SplitParams, parts: int | None = None) -> list[Part]:
    """Cut ``problem`` into parts (see the module docstring): every visit and
    every crew in exactly one part, crews shared out evenly, visits in
    proportion to crews. ``parts``: how many (default :func:`part_count`)."""
    agents = problem.agents
    k = parts or part_count(len(problem.visits), len(agents), params)
    k = max(1, min(k, len(agents)))
    known = [loc for loc in (*(a.start.location for a in agents), *map(_visit_location, problem.visits)) if loc]
    lat0 = sum(loc.lat for loc in known) / len(known) if known else 0.0
    centre = (sum(_xy(loc, lat0)[0] for loc in known) / max(1, len(known)),
              sum(_xy(loc, lat0)[1] for loc in known) / max(1, len(known)))
    crew_xy = [_xy(a.start.location, lat0) if a.start.location else centre for a in agents]
    groups = [g for g in _bisect(list(range(len(agents))), crew_xy, k) if g]
    room = [math.ceil(len(problem.visits) * len(g) / len(agents) * params.room_slack) for g in groups]
    taken: list[list[int]] = [[] for _ in groups]
    order = sorted(range(len(problem.visits)), key=lambda i: (not problem.visits[i].is_hard, -problem.visits[i].priority, i))
    for vi in order:
        visit = problem.visits[vi]
        loc = _visit_location(visit)
        if loc is None:  # placed where there is most room; its part geocodes it
            taken[min(range(len(groups)), key=lambda g: len(taken[g]) / max(1, room[g]))].append(vi)
            continue
        x, y = _xy(loc, lat0)

        def distance(g: int, x: float = x, y: float = y) -> float:
            return min(math.hypot(crew_xy[c][0] - x, crew_xy[c][1] - y) for c in groups[g])

        able = [g for g in range(len(groups)) if any(_can_make(agents[c], visit) for c in groups[g])]
        candidates = sorted(able or range(len(groups)), key=distance)
        roomy = [g for g in candidates if len(taken[g]) < room[g]]
        taken[(roomy or candidates)[0]].append(vi)
    result = []
    for index, (group, visits) in enumerate(zip(groups, taken)):
        sub_visits = [problem.visits[i] for i in sorted(visits)]
        sub_agents = [agents[c] for c in sorted(group)]
        sub = problem.model_copy(update={"visits": sub_visits, "agents": sub_agents})
        result.append(Part(index, sub, [v.id for v in sub_visits], [a.id for a in sub_agents]))
    return result


# --------------------------------------------------------------------------- #
# Solving and merging
# --------------------------------------------------------------------------- #
def solve_parts_inline(travel: TravelModel, geocoder: Geocoder | None = None,
                       params: SplitParams | None = None) -> SolveParts:
    """``solve_parts`` solving one part after another in this process, each
    with an equal share of the time left before the deadline; a part whose
    solve raises comes back None."""
    params = params or SplitParams()

    def run(parts: Sequence[Part], deadline: float, end: float | None = None) -> list[Plan | None]:
        plans: list[Plan | None] = []
        for k, part in enumerate(parts):
            own = time.time() + (deadline - time.time()) / (len(parts) - k)
            plans.append(solve_part(part.problem, own, travel, geocoder, params))
        return plans

    return run


def solve_part(problem: Problem, deadline: float, travel: TravelModel, geocoder: Geocoder | None = None,
               params: SplitParams | None = None) -> Plan | None:
    """Solve one part's ``problem`` by ``deadline`` (``time.time()``); None when it fails.

    Its travel matrices are computed first (compiling the part fills the
    travel model's matrix cache, which :func:`solver.solve` then finds), so
    that the search gets :attr:`SplitParams.search_share` of what is left
    until the deadline, less :attr:`SplitParams.part_margin_s` (at least
    :attr:`SplitParams.min_part_s`). The plan's ``matrix_seconds`` are those
    of the first compile, its ``seconds`` the whole part's (compile included).
    """
    params = params or SplitParams()
    started = time.perf_counter()
    try:
        matrix_s = compile_problem(problem, travel, geocoder=geocoder).matrix_seconds
        limit = max(params.min_part_s, (deadline - time.time() - params.part_margin_s) * params.search_share)
        sub = problem.model_copy(update={"options": problem.options.model_copy(update={"time_limit_s": limit})})
        plan = solve(sub, travel, geocoder=geocoder)
    except Exception:  # a failed part leaves its visits unassigned; the day goes on
        log.exception("a part of a split day failed")
        return None
    plan.solver.matrix_seconds = round(matrix_s + plan.solver.matrix_seconds, 3)
    plan.solver.seconds = round(time.perf_counter() - started, 3)
    return plan


def _idle_routes(problem: Problem, travel: TravelModel, geocoder: Geocoder | None) -> list[Route]:
    """Empty routes of a part's crews (a part that could not be solved)."""
    empty = problem.model_copy(update={"visits": []})
    return solve(empty, travel, geocoder=geocoder).routes


def merge_plans(problem: Problem, parts: Sequence[Part], plans: Sequence[Plan | None], travel: TravelModel,
                geocoder: Geocoder | None = None) -> Plan:
    """One plan of the whole day from the part plans: every crew's route in
    the order of ``problem.agents``, every visit planned or unassigned; a
    missing part plan leaves its crews idle and its visits unassigned."""
    routes: dict[str, Route] = {}
    unassigned: list[Unassigned] = []
    warnings: list[str] = []
    flags = []
    objective: int | None = 0
    seconds = matrix_seconds = 0.0
    searches: list[str] = []
    for part, plan in zip(parts, plans):
        if plan is None:
            for route in _idle_routes(part.problem, travel, geocoder):
                routes[route.agent_id] = route
            hard = {v.id for v in part.problem.visits if v.is_hard}  # never "lower priority": the checker refuses it
            unassigned += [Unassigned(visit_id=vid, code="required_infeasible" if vid in hard else "lower_priority",
                                      reason="the part of the split day holding this visit could not be solved "
                                             "in time (see the job log); its crews stayed idle",
                                      details={"part": part.index}) for vid in part.visit_ids]
            objective = None
            continue
        routes.update((r.agent_id, r) for r in plan.routes)
        unassigned += plan.unassigned
        warnings += [w for w in plan.warnings if w not in warnings]
        flags += plan.flags
        objective = None if objective is None or plan.solver.objective is None else objective + plan.solver.objective
        seconds = max(seconds, plan.solver.seconds)
        matrix_seconds += plan.solver.matrix_seconds
        if plan.solver.metaheuristic and plan.solver.metaheuristic not in searches:
            searches.append(plan.solver.metaheuristic)
    ordered = [routes[a.id] for a in problem.agents]
    order = {v.id: i for i, v in enumerate(problem.visits)}
    unassigned.sort(key=lambda u: order[u.visit_id])
    first = next((p for p in plans if p is not None), None)
    return Plan(
        date=problem.date, timezone=problem.timezone, routes=ordered, unassigned=unassigned,
        summary=summarize(problem, ordered),
        solver=SolverStats(
            status="success" if all(p is not None for p in plans) else "partial",
            objective=objective, seconds=round(seconds, 3), matrix_seconds=round(matrix_seconds, 3),
            first_solution=f"split into {len(parts)} parts",
            metaheuristic="per part: " + " | ".join(searches),
            matrix_engine=matrix_engine_of(travel),
        ),
        warnings=warnings, flags=flags,
        rule_set=first.rule_set if first else None, slot_policy=first.slot_policy if first else None,
    )


# --------------------------------------------------------------------------- #
# Border polish
# --------------------------------------------------------------------------- #
def _route_xy(route: Route, lat0: float) -> tuple[float, float]:
    """Where a route works: the centre of its stops (its start when empty)."""
    points = [_xy(s.location, lat0) for s in route.stops] or [_xy(route.start_location, lat0)]
    return sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points)


def _windows(problem: Problem, plan: Plan, parts: Sequence[Part], params: SplitParams,
             lat0: float) -> list[tuple[list[str], list[str]]]:
    """Border windows, busiest first: (crew ids, left-out visit ids) for each
    part and its nearest neighbour part."""
    by_agent = {r.agent_id: r for r in plan.routes}
    where = {a: _route_xy(by_agent[a], lat0) for p in parts for a in p.agent_ids}
    centre = []
    for p in parts:
        pts = [where[a] for a in p.agent_ids]
        centre.append((sum(x for x, _ in pts) / len(pts), sum(y for _, y in pts) / len(pts)))
    part_of = {vid: p.index for p in parts for vid in p.visit_ids}
    dropped: dict[int, list[str]] = {p.index: [] for p in parts}
    for u in plan.unassigned:
        if u.code in DROPPED_CODES:
            dropped[part_of[u.visit_id]].append(u.visit_id)
    pairs: set[tuple[int, int]] = set()
    for a in range(len(parts)):
        others = sorted((b for b in range(len(parts)) if b != a), key=lambda b: math.dist(centre[a], centre[b]))
        pairs.update(tuple(sorted((a, b))) for b in others[:2])  # type: ignore[misc]
    locations = {v.id: _visit_location(v) for v in problem.visits}
    windows = []
    for a, b in pairs:
        crews = []
        for side, other in ((a, b), (b, a)):
            near = sorted(parts[side].agent_ids, key=lambda c: math.dist(where[c], centre[other]))
            crews += near[: params.border_crews]
        mid = ((centre[a][0] + centre[b][0]) / 2, (centre[a][1] + centre[b][1]) / 2)

        def off(vid: str, mid: tuple[float, float] = mid) -> float:
            loc = locations[vid]
            return math.dist(_xy(loc, lat0), mid) if loc else math.inf

        left = sorted(dropped[a] + dropped[b], key=off)[: params.window_dropped]
        windows.append((crews, left))
    windows.sort(key=lambda w: -len(w[1]))
    return windows


def _polish_window(problem: Problem, plan: Plan, crews: list[str], left: list[str], end: float,
                   travel: TravelModel, geocoder: Geocoder | None, params: SplitParams) -> Plan | None:
    """Re-plan one border window, done by ``end`` (``time.time()``): its
    search ends early enough to time and check the routes (a share of the
    compile time, :attr:`SplitParams.check_share`); a window left less than
    :attr:`SplitParams.min_search_s` of search after compiling is given up.
    Its plan (crews ``crews``; the window's visits) when the checker accepts
    it and it is better (more priority served, then more visits, then less
    travel), else None."""
    started = time.time()
    by_agent = {r.agent_id: r for r in plan.routes}
    routed = [s.visit_id for c in crews for s in by_agent[c].stops]
    still_out = {u.visit_id for u in plan.unassigned}
    left = [vid for vid in left if vid in still_out]  # an earlier window may have placed some
    keep = set(routed) | set(left)
    agents = {a.id: a for a in problem.agents}
    sub = problem.model_copy(update={
        "visits": [v for v in problem.visits if v.id in keep], "agents": [agents[c] for c in crews],
        "options": problem.options.model_copy(update={"time_limit_s": max(1.0, end - started)}),
    })
    data = compile_problem(sub, travel, geocoder=geocoder)
    searched = planning_data(data, SlotParams.of(sub.options))
    node_of = {(sub.visits[n.visit].id, n.address): k for k, n in enumerate(data.nodes)
               if n.kind == "visit" and n.visit is not None}
    routes = []
    for v, crew in enumerate(crews):
        nodes = [node_of.get((s.visit_id, s.address_index)) for s in by_agent[crew].stops]
        if any(n is None for n in nodes):
            log.info("border window: an address compiled otherwise than in its part; left as it was")
            return None
        route = timed_route(searched, v, [n for n in nodes if n is not None])
        if route is None:
            log.info("border window: a route of its part does not time here; left as it was")
            return None
        routes.append(route)
    served = set(routed)
    raw = RawSolution(routes=routes, dropped=[vi for vi in searched.visit_nodes if sub.visits[vi].id not in served],
                      objective=None, status="success", seconds=0.0, first_solution="split parts",
                      metaheuristic="border polish")
    compiled = time.time()
    search_s = end - compiled - (compiled - started) * params.check_share
    if search_s < params.min_search_s:
        log.info("border window: compiled in %.1f s, too little time left to search it", compiled - started)
        return None
    searching = time.perf_counter()
    insert_dropped(searched, raw, searching + search_s * 0.5)
    sequences = [[s.node for s in r.stops] for r in raw.routes]

    def feasible(vehicle: int, sequence: list[int]) -> bool:
        return simulate(searched.route_timing(vehicle, sequence)) is not None

    polish_s = max(0.0, search_s - (time.perf_counter() - searching))
    # the day's max_iterations stops this ruin and recreate too, as it stops the parts' searches
    rr_params = SearchParams().for_options(sub.options).ruin_recreate
    polished, _cost, _stats = polish(searched, sequences, polish_s, seed=sub.options.seed, feasible=feasible,
                                     params=rr_params)
    for v, sequence in enumerate(polished):
        if sequence != sequences[v]:
            timed = timed_route(searched, v, sequence)
            if timed is None:
                log.info("border window: a polished route does not time; left as it was")
                return None
            raw.routes[v] = timed
    on_route = {searched.nodes[s.node].visit for r in raw.routes for s in r.stops}
    raw.dropped = [vi for vi in searched.visit_nodes if vi not in on_route]
    window = build_plan(data, raw, searched=searched)
    before = (sum(s.priority for c in crews for s in by_agent[c].stops), len(routed),
              -sum(by_agent[c].travel_s for c in crews))
    after = window.summary.priority_planned, window.summary.visits_planned, -window.summary.travel_s
    if after <= before:
        log.info("border window: no better (priority, visits, -travel) %s than %s", after, before)
        return None
    report = check_plan(sub, window, travel)
    if not report.ok:
        log.warning("border window rejected by the checker: %s", report)
        return None
    return window


def polish_borders(problem: Problem, plan: Plan, parts: Sequence[Part], travel: TravelModel, deadline: float,
                   params: SplitParams, geocoder: Geocoder | None = None) -> tuple[Plan, int, int]:
    """Polish the merged ``plan`` across part borders until ``deadline``
    (``time.time()``; see the module docstring): as many windows as fit
    :attr:`SplitParams.min_window_s` each, sharing the time equally; a
    window is tried only while that much is left. Returns the plan, how many
    windows were tried and how many improved it."""
    budget_s = deadline - time.time()
    if len(parts) < 2 or budget_s < params.min_window_s:
        return plan, 0, 0
    known = [loc for loc in map(_visit_location, problem.visits) if loc]
    lat0 = sum(loc.lat for loc in known) / len(known) if known else 0.0
    windows = _windows(problem, plan, parts, params, lat0)[: int(budget_s // params.min_window_s)]
    improved = tried = 0
    for k, (crews, left) in enumerate(windows):
        remaining = deadline - time.time()
        if remaining < params.min_window_s:  # earlier windows took more than their share
            break
        tried += 1
        end = time.time() + remaining / (len(windows) - k)
        window = _polish_window(problem, plan, crews, left, end, travel, geocoder, params)
        if window is None:
            continue
        new_routes = {r.agent_id: r for r in window.routes}
        routes = [new_routes.get(r.agent_id, r) for r in plan.routes]
        inside = {s.visit_id for c in crews for s in plan.route(c).stops} | set(left)
        unassigned = [u for u in plan.unassigned if u.visit_id not in inside]
        unassigned += [u for u in window.unassigned if u.visit_id in inside]
        order = {v.id: i for i, v in enumerate(problem.visits)}
        unassigned.sort(key=lambda u: order[u.visit_id])
        plan = plan.model_copy(update={"routes": routes, "unassigned": unassigned,
                                       "summary": summarize(problem, routes)})
        improved += 1
    return plan, tried, improved


def solve_split(problem: Problem, travel: TravelModel, *, params: SplitParams | None = None,
                solve_parts: SolveParts | None = None, geocoder: Geocoder | None = None,
                started: float | None = None, report: SplitReport | None = None) -> Plan:
    """Plan a big day in parts within its time limit (see the module docstring).

    Parameters
    ----------
    problem, travel
        The day and its travel model.
    params
        Split settings (default :class:`SplitParams`).
    solve_parts
        Solves the parts by a deadline (default: one after another in this
        process, :func:`solve_parts_inline`).
    geocoder
        For addresses without a location (default: the configured chain,
        when the day has any).
    started
        When the day's budget started (``time.time()``; default now): a
        job passes its own start, so that its start-up counts too. The
        budget ends ``problem.options.time_limit_s`` later.
    report
        Filled in with where the wall time went (:class:`SplitReport`).

    Returns
    -------
    Plan
        The merged and polished plan; days at or below ``split_above`` are
        solved whole.
    """
    params = params or SplitParams()
    report = report if report is not None else SplitReport()
    now = time.time()
    started = now if started is None else min(started, now)
    limit = problem.options.time_limit_s
    deadline = started + limit
    report.budget_s, report.before_s = limit, now - started
    if geocoder is None and any(a.location is None for v in problem.visits for a in v.addresses):
        geocoder = default_geocoder()
    if not needs_split(problem, params):
        return solve(problem, travel, geocoder=geocoder)
    parts = split_problem(problem, params)
    mark = time.time()
    report.split_s = mark - now
    solver_fn = solve_parts or solve_parts_inline(travel, geocoder, params)
    plans = solver_fn(parts, deadline - limit * params.polish_share, deadline)
    for k, part_plan in enumerate(plans):
        if part_plan is not None:
            report.part_s[k], report.matrix_s[k] = part_plan.solver.seconds, part_plan.solver.matrix_seconds
            report.where.setdefault(k, "inline")
    report.parts_s, mark = time.time() - mark, time.time()
    plan = merge_plans(problem, parts, plans, travel, geocoder)
    report.merge_s, mark = time.time() - mark, time.time()
    plan, report.windows_tried, report.windows_improved = polish_borders(
        problem, plan, parts, travel, deadline, params, geocoder)
    report.polish_s = time.time() - mark
    plan.solver.metaheuristic = f"{plan.solver.metaheuristic}; border polish ({report.windows_improved} windows improved)"
    plan.solver.seconds = round(time.time() - started, 3)
    log.info("split day: %s", report.describe())
    return plan
