"""What a search returns: :class:`RawSolution`, before it becomes a plan.

For each crew the sequence of visit nodes with the service start the search
chose, the time it leaves and comes back, and its breaks; the visits left
out; and the search's statistics. :func:`solver.solve.build_plan` turns it
into a :class:`~solver.model.Plan`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from solver.timing import simulate

if TYPE_CHECKING:
    from solver.compile import RoutingData


@dataclass
class RawStop:
    """One visit on a route: the visit node and its service start (seconds)."""

    node: int
    start: int


@dataclass
class RawRoute:
    """One crew's route: when it leaves its start place and reaches its end
    place (seconds), its stops, and its breaks as (start, duration)."""

    vehicle: int
    start: int
    end: int
    stops: list[RawStop] = field(default_factory=list)
    breaks: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class RawSolution:
    """A day's routes (one per crew), the visits left out (indices into the
    problem's visits) and what the search reports: its objective, status,
    time, first-solution strategy and metaheuristic (free text)."""

    routes: list[RawRoute]
    dropped: list[int]
    objective: int | None
    status: str
    seconds: float
    first_solution: str
    metaheuristic: str


def timed_route(data: RoutingData, vehicle: int, sequence: list[int]) -> RawRoute | None:
    """Crew ``vehicle`` making the visit nodes ``sequence`` on its earliest
    feasible schedule (:func:`solver.timing.simulate`: windows, breaks,
    shift); None when there is none."""
    schedule = simulate(data.route_timing(vehicle, sequence))
    if schedule is None:
        return None
    return RawRoute(vehicle, schedule.leave, schedule.end,
                    [RawStop(n, t) for n, t in zip(sequence, schedule.starts)], list(schedule.breaks))
