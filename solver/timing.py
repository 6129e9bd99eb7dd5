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


def simulate(
    route: RouteTiming, floors: Sequence[int | None] | None = None, break_legs: Sequence[int] | None = None
) -> Schedule | None:
    """The earliest feasible schedule, with service at task ``k`` starting no
    earlier than ``floors[k]`` when given; ``None`` when infeasible.

    Breaks are taken in window order, each as late as the route allows: in
    the leg before the first visit after which it could no longer start in
    its window. In that leg the crew travels first and breaks on arrival; if
    that is too late for the window, it breaks before setting off. When that
    fails (a later visit's window leaves no room), each break is taken as
    early as its window opens instead. With ``break_legs`` (one leg per
    break, in window order: leg ``k`` is the way to task ``k``, leg
    ``len(tasks)`` the way back) each break is taken in its leg, on arrival
    or, when that is too late for its window, before setting off.
    """
    if break_legs is not None:
        return _simulate(route, floors, early=False, legs=break_legs)
    return _simulate(route, floors, early=False) or (_simulate(route, floors, early=True) if route.breaks else None)


def break_legs_of(schedule: Schedule) -> list[int]:
    """The leg each break of ``schedule`` is taken in (see :func:`simulate`)."""
    return [next((k for k, start in enumerate(schedule.starts) if brk < start), len(schedule.starts))
            for brk, _ in sorted(schedule.breaks)]


def _simulate(route: RouteTiming, floors: Sequence[int | None] | None, *, early: bool,
              legs: Sequence[int] | None = None) -> Schedule | None:
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
            if legs is not None:
                if legs[len(schedule.breaks)] != k:
                    break  # not in this leg
            elif task is not None:
                start = earliest_in(task.windows, max(ready, floor))
                if early:
                    after = earliest_in(task.windows, max(max(ready, lo) + duration, floor))
                    if max(ready, lo) > hi - duration or after is None or (
                            start is not None and lo > start and start + task.service_s <= hi - duration):
                        break  # not yet (or not here): after this visit
                elif start is not None and start + task.service_s <= hi - duration:
                    break  # it can still be taken after this visit
            brk_start = max(ready, lo)
            on_arrival_ok = brk_start <= hi - duration
            if (on_arrival_ok and task is not None and not on_arrival and max(free, lo) <= hi - duration
                    and earliest_in(task.windows, max(brk_start + duration, floor)) is None
                    and earliest_in(task.windows, max(max(free, lo) + duration + travel, floor)) is not None):
                on_arrival_ok = False  # breaking on arrival misses the task's window; before leaving does not
            if on_arrival_ok:
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


def _starts_at(route: RouteTiming, floors: Sequence[int | None], k: int, t: int) -> bool:
    """Whether task ``k`` can start at ``t`` exactly, the tasks before it
    starting no earlier than their ``floors``, with the rest of the route feasible."""
    probe = list(floors)
    probe[k] = t
    schedule = simulate(route, probe)
    return schedule is not None and schedule.starts[k] == t


@dataclass(frozen=True)
class PlannedIn:
    """The route as the search saw it with the slack of every slot planned in
    (:func:`solver.slots.planning_timing`): its schedule, ``shift_s`` earlier,
    is the worst case (every stop starting at its slot's end)."""

    tight: RouteTiming
    shift_s: int


def _full_slot(
    route: RouteTiming, floors: Sequence[int | None], k: int, reach: int, width_s: int, align_s: int,
    planned_in: PlannedIn, tight_floors: Sequence[int | None],
) -> Interval | None:
    """A slot of the full width ``w = min(width_s, window length)`` for task
    ``k``, ending at or after the worst-case start ``reach``, such that
    starting at its end keeps the route feasible and the later tasks their
    full-width slots (the planned-in route stays feasible); or None.

    Tried in order: starting on the alignment at or before the earlier of the
    planned slot start and ``reach``; starting on the alignment after
    ``reach - w``; ending at ``reach``; the planned slot. Aligning therefore
    costs nothing: an aligned slot is taken only when the rest of the route
    keeps its full slots."""
    tight, shift = planned_in.tight, planned_in.shift_s
    schedule = simulate(tight, tight_floors)
    if schedule is None:
        return None
    end = schedule.starts[k] + shift  # the planned slot end
    window = window_of(route.tasks[k].windows, end)
    if window is None:
        return None
    lo, hi = window
    target = min(width_s, hi - lo)
    candidates = [
        max(lo, _align_down(min(end - target, reach), align_s)),
        _align_up(max(lo, reach - target), align_s),
        max(lo, reach - target),
        end - target,
    ]
    for a in dict.fromkeys(candidates):
        b = a + target
        if a < lo or b > hi or b < reach:
            continue
        if _starts_at(tight, tight_floors, k, b - shift) and _starts_at(route, floors, k, b):
            return a, b
    return None


def assign_slots(
    route: RouteTiming,
    planned: Sequence[int],
    width_s: int | Sequence[int],
    align_s: int,
    fixed: dict[int, Interval] | None = None,
    *,
    planned_in: PlannedIn | None = None,
) -> list[Interval] | None:
    """Appointment slots for every task of ``route``.

    Each slot ``[a, b]`` is at most ``width_s`` wide (one width for all
    tasks, or one per task), starts on a multiple of ``align_s`` where it
    can, lies inside one of the task's windows and contains the planned start
    when it can. Arriving anywhere inside every slot keeps the route
    feasible: the slots are built forward along the route from the worst case
    (the crew arrived at the end of every earlier slot). Slots in ``fixed``
    (already promised) are kept as they are; the answer is ``None`` when one
    of them can no longer be honoured.

    With ``planned_in`` (the ``guaranteed`` slot policy, :mod:`solver.slots`)
    each slot is first cut at its full width, ``min(width, window length)``,
    where the route the search planned allows (:func:`_full_slot`); where it
    does not, the slot is cut as without.
    """
    fixed = fixed or {}
    widths = [width_s] * len(route.tasks) if isinstance(width_s, int) else list(width_s)
    floors: list[int | None] = [None] * len(route.tasks)
    tight_floors: list[int | None] = [None] * len(route.tasks)
    slots: list[Interval] = []
    for k, task in enumerate(route.tasks):
        width = widths[k]
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
        slot = None
        if planned_in is not None:
            slot = _full_slot(route, floors, k, reach, width, align_s, planned_in, tight_floors)
        if slot is not None:
            a, b = slot
            assert planned_in is not None  # a full slot comes from the planned-in route
            tight_floors[k] = b - planned_in.shift_s
        else:
            # Cover the expected start (planned) to the worst case (reach) when
            # the width allows; otherwise the slot's end is the worst case, as
            # early as alignment allows, and an early crew waits for the slot.
            latest = latest_start(route, k, floors, reach)
            window = window_of(task.windows, reach) or (reach, reach)
            expected = min(planned[k], reach)
            a = _align_down(expected, align_s)
            if a + width < reach:
                a = _align_up(reach - width, align_s)
            a = max(a, window[0])
            b = min(a + width, latest, window[1])
            a = min(a, b)
        floors[k] = b
        slots.append((a, b))
    return slots
