"""Timing of one crew's route with its stops in a fixed order.

The search engine decides the order; this module answers the questions asked
of a route afterwards, without OR-Tools:

* :func:`simulate` — the earliest schedule of a sequence (service starts,
  arrivals, where the breaks go, when the crew is back), or ``None`` if the
  sequence cannot be made inside its windows, shift and breaks;
* :func:`latest_start` — the latest service start at one stop that keeps the
  rest of the route feasible;
* :func:`assign_slots` — appointment slots such that arriving *anywhere* in
  every slot keeps the whole route feasible (the slot promise).

Times are whole seconds after local midnight. A break is taken either on
arrival at the next place (travel first, then break, then the visit) or, when
that would be too late for the break's window, before setting off. The
checker in :mod:`solver.check` accepts both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

Interval = tuple[int, int]


@dataclass(frozen=True)
class Task:
    """A stop: allowed service-start windows (sorted, disjoint) and service time."""

    windows: tuple[Interval, ...]
    service_s: int


@dataclass(frozen=True)
class RouteTiming:
    """A crew's fixed facts plus the travel between consecutive places.

    ``travel[k]`` is the travel time into task ``k`` (``travel[0]`` from the
    start place) and ``travel[len(tasks)]`` the travel to the end place (0 for
    an open end).
    """

    shift: Interval
    breaks: tuple[tuple[Interval, int], ...]  # ((window lo, window hi), duration)
    tasks: tuple[Task, ...]
    travel: tuple[int, ...]
    max_span_s: int | None = None

    def __post_init__(self) -> None:
        if len(self.travel) != len(self.tasks) + 1:
            raise ValueError("travel needs one entry per task plus the way to the end")


@dataclass
class Schedule:
    """The timed route: per task arrival and service start; breaks; start and end."""

    leave: int  # crew leaves its start place
    arrivals: list[int] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    breaks: list[tuple[int, int]] = field(default_factory=list)  # (start, duration)
    end: int = 0  # crew reaches its end place


def earliest_in(windows: Sequence[Interval], t: int) -> int | None:
    """The earliest moment ``>= t`` inside one of ``windows``."""
    for lo, hi in windows:
        if hi >= t:
            return max(lo, t)
    return None


def window_of(windows: Sequence[Interval], t: int) -> Interval | None:
    """The window containing ``t``."""
    for lo, hi in windows:
        if lo <= t <= hi:
            return (lo, hi)
    return None


def simulate(route: RouteTiming, floors: Sequence[int | None] | None = None) -> Schedule | None:
    """The earliest feasible schedule, with service at task ``k`` starting no
    earlier than ``floors[k]`` when given; ``None`` when infeasible.

    Breaks are taken in window order, each as late as the route allows: in
    the leg before the first visit after which it could no longer start in
    its window. In that leg the crew travels first and breaks on arrival; if
    that is too late for the window, it breaks before setting off. When that
    fails (a later visit's window leaves no room), each break is taken as
    early as its window opens instead.
    """
    return _simulate(route, floors, early=False) or (_simulate(route, floors, early=True) if route.breaks else None)


def _simulate(route: RouteTiming, floors: Sequence[int | None] | None, *, early: bool) -> Schedule | None:
    tasks = route.tasks
    floors = floors or [None] * len(tasks)
    pending = sorted(route.breaks, key=lambda b: (b[0][1] - b[1], b[0][0]))
    free = route.shift[0]  # when the crew may leave the previous place
    schedule = Schedule(leave=free)
    for k in range(len(tasks) + 1):
        last_leg = k == len(tasks)
        travel = route.travel[k]
        task = None if last_leg else tasks[k]
        floor_k = None if last_leg else floors[k]
        floor = 0 if floor_k is None else floor_k
        ready = free + travel  # arrived (and free of breaks taken on arrival)
        on_arrival: list[int] = []  # starts of breaks taken after arriving
        while pending:
            (lo, hi), duration = pending[0]
            if task is not None:
                start = earliest_in(task.windows, max(ready, floor))
                if early:
                    after = earliest_in(task.windows, max(max(ready, lo) + duration, floor))
                    if max(ready, lo) > hi - duration or after is None or (
                            start is not None and lo > start and start + task.service_s <= hi - duration):
                        break  # not yet (or not here): after this visit
                elif start is not None and start + task.service_s <= hi - duration:
                    break  # it can still be taken after this visit
            brk_start = max(ready, lo)
            if brk_start <= hi - duration:
                on_arrival.append(brk_start)
                ready = brk_start + duration
            elif not on_arrival and max(free, lo) <= hi - duration:
                brk_start = max(free, lo)
                free = brk_start + duration
                ready = free + travel
            else:
                return None
            schedule.breaks.append((brk_start, duration))
            pending.pop(0)
        if last_leg:
            schedule.end = free + travel
            break
        assert task is not None  # every leg but the last leads to a task
        start = earliest_in(task.windows, max(ready, floor))
        if start is None:
            return None
        if k == 0:
            # leave as late as keeps this start: no idle wait at the door
            latest_leave = (min(on_arrival) if on_arrival else start) - travel
            schedule.leave = max(free, latest_leave)
            schedule.arrivals.append(schedule.leave + travel)
        else:
            schedule.arrivals.append(free + travel)
        schedule.starts.append(start)
        free = start + task.service_s
    if not tasks:
        schedule.leave = route.shift[0]
    last_break_end = max((b + d for b, d in schedule.breaks), default=0)
    if schedule.end > route.shift[1] or last_break_end > route.shift[1]:
        return None
    if route.max_span_s is not None and tasks and schedule.end - schedule.leave > route.max_span_s:
        return None
    schedule.breaks.sort()
    return schedule


def latest_start(route: RouteTiming, k: int, floors: Sequence[int | None], earliest: int) -> int:
    """The latest service start at task ``k`` (given the floors before it) that
    keeps the route feasible; at least ``earliest``, which must be feasible."""
    lo = earliest
    hi = route.tasks[k].windows[-1][1]
    probe = list(floors)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        probe[k] = mid
        schedule = simulate(route, probe)
        if schedule is not None and schedule.starts[k] == mid:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _align_down(t: int, step: int) -> int:
    return t - t % step


def _align_up(t: int, step: int) -> int:
    return -(-t // step) * step


def assign_slots(
    route: RouteTiming,
    planned: Sequence[int],
    width_s: int,
    align_s: int,
    fixed: dict[int, Interval] | None = None,
) -> list[Interval] | None:
    """Appointment slots for every task of ``route``.

    Each slot ``[a, b]`` is at most ``width_s`` wide, starts on a multiple of
    ``align_s`` where it can, lies inside one of the task's windows and
    contains the planned start when it can. Arriving anywhere inside every
    slot keeps the route feasible: the slots are built forward along the
    route from the worst case (the crew arrived at the end of every earlier
    slot). Slots in ``fixed`` (already promised) are kept as they are; the
    answer is ``None`` when one of them can no longer be honoured.
    """
    fixed = fixed or {}
    floors: list[int | None] = [None] * len(route.tasks)
    slots: list[Interval] = []
    for k, task in enumerate(route.tasks):
        schedule = simulate(route, floors)
        if schedule is None:
            return None
        reach = schedule.starts[k]  # worst-case earliest start here
        if k in fixed:
            a, b = fixed[k]
            if reach > b:
                return None
            floors[k] = b
            if simulate(route, floors) is None:
                return None
            slots.append((a, b))
            continue
        latest = latest_start(route, k, floors, reach)
        window = window_of(task.windows, reach) or (reach, reach)
        # Cover the expected start (planned) to the worst case (reach) when the
        # width allows; otherwise the slot's end is the worst case, as early
        # as alignment allows, and an early crew waits for the slot.
        expected = min(planned[k], reach)
        a = _align_down(expected, align_s)
        if a + width_s < reach:
            a = _align_up(reach - width_s, align_s)
        a = max(a, window[0])
        b = min(a + width_s, latest, window[1])
        a = min(a, b)
        floors[k] = b
        slots.append((a, b))
    return slots
