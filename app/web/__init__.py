"""Web pages for dispatchers and agents (``/web``), and the JSON they need
beyond the v1 API.

The pages are static HTML + vanilla JavaScript + SVG: no CDN, no map tiles,
nothing from the internet (a Content-Security-Policy of ``'self'`` enforces
it). They call the v1 API with the bearer token the user pastes (kept in
``sessionStorage``), plus a few page helpers under ``/web/api`` that are not
part of the v1 contract:

``GET /web/api/me``
    who the token is (role and, for an agent, its crew);
``GET /web/api/network.geojson[?tolerance_m=]``
    the street lines of the road network in use, simplified, as the map's
    background (© OpenStreetMap contributors);
``GET /web/api/days/<date>[?version=N]``
    everything the dispatcher page draws for one plan version: the plan, its
    problem, the route geometry, the recorded outcomes, and what changed
    against the version before;
``POST /web/api/problem-from-csv``
    a Problem from ``visits.csv`` and ``agents.csv`` text (the columns of
    ``doorstep plan``; see ``docs/api.md``);
``GET /web/api/demo-day[?seed=&visits=&crews=]``
    a generated demo day on the bundled map (:func:`solver.demo.generate_day`).

See ``docs/web.md``.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
import threading
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, redirect, render_template, request, url_for

from app.api.agents import may_see_borrower
from app.api.common import json_object_body, parse_date, query_int, services
from app.api.render import plan_geojson
from app.auth import principal, roles
from app.confirmations import slot_state
from app.errors import ApiError, bad_request, not_found
from solver.model import Plan, Problem

bp = Blueprint("web", __name__, url_prefix="/web", static_folder="static", template_folder="templates")

#: Everything the pages load comes from this server: no CDN, no tiles.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

#: Street lines are simplified to within this many metres by default.
DEFAULT_TOLERANCE_M = 4.0
MAX_TOLERANCE_M = 100.0
#: Coordinates are rounded to this many decimals (1e-6 degrees is about 0.1 m).
COORD_DECIMALS = 6

ATTRIBUTION = "© OpenStreetMap contributors, ODbL 1.0"

#: Demo days the page can generate (kept small: it is a demo).
DEMO_MAX_VISITS = 300
DEMO_MAX_CREWS = 30

# --------------------------------------------------------------------------- #
# Pages
# --------------------------------------------------------------------------- #
def _asset_version() -> str:
    """A short hash of the static files, so browsers reload them after a change."""
    folder = Path(bp.static_folder or "")
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*")):
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_mtime_ns}:{stat.st_size}".encode())
    return digest.hexdigest()[:10]


def _page(template: str) -> Response:
    from solver.rules import NO_RULES, available_rule_sets, default_rule_set

    html = render_template(template, asset_version=_asset_version(), rule_sets=available_rule_sets(),
                           default_rule_set=default_rule_set(), no_rules=NO_RULES)
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/")
@bp.get("/dispatcher")
def dispatcher_page() -> Response:
    """The dispatcher's page: input, plan, map, timeline, figures, re-plan."""
    return _page("dispatcher.html")


@bp.get("/agent")
def agent_page() -> Response:
    """The agent's page (phone width): today's itinerary and outcomes."""
    return _page("agent.html")


@bp.get("/agent/")
def agent_page_slash() -> Any:
    return redirect(url_for("web.agent_page"))


@bp.after_request
def _static_headers(response: Response) -> Response:
    if request.endpoint == "web.static":
        response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# --------------------------------------------------------------------------- #
# Who am I
# --------------------------------------------------------------------------- #
@bp.get("/api/me")
@roles("dispatcher", "agent", "system")
def me() -> Response:
    """The caller's role (and crew, for an agent token)."""
    who = principal()
    return jsonify({"role": who.role, "agent_id": who.agent_id, "label": who.label,
                    "sees_borrower": may_see_borrower(who)})


# --------------------------------------------------------------------------- #
# Street network as GeoJSON
# --------------------------------------------------------------------------- #
#: (network fingerprint, tolerance) -> (ETag, body)
_NETWORK_CACHE: dict[tuple[str, str, float], tuple[str, bytes]] = {}
_NETWORK_LOCK = threading.Lock()


def _highway_class(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    text = str(value or "road")
    return text.removesuffix("_link")


def network_in_use() -> tuple[Any, str]:
    """The road network the app plans on, and where it came from (loaded on
    first use: the map views are the only part of the web process that loads
    it; see :mod:`app.maps`).

    With a straight-line travel model (tests, ``--travel straight``) the
    background is still the bundled map: the demo days lie on it."""
    from app.maps import map_network

    return map_network(services().travel)


def street_lines(network: Any, tolerance_m: float = DEFAULT_TOLERANCE_M) -> list[dict[str, Any]]:
    """One GeoJSON LineString feature per street piece of ``network`` (a
    :class:`solver.geo.network.RoadNetwork`): both directions of a street drawn
    once, the OSM geometry kept, simplified to ``tolerance_m`` metres
    (Douglas–Peucker in a local metric projection)."""
    import shapely

    lat0 = float(network.lats.mean())
    kx = 111_320.0 * math.cos(math.radians(lat0))  # metres per degree of longitude here
    ky = 110_574.0  # metres per degree of latitude
    seen: set[tuple[int, int, int]] = set()
    features: list[dict[str, Any]] = []
    for edge in network.street_edges():
        u, v = edge.tail, edge.head
        key = (min(u, v), max(u, v), round(edge.length_m))
        if key in seen:
            continue
        seen.add(key)
        coords = list(edge.coords)
        if tolerance_m > 0 and len(coords) > 2:
            metric = shapely.LineString([(x * kx, y * ky) for x, y in coords])
            simple = shapely.simplify(metric, tolerance_m, preserve_topology=False)
            inner = [(x / kx, y / ky) for x, y in list(simple.coords)[1:-1]]
            coords = [coords[0], *inner, coords[-1]]  # the ends exactly as in the network
        line = [[round(x, COORD_DECIMALS), round(y, COORD_DECIMALS)] for x, y in coords]
        if len(line) < 2 or all(p == line[0] for p in line):
            continue
        properties: dict[str, Any] = {"class": _highway_class(edge.highway)}
        if edge.name:
            properties["name"] = edge.name
        features.append({"type": "Feature", "geometry": {"type": "LineString", "coordinates": line},
                         "properties": properties})
    return features


def network_geojson(network: Any, source: str, tolerance_m: float) -> dict[str, Any]:
    south, west, north, east = network.bounds
    return {
        "type": "FeatureCollection",
        "bbox": [west, south, east, north],
        "source": source,
        "tolerance_m": tolerance_m,
        "attribution": ATTRIBUTION,
        "features": street_lines(network, tolerance_m),
    }


@bp.get("/api/network.geojson")
@roles("dispatcher", "agent", "system")
def network() -> Response:
    """The street lines of the network in use, simplified, as GeoJSON
    (``bbox`` is ``[west, south, east, north]``)."""
    raw = request.args.get("tolerance_m")
    tolerance = DEFAULT_TOLERANCE_M
    if raw is not None:
        try:
            tolerance = float(raw)
        except ValueError:
            raise bad_request("tolerance_m", f"{raw[:40]!r} is not a number of metres") from None
        if not math.isfinite(tolerance) or not 0 <= tolerance <= MAX_TOLERANCE_M:
            raise bad_request("tolerance_m", f"from 0 to {MAX_TOLERANCE_M:g} metres")
    net, source = network_in_use()
    # the source is in the document: two apps of one process (a straight-line one drawing the
    # bundled map as a background, one planning on it) share the network, not the document
    key = (getattr(net, "network_id", None) or str(id(net)), source, tolerance)
    with _NETWORK_LOCK:
        cached = _NETWORK_CACHE.get(key)
    if cached is None:
        body = json.dumps(network_geojson(net, source, tolerance), ensure_ascii=False, separators=(",", ":"))
        data = body.encode("utf-8")
        cached = (hashlib.sha256(data).hexdigest()[:20], data)
        with _NETWORK_LOCK:
            _NETWORK_CACHE[key] = cached
    etag, data = cached
    if request.if_none_match.contains(etag):
        return Response(status=304, headers={"ETag": f'"{etag}"'})
    response = Response(data, mimetype="application/geo+json")
    response.set_etag(etag)
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


# --------------------------------------------------------------------------- #
# A plan version with everything the dispatcher page draws
# --------------------------------------------------------------------------- #
def _leg_paths() -> Any:
    """Street geometry of a leg when the travel model is a road network (loaded
    for this map view if need be), else None."""
    from app.maps import leg_paths

    return leg_paths(services().travel, load=True)


def _stops(plan: Plan) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for route in plan.routes:
        for sequence, stop in enumerate(route.stops, start=1):
            out[stop.visit_id] = {
                "agent_id": route.agent_id,
                "sequence": sequence,
                "slot": None if stop.slot is None else [stop.slot.start.isoformat(), stop.slot.end.isoformat()],
                "start": stop.start.isoformat(),
            }
    return out


def _lcs(a: list[str], b: list[str]) -> set[str]:
    """The items of a longest common subsequence of ``a`` and ``b``."""
    n, m = len(a), len(b)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            table[i][j] = table[i + 1][j + 1] + 1 if a[i] == b[j] else max(table[i + 1][j], table[i][j + 1])
    kept: set[str] = set()
    i = j = 0
    while i < n and j < m:
        if a[i] == b[j]:
            kept.add(a[i])
            i, j = i + 1, j + 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return kept


def plan_changes(before: Plan, after: Plan, after_problem: Problem) -> list[dict[str, Any]]:
    """What moved from ``before`` to ``after`` (both plans of one date), one
    item per visit whose situation changed:

    ``kinds`` holds ``crew`` (another crew makes it), ``order`` (same crew, out
    of the order it had: not in the longest common subsequence of the crew's
    two orders), ``slot`` (its promised slot changed), ``added`` (new in the
    day), ``planned`` (was unassigned, now planned), ``dropped`` (was planned,
    now unassigned) or ``closed`` (left the day: done, under way or cancelled).
    ``before`` / ``after`` give the crew, the stop number and the slot."""
    old, new = _stops(before), _stops(after)
    old_unassigned = {u.visit_id for u in before.unassigned}
    new_unassigned = {u.visit_id: u for u in after.unassigned}
    in_day = {v.id for v in after_problem.visits}

    def order(stops: dict[str, dict[str, Any]], agent: str, among: dict[str, dict[str, Any]]) -> list[str]:
        items = [(s["sequence"], vid) for vid, s in stops.items() if s["agent_id"] == agent
                 and vid in among and among[vid]["agent_id"] == agent]
        return [vid for _, vid in sorted(items)]

    in_order: set[str] = set()
    for agent in {s["agent_id"] for s in old.values()}:
        in_order |= _lcs(order(old, agent, new), order(new, agent, old))

    changes: list[dict[str, Any]] = []
    for vid in list(old) + [v for v in new if v not in old]:
        was, now = old.get(vid), new.get(vid)
        kinds: list[str] = []
        reason = None
        if was and now:
            if was["agent_id"] != now["agent_id"]:
                kinds.append("crew")
            elif vid not in in_order:
                kinds.append("order")
            if was["slot"] != now["slot"]:
                kinds.append("slot")
        elif was:
            if vid in new_unassigned:
                kinds.append("dropped")
                reason = new_unassigned[vid].reason
            elif vid not in in_day:
                kinds.append("closed")
            else:
                kinds.append("dropped")
        elif now:
            kinds.append("planned" if vid in old_unassigned else "added")
        if kinds:
            changes.append({"visit_id": vid, "kinds": kinds, "before": was, "after": now, "reason": reason})
    for vid, item in new_unassigned.items():
        if vid not in old and vid not in old_unassigned:
            changes.append({"visit_id": vid, "kinds": ["added", "dropped"], "before": None, "after": None,
                            "reason": item.reason})
    return changes


def _load_version(date: str, version: int | None) -> tuple[Any, Plan, Problem]:
    store = services().store
    stored = store.get_plan(date, version)
    if stored is None:
        what = f"version {version} of the plan" if version is not None else "a plan"
        raise not_found(f"no {what} for {date}")
    problem_json = store.get_problem(date, stored.version)
    if problem_json is None:
        raise not_found(f"no problem stored for {date} version {stored.version}")
    return stored, Plan.model_validate_json(stored.plan_json), Problem.model_validate_json(problem_json)


@bp.get("/api/days/<date>")
@roles("dispatcher", "system")
def day(date: str) -> Response:
    """One plan version (the current one unless ``?version=N``) with its
    problem, route geometry (GeoJSON, streets when the road network is the
    travel model), recorded outcomes and the changes against the version
    before it."""
    date = parse_date(date)
    version = query_int("version")
    store = services().store
    stored, plan, problem = _load_version(date, version)
    versions = store.list_versions(date)
    changes: dict[str, Any] | None = None
    if stored.version > 1:
        previous = store.get_plan(date, stored.version - 1)
        if previous is not None:
            before = Plan.model_validate_json(previous.plan_json)
            changes = {"against": previous.version, "reason": stored.meta.get("reason", "plan"),
                       "items": plan_changes(before, plan, problem)}
    problem_json = problem.model_dump(mode="json", exclude_none=True)
    if not may_see_borrower(principal()):
        for visit in problem_json.get("visits", []):
            visit.pop("borrower", None)
    from app.api.amounts import redact_visits

    redact_visits(problem_json.get("visits", []))  # case amounts as the role allows (config/cases.toml)
    states: dict[str, dict[str, Any]] = {}
    for visit in problem.visits:
        state = store.get_visit_state(date, visit.id)
        if state.status is not None:
            states[visit.id] = {"status": state.status, "result": state.result, "agent_id": state.agent_id}
    # the borrower's answer to each planned stop's slot (app.confirmations)
    confirmations = {s.visit_id: slot_state(store, date, s.visit_id) for r in plan.routes for s in r.stops}
    closed = stored.meta.get("closed") or {}
    return jsonify({
        "date": date,
        "version": stored.version,
        "current_version": versions[-1].version if versions else stored.version,
        "created_at": stored.created_at,
        "reason": stored.meta.get("reason", "plan"),
        "versions": [{"version": v.version, "reason": v.meta.get("reason", "plan"), "created_at": v.created_at}
                     for v in versions],
        "plan": json.loads(stored.plan_json),
        "problem": problem_json,
        "geojson": plan_geojson(problem, plan, _leg_paths()),
        "states": states,
        "confirmations": {k: v for k, v in confirmations.items() if v is not None},
        "closed": closed,
        "changes": changes,
    })


# --------------------------------------------------------------------------- #
# Input helpers: CSV → Problem, demo day
# --------------------------------------------------------------------------- #
@bp.post("/api/problem-from-csv")
@roles("dispatcher", "system")
def problem_from_csv() -> Any:
    """A Problem from CSV text: ``{"visits_csv", "agents_csv", "date",
    "timezone"?, "time_limit_s"?, "rule_set"?}`` (columns as for ``doorstep
    plan``; the problem carries the rule set in force, the default one when
    neither the body nor the ``rule_set`` column names one). Errors
    name the file, the line and the column (422)."""
    from app.inputs import InputError, load_problem

    body = json_object_body()
    errors = []
    for name in ("visits_csv", "agents_csv"):
        if not isinstance(body.get(name), str) or not body[name].strip():
            errors.append({"field": name, "message": "required: the CSV text with its header row"})
    date = body.get("date")
    if not isinstance(date, str) or not date:
        errors.append({"field": "date", "message": "required, as YYYY-MM-DD"})
    if errors:
        raise ApiError(422, "validation_error", f"{len(errors)} validation error(s)", errors=errors)
    date = parse_date(date)
    time_limit = body.get("time_limit_s")
    if time_limit is not None and (not isinstance(time_limit, (int, float)) or isinstance(time_limit, bool)):
        raise ApiError(422, "validation_error", "1 validation error(s)",
                       errors=[{"field": "time_limit_s", "message": "a number of seconds"}])
    timezone = body.get("timezone") if isinstance(body.get("timezone"), str) else None
    rule_set = body.get("rule_set")
    if rule_set is not None and (not isinstance(rule_set, str) or not rule_set):
        raise ApiError(422, "validation_error", "1 validation error(s)",
                       errors=[{"field": "rule_set", "message": 'a rule set name, or "none" for no rules'}])
    with tempfile.TemporaryDirectory(prefix="doorstep-web-") as folder:
        paths = [Path(folder) / "visits.csv", Path(folder) / "agents.csv"]
        paths[0].write_text(body["visits_csv"], encoding="utf-8")
        paths[1].write_text(body["agents_csv"], encoding="utf-8")
        try:
            problem = load_problem(paths, date=date, timezone=timezone, time_limit_s=time_limit,
                                   rule_set=rule_set)
        except InputError as exc:
            lines = [line for line in str(exc).splitlines() if line.strip()]
            raise ApiError(422, "validation_error", f"{len(lines)} error(s) in the CSV files",
                           errors=[{"field": "csv", "message": line} for line in lines]) from None
    return jsonify(problem.model_dump(mode="json", exclude_none=True))


@bp.get("/api/demo-day")
@roles("dispatcher")
def demo_day() -> Any:
    """A generated demo day on the bundled map (``seed``, ``visits``, ``crews``, ``date``)."""
    import datetime as dt

    from solver.demo import generate_day

    seed = query_int("seed", minimum=0) or 0
    visits = query_int("visits", minimum=0)
    crews = query_int("crews", minimum=1) or 3
    visits = 12 if visits is None else visits
    if visits > DEMO_MAX_VISITS:
        raise bad_request("visits", f"at most {DEMO_MAX_VISITS}")
    if crews > DEMO_MAX_CREWS:
        raise bad_request("crews", f"at most {DEMO_MAX_CREWS}")
    date = request.args.get("date")
    day_date = dt.date.fromisoformat(parse_date(date)) if date else None
    problem = generate_day(seed=seed, visits=visits, crews=crews, date=day_date)
    payload = problem.model_dump(mode="json", exclude_none=True)
    payload["options"]["time_limit_s"] = float(current_app.config.get("WEB_DEMO_TIME_LIMIT_S", 5))
    return jsonify(payload)
