"""Visits Doorstep itself recorded, as contact history for frequency limits.

A rule set's frequency limit (``[frequency] max_visits`` per ``period_days``)
counts the field visits made to a case. The caller may send its own
``Problem.history``; the service adds the visits its agents recorded through
``POST /v1/visits/{id}/outcome`` (status ``arrived`` or ``completed``) on the
dates of the period, so a case visited twice this week is not planned a third
time even when the collections system forgot to say so.

Only the dates of the period are read: every plan version of each date (a
re-plan takes done visits out of the current version, an older one still
holds them) and the recorded state of the visits of the cases being planned.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from app.store.base import Store
from solver.model import Contact, Problem
from solver.rules import active_rule_set

#: Visit statuses that mean the crew was there.
MADE: frozenset[str] = frozenset({"arrived", "completed"})


def recorded_contacts(store: Store, problem: Problem) -> list[Contact]:
    """The field visits recorded in ``store`` for the cases of ``problem`` in
    the frequency period of its rule set (none without a frequency limit).

    A visit counts once, on its plan date (noon in the problem's time zone),
    whatever the number of outcomes recorded for it; the plan date itself is
    included (a case visited this morning under another visit id)."""
    rules = active_rule_set(problem.options.rule_set)
    if rules is None or rules.frequency is None or not problem.visits:
        return []
    cases = {v.case_key for v in problem.visits}
    zone = ZoneInfo(problem.timezone)
    contacts: list[Contact] = []
    for back in range(rules.frequency.period_days):
        day = problem.date - dt.timedelta(days=back)
        date = day.isoformat()
        seen: set[str] = set()
        for info in store.list_versions(date):
            problem_json = store.get_problem(date, info.version)
            if problem_json is None:
                continue
            for visit in Problem.model_validate_json(problem_json).visits:
                if visit.id in seen or visit.case_key not in cases:
                    continue
                seen.add(visit.id)
                if store.get_visit_state(date, visit.id).status in MADE:
                    at = dt.datetime.combine(day, dt.time(12), tzinfo=zone)
                    contacts.append(Contact(case_id=visit.case_key, at=at, kind="visit"))
    return contacts


def with_recorded_history(store: Store, problem: Problem) -> Problem:
    """``problem`` with the recorded visits (:func:`recorded_contacts`) added to its history."""
    recorded = recorded_contacts(store, problem)
    if not recorded:
        return problem
    return problem.model_copy(update={"history": [*problem.history, *recorded]})
