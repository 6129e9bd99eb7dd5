"""Cutting a day into parts: :func:`split_problem`.

The crews are bisected by where they start (recursive coordinate bisection,
so every part gets about as many crews and its crews are neighbours), then
each visit, most important first, goes to the part whose nearest crew start
is closest and which still has room (room in proportion to the part's
crews), among parts holding a crew able to make it (pinned crew, skills,
crew size). Every visit and every crew belongs to exactly one part.
"""

from __future__ import annotations

import math

from solver.model import Agent, Location, Problem, Visit
from solver.search.split.params import SplitParams
from solver.search.split.part import Part

__all__ = ["needs_split", "part_count", "planar_xy", "split_problem", "visit_location"]


def needs_split(problem: Problem, params: SplitParams) -> bool:
    """Whether ``problem`` is big enough to split (and has crews to share)."""
    return params.split_above > 0 and len(problem.visits) > params.split_above and len(problem.agents) > 1


def part_count(visits: int, agents: int, params: SplitParams) -> int:
    """How many parts a day of ``visits`` visits and ``agents`` crews is cut into."""
    parts = max(1, math.ceil(visits / max(1, params.part_visits)))
    solvers = max(1, params.solvers)
    parts = math.ceil(parts / solvers) * solvers if parts > 1 else parts
    return max(1, min(parts, agents))


def planar_xy(loc: Location, lat0: float) -> tuple[float, float]:
    """Planar metres (equirectangular), enough to tell near from far in a city."""
    return loc.lon * 111_320.0 * math.cos(math.radians(lat0)), loc.lat * 110_540.0


def visit_location(visit: Visit) -> Location | None:
    """Where ``visit`` is, by its first located address (None: none is located yet)."""
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
    known = [loc for loc in (*(a.start.location for a in agents), *map(visit_location, problem.visits)) if loc]
    lat0 = sum(loc.lat for loc in known) / len(known) if known else 0.0
    centre = (sum(planar_xy(loc, lat0)[0] for loc in known) / max(1, len(known)),
              sum(planar_xy(loc, lat0)[1] for loc in known) / max(1, len(known)))
    crew_xy = [planar_xy(a.start.location, lat0) if a.start.location else centre for a in agents]
    groups = [g for g in _bisect(list(range(len(agents))), crew_xy, k) if g]
    room = [math.ceil(len(problem.visits) * len(g) / len(agents) * params.room_slack) for g in groups]
    taken: list[list[int]] = [[] for _ in groups]
    order = sorted(range(len(problem.visits)), key=lambda i: (not problem.visits[i].is_hard, -problem.visits[i].priority, i))
    for vi in order:
        visit = problem.visits[vi]
        loc = visit_location(visit)
        if loc is None:  # placed where there is most room; its part geocodes it
            taken[min(range(len(groups)), key=lambda g: len(taken[g]) / max(1, room[g]))].append(vi)
            continue
        x, y = planar_xy(loc, lat0)

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

