"""A deterministic, realistic collections day on the bundled demo city.

:func:`generate_day` builds a :class:`~solver.model.Problem` for central
Shanghai (Huangpu; the OSM extract of :func:`solver.config.bundled_map_path`):
borrowers with home and work addresses on real streets, overdue accounts
screened into visits with a priority, booked appointments and required
visits, and two-person crews working from two or three branch offices.

Example::

    problem = generate_day(seed=0, visits=80, crews=10)
    write_problem_json(problem, "day.json")

Everything random is drawn from one ``random.Random(seed)``: the same
arguments give the same problem, byte for byte in JSON.

Addresses
---------
The extract has street names but no house numbers. Addresses are written
``上海市黄浦区{street}{n}号`` (homes sometimes ``{street}{n}弄{m}号{room}室``)
and located where the offline gazetteer (:mod:`solver.geo.gazetteer`) puts
number ``n`` on that street, so geocoding the text finds the same point.

What is generated
-----------------
* Accounts: days past due in buckets M1 (1–30), M2 (31–60) and M3+ (61–180),
  an overdue amount (CNY, log-normal, 3,000–300,000) and 0–3 broken promises
  to pay; :func:`priority_from` turns them into a priority 0–100. The
  purpose shows the bucket and days past due, never the amount.
* Addresses: about 45 % of borrowers have a home and a work address, the
  rest one of them. Work addresses keep office hours (09:00–12:00,
  13:30–18:00) and some (about 10 % of them) may not be used because the
  employer forbids contact; home addresses are reachable mornings and
  evenings (weekdays) or most of the day (weekends), or have no window.
* About 8 % of visits carry a booked one-hour appointment between 09:00 and
  17:00 inside a window of a usable address, about 5 % are required.
  Durations are 20–60 min; a visit with a home address needs two
  collectors, a work-only visit one or two.
* Crews of two (``crew-01``, ...) on day shifts (08:30–17:30, 09:00–18:00,
  lunch 45–60 min within 11:30–13:30) or evening shifts (12:00–21:00, dinner
  45 min within 17:30–19:00), mostly on e-bikes, some on foot, one or two by
  car, each starting and ending at a branch office.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import random
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

from solver.config import default_skill_catalogue
from solver.model import (
    Address,
    Agent,
    Borrower,
    Break,
    Location,
    Options,
    Place,
    Problem,
    TimeWindow,
    TravelMode,
    Visit,
)

# Typing note: solver/model.py gives defaults positionally (``Field(None, ...)``), which
# mypy's dataclass_transform support does not read, so it takes those fields for required.

__all__ = [
    "DEFAULT_DATE",
    "StreetGazetteer",
    "bucket_of",
    "generate_day",
    "priority_from",
    "write_problem_json",
]

T = TypeVar("T")

#: The demo day when no date is given (a Tuesday).
DEFAULT_DATE = dt.date(2026, 12, 1)

#: Prefix of every generated address.
CITY_PREFIX = "上海市黄浦区"

#: Skills visits may ask for (each also held by at least one crew).
VISIT_SKILLS: tuple[str, ...] = ("lang:wuu", "legal", "sme", "female")


class StreetGazetteer(Protocol):
    """What the generator needs from the offline gazetteer."""

    def street_names(self) -> Iterable[str]:
        """Names of the streets in the map."""
        ...

    def fraction_for_number(self, street: str, number: int) -> float:
        """Where house number ``number`` lies along ``street``, in [0, 1]."""
        ...

    def point_on_street(self, name: str, fraction: float) -> Location:
        """The point at ``fraction`` of the way along ``name``."""
        ...


# --------------------------------------------------------------------------- #
# Priority
# --------------------------------------------------------------------------- #
def bucket_of(days_past_due: int) -> str:
    """Delinquency bucket: ``M1`` (1–30 days), ``M2`` (31–60), ``M3+`` (over 60).

    Zero days (not yet overdue) count as ``M1``.
    """
    if days_past_due <= 30:
        return "M1"
    if days_past_due <= 60:
        return "M2"
    return "M3+"


def priority_from(days_past_due: int, amount: float, broken_promises: int) -> int:
    """A visit's priority, 0–100, from the account's delinquency.

    The score adds three parts, each non-decreasing in its input, so the
    priority never falls when an account gets later, larger or less
    trustworthy:

    * **Lateness, up to 50.** A bucket step (M1 0, M2 15, M3+ 30) plus up to
      20 points growing linearly with days past due until 180 days.
    * **Amount, up to 30.** Linear in ``log10`` of the overdue amount between
      1,000 CNY (0 points) and 1,000,000 CNY (30 points): each tenfold
      increase adds 10.
    * **Broken promises, up to 20.** 7 points per broken promise to pay,
      capped at 20 (three or more).

    Parameters
    ----------
    days_past_due
        Days the oldest instalment is overdue (>= 0).
    amount
        Overdue amount in CNY (>= 0).
    broken_promises
        Promises to pay not kept in the current cycle (>= 0).

    Returns
    -------
    int
        The rounded score, clamped to 0–100.

    Examples
    --------
    >>> priority_from(10, 5_000, 0)
    8
    >>> priority_from(45, 50_000, 1)
    44
    >>> priority_from(120, 200_000, 3)
    86
    """
    if days_past_due < 0 or amount < 0 or broken_promises < 0:
        raise ValueError("days_past_due, amount and broken_promises must not be negative")
    step = {"M1": 0.0, "M2": 15.0, "M3+": 30.0}[bucket_of(days_past_due)]
    lateness = step + 20.0 * min(days_past_due, 180) / 180
    size = 10.0 * (math.log10(min(max(amount, 1_000.0), 1_000_000.0)) - 3.0)
    promises = min(7.0 * broken_promises, 20.0)
    return max(0, min(100, math.floor(lateness + size + promises + 0.5)))


# --------------------------------------------------------------------------- #
# Names, phones, numbers
# --------------------------------------------------------------------------- #
_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁"
    "任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万钱严武戴孔汤"
)
_GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏辉建国文斌宇浩凯俊晨欣怡婷雪琳佳"
    "慧颖倩瑶晓燕海波峰东亮志勤雯嘉诚思源子轩梓涵一鸣天翔雨桐"
)
_BRANCHES = ("人民广场支行", "淮海中路支行", "外滩支行", "豫园支行", "新天地支行")
#: Streets a branch office would stand on, when the map has them.
_BRANCH_STREETS = ("南京西路", "淮海中路", "西藏中路", "延安东路", "人民路", "河南中路", "福州路", "九江路")
#: Highest house number generated on any street.
MAX_NUMBER = 999
#: Streets with room for fewer house numbers than this are not used.
MIN_NUMBERS = 10
#: Names that are not streets one lives or works on.
_NOT_ADDRESSABLE = ("隧道", "高架", "匝道", "立交", "引桥", "下立交")


def _person(rng: random.Random) -> str:
    given = "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 2, 2))))
    return rng.choice(_SURNAMES) + given


def _phone(rng: random.Random) -> str:
    return "1" + rng.choice("3456789") + "".join(rng.choice("0123456789") for _ in range(9))


def _hhmm(minutes: int) -> dt.time:
    return dt.time(minutes // 60, minutes % 60)


def _window(start_min: int, end_min: int) -> TimeWindow:
    return TimeWindow(start=_hhmm(start_min), end=_hhmm(end_min))


def _minutes(value: dt.time | dt.datetime) -> int:
    return value.hour * 60 + value.minute


# --------------------------------------------------------------------------- #
# Streets
# --------------------------------------------------------------------------- #
class _Streets:
    """Addressable streets of the gazetteer and the points of house numbers."""

    def __init__(self, gazetteer: StreetGazetteer) -> None:
        self.gazetteer = gazetteer
        self.last_number: dict[str, int] = {}
        for name in sorted(set(gazetteer.street_names())):
            if not name or any(bad in name for bad in _NOT_ADDRESSABLE):
                continue
            last = self._last_number(name)
            if last >= MIN_NUMBERS:
                self.last_number[name] = last
        self.names = sorted(self.last_number)
        if not self.names:
            raise ValueError("the gazetteer has no street long enough to hold addresses")

    def _last_number(self, street: str) -> int:
        """The highest house number still on the street (numbers past its end
        would all land on the end point), capped at :data:`MAX_NUMBER`."""
        step = self.gazetteer.fraction_for_number(street, 1)
        if step <= 0:
            return MAX_NUMBER
        return min(MAX_NUMBER, int(1.0 / step + 1e-9))

    def point(self, street: str, number: int) -> Location:
        fraction = self.gazetteer.fraction_for_number(street, number)
        return self.gazetteer.point_on_street(street, fraction)

    def pick(self, rng: random.Random, streets: Sequence[str] | None = None) -> tuple[str, int, Location]:
        street = rng.choice(list(streets) if streets else self.names)
        number = rng.randint(1, self.last_number.get(street, MAX_NUMBER))
        return street, number, self.point(street, number)


def _load_gazetteer() -> StreetGazetteer:
    from solver.geo.gazetteer import load_bundled_gazetteer

    return load_bundled_gazetteer()


# --------------------------------------------------------------------------- #
# Crews
# --------------------------------------------------------------------------- #
def _branches(rng: random.Random, streets: _Streets, count: int) -> list[Place]:
    preferred = [s for s in _BRANCH_STREETS if s in streets.names]
    if len(preferred) < count:
        preferred = streets.names
    chosen = rng.sample(list(preferred), count)
    names = rng.sample(_BRANCHES, count)
    places = []
    for street, branch in zip(chosen, names):
        _street, number, location = streets.pick(rng, [street])
        places.append(Place(text=f"{CITY_PREFIX}{street}{number}号 ({branch})", location=location))
    return places


def _crew_skills(rng: random.Random, n: int) -> list[list[str]]:
    odds = {"lang:wuu": 0.5, "legal": 0.2, "sme": 0.25, "female": 0.4}
    skills = [["lang:zh"] + [s for s in VISIT_SKILLS if rng.random() < odds[s]] for _ in range(n)]
    for skill in VISIT_SKILLS:  # every visit skill is held by some crew
        if not any(skill in held for held in skills):
            skills[rng.randrange(n)].append(skill)
    return [[s for s in ("lang:zh", *VISIT_SKILLS) if s in held] for held in skills]


def _agents(rng: random.Random, streets: _Streets, crews: int) -> list[Agent]:
    branches = _branches(rng, streets, 2 if crews < 10 else 3)
    order = list(range(crews))
    rng.shuffle(order)
    n_evening = max(1, round(crews * 0.2)) if crews >= 3 else 0
    n_drive = 1 if crews < 10 else 2
    n_walk = max(1, round(crews * 0.15)) if crews >= 3 else 0
    evening = set(order[:n_evening])
    modes: list[TravelMode] = ["drive"] * n_drive
    modes += ["walk"] * n_walk
    modes += ["ebike"] * (crews - len(modes))
    rng.shuffle(modes)
    skills = _crew_skills(rng, crews)
    agents = []
    for k in range(crews):
        if k in evening:
            shift = _window(12 * 60, 21 * 60)
            breaks = [Break(window=_window(17 * 60 + 30, 19 * 60), duration_min=45)]
        else:
            start = rng.choice((8 * 60 + 30, 9 * 60))
            shift = _window(start, start + 9 * 60)
            breaks = [Break(window=_window(11 * 60 + 30, 13 * 60 + 30), duration_min=rng.choice((45, 60)))]
        agents.append(
            Agent(
                id=f"crew-{k + 1:02d}",
                members=[_person(rng), _person(rng)],
                shift=shift,
                breaks=breaks,
                start=branches[k % len(branches)].model_copy(deep=True),
                skills=skills[k],
                max_visits=rng.randint(8, 12),
                travel_mode=modes[k],
            )
        )
    return agents


# --------------------------------------------------------------------------- #
# Visits
# --------------------------------------------------------------------------- #
#: Opening hours as (start, end) minutes after midnight.
_Hours = tuple[tuple[int, int], ...]
_WORK_HOURS: _Hours = ((9 * 60, 12 * 60), (13 * 60 + 30, 18 * 60))
_HOME_WEEKDAY: tuple[tuple[float, _Hours], ...] = (
    (0.45, ((8 * 60, 10 * 60), (17 * 60, 21 * 60))),
    (0.20, ((17 * 60, 21 * 60),)),
    (0.35, ()),
)
_HOME_WEEKEND: tuple[tuple[float, _Hours], ...] = (
    (0.55, ((9 * 60, 12 * 60), (14 * 60, 20 * 60))),
    (0.45, ()),
)
#: Booked slots start in [09:00, 16:00] on the half hour and last an hour.
_SLOT_STARTS = tuple(range(9 * 60, 16 * 60 + 1, 30))


def _weighted(rng: random.Random, options: Sequence[tuple[float, T]]) -> T:
    """One of ``options`` (weight, value), drawn with the weights (summing to 1)."""
    x, acc = rng.random(), 0.0
    for weight, value in options:
        acc += weight
        if x < acc:
            return value
    return options[-1][1]


def _home(rng: random.Random, streets: _Streets, weekend: bool) -> Address:
    street, number, location = streets.pick(rng)
    text = f"{CITY_PREFIX}{street}{number}号"
    if rng.random() < 0.4 and street.endswith(("路", "街")):
        text = f"{CITY_PREFIX}{street}{number}弄{rng.randint(1, 30)}号{rng.randint(1, 6)}0{rng.randint(1, 4)}室"
    windows = _weighted(rng, _HOME_WEEKEND if weekend else _HOME_WEEKDAY)
    return Address(
        text=text, location=location, kind="home", time_windows=[_window(a, b) for a, b in windows]
    )


def _work(rng: random.Random, streets: _Streets, usable: bool) -> Address:
    street, number, location = streets.pick(rng)
    return Address(
        text=f"{CITY_PREFIX}{street}{number}号",
        location=location,
        kind="work",
        time_windows=[_window(a, b) for a, b in _WORK_HOURS],
        usable=usable,
    )


def _addresses(rng: random.Random, streets: _Streets, weekend: bool) -> list[Address]:
    x = rng.random()
    if x < 0.45:  # both: the work address may be off limits
        return [_home(rng, streets, weekend), _work(rng, streets, usable=rng.random() >= 0.15)]
    if x < 0.75:
        return [_home(rng, streets, weekend)]
    return [_work(rng, streets, usable=True)]


def _slots(visit: Visit) -> list[TimeWindow]:
    """One-hour appointment slots inside a window of a usable address."""
    out = []
    for start in _SLOT_STARTS:
        for address in visit.addresses:
            if not address.usable:
                continue
            windows = [(_minutes(w.start), _minutes(w.end)) for w in address.time_windows]
            if not windows or any(lo <= start and start + 60 <= hi for lo, hi in windows):
                out.append(_window(start, start + 60))
                break
    return out


def _visit(rng: random.Random, streets: _Streets, index: int, case_number: int, year: int, weekend: bool) -> Visit:
    bucket_days = _weighted(rng, ((0.5, (1, 30)), (0.3, (31, 60)), (0.2, (61, 180))))
    days = rng.randint(*bucket_days)
    amount = round(min(300_000.0, max(3_000.0, rng.lognormvariate(math.log(20_000), 1.0))), -1)
    broken = _weighted(rng, ((0.55, 0), (0.25, 1), (0.13, 2), (0.07, 3)))
    purpose = f"{bucket_of(days)} 催收 / 逾期{days}天"
    if broken:
        purpose += f" / 承诺未履行{broken}次"
    addresses = _addresses(rng, streets, weekend)
    has_home = any(a.kind == "home" for a in addresses)
    skills: list[str] = []
    if rng.random() < 0.2:
        skills = [_weighted(rng, ((0.4, "lang:wuu"), (0.25, "sme"), (0.2, "legal"), (0.15, "female")))]
    return Visit(
        id=f"V{index + 1:04d}",
        case_id=f"C{year}-{case_number:06d}",
        priority=priority_from(days, amount, broken),
        duration_min=rng.choice((20, 30, 30, 40, 45, 60)),
        addresses=addresses,
        skills=skills,
        crew_size=2 if has_home else rng.choice((1, 2)),
        borrower=Borrower(name=_person(rng), phone=_phone(rng)),
        purpose=purpose,
    )


def _make_hard(rng: random.Random, visits: list[Visit]) -> None:
    """Book appointments for about 8 % and require about 5 % of the visits.

    Hard visits ask for no special skill, so any crew can keep them.
    """
    n_appointments = round(len(visits) * 0.08)
    n_required = round(len(visits) * 0.05)
    bookable = [v for v in visits if _slots(v)]
    booked = rng.sample(bookable, min(n_appointments, len(bookable)))
    for visit in booked:
        visit.appointment = rng.choice(_slots(visit))
        visit.skills = []
    day = [v for v in visits if v.appointment is None and _slots(v)]
    for visit in rng.sample(day, min(n_required, len(day))):
        visit.required = True
        visit.skills = []


# --------------------------------------------------------------------------- #
# Public API
# --------------------------------------------------------------------------- #
def generate_day(
    seed: int = 0,
    visits: int = 80,
    crews: int = 10,
    date: dt.date | None = None,
    *,
    gazetteer: StreetGazetteer | None = None,
) -> Problem:
    """A collections day on the demo city.

    Parameters
    ----------
    seed
        Seed of the one random generator used; same arguments, same problem.
    visits
        Number of visits (>= 0).
    crews
        Number of two-person crews (>= 1; the brief's realistic range is 8–12).
    date
        The plan date; default :data:`DEFAULT_DATE`. Weekend days give
        homes longer windows.
    gazetteer
        Street geometry; default: the bundled offline gazetteer
        (:func:`solver.geo.gazetteer.load_bundled_gazetteer`).

    Returns
    -------
    Problem
        A validated problem in ``Asia/Shanghai`` with ``options.seed = seed``.
    """
    if visits < 0:
        raise ValueError("visits must not be negative")
    if crews < 1:
        raise ValueError("crews must be at least 1")
    date = date or DEFAULT_DATE
    streets = _Streets(gazetteer if gazetteer is not None else _load_gazetteer())
    rng = random.Random(seed)
    agents = _agents(rng, streets, crews)
    weekend = date.weekday() >= 5
    case_numbers = rng.sample(range(1, 1_000_000), visits)
    day = [_visit(rng, streets, i, case_numbers[i], date.year, weekend) for i in range(visits)]
    _make_hard(rng, day)
    catalogue = set(default_skill_catalogue())
    held = set().union(*(a.skills for a in agents))
    assert all(set(v.skills) <= catalogue & held for v in day), "a visit asks for a skill no crew holds"
    problem = Problem(
        date=date,
        timezone="Asia/Shanghai",
        visits=day,
        agents=agents,
        options=Options(seed=seed, rule_set="cn-cba-2026"),
    )
    # validate the whole as an API payload would be
    return Problem.model_validate(problem.model_dump(mode="json"))


def write_problem_json(problem: Problem, path: str | Path) -> Path:
    """Write ``problem`` as UTF-8 JSON (indented, ``None`` fields left out).

    The file reads back with ``Problem.model_validate_json(path.read_text())``.
    """
    path = Path(path)
    path.write_text(problem.model_dump_json(indent=2, exclude_none=True) + "\n", encoding="utf-8")
    return path


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m solver.demo [--seed N] [--visits N] [--crews N] [--date D] OUT.json``"""
    parser = argparse.ArgumentParser(prog="python -m solver.demo", description=main.__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--visits", type=int, default=80)
    parser.add_argument("--crews", type=int, default=10)
    parser.add_argument("--date", type=dt.date.fromisoformat, default=None)
    args = parser.parse_args(argv)
    problem = generate_day(args.seed, args.visits, args.crews, args.date)
    write_problem_json(problem, args.out)
    print(f"{args.out}: {len(problem.visits)} visits, {len(problem.agents)} crews on {problem.date}")


if __name__ == "__main__":  # pragma: no cover
    main()
