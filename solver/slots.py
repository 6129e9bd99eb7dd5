"""Appointment slots planned in, not trimmed after.

A slot is the promise made to a borrower ("between 10:00 and 11:00"): the crew
may arrive anywhere in it and the rest of the route must still hold. The
worst case is the crew starting every stop at the end of its slot, so slots
``[b_k - w_k, b_k]`` keep a route feasible exactly when the slot ends ``b_k``
are themselves a feasible schedule of the route (travel, service, breaks,
shift) with ``b_k`` in ``[lo + w_k, hi]`` of a service-start window
``[lo, hi]``, where ``w_k = min(W, hi - lo)`` (``W = slot_minutes``) or, for a
booked appointment, the whole window: its slot is the appointment.

With ``Options.slot_policy = "guaranteed"`` (the default) the search plans
that worst-case schedule, written ``W`` earlier (``s_k = b_k - W``) so that it
reads like an ordinary one: it sees

* each service-start window ``[lo, hi]`` as ``[lo + w - W, hi - W]``
  (``[lo, hi - W]`` for a window at least ``W`` long; a single moment
  ``hi - W`` for a shorter window or an appointment);
* each crew's shift and break windows ``W`` earlier (the working span and
  service times are unchanged).

Any route the search finds has full-width slots, and its cost is the real
price of the promise: the search gives up visits or travel for it, which
``bench/slots.py`` measures. :func:`solver.timing.assign_slots` with
``full=True`` then cuts the slots along the route against the real windows
(aligning them to ``slot_align_minutes`` where that moves no slot end later).
``"best_effort"`` plans on the real windows and cuts the slots from whatever
slack the routes happen to have.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from solver.timing import Interval, RouteTiming, Task

if TYPE_CHECKING:
    from solver.compile import RoutingData
    from solver.model import Options, Visit
    from solver.search.raw import RawRoute

SlotPolicy = Literal["guaranteed", "best_effort"]

#: Slot width standing for "the whole window" (a booked appointment).
WHOLE_WINDOW_S = 10**9


@dataclass(frozen=True)
class SlotParams:
    """How a plan's slots are made.

    Parameters
    ----------
    width_s
        Slot width ``W`` in seconds (0: no slots).
    align_s
        Slot starts fall on multiples of this where that costs nothing.
    policy
        ``guaranteed``: slack for every slot planned in; ``best_effort``: cut after.
    """

    width_s: int
    align_s: int
    policy: SlotPolicy = "guaranteed"

    @classmethod
    def of(cls, options: Options) -> SlotParams:
        """The parameters of ``options`` (``slot_minutes``, ``slot_align_minutes``, ``slot_policy``)."""
        return cls(options.slot_minutes * 60, options.slot_align_minutes * 60, options.slot_policy)

    @property
    def planned_in(self) -> bool:
        """Whether the search plans against the slots."""
        return self.policy == "guaranteed" and self.width_s > 0

    def width_for(self, visit: Visit) -> int:
        """The slot width a visit needs: ``W``, or its whole window when booked."""
        return WHOLE_WINDOW_S if visit.appointment is not None else self.width_s


def tighten(windows: Sequence[Interval], width_s: int, shift_s: int) -> list[Interval]:
    """Service-start windows of the worst-case schedule written ``shift_s``
    (``W``) earlier, for a slot ``width_s`` wide (or the whole window when it
    is shorter): ``[lo, hi]`` becomes ``[lo + w - W, hi - W]``, ``w = min(width_s, hi - lo)``."""
    out = []
    for lo, hi in windows:
        w = min(width_s, hi - lo)
        out.append((max(0, lo + w - shift_s), max(0, hi - shift_s)))
    return out


def _earlier(interval: Interval, shift_s: int) -> Interval:
    return max(0, interval[0] - shift_s), max(0, interval[1] - shift_s)


def planning_data(data: RoutingData, params: SlotParams) -> RoutingData:
    """A copy of ``data`` for the search, planning the worst-case schedule of
    every slot (see the module docstring); ``data`` itself is unchanged and is
    what the routes are timed and the slots cut against. The search's times
    are ``W`` early: :func:`real_route` puts them back."""
    if not params.planned_in:
        return data
    width = params.width_s
    visits = data.problem.visits
    nodes = []
    for node in data.nodes:
        if node.kind == "visit" and node.visit is not None:
            node = dataclasses.replace(node, windows=tighten(node.windows, params.width_for(visits[node.visit]), width))
        else:
            node = dataclasses.replace(node, windows=[_earlier(w, width) for w in node.windows])
        nodes.append(node)
    vehicles = []
    for veh in data.vehicles:
        vehicles.append(dataclasses.replace(
            veh,
            shift=_earlier(veh.shift, width),
            breaks=[(_earlier(window, width), duration) for window, duration in veh.breaks],
        ))
    return dataclasses.replace(data, nodes=nodes, vehicles=vehicles)


def real_route(raw: RawRoute, params: SlotParams) -> RawRoute:
    """A route of the search on :func:`planning_data`, in real time: the
    worst-case schedule (every stop starting at the end of its slot)."""
    if not params.planned_in:
        return raw
    width = params.width_s
    return dataclasses.replace(
        raw, start=raw.start + width, end=raw.end + width,
        stops=[dataclasses.replace(s, start=s.start + width) for s in raw.stops],
        breaks=[(start + width, duration) for start, duration in raw.breaks],
    )


def planning_timing(timing: RouteTiming, widths: Sequence[int], width_s: int) -> RouteTiming:
    """The timing view of a route as the search saw it under
    :func:`planning_data` (``widths``: the slot width of each task)."""
    return RouteTiming(
        shift=_earlier(timing.shift, width_s),
        breaks=tuple((_earlier(window, width_s), duration) for window, duration in timing.breaks),
        tasks=tuple(Task(tuple(tighten(t.windows, w, width_s)), t.service_s)
                    for t, w in zip(timing.tasks, widths, strict=True)),
        travel=timing.travel,
        max_span_s=timing.max_span_s,
    )
