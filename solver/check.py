"""Independent checking of a :class:`~solver.model.Plan` against its :class:`~solver.model.Problem`.

:func:`check_plan` re-derives every rule a plan must respect from the problem,
the plan and a travel model, without using the engine: coverage of the
visits, addresses and locations, travel legs, the timeline of every route
(travel, waiting, breaks, service), time windows and booked appointments,
breaks, crew rules (skills, crew size, pinning, visit count, capacity, working
span), hard visits, and the plan's summary figures. It is meant for tests,
for benchmarks and as a guard before a plan is published.

Example::

    report = check_plan(problem, plan, travel)
    if not report.ok:
        print(report)             # one line per violation
    report.raise_if_invalid()     # raises PlanInvalid listing every violation

Conventions
-----------
* Times are whole seconds from local midnight of the plan date
  (:meth:`Problem.seconds`); every time comparison allows
  :data:`TOLERANCE_S` second of rounding.
* Travel legs must match the travel model *exactly* (whole seconds and
  metres): the checker asks ``travel.matrix`` once per route for the points
  ``[start] + stops (+ end)`` in the route's travel mode.
* A time window constrains the service *start*: the visit may end after the
  window closes.
* A break is taken during travel or waiting, never during a visit. A planned
  break that starts between leaving one place and arriving at the next
  lengthens that leg: the arrival must be at least departure + travel +
  those breaks.

Each violation carries a stable ``code`` (see :data:`CODES`), the crew and
visit it concerns when there is one, and a message for people.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from solver.model import Agent, Clock, Location, Plan, Problem, Route, Stop, Visit
from solver.rules import RuleSet, active_rule_set, contacts_in_period, visiting_interval
from solver.travel import TravelMatrix, TravelModel

__all__ = [
    "CODES",
    "LOCATION_TOLERANCE_DEG",
    "TOLERANCE_S",
    "CheckReport",
    "PlanInvalid",
    "Violation",
    "check_plan",
]

#: Seconds of rounding allowed in every time comparison.
TOLERANCE_S = 1

#: Degrees by which a stop's location may differ from its address's location.
LOCATION_TOLERANCE_DEG = 1e-6

#: Every violation code the checker reports, with what it means.
CODES: dict[str, str] = {
    # plan as a whole
    "plan_mismatch": "the plan's date or time zone differs from the problem's",
    "visit_unknown": "a stop or unassigned entry names a visit the problem does not have",
    "visit_missing": "a visit of the problem is neither planned nor unassigned",
    "visit_duplicated": "a visit appears more than once among the stops and unassigned entries",
    "agent_unknown": "a route belongs to a crew the problem does not have",
    "agent_duplicated": "two routes belong to the same crew",
    "hard_visit_dropped": "a required visit or booked appointment is unassigned as mere lower priority",
    "imprecise_but_located": "a visit is unassigned as geocode_imprecise although every usable address "
                             "has a given location (a given point is exact)",
    "summary_mismatch": "a summary figure disagrees with the routes",
    # places
    "address_invalid": "a stop's address_index is not an index of the visit's addresses",
    "address_unusable": "a stop uses an address flagged not usable",
    "address_mismatch": "a stop's address kind or text differs from the chosen address",
    "location_mismatch": "a stop's location differs from its address's WGS-84 location",
    "terminal_mismatch": "a route's start or end location differs from the crew's start or end",
    "travel_mode_mismatch": "a route's travel mode differs from the crew's",
    # travel
    "unreachable_leg": "the travel model finds no path for a leg of the route",
    "travel_time": "a leg's travel seconds differ from the travel model",
    "travel_distance": "a leg's distance differs from the travel model",
    # timeline
    "route_before_shift": "the route leaves before the shift starts",
    "route_after_shift": "the route ends after the shift ends",
    "arrival_too_early": "an arrival is earlier than departure + travel + breaks on the way",
    "start_before_arrival": "a service starts before the crew arrives",
    "wait_mismatch": "wait_s is not service start minus arrival",
    "service_duration": "service end is not service start plus the visit's duration",
    "route_end_too_early": "the route ends before the crew can be back (last visit + travel + breaks)",
    "slack_inconsistent": "a service start lies outside [earliest_start, latest_start]",
    # windows
    "window_missed": "a service starts outside every time window of the chosen address",
    "appointment_missed": "a service starts outside the booked appointment",
    # breaks
    "break_missing": "a break of the crew is not planned",
    "break_unexpected": "a planned break matches no break of the crew",
    "break_duration": "a planned break is not as long as the crew's break",
    "break_outside_window": "a planned break does not lie inside its break window",
    "break_outside_route": "a planned break straddles the route's start or end, or lies outside the shift",
    "break_overlaps_visit": "a planned break overlaps a service",
    # crew rules
    "skill_missing": "the crew lacks a skill the visit needs",
    "crew_too_small": "the crew has fewer members than the visit needs",
    "pinned_agent": "a visit pinned to one crew is made by another",
    "max_visits": "a route has more stops than the crew's max_visits",
    "capacity": "a route's total load exceeds the crew's capacity",
    "max_work": "a route's working span exceeds the crew's max_work_min",
    "outside_legal_hours": "service starts outside the rule set's visiting hours (borrower's local time)",
    "work_contact_forbidden": "a work address is used where the rule set forbids contact at work",
    "frequency_exceeded": "the visit exceeds the rule set's visits per case per period, counting history",
}


@dataclass(frozen=True)
class Violation:
    """One broken rule.

    Attributes
    ----------
    code
        Stable identifier, a key of :data:`CODES`.
    agent_id
        The crew concerned, if any.
    visit_id
        The visit concerned, if any.
    message
        What is wrong, with the figures, for people.
    """

    code: str
    agent_id: str | None
    visit_id: str | None
    message: str

    def __str__(self) -> str:
        where = ", ".join(
            part
            for part in (
                f"agent {self.agent_id}" if self.agent_id is not None else "",
                f"visit {self.visit_id}" if self.visit_id is not None else "",
            )
            if part
        )
        return f"{self.code} ({where}): {self.message}" if where else f"{self.code}: {self.message}"


class PlanInvalid(AssertionError):
    """Raised by :meth:`CheckReport.raise_if_invalid`; lists every violation.

    An :class:`AssertionError`, so pytest shows it as a failed assertion.
    """

    def __init__(self, violations: Sequence[Violation]) -> None:
        self.violations = list(violations)
        lines = "\n".join(f"  - {v}" for v in self.violations)
        super().__init__(f"plan breaks {len(self.violations)} rule(s):\n{lines}")


@dataclass
class CheckReport:
    """The result of :func:`check_plan`.

    Attributes
    ----------
    violations
        Every broken rule, in the order found (plan-wide checks, then route
        by route, then unassigned visits and the summary).
    """

    violations: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the plan breaks no rule."""
        return not self.violations

    @property
    def codes(self) -> set[str]:
        """The distinct violation codes found."""
        return {v.code for v in self.violations}

    def of(self, code: str) -> list[Violation]:
        """The violations with ``code``."""
        return [v for v in self.violations if v.code == code]

    def raise_if_invalid(self) -> None:
        """Raise :class:`PlanInvalid` listing every violation, if there is any."""
        if self.violations:
            raise PlanInvalid(self.violations)

    def __str__(self) -> str:
        if self.ok:
            return "plan is valid"
        return "\n".join(str(v) for v in self.violations)


def check_plan(problem: Problem, plan: Plan, travel: TravelModel) -> CheckReport:
    """Check ``plan`` against every rule of ``problem``.

    Parameters
    ----------
    problem
        The validated problem the plan answers.
    plan
        The plan to check.
    travel
        The travel model the plan was made with; legs are compared to its
        matrices exactly.

    Returns
    -------
    CheckReport
        All violations found; ``report.ok`` is True when there is none.
    """
    checker = _Checker(problem, plan, travel)
    checker.run()
    return CheckReport(checker.violations)


# --------------------------------------------------------------------------- #
# Implementation
# --------------------------------------------------------------------------- #
Interval = tuple[int, int]


def _hhmm(seconds: int) -> str:
    """``seconds`` after midnight as ``HH:MM:SS`` (with a day count past 24 h)."""
    days, rest = divmod(int(seconds), 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    text = f"{h:02d}:{m:02d}:{s:02d}"
    return f"{text} (+{days}d)" if days else text


def _same_point(a: Location, b: Location) -> bool:
    return abs(a.lat - b.lat) <= LOCATION_TOLERANCE_DEG and abs(a.lon - b.lon) <= LOCATION_TOLERANCE_DEG


def _wgs84(location: Location | None) -> Location | None:
    """``location`` when it is given in WGS-84, else None (nothing to compare)."""
    return location if location is not None and location.crs == "wgs84" else None


class _Checker:
    """Runs the checks of :func:`check_plan` and collects violations."""

    def __init__(self, problem: Problem, plan: Plan, travel: TravelModel) -> None:
        self.problem = problem
        self.plan = plan
        self.travel = travel
        self.visits: dict[str, Visit] = {v.id: v for v in problem.visits}
        self.agents: dict[str, Agent] = {a.id: a for a in problem.agents}
        self.rules: RuleSet | None = active_rule_set(problem.options.rule_set)
        self.violations: list[Violation] = []

    # -- helpers ------------------------------------------------------------ #
    def add(self, code: str, message: str, *, agent: str | None = None, visit: str | None = None) -> None:
        assert code in CODES, code
        self.violations.append(Violation(code, agent, visit, message))

    def sec(self, value: Clock) -> int:
        return self.problem.seconds(value)

    # -- driver ------------------------------------------------------------- #
    def run(self) -> None:
        self.check_header()
        self.check_coverage()
        for route in self.plan.routes:
            agent = self.agents.get(route.agent_id)
            if agent is None:
                self.add("agent_unknown", f"route of unknown crew {route.agent_id!r}", agent=route.agent_id)
                continue
            self.check_route(route, agent)
        self.check_unassigned()
        self.check_summary()

    # -- plan-wide ---------------------------------------------------------- #
    def check_header(self) -> None:
        if self.plan.date != self.problem.date:
            self.add("plan_mismatch", f"plan date {self.plan.date} differs from problem date {self.problem.date}")
        if self.plan.timezone != self.problem.timezone:
            self.add(
                "plan_mismatch",
                f"plan time zone {self.plan.timezone} differs from problem time zone {self.problem.timezone}",
            )

    def check_coverage(self) -> None:
        planned = Counter(s.visit_id for r in self.plan.routes for s in r.stops)
        dropped = Counter(u.visit_id for u in self.plan.unassigned)
        for visit_id in sorted(set(planned) | set(dropped)):
            if visit_id not in self.visits:
                self.add("visit_unknown", f"visit {visit_id!r} is not in the problem", visit=visit_id)
        for visit in self.problem.visits:
            p, d = planned[visit.id], dropped[visit.id]
            if p + d == 0:
                self.add("visit_missing", "visit is neither planned nor unassigned", visit=visit.id)
            elif p + d > 1:
                self.add(
                    "visit_duplicated",
                    f"visit appears {p} time(s) among the stops and {d} time(s) among the unassigned",
                    visit=visit.id,
                )
        for agent_id, n in Counter(r.agent_id for r in self.plan.routes).items():
            if n > 1:
                self.add("agent_duplicated", f"crew has {n} routes", agent=agent_id)

    def check_unassigned(self) -> None:
        for entry in self.plan.unassigned:
            visit = self.visits.get(entry.visit_id)
            if visit is not None and entry.code == "geocode_imprecise":
                usable = [a for a in visit.addresses if a.usable]
                if usable and all(a.location is not None for a in usable):
                    self.add("imprecise_but_located",
                             "unassigned as geocode_imprecise, but every usable address has a given location",
                             visit=visit.id)
            if visit is not None and visit.is_hard and entry.code == "lower_priority":
                what = "booked appointment" if visit.appointment is not None else "required visit"
                self.add(
                    "hard_visit_dropped",
                    f"{what} is unassigned as lower priority; a hard visit is left out only when it cannot be served",
                    visit=visit.id,
                )

    def check_summary(self) -> None:
        summary = self.plan.summary
        planned_ids = {s.visit_id for r in self.plan.routes for s in r.stops}
        expected = {
            "visits_total": len(self.problem.visits),
            "visits_planned": len(planned_ids),
            "priority_total": sum(v.priority for v in self.problem.visits),
            "priority_planned": sum(self.visits[i].priority for i in planned_ids if i in self.visits),
            "travel_s": sum(r.travel_s for r in self.plan.routes),
            "distance_m": sum(r.distance_m for r in self.plan.routes),
            "crews_used": sum(1 for r in self.plan.routes if r.stops),
        }
        for name, value in expected.items():
            given = getattr(summary, name)
            if given != value:
                self.add("summary_mismatch", f"summary.{name} is {given}, the routes give {value}")

    # -- one route ---------------------------------------------------------- #
    def check_route(self, route: Route, agent: Agent) -> None:
        aid = agent.id
        if route.travel_mode != agent.travel_mode:
            self.add(
                "travel_mode_mismatch",
                f"route travels by {route.travel_mode}, the crew by {agent.travel_mode}",
                agent=aid,
            )
        self.check_terminals(route, agent)
        for stop in route.stops:
            self.check_stop_place(route, stop)
        self.check_travel(route)
        self.check_timeline(route, agent)
        if route.stops:
            self.check_breaks(route, agent)
        self.check_crew_rules(route, agent)

    def check_terminals(self, route: Route, agent: Agent) -> None:
        aid = agent.id
        start = _wgs84(agent.start.location)
        if start is not None and not _same_point(route.start_location, start):
            self.add("terminal_mismatch", "route start location is not the crew's start", agent=aid)
        if agent.open_end:
            if route.end_location is not None:
                self.add("terminal_mismatch", "crew has an open end but the route has an end location", agent=aid)
            return
        if route.end_location is None:
            self.add("terminal_mismatch", "route has no end location but the crew must return", agent=aid)
            return
        end_place = agent.end or agent.start
        end = _wgs84(end_place.location)
        if end is not None and not _same_point(route.end_location, end):
            self.add("terminal_mismatch", "route end location is not the crew's end place", agent=aid)

    def check_stop_place(self, route: Route, stop: Stop) -> None:
        visit = self.visits.get(stop.visit_id)
        if visit is None:
            return
        aid, vid = route.agent_id, visit.id
        if not 0 <= stop.address_index < len(visit.addresses):
            self.add(
                "address_invalid",
                f"address_index {stop.address_index} but the visit has {len(visit.addresses)} address(es)",
                agent=aid,
                visit=vid,
            )
            return
        address = visit.addresses[stop.address_index]
        if not address.usable:
            self.add("address_unusable", f"address {stop.address_index} is flagged not usable", agent=aid, visit=vid)
        if stop.address_kind != address.kind:
            self.add(
                "address_mismatch",
                f"stop says address kind {stop.address_kind}, address {stop.address_index} is {address.kind}",
                agent=aid,
                visit=vid,
            )
        if address.text is not None and stop.address_text is not None and stop.address_text != address.text:
            self.add("address_mismatch", "stop address text differs from the address", agent=aid, visit=vid)
        given = _wgs84(address.location)
        if given is not None and not _same_point(stop.location, given):
            self.add(
                "location_mismatch",
                f"stop at ({stop.location.lat}, {stop.location.lon}), address at ({given.lat}, {given.lon})",
                agent=aid,
                visit=vid,
            )

    def check_travel(self, route: Route) -> None:
        points = [route.start_location] + [s.location for s in route.stops]
        if route.end_location is not None:
            points.append(route.end_location)
        if len(points) < 2:
            self.check_end_leg(route, None)
            return
        matrix = self.travel.matrix(points, route.travel_mode)
        for k, stop in enumerate(route.stops):
            self.check_leg(route, matrix, k, k + 1, stop.travel_s, stop.distance_m, stop.visit_id)
        self.check_end_leg(route, matrix)

    def check_end_leg(self, route: Route, matrix: TravelMatrix | None) -> None:
        last = len(route.stops)
        if route.end_location is None or matrix is None:
            for name, value in (("end_travel_s", route.end_travel_s), ("end_distance_m", route.end_distance_m)):
                if value != 0:
                    code = "travel_time" if name == "end_travel_s" else "travel_distance"
                    self.add(code, f"{name} is {value} but the route has no end leg", agent=route.agent_id)
            return
        self.check_leg(route, matrix, last, last + 1, route.end_travel_s, route.end_distance_m, None)

    def check_leg(
        self,
        route: Route,
        matrix: TravelMatrix,
        i: int,
        j: int,
        travel_s: int,
        distance_m: int,
        visit_id: str | None,
    ) -> None:
        aid = route.agent_id
        leg = f"leg to {visit_id}" if visit_id is not None else "leg to the end place"
        if not matrix.is_reachable(i, j):
            self.add("unreachable_leg", f"{leg}: no path for {route.travel_mode}", agent=aid, visit=visit_id)
            return
        want_s, want_m = int(matrix.durations[i, j]), int(matrix.distances[i, j])
        if travel_s != want_s:
            self.add("travel_time", f"{leg}: travel_s {travel_s}, travel model {want_s}", agent=aid, visit=visit_id)
        if distance_m != want_m:
            self.add(
                "travel_distance", f"{leg}: distance_m {distance_m}, travel model {want_m}", agent=aid, visit=visit_id
            )

    def check_timeline(self, route: Route, agent: Agent) -> None:
        aid, tol = agent.id, TOLERANCE_S
        shift_lo, shift_hi = self.problem.window_seconds(agent.shift)
        r_start, r_end = self.sec(route.start), self.sec(route.end)
        if r_start < shift_lo - tol:
            self.add(
                "route_before_shift",
                f"route starts {_hhmm(r_start)}, shift starts {_hhmm(shift_lo)}",
                agent=aid,
            )
        if not route.stops:
            return
        if r_end > shift_hi + tol:
            self.add("route_after_shift", f"route ends {_hhmm(r_end)}, shift ends {_hhmm(shift_hi)}", agent=aid)
        breaks = self.planned_breaks(route)
        departure = r_start
        for stop in route.stops:
            vid = stop.visit_id
            arrival, start, end = self.sec(stop.arrival), self.sec(stop.start), self.sec(stop.end)
            on_way = _breaks_between(breaks, departure, arrival)
            need = departure + stop.travel_s + on_way
            if arrival < need - tol:
                extra = f" + {on_way} s of breaks" if on_way else ""
                self.add(
                    "arrival_too_early",
                    f"arrives {_hhmm(arrival)}, but leaving {_hhmm(departure)} with {stop.travel_s} s of travel"
                    f"{extra} it cannot be there before {_hhmm(need)}",
                    agent=aid,
                    visit=vid,
                )
            if start < arrival - tol:
                self.add(
                    "start_before_arrival",
                    f"service starts {_hhmm(start)} before arrival {_hhmm(arrival)}",
                    agent=aid,
                    visit=vid,
                )
            if abs(stop.wait_s - (start - arrival)) > tol:
                self.add(
                    "wait_mismatch", f"wait_s {stop.wait_s}, start - arrival = {start - arrival}", agent=aid, visit=vid
                )
            visit = self.visits.get(vid)
            if visit is not None:
                if abs(end - (start + visit.duration_min * 60)) > tol:
                    self.add(
                        "service_duration",
                        f"service {_hhmm(start)}–{_hhmm(end)}, the visit takes {visit.duration_min} min",
                        agent=aid,
                        visit=vid,
                    )
                self.check_windows(route, stop, visit, start)
            earliest, latest = self.sec(stop.earliest_start), self.sec(stop.latest_start)
            if not earliest - tol <= start <= latest + tol:
                self.add(
                    "slack_inconsistent",
                    f"service starts {_hhmm(start)}, outside [{_hhmm(earliest)}, {_hhmm(latest)}]",
                    agent=aid,
                    visit=vid,
                )
            departure = end
        # a break starting when the crew is back (or later) is taken there, not on the way
        on_way = _breaks_between(breaks, departure, r_end - tol)
        need = departure + route.end_travel_s + on_way
        if r_end < need - tol:
            self.add(
                "route_end_too_early",
                f"route ends {_hhmm(r_end)}, but leaving the last visit {_hhmm(departure)} with "
                f"{route.end_travel_s} s of travel and {on_way} s of breaks it cannot end before {_hhmm(need)}",
                agent=aid,
            )

    def check_windows(self, route: Route, stop: Stop, visit: Visit, start: int) -> None:
        aid, vid, tol = route.agent_id, visit.id, TOLERANCE_S
        if 0 <= stop.address_index < len(visit.addresses):
            windows = [self.problem.window_seconds(w) for w in visit.addresses[stop.address_index].time_windows]
            if windows and not any(lo - tol <= start <= hi + tol for lo, hi in windows):
                shown = ", ".join(f"{_hhmm(lo)}–{_hhmm(hi)}" for lo, hi in windows)
                self.add(
                    "window_missed",
                    f"service starts {_hhmm(start)}, outside the address's window(s) {shown}",
                    agent=aid,
                    visit=vid,
                )
        if visit.time_windows:
            windows = [self.problem.window_seconds(w) for w in visit.time_windows]
            if not any(lo - tol <= start <= hi + tol for lo, hi in windows):
                self.add("window_missed", f"service starts {_hhmm(start)}, outside the visit's own window(s)",
                         agent=aid, visit=vid)
        rules = self.rules
        if rules is not None and rules.visiting_hours is not None:
            zone = ZoneInfo(visit.timezone or self.problem.timezone)
            legal = visiting_interval(rules, self.problem.date, zone, self.problem.seconds)
            assert legal is not None  # the rule set has visiting hours
            lo, hi = legal
            if not lo - tol <= start <= hi + tol:
                self.add("outside_legal_hours", f"service starts {_hhmm(start)}, rule set {rules.name} allows "
                         f"{rules.visiting_hours.start:%H:%M}–{rules.visiting_hours.end:%H:%M} local time",
                         agent=aid, visit=vid)
        if visit.appointment is not None:
            lo, hi = self.problem.window_seconds(visit.appointment)
            if not lo - tol <= start <= hi + tol:
                self.add(
                    "appointment_missed",
                    f"service starts {_hhmm(start)}, the appointment is {_hhmm(lo)}–{_hhmm(hi)}",
                    agent=aid,
                    visit=vid,
                )

    def planned_breaks(self, route: Route) -> list[Interval]:
        return sorted((self.sec(b.start), self.sec(b.end)) for b in route.breaks)

    def expected_breaks(self, agent: Agent) -> list[tuple[Interval, int]]:
        """The crew's breaks as (window, duration seconds), by window start.

        A break whose window, clipped to the shift, is shorter than the break
        cannot be taken and is not expected (the engine warns about it).
        """
        shift_lo, shift_hi = self.problem.window_seconds(agent.shift)
        out = []
        for b in agent.breaks:
            lo, hi = self.problem.window_seconds(b.window)
            if min(hi, shift_hi) - max(lo, shift_lo) >= b.duration_min * 60:
                out.append(((lo, hi), b.duration_min * 60))
        return sorted(out)

    def check_breaks(self, route: Route, agent: Agent) -> None:
        aid, tol = agent.id, TOLERANCE_S
        planned = self.planned_breaks(route)
        expected = self.expected_breaks(agent)
        pairs = _match_breaks(planned, expected)
        matched_planned = {p for p, _ in pairs}
        matched_expected = {e for _, e in pairs}
        for e, ((lo, hi), duration) in enumerate(expected):
            if e not in matched_expected:
                self.add(
                    "break_missing",
                    f"the {duration // 60} min break in {_hhmm(lo)}–{_hhmm(hi)} is not planned",
                    agent=aid,
                )
        for p, (bs, be) in enumerate(planned):
            if p not in matched_planned:
                self.add("break_unexpected", f"break {_hhmm(bs)}–{_hhmm(be)} matches no break of the crew", agent=aid)
        for p, e in pairs:
            (bs, be), ((lo, hi), duration) = planned[p], expected[e]
            if abs((be - bs) - duration) > tol:
                self.add(
                    "break_duration",
                    f"break {_hhmm(bs)}–{_hhmm(be)} lasts {be - bs} s, the crew's break {duration} s",
                    agent=aid,
                )
            if bs < lo - tol or be > hi + tol:
                self.add(
                    "break_outside_window",
                    f"break {_hhmm(bs)}–{_hhmm(be)} is not inside its window {_hhmm(lo)}–{_hhmm(hi)}",
                    agent=aid,
                )
        # A break lies inside the route (then the legs around it make room for
        # it) or wholly before its start or after its end (the crew is off the
        # road, e.g. lunch at the branch), and always inside the shift.
        r_start, r_end = self.sec(route.start), self.sec(route.end)
        s_start, s_end = self.problem.window_seconds(agent.shift)
        for bs, be in planned:
            inside = bs >= r_start - tol and be <= r_end + tol
            before = be <= r_start + tol and bs >= s_start - tol
            after = bs >= r_end - tol and be <= s_end + tol
            if not (inside or before or after):
                self.add(
                    "break_outside_route",
                    f"break {_hhmm(bs)}–{_hhmm(be)} straddles the route {_hhmm(r_start)}–{_hhmm(r_end)} "
                    f"or lies outside the shift {_hhmm(s_start)}–{_hhmm(s_end)}",
                    agent=aid,
                )
            for stop in route.stops:
                ss, se = self.sec(stop.start), self.sec(stop.end)
                if min(be, se) - max(bs, ss) > tol:
                    self.add(
                        "break_overlaps_visit",
                        f"break {_hhmm(bs)}–{_hhmm(be)} overlaps the service {_hhmm(ss)}–{_hhmm(se)}",
                        agent=aid,
                        visit=stop.visit_id,
                    )

    def check_crew_rules(self, route: Route, agent: Agent) -> None:
        aid = agent.id
        load = 0
        for stop in route.stops:
            visit = self.visits.get(stop.visit_id)
            if visit is None:
                continue
            missing = sorted(set(visit.skills) - set(agent.skills))
            if missing:
                self.add("skill_missing", f"crew lacks skill(s) {', '.join(missing)}", agent=aid, visit=visit.id)
            need = visit.crew_size
            kind = stop.address_kind
            if self.rules is not None and kind == "home":
                need = max(need, self.rules.min_crew_size_home)
            if need > agent.crew_size:
                self.add(
                    "crew_too_small",
                    f"visit needs a crew of {need}, the crew has {agent.crew_size}",
                    agent=aid,
                    visit=visit.id,
                )
            if self.rules is not None and kind == "work" and not self.rules.work_contact:
                self.add("work_contact_forbidden", f"rule set {self.rules.name} forbids contact at work",
                         agent=aid, visit=visit.id)
            if self.rules is not None and self.rules.frequency is not None:
                limit = self.rules.frequency
                zone = ZoneInfo(visit.timezone or self.problem.timezone)
                made = contacts_in_period(self.problem.history, visit.case_key, self.problem.date,
                                          limit.period_days, zone)
                if made + 1 > limit.max_visits:
                    self.add("frequency_exceeded", f"case {visit.case_key} had {made} visit(s) in "
                             f"{limit.period_days} days; the limit is {limit.max_visits}", agent=aid, visit=visit.id)
            if visit.pinned_agent is not None and visit.pinned_agent != aid:
                self.add("pinned_agent", f"visit is pinned to crew {visit.pinned_agent}", agent=aid, visit=visit.id)
            load += visit.load
        if agent.max_visits is not None and len(route.stops) > agent.max_visits:
            self.add("max_visits", f"{len(route.stops)} stops, the crew's max_visits is {agent.max_visits}", agent=aid)
        if agent.capacity is not None and load > agent.capacity:
            self.add("capacity", f"total load {load}, the crew's capacity is {agent.capacity}", agent=aid)
        if agent.max_work_min is not None and route.stops:
            span = self.sec(route.end) - self.sec(route.start)
            if span > agent.max_work_min * 60 + TOLERANCE_S:
                self.add(
                    "max_work",
                    f"working span {span} s, the crew's max_work_min is {agent.max_work_min} min",
                    agent=aid,
                )


def _breaks_between(breaks: Iterable[Interval], departure: int, arrival: int) -> int:
    """Seconds of the planned breaks that start while the crew is on the way
    from ``departure`` to ``arrival`` (a break starting at the arrival instant
    or later is taken while waiting)."""
    return sum(be - bs for bs, be in breaks if departure - TOLERANCE_S <= bs < arrival)


def _match_breaks(planned: Sequence[Interval], expected: Sequence[tuple[Interval, int]]) -> list[tuple[int, int]]:
    """Pair planned breaks with the crew's breaks, as index pairs.

    With as many planned as expected breaks they pair in order (planned by
    start, expected by window start), so a misplaced break is reported as
    such. Otherwise each planned break, in order, takes the first unpaired
    expected break whose window it overlaps; the rest are missing or
    unexpected.
    """
    if len(planned) == len(expected):
        return list(zip(range(len(planned)), range(len(expected))))
    pairs: list[tuple[int, int]] = []
    taken: set[int] = set()
    for p, (bs, be) in enumerate(planned):
        for e, ((lo, hi), _duration) in enumerate(expected):
            if e not in taken and bs < hi and lo < be:
                pairs.append((p, e))
                taken.add(e)
                break
    return pairs
