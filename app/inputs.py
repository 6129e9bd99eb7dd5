"""Reading a day from files for ``doorstep plan``: CSV or JSON.

CSV (UTF-8, with a header row; empty cells mean "not given"):

visits.csv
    ``id`` (required), ``case_id``, ``priority`` (0–100), ``required`` (true/false),
    ``duration_min``, ``address`` (text), ``lat``, ``lon`` (WGS-84; ``crs`` column
    optional: wgs84, gcj02, bd09), ``kind`` (home, work, other), ``windows``
    ("09:00-12:00;14:00-18:00"), ``skills`` ("lang:wuu;legal"), ``crew_size``,
    ``appointment`` ("10:00-11:00"), ``borrower_name``, ``borrower_phone``,
    ``purpose``, ``pinned_agent``, ``usable`` (true/false), ``rule_set`` (the
    day's rule set, e.g. cn-cba-2026, or ``none`` for no rules: the same on
    every row that gives it; default: ``[planning] rule_set``). A visit with several
    addresses takes one row per address with the same ``id``; the visit's own
    columns are read from its first row. The case (``Visit.case``, optional):
    ``days_past_due``, ``overdue_amount``, ``currency`` (CNY), ``broken_promises``,
    ``last_contact`` (YYYY-MM-DD), ``risk_flags`` ("dispute;agitated"),
    ``recent_visits`` (field visits made: "2026-11-02;2026-11-20"); a case
    column given makes the case. ``due_by`` (YYYY-MM-DD): with several dates,
    the last date the visit may be made. ``doorstep screen`` reads the same columns
    and writes them back (:func:`write_visits_csv`).
agents.csv
    ``id`` (required), ``members`` ("A;B"), ``shift`` ("08:30-17:30"), ``break``
    ("11:30-13:30/60": window/minutes; several separated by ";"),
    ``start_address``, ``start_lat``, ``start_lon``, ``end_address``,
    ``end_lat``, ``end_lon``, ``open_end``, ``skills``, ``max_visits``,
    ``max_work_min``, ``travel_mode`` (drive, ebike, walk).

JSON: one file holding a whole problem (the ``POST /v1/plans`` body), or two
files holding the visits and the agents lists.

Errors name the file, the line and the column (or the JSON field).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from app.errors import validation_errors
from solver.model import Problem, TimeWindow, Visit

VISIT_COLUMNS = (
    "id", "case_id", "priority", "required", "duration_min", "address", "lat", "lon", "crs", "kind", "windows",
    "skills", "crew_size", "appointment", "borrower_name", "borrower_phone", "purpose", "pinned_agent", "usable",
    "rule_set",
    *("days_past_due", "overdue_amount", "currency", "broken_promises", "last_contact", "risk_flags", "recent_visits"),
    "due_by",
)
AGENT_COLUMNS = (
    "id", "members", "shift", "break", "start_address", "start_lat", "start_lon", "end_address", "end_lat",
    "end_lon", "open_end", "skills", "max_visits", "max_work_min", "travel_mode",
)


class InputError(ValueError):
    """A problem with an input file, naming where."""


def _where(path: Path, line: int, column: str | None = None) -> str:
    return f"{path.name} line {line}" + (f", column {column}" if column else "")


def _list(value: str) -> list[str]:
    return [part.strip() for part in value.split(";") if part.strip()]


def _window(value: str, where: str) -> dict[str, str]:
    start, sep, end = value.partition("-")
    if not sep or not start.strip() or not end.strip():
        raise InputError(f"{where}: {value!r} is not a window like 09:00-12:00")
    return {"start": start.strip(), "end": end.strip()}


def _bool(value: str, where: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "yes", "1", "y"):
        return True
    if lowered in ("false", "no", "0", "n"):
        return False
    raise InputError(f"{where}: {value!r} is not true or false")


def _number(value: str, where: str, kind: type = float) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise InputError(f"{where}: {value!r} is not {'an integer' if kind is int else 'a number'}") from None


def _rows(path: Path, known: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            if "id" not in header:
                raise InputError(f"{path.name}: the header has no 'id' column (columns: {', '.join(known)})")
            unknown = [c for c in header if c not in known]
            if unknown:
                raise InputError(f"{path.name}: unknown column(s) {', '.join(map(repr, unknown))}")
            rows = []
            for row in reader:
                cells = {k: (v or "").strip() for k, v in row.items() if k is not None}
                if any(cells.values()):
                    rows.append((reader.line_num, cells))
            return rows
    except UnicodeDecodeError:
        raise InputError(f"{path.name}: not UTF-8 text") from None


def _place(row: dict[str, str], prefix: str, where: Any) -> dict[str, Any] | None:
    text = row.get(f"{prefix}address", "")
    lat, lon = row.get(f"{prefix}lat", ""), row.get(f"{prefix}lon", "")
    place: dict[str, Any] = {}
    if text:
        place["text"] = text
    if lat or lon:
        if not (lat and lon):
            raise InputError(f"{where(prefix + ('lon' if lat else 'lat'))}: give both lat and lon")
        place["location"] = {"lat": _number(lat, where(prefix + "lat")), "lon": _number(lon, where(prefix + "lon"))}
        if row.get("crs"):
            place["location"]["crs"] = row["crs"]
    return place or None


def read_rule_set_csv(path: Path) -> str | None:
    """The day's rule set named in the ``rule_set`` column of a visits CSV
    (None when no row names one); every row that names one must name the same."""
    named: tuple[int, str] | None = None
    for line, row in _rows(path, VISIT_COLUMNS):
        value = (row.get("rule_set") or "").strip()
        if not value:
            continue
        if named is not None and value != named[1]:
            raise InputError(f"{_where(path, line, 'rule_set')}: {value!r} differs from {named[1]!r} "
                             f"(line {named[0]}): a day has one rule set")
        named = named or (line, value)
    return None if named is None else named[1]


def read_visits_csv(path: Path) -> tuple[list[dict[str, Any]], dict[int, int]]:
    """Visits (as JSON-able dicts) and, per visit index, the line of its first row."""
    visits: dict[str, dict[str, Any]] = {}
    lines: dict[int, int] = {}
    for line, row in _rows(path, VISIT_COLUMNS):
        def where(column: str, line: int = line) -> str:
            return _where(path, line, column)

        vid = row.get("id", "")
        if not vid:
            raise InputError(f"{where('id')}: required")
        address: dict[str, Any] = _place(row, "", where) or {}
        if not address:
            raise InputError(f"{where('address')}: give an address, lat/lon, or both")
        if row.get("kind"):
            address["kind"] = row["kind"]
        if row.get("windows"):
            address["time_windows"] = [_window(w, where("windows")) for w in _list(row["windows"])]
        if row.get("usable"):
            address["usable"] = _bool(row["usable"], where("usable"))
        if vid in visits:
            visits[vid]["addresses"].append(address)
            continue
        visit: dict[str, Any] = {"id": vid, "addresses": [address]}
        for column in ("case_id", "purpose", "pinned_agent"):
            if row.get(column):
                visit[column] = row[column]
        for column in ("priority", "duration_min", "crew_size"):
            if row.get(column):
                visit[column] = _number(row[column], where(column), int)
        if row.get("required"):
            visit["required"] = _bool(row["required"], where("required"))
        if row.get("skills"):
            visit["skills"] = _list(row["skills"])
        if row.get("appointment"):
            visit["appointment"] = _window(row["appointment"], where("appointment"))
        if row.get("borrower_name") or row.get("borrower_phone"):
            visit["borrower"] = {"name": row.get("borrower_name") or None, "phone": row.get("borrower_phone") or None}
        case = _case(row, where)
        if case is not None:
            visit["case"] = case
        if row.get("due_by"):  # several dates (doorstep plan --dates): made on or before this date
            visit["due_by"] = row["due_by"]
        lines[len(visits)] = line
        visits[vid] = visit
    return list(visits.values()), lines


def read_agents_csv(path: Path) -> tuple[list[dict[str, Any]], dict[int, int]]:
    agents: list[dict[str, Any]] = []
    lines: dict[int, int] = {}
    for line, row in _rows(path, AGENT_COLUMNS):
        def where(column: str, line: int = line) -> str:
            return _where(path, line, column)

        if not row.get("id"):
            raise InputError(f"{where('id')}: required")
        if not row.get("shift"):
            raise InputError(f"{where('shift')}: required, like 08:30-17:30")
        start = _place(row, "start_", where)
        if start is None:
            raise InputError(f"{where('start_address')}: give a start address, start_lat/start_lon, or both")
        agent: dict[str, Any] = {"id": row["id"], "shift": _window(row["shift"], where("shift")), "start": start}
        end = _place(row, "end_", where)
        if end is not None:
            agent["end"] = end
        if row.get("members"):
            agent["members"] = _list(row["members"])
        if row.get("skills"):
            agent["skills"] = _list(row["skills"])
        if row.get("travel_mode"):
            agent["travel_mode"] = row["travel_mode"]
        if row.get("open_end"):
            agent["open_end"] = _bool(row["open_end"], where("open_end"))
        for column in ("max_visits", "max_work_min"):
            if row.get(column):
                agent[column] = _number(row[column], where(column), int)
        if row.get("break"):
            breaks = []
            for item in _list(row["break"]):
                window, sep, minutes = item.partition("/")
                if not sep:
                    raise InputError(f"{where('break')}: {item!r} is not like 11:30-13:30/60")
                breaks.append({"window": _window(window, where("break")),
                               "duration_min": _number(minutes.strip(), where("break"), int)})
            agent["breaks"] = breaks
        lines[len(agents)] = line
        agents.append(agent)
    return agents, lines


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path.name}: not valid JSON ({exc})") from None


def load_problem(
    paths: list[Path],
    *,
    date: str | None = None,
    timezone: str | None = None,
    time_limit_s: float | None = None,
    rule_set: str | None = None,
) -> Problem:
    """The problem in ``paths``: one JSON problem, or visits and agents as CSV or JSON lists.

    ``rule_set`` (``--rule-set``) overrides the rule set the files name (the
    ``rule_set`` column of visits.csv, or ``options.rule_set``); when none is
    named, ``[planning] rule_set`` applies (only ``"none"`` turns rules off)."""
    lines: dict[str, tuple[Path, dict[int, int]]] = {}
    if len(paths) == 1:
        if paths[0].suffix.lower() != ".json":
            raise InputError("give one JSON problem, or the visits and the agents files")
        data = _read_json(paths[0])
        if not isinstance(data, dict):
            raise InputError(f"{paths[0].name}: a problem is a JSON object")
    elif len(paths) == 2:
        data = {}
        for path, key, reader in ((paths[0], "visits", read_visits_csv), (paths[1], "agents", read_agents_csv)):
            if path.suffix.lower() == ".json":
                items = _read_json(path)
                if isinstance(items, dict) and key in items:
                    items = items[key]
                if not isinstance(items, list):
                    raise InputError(f"{path.name}: expected a JSON list of {key}")
                data[key] = items
            else:
                data[key], where = reader(path)
                lines[key] = (path, where)
                named = read_rule_set_csv(path) if key == "visits" else None
                if named is not None:
                    data.setdefault("options", {})["rule_set"] = named
    else:
        raise InputError("give one JSON problem, or the visits and the agents files")
    if date is not None:
        data["date"] = date
    if "date" not in data:
        raise InputError("--date is required (the files do not give the date)")
    if timezone is not None:
        data["timezone"] = timezone
    if time_limit_s is not None:
        data.setdefault("options", {})["time_limit_s"] = time_limit_s
    if rule_set is not None:
        if not isinstance(data.get("options", {}), dict):
            raise InputError("options: a JSON object")
        data.setdefault("options", {})["rule_set"] = rule_set
    try:
        return Problem.model_validate(data)
    except ValidationError as exc:
        messages = []
        for error in validation_errors(exc):
            field = error["field"]
            head, _, rest = field.partition(".")
            index, _, sub = rest.partition(".")
            if head in lines and index.isdigit() and int(index) in lines[head][1]:
                path, where = lines[head]
                messages.append(f"{path.name} line {where[int(index)]}" + (f" ({sub})" if sub else "")
                                + f": {error['message']}")
            else:
                messages.append(f"{field}: {error['message']}")
        raise InputError("\n".join(messages)) from None


# --------------------------------------------------------------------------- #
# Case columns (issue 15) and writing visits back
# --------------------------------------------------------------------------- #
#: Columns of the case (``Visit.case``) in visits.csv.
CASE_COLUMNS = ("days_past_due", "overdue_amount", "currency", "broken_promises", "last_contact", "risk_flags",
                "recent_visits")


def _case(row: dict[str, str], where: Any) -> dict[str, Any] | None:
    """The case of a visits.csv row, or None when no case column is given."""
    if not any(row.get(column) for column in CASE_COLUMNS):
        return None
    case: dict[str, Any] = {}
    for column in ("days_past_due", "broken_promises"):
        if row.get(column):
            case[column] = _number(row[column], where(column), int)
    if row.get("overdue_amount"):
        case["overdue_amount"] = _number(row["overdue_amount"], where("overdue_amount"))
    for column in ("currency", "last_contact"):
        if row.get(column):
            case[column] = row[column]
    for column in ("risk_flags", "recent_visits"):
        if row.get(column):
            case[column] = _list(row[column])
    return case


def load_visits(path: Path) -> list[Visit]:
    """Visits from a visits.csv (with case columns) or a JSON list of visits
    (or an object with ``visits``); errors name the file and line or field."""
    if path.suffix.lower() == ".json":
        items = _read_json(path)
        if isinstance(items, dict) and "visits" in items:
            items = items["visits"]
        if not isinstance(items, list):
            raise InputError(f"{path.name}: expected a JSON list of visits")
        lines: dict[int, int] = {}
    else:
        items, lines = read_visits_csv(path)
    visits: list[Visit] = []
    messages: list[str] = []
    for index, item in enumerate(items):
        try:
            visits.append(Visit.model_validate(item))
        except ValidationError as exc:
            where = f"{path.name} line {lines[index]}" if index in lines else f"{path.name} visits.{index}"
            messages.extend(f"{where} ({e['field']}): {e['message']}" if e["field"] else f"{where}: {e['message']}"
                            for e in validation_errors(exc))
    if messages:
        raise InputError("\n".join(messages))
    return visits


def _hhmm(value: Any, where: str) -> str:
    if not isinstance(value, dt.time):
        raise InputError(f"{where}: a window given as datetimes cannot be written to CSV; write JSON")
    return value.strftime("%H:%M")


def _windows(windows: list[TimeWindow], where: str) -> str:
    return ";".join(f"{_hhmm(w.start, where)}-{_hhmm(w.end, where)}" for w in windows)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def visit_rows(visits: list[Visit]) -> list[dict[str, str]]:
    """visits.csv rows (one per address) of visits; InputError for what CSV
    cannot hold (windows of the visit itself, windows given as datetimes)."""
    rows = []
    for visit in visits:
        if visit.time_windows:
            raise InputError(f"visit {visit.id}: windows of the visit itself cannot be written to CSV; write JSON")
        for index, address in enumerate(visit.addresses):
            row = dict.fromkeys(VISIT_COLUMNS, "")
            row.update({"id": visit.id, "address": address.text or "", "kind": address.kind,
                        "windows": _windows(address.time_windows, f"visit {visit.id} address {index}"),
                        "usable": "" if address.usable else "false"})
            if address.location is not None:
                row.update({"lat": _cell(address.location.lat), "lon": _cell(address.location.lon),
                            "crs": "" if address.location.crs == "wgs84" else address.location.crs})
            if index == 0:
                row.update({
                    "case_id": visit.case_id or "", "priority": str(visit.priority),
                    "required": _cell(visit.required), "duration_min": str(visit.duration_min),
                    "skills": ";".join(visit.skills), "crew_size": str(visit.crew_size),
                    "appointment": "" if visit.appointment is None else
                    _windows([visit.appointment], f"visit {visit.id} appointment"),
                    "borrower_name": (visit.borrower.name or "") if visit.borrower else "",
                    "borrower_phone": (visit.borrower.phone or "") if visit.borrower else "",
                    "purpose": visit.purpose or "", "pinned_agent": visit.pinned_agent or "",
                })
                if visit.case is not None:
                    case = visit.case
                    row.update({
                        "days_past_due": str(case.days_past_due), "overdue_amount": _cell(case.overdue_amount),
                        "currency": case.currency or "", "broken_promises": str(case.broken_promises),
                        "last_contact": _cell(case.last_contact), "risk_flags": ";".join(case.risk_flags),
                        "recent_visits": ";".join(d.isoformat() for d in case.recent_visits),
                    })
                row["due_by"] = _cell(visit.due_by)
            rows.append(row)
    return rows


def write_visits_csv(visits: list[Visit], path: Path) -> None:
    """Write visits as visits.csv (the columns :func:`read_visits_csv` reads),
    or as a JSON list when ``path`` ends in ``.json``."""
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps([v.model_dump(mode="json", exclude_none=True) for v in visits],
                                   ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        return
    rows = visit_rows(visits)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(VISIT_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
