"""Compile a validated :class:`~solver.model.Problem` into routing data.

This is the step between the typed problem and the OR-Tools model: it
resolves every place to a WGS-84 point, decides which crews may make which
visit, intersects the time windows, screens out visits no plan could serve
(with the reason), and asks the travel model for one matrix per travel mode.
The result, :class:`RoutingData`, is plain data in whole seconds; the engine
reads nothing else.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypedDict
from zoneinfo import ZoneInfo

from solver.model import Agent, Location, Place, PlanFlag, Problem, ReasonCode, TravelMode, Unassigned, Visit
from solver.rules import RuleSet, active_rule_set, cite, contacts_in_period, visiting_interval
from solver.timing import RouteTiming, Task
from solver.travel import TravelMatrix, TravelModel

Interval = tuple[int, int]

#: Progress callback: (stage, fraction done in [0, 1]).
Progress = Callable[[str, float], None]


class Geocoded(Protocol):
    """What a :class:`Geocoder` answers: at least a WGS-84 ``location`` (a
    :class:`~solver.geo.results.GeocodeResult` also carries confidence,
    precision, attempts...)."""

    @property
    def location(self) -> Location: ...


class Geocoder(Protocol):
    """Anything that turns address text into a WGS-84 location (or None)."""

    def geocode(self, text: str) -> Geocoded | None: ...  # returns an object with .location, or None


@dataclass
class Node:
    """One routing node: a visit at one of its addresses, or a crew's start or end."""

    kind: Literal["visit", "start", "end"]
    point: int | None  # index into RoutingData.points; None: open end (free travel to it)
    service_s: int = 0
    windows: list[Interval] = field(default_factory=list)  # allowed service starts
    visit: int | None = None  # index into problem.visits
    address: int | None = None  # index into visit.addresses
    vehicles: list[int] = field(default_factory=list)  # crews allowed; empty: all


@dataclass
class Vehicle:
    """A crew as the engine sees it."""

    agent: Agent
    mode: TravelMode
    start_node: int
    end_node: int
    shift: Interval
    breaks: list[tuple[Interval, int]]  # (window, duration seconds), window clipped to shift
    max_visits: int
    capacity: int | None
    max_span_s: int | None


@dataclass
class RoutingData:
    """Everything the engine needs, in whole seconds and metres."""

    problem: Problem
    points: list[Location]
    nodes: list[Node]
    vehicles: list[Vehicle]
    matrices: dict[str, TravelMatrix]
    visit_nodes: dict[int, list[int]]  # visit index -> its alternative nodes
    penalties: dict[int, int]  # visit index -> drop penalty (cost units)
    horizon: int
    unassigned: list[Unassigned]
    warnings: list[str]
    flags: list[PlanFlag] = field(default_factory=list)
    matrix_seconds: float = 0.0

    def travel_s(self, mode: str, a: int, b: int) -> int:
        """Travel seconds from node ``a`` to node ``b`` for ``mode`` (0 into an open end)."""
        pa, pb = self.nodes[a].point, self.nodes[b].point
        if pa is None or pb is None:
            return 0
        return int(self.matrices[mode].durations[pa, pb])

    def route_timing(self, vehicle: int, sequence: Sequence[int]) -> RouteTiming:
        """The timing view (:mod:`solver.timing`) of crew ``vehicle`` making
        the visit nodes ``sequence`` in that order."""
        veh = self.vehicles[vehicle]
        places = [veh.start_node, *sequence, veh.end_node]
        return RouteTiming(
            shift=veh.shift,
            breaks=tuple(veh.breaks),
            tasks=tuple(Task(tuple(self.nodes[n].windows), self.nodes[n].service_s) for n in sequence),
            travel=tuple(self.travel_s(veh.mode, a, b) for a, b in itertools.pairwise(places)),
            max_span_s=veh.max_span_s,
        )

    def subset(self, vehicles: Sequence[int], visits: Sequence[int]) -> tuple[RoutingData, list[int], list[int]]:
        """Routing data for some crews and visits (every alternative node of
        each visit comes along); returns it with the maps from the new node
        and vehicle indices back to these ones. Crew eligibility is remapped:
        a node allowed only to crews left out has no crew left (its list is
        ``[-1]``, which allows none)."""
        vehicle_map = {old: new for new, old in enumerate(vehicles)}
        old_nodes: list[int] = []
        new_vehicles = []
        for v in vehicles:
            veh = self.vehicles[v]
            start, end = len(old_nodes), len(old_nodes) + 1
            old_nodes += [veh.start_node, veh.end_node]
            new_vehicles.append(dataclasses.replace(veh, start_node=start, end_node=end))
        visit_nodes: dict[int, list[int]] = {}
        for vi in visits:
            visit_nodes[vi] = []
            for n in self.visit_nodes[vi]:
                visit_nodes[vi].append(len(old_nodes))
                old_nodes.append(n)
        nodes = []
        for n in old_nodes:
            node = self.nodes[n]
            allowed = [vehicle_map[v] for v in node.vehicles if v in vehicle_map]
            if node.vehicles and not allowed:
                allowed = [-1]  # an empty list would allow every crew
            nodes.append(dataclasses.replace(node, vehicles=allowed))
        sub = dataclasses.replace(
            self,
            nodes=nodes,
            vehicles=new_vehicles,
            visit_nodes=visit_nodes,
            penalties={vi: self.penalties[vi] for vi in visits},
            unassigned=[],
            warnings=[],
            flags=[],
        )
        return sub, old_nodes, list(vehicles)

    def distance_m(self, mode: str, a: int, b: int) -> int:
        pa, pb = self.nodes[a].point, self.nodes[b].point
        if pa is None or pb is None:
            return 0
        return int(self.matrices[mode].distances[pa, pb])


# --------------------------------------------------------------------------- #
# Priorities and penalties
# --------------------------------------------------------------------------- #
#: Penalty for leaving out a priority-0 visit, in seconds of travel.
BASE_PENALTY_S = 3600
#: Penalty for leaving out a required visit or booked appointment.
HARD_PENALTY = 10**10


def drop_penalty(priority: int, hard: bool) -> int:
    """Cost of leaving a visit out, in seconds of travel.

    ``BASE_PENALTY_S × (1 + priority/10)²``: an hour of travel for priority 0,
    36 hours for 50, 121 hours for 100. It grows quadratically, so one
    priority-100 visit outweighs about thirty priority-10 visits, and any
    visit is worth more than the travel a city day could save by dropping it.
    """
    if hard:
        return HARD_PENALTY
    return int(BASE_PENALTY_S * (1 + priority / 10) ** 2)


# --------------------------------------------------------------------------- #
# Interval helpers
# --------------------------------------------------------------------------- #
def merge(intervals: Sequence[Interval]) -> list[Interval]:
    """Sorted union of closed intervals."""
    out: list[Interval] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def intersect(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    """Intersection of two unions of closed intervals."""
    out = []
    for lo1, hi1 in a:
        for lo2, hi2 in b:
            lo, hi = max(lo1, lo2), min(hi1, hi2)
            if lo <= hi:
                out.append((lo, hi))
    return merge(out)


# --------------------------------------------------------------------------- #
# Compilation
# --------------------------------------------------------------------------- #
class _Points:
    """Deduplicating list of WGS-84 points."""

    def __init__(self) -> None:
        self.points: list[Location] = []
        self.owners: dict[int, list[tuple[str | None, str | None, int | None]]] = {}
        self._index: dict[tuple[float, float], int] = {}

    def add(self, loc: Location, owner: tuple[str | None, str | None, int | None]) -> int:
        """Index of ``loc``; ``owner`` is (visit id, agent id, address index)."""
        key = (round(loc.lat, 7), round(loc.lon, 7))
        if key not in self._index:
            self._index[key] = len(self.points)
            self.points.append(Location(lat=loc.lat, lon=loc.lon, crs="wgs84"))
        index = self._index[key]
        self.owners.setdefault(index, []).append(owner)
        return index


class _FlagOwner(TypedDict):
    """Whose place a :class:`~solver.model.PlanFlag` is about."""

    visit_id: str | None
    agent_id: str | None
    address_index: int | None


@dataclass(frozen=True)
class _Resolved:
    """Where a place is and how precisely: a given location counts as ``exact``.
    ``imprecise``: geocoded below ``[geocoding] min_precision``, not to be routed."""

    location: Location | None
    precision: str = "exact"
    confidence: float = 1.0
    matched: str | None = None
    imprecise: bool = False


#: How a dispatcher confirms a point, said wherever an imprecise geocode is reported.
CONFIRM_HOW = ("confirm the point by sending the address again with its location "
               "(addresses[{index}].location: lat, lon), which is taken as exact")


def _resolve(
    place: Place,
    geocoder: Geocoder | None,
    flags: list[PlanFlag],
    owner: tuple[str | None, str | None, int | None],
    min_precision: str | None = None,
) -> _Resolved:
    """The WGS-84 point of ``place``: its location, or its geocoded text.
    A failed or low-confidence geocode is flagged for the dispatcher; with
    ``min_precision``, a geocode below it comes back ``imprecise`` (its flag
    says the address waits for a confirmed point)."""
    from solver.geo.results import meets_precision

    visit_id, agent_id, address_index = owner
    where: _FlagOwner = {"visit_id": visit_id, "agent_id": agent_id, "address_index": address_index}
    if place.location is not None:
        if place.location.crs == "wgs84":
            return _Resolved(place.location)
        from solver.geo.coords import to_wgs84

        return _Resolved(to_wgs84(place.location))
    if geocoder is None or place.text is None:
        return _Resolved(None)
    try:
        result = geocoder.geocode(place.text)
    except (ValueError, OSError) as exc:  # a provider failure must not stop the plan
        flags.append(PlanFlag(code="geocode_failed", message=f"geocoding failed: {type(exc).__name__}", **where))
        return _Resolved(None)
    if result is None:
        return _Resolved(None)
    for attempt in getattr(result, "attempts", ()) or ():
        if getattr(attempt, "status", None) in ("failed", "timeout"):
            flags.append(PlanFlag(code="geocode_provider_failed", **where,
                                  message=f"geocoder {attempt.provider} {attempt.status}; a later one answered"))
    confidence = float(getattr(result, "confidence", 1.0))
    precision = str(getattr(result, "precision", "exact"))
    matched = getattr(result, "matched", None)
    below = min_precision is not None and not meets_precision(precision, min_precision)
    if getattr(result, "flagged", False) or precision == "district" or below:
        message = f"placed at {precision} level with confidence {confidence:.2f}: "
        if below:
            message += (f"left out, below [geocoding] min_precision = {min_precision!r}; "
                        + CONFIRM_HOW.format(index=address_index))
        else:
            message += "please confirm the point"
        details = {"confidence": confidence, "precision": precision,
                   "provider": getattr(result, "provider", None), "matched": matched}
        if below:
            details["left_out"] = True
        flags.append(PlanFlag(code="geocode_low_confidence", **where, message=message, details=details))
    return _Resolved(result.location, precision, confidence, matched, imprecise=below)


def configured_min_precision() -> str:
    """``[geocoding] min_precision`` of the configuration in force (default ``"street"``)."""
    from solver.config import defaults
    from solver.geo.results import DEFAULT_MIN_PRECISION

    return str(defaults().get("geocoding", {}).get("min_precision", DEFAULT_MIN_PRECISION))


def _skilled(visit: Visit, agents: Sequence[Agent]) -> tuple[list[int], str]:
    """Crews allowed and skilled for ``visit``, or the reason there are none."""
    pinned = [i for i, a in enumerate(agents) if visit.pinned_agent in (None, a.id)]
    skilled = [i for i in pinned if set(visit.skills) <= set(agents[i].skills)]
    if skilled:
        return skilled, ""
    missing = sorted(set(visit.skills) - set().union(*(agents[i].skills for i in pinned)))
    who = f"crew {visit.pinned_agent}" if visit.pinned_agent else "no crew"
    detail = f"missing skill(s): {', '.join(missing)}" if missing else "no single crew holds all the skills"
    return [], f"{who} has the required skills ({detail})"


def _frequency_reason(problem: Problem, visit: Visit, rules: RuleSet | None) -> str | None:
    if rules is None or rules.frequency is None or not problem.history:
        return None
    limit = rules.frequency
    zone = ZoneInfo(visit.timezone or problem.timezone)
    made = contacts_in_period(problem.history, visit.case_key, problem.date, limit.period_days, zone)
    if made + 1 <= limit.max_visits:
        return None
    return (f"case {visit.case_key} already had {made} field visit(s) in the last {limit.period_days} days; "
            f"{cite(rules, 'frequency')} allows {limit.max_visits}")


def compile_problem(
    problem: Problem,
    travel: TravelModel,
    *,
    geocoder: Geocoder | None = None,
    progress: Progress | None = None,
    min_precision: str | None = None,
) -> RoutingData:
    """Turn ``problem`` into :class:`RoutingData` for the engine.

    Parameters
    ----------
    problem : solver.model.Problem
        The validated day.
    travel : solver.travel.TravelModel
        Prices travel between the resolved points.
    geocoder : Geocoder, optional
        Resolves address text without a location.
    progress : callable, optional
        ``progress(stage, fraction)`` for ``geocoding`` and ``matrix``.
    min_precision : str, optional
        Visit addresses geocoded less precisely than this
        (:data:`solver.geo.results.MIN_PRECISION_LEVELS`) are not routed; a
        visit left with none is unassigned as ``geocode_imprecise``. Default:
        ``[geocoding] min_precision`` of the configuration (``"street"``).
        Crew start and end places are only flagged.

    Returns
    -------
    RoutingData

    Raises
    ------
    ValueError
        When a crew's start or end cannot be geocoded, or on an unknown
        ``min_precision``.
    """
    from solver.geo.results import min_precision_rank

    if min_precision is None:
        min_precision = configured_min_precision()
    min_precision_rank(min_precision)  # fail early on an unknown level
    report = progress or (lambda stage, fraction: None)
    warnings: list[str] = []
    flags: list[PlanFlag] = []
    unassigned: list[Unassigned] = []
    pts = _Points()
    agents = problem.agents

    # -- crews: terminals, shifts, breaks --------------------------------- #
    report("geocoding", 0.0)
    nodes: list[Node] = []
    vehicles: list[Vehicle] = []
    for a in agents:
        start_loc = _resolve(a.start, geocoder, flags, (None, a.id, None)).location
        if start_loc is None:
            raise ValueError(f"agents[{a.id}].start: address could not be geocoded")
        end_place = a.end or a.start
        end_loc = None if a.open_end else _resolve(end_place, geocoder, flags, (None, a.id, None)).location
        if not a.open_end and end_loc is None:
            raise ValueError(f"agents[{a.id}].end: address could not be geocoded")
        shift = problem.window_seconds(a.shift)
        breaks = []
        for b in a.breaks:
            lo, hi = problem.window_seconds(b.window)
            lo, hi = max(lo, shift[0]), min(hi, shift[1])
            if hi - lo < b.duration_min * 60:
                warnings.append(f"crew {a.id}: break window lies outside the shift; break ignored")
                continue
            breaks.append(((lo, hi), b.duration_min * 60))
        start_node = len(nodes)
        nodes.append(Node("start", pts.add(start_loc, (None, a.id, None)), windows=[shift]))
        end_node = len(nodes)
        end_point = None if end_loc is None else pts.add(end_loc, (None, a.id, None))
        nodes.append(Node("end", end_point, windows=[shift]))
        vehicles.append(
            Vehicle(
                agent=a,
                mode=a.travel_mode,
                start_node=start_node,
                end_node=end_node,
                shift=shift,
                breaks=breaks,
                max_visits=a.max_visits if a.max_visits is not None else len(problem.visits),
                capacity=a.capacity,
                max_span_s=None if a.max_work_min is None else a.max_work_min * 60,
            )
        )

    # -- visits: eligibility, rules, windows, addresses -------------------- #
    rules = active_rule_set(problem.options.rule_set)
    visit_nodes: dict[int, list[int]] = {}
    penalties: dict[int, int] = {}
    n_visits = max(1, len(problem.visits))
    for vi, visit in enumerate(problem.visits):
        if vi % 200 == 0:
            report("geocoding", vi / n_visits)
        if visit.due_by is not None and visit.due_by < problem.date:
            unassigned.append(Unassigned(
                visit_id=visit.id, code="past_due",
                reason=f"due by {visit.due_by}, before the plan date {problem.date}: too late to plan",
                details={"due_by": visit.due_by.isoformat()},
            ))
            continue
        skilled, why = _skilled(visit, agents)
        if not skilled:
            unassigned.append(Unassigned(visit_id=visit.id, code="no_skill", reason=why))
            continue
        too_often = _frequency_reason(problem, visit, rules)
        if too_often:
            unassigned.append(Unassigned(visit_id=visit.id, code="frequency_limit", reason=too_often))
            continue
        service = visit.duration_min * 60
        appointment = [problem.window_seconds(visit.appointment)] if visit.appointment else None
        legal = None
        if rules is not None:
            zone = ZoneInfo(visit.timezone or problem.timezone)
            hours = visiting_interval(rules, problem.date, zone, problem.seconds)
            legal = [hours] if hours else None
        alternatives: list[int] = []
        reasons: list[tuple[ReasonCode, str]] = []  # (code, text)
        imprecise: list[dict[str, Any]] = []  # addresses located below min_precision
        for ai, address in enumerate(visit.addresses):
            label = f"address {ai} ({address.kind})"
            if not address.usable:
                reasons.append(("no_usable_address", f"{label} is flagged not usable"))
                continue
            if address.kind == "work" and rules is not None and not rules.work_contact:
                reasons.append(("no_usable_address",
                                f"{label}: {cite(rules, 'work_contact')} allows no contact at work"))
                continue
            need = visit.crew_size
            if address.kind == "home" and rules is not None:
                need = max(need, rules.min_crew_size_home)
            crews = [c for c in skilled if agents[c].crew_size >= need]
            if not crews:
                largest = max(agents[c].crew_size for c in skilled)
                by_rule = (f" ({cite(rules, 'min_crew_size_home')})"
                           if rules is not None and need > visit.crew_size else "")
                reasons.append(("crew_too_small", f"{label} needs a crew of {need}{by_rule}; "
                                                  f"the largest crew with the skills has {largest}"))
                continue
            resolved = _resolve(address, geocoder, flags, (visit.id, None, ai), min_precision)
            loc = resolved.location
            if loc is None:
                reasons.append(("not_geocoded", f"{label} could not be geocoded"))
                continue
            if resolved.imprecise:
                found = f" ({resolved.matched})" if resolved.matched else ""
                reasons.append(("geocode_imprecise",
                                f"{label} was found only at {resolved.precision} level{found}, below "
                                f"[geocoding] min_precision = {min_precision!r}: "
                                + CONFIRM_HOW.format(index=ai)))
                imprecise.append({"address_index": ai, "precision": resolved.precision,
                                  "confidence": resolved.confidence, "matched": resolved.matched})
                continue
            # service must start where a crew can still finish it inside its shift
            shift_starts = merge([(vehicles[c].shift[0], vehicles[c].shift[1] - service) for c in crews
                                  if vehicles[c].shift[1] - service >= vehicles[c].shift[0]])
            windows = merge([problem.window_seconds(w) for w in address.time_windows] or [(0, 10**9)])
            if visit.time_windows:
                windows = intersect(windows, merge([problem.window_seconds(w) for w in visit.time_windows]))
            if appointment:
                windows = intersect(windows, appointment)
            if legal is not None:
                windows = intersect(windows, legal)
                if not windows:
                    assert rules is not None  # legal hours come from the rule set
                    reasons.append(("outside_hours", f"{label}: its hours fall outside the legal visiting "
                                                     f"hours of {cite(rules, 'visiting_hours')}"))
                    continue
            windows = intersect(windows, shift_starts)
            if not windows:
                reasons.append(("outside_hours", f"{label}: its hours meet no shift of an eligible crew"))
                continue
            node = Node("visit", pts.add(loc, (visit.id, None, ai)), service, windows, vi, ai,
                        crews if len(crews) < len(agents) else [])
            alternatives.append(len(nodes))
            nodes.append(node)
        if not alternatives:
            codes = {c for c, _ in reasons}
            code: ReasonCode
            if imprecise and codes <= {"geocode_imprecise", "no_usable_address", "not_geocoded"}:
                code = "geocode_imprecise"  # a confirmed point is what would get the visit planned
            else:
                code = codes.pop() if len(codes) == 1 else "no_usable_address"
            details: dict[str, Any] = {}
            if code == "geocode_imprecise":
                details = {"min_precision": min_precision, "addresses": imprecise}
            unassigned.append(Unassigned(visit_id=visit.id, code=code,
                                         reason="; ".join(t for _, t in reasons), details=details))
            continue
        visit_nodes[vi] = alternatives
        penalties[vi] = drop_penalty(visit.priority, visit.is_hard)
    report("geocoding", 1.0)

    # -- travel matrices, one per mode in use ------------------------------ #
    report("matrix", 0.0)
    t0 = time.perf_counter()
    modes = sorted({v.mode for v in vehicles})
    matrices: dict[str, TravelMatrix] = {}
    for k, mode in enumerate(modes):
        matrices[mode] = travel.matrix(pts.points, mode)
        report("matrix", (k + 1) / len(modes))
    matrix_seconds = time.perf_counter() - t0
    _flag_off_road(travel, pts, modes, flags)

    horizon = max(v.shift[1] for v in vehicles)
    data = RoutingData(
        problem=problem,
        points=pts.points,
        nodes=nodes,
        vehicles=vehicles,
        matrices=matrices,
        visit_nodes=visit_nodes,
        penalties=penalties,
        horizon=horizon,
        unassigned=unassigned,
        warnings=warnings,
        flags=flags,
        matrix_seconds=matrix_seconds,
    )
    _screen_reachability(data)
    _compact(data)
    return data


def _flag_off_road(travel: TravelModel, pts: _Points, modes: Sequence[str], flags: list[PlanFlag]) -> None:
    """Flag points too far from any street for the travel model (they are
    priced in a straight line)."""
    snap = getattr(travel, "snap", None)
    if snap is None or not pts.points:
        return
    for mode in modes:
        for index, result in enumerate(snap(pts.points, mode)):
            if getattr(result, "snapped", True):
                continue
            for visit_id, agent_id, address_index in pts.owners.get(index, []):
                flags.append(PlanFlag(
                    code="off_road", visit_id=visit_id, agent_id=agent_id, address_index=address_index,
                    message=(f"{result.distance_m:.0f} m from the nearest {mode} street: "
                             "travel priced in a straight line"),
                    details={"distance_m": round(result.distance_m), "mode": mode},
                ))
        break  # one mode is enough to say the point is off the map


def _compact(data: RoutingData) -> None:
    """Keep only crew terminals and the visit alternatives still in play."""
    keep = [n for n, node in enumerate(data.nodes) if node.kind != "visit"]
    keep += [n for nodes in data.visit_nodes.values() for n in nodes]
    keep.sort()
    new_index = {old: new for new, old in enumerate(keep)}
    data.nodes = [data.nodes[n] for n in keep]
    data.visit_nodes = {vi: [new_index[n] for n in nodes] for vi, nodes in data.visit_nodes.items()}
    for veh in data.vehicles:
        veh.start_node = new_index[veh.start_node]
        veh.end_node = new_index[veh.end_node]


def _screen_reachability(data: RoutingData) -> None:
    """Drop alternatives no eligible crew can reach in time, with the reason.

    A crew can reach a node in time when leaving at shift start it arrives
    before the node's last window closes, and after the visit it can still
    reach its end place before the shift ends.
    """
    problem = data.problem
    for vi in list(data.visit_nodes):
        kept: list[int] = []
        unreachable = late = 0
        for n in data.visit_nodes[vi]:
            node = data.nodes[n]
            crews = node.vehicles or range(len(data.vehicles))
            ok = False
            for c in crews:
                veh = data.vehicles[c]
                matrix = data.matrices[veh.mode]
                s = data.nodes[veh.start_node].point
                assert s is not None and node.point is not None  # starts and visits have a place
                if not matrix.is_reachable(s, node.point):
                    unreachable += 1
                    continue
                e = data.nodes[veh.end_node].point
                if e is not None and not matrix.is_reachable(node.point, e):
                    unreachable += 1
                    continue
                arrive = veh.shift[0] + data.travel_s(veh.mode, veh.start_node, n)
                back = data.travel_s(veh.mode, n, veh.end_node) + node.service_s
                if any(max(arrive, lo) <= hi and max(arrive, lo) + back <= veh.shift[1]
                       for lo, hi in node.windows):
                    ok = True
                    break
                late += 1
            if ok:
                kept.append(n)
        if kept:
            data.visit_nodes[vi] = kept
            continue
        visit = problem.visits[vi]
        del data.visit_nodes[vi]
        del data.penalties[vi]
        if unreachable and not late:
            data.unassigned.append(Unassigned(
                visit_id=visit.id, code="unreachable",
                reason="no road connects any eligible crew's start or end to the address"))
        else:
            data.unassigned.append(Unassigned(
                visit_id=visit.id, code="window_unreachable",
                reason="no eligible crew can reach the address inside its time window and still end its shift on time"))
