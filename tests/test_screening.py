"""solver.screening: scores worked out by hand from config/screening.toml's
weights, exclusions with their reasons, and a bad configuration named."""

from __future__ import annotations

import datetime as dt

import pytest

from solver.model import CaseInfo, Visit
from solver.screening import ScreeningConfig, exclusion, load_config, score_case, screen

DAY = dt.date(2026, 12, 1)


def _visit(vid: str, **case) -> Visit:
    return Visit.model_validate({"id": vid, "case_id": f"C-{vid}", "addresses": [{"text": f"road {vid}"}],
                                 "case": case or None})


def test_the_shipped_configuration_is_the_documented_one():
    config = load_config()
    assert config.threshold == 40
    assert (config.buckets.M1, config.buckets.M2, config.buckets.M3) == (10, 25, 45)
    assert config.exclusions.risk_flags == ["dispute", "complaint", "deceased", "legal_hold"]
    assert (config.exclusions.visited_too_often.max_visits, config.exclusions.visited_too_often.days) == (2, 30)


@pytest.mark.parametrize(("days", "bucket"), [(0, "M0"), (1, "M1"), (30, "M1"), (31, "M2"), (60, "M2"), (61, "M3+")])
def test_buckets_by_days_past_due(days, bucket):
    assert CaseInfo(days_past_due=days).bucket == bucket


def test_a_score_is_the_sum_of_its_parts():
    config = load_config()
    case = CaseInfo(days_past_due=75, overdue_amount=30000, currency="CNY", broken_promises=1,
                    last_contact=dt.date(2026, 11, 21))
    score = score_case(case, DAY, config)
    parts = {c.name: (c.value, c.points) for c in score.components}
    # M3+ 45; 30000/10000*5 = 15; one broken promise 10; 10 days since contact - 7 = 3
    assert parts == {"bucket": ("M3+", 45), "amount": (30000, 15), "broken_promises": (1, 10),
                     "last_contact": (10, 3)}
    assert (score.total, score.priority) == (73, 73)


def test_parts_are_capped_and_the_priority_at_100():
    config = load_config()
    case = CaseInfo(days_past_due=400, overdue_amount=10**9, broken_promises=9)  # never contacted: the max
    score = score_case(case, DAY, config)
    assert [c.points for c in score.components] == [45, 30, 30, 15]
    assert (score.total, score.priority) == (120, 100)


def test_amounts_in_another_currency_use_the_configured_rate():
    config = ScreeningConfig.model_validate({"amount": {"step": 10000, "points": 5, "max": 30, "rates": {"USD": 7}}})
    points = score_case(CaseInfo(days_past_due=10, overdue_amount=2000, currency="USD"), DAY, config).components[1]
    assert points.points == 7  # 2000 USD = 14000 in the step's currency: 1.4 steps


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        (None, None, "no_case_data"),
        ({"days_past_due": 90, "risk_flags": ["agitated", "legal_hold"]}, None, "risk_flag"),
        ({"days_past_due": 90}, "legal_review", "escalated"),
        ({"days_past_due": 0, "overdue_amount": 5000}, None, "not_overdue"),
        ({"days_past_due": 90, "recent_visits": ["2026-11-05", "2026-11-30"]}, None, "visited_too_often"),
    ],
)
def test_exclusions_have_a_code_and_a_reason(case, status, code):
    info = None if case is None else CaseInfo.model_validate(case)
    found = exclusion(info, DAY, load_config(), status=status)
    assert found is not None and found[0] == code and found[1]


def test_visits_outside_the_window_and_unlisted_flags_do_not_exclude():
    case = CaseInfo(days_past_due=90, risk_flags=["agitated"], recent_visits=[dt.date(2026, 10, 1), DAY])
    assert exclusion(case, DAY, load_config()) is None


def test_screen_sends_the_cases_above_the_threshold_highest_first():
    visits = [
        _visit("low", days_past_due=10, last_contact="2026-11-30"),             # 10 points
        _visit("mid", days_past_due=45, overdue_amount=20000, last_contact="2026-11-30"),  # 25 + 10
        _visit("top", days_past_due=90, overdue_amount=20000, last_contact="2026-11-30"),  # 45 + 10
        _visit("gone", days_past_due=90, risk_flags=["deceased"]),
        _visit("edge", days_past_due=45, overdue_amount=30000, last_contact="2026-11-30"),  # 25 + 15 = 40
    ]
    sent, results = screen(visits, DAY, load_config(), broken_promises={"C-mid": 1})
    assert [v.id for v in sent] == ["top", "mid", "edge"]
    assert [v.priority for v in sent] == [55, 45, 40]  # mid: Doorstep saw a broken promise (+10)
    assert sent[1].case is not None and sent[1].case.broken_promises == 1
    by_id = {r.visit_id: r for r in results}
    assert [r.visit_id for r in results] == ["low", "mid", "top", "gone", "edge"]  # input order
    assert by_id["low"].code == "below_threshold" and by_id["low"].score is not None
    assert by_id["gone"].code == "risk_flag" and by_id["gone"].score is None
    assert by_id["top"].sent and by_id["top"].reason is None


def test_a_bad_configuration_names_the_key(tmp_path):
    path = tmp_path / "screening.toml"
    path.write_text("threshold = 40\n[buckets]\nM2 = -5\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"buckets\.M2"):
        load_config(path)
    path.write_text("[amount]\nstep = 0\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"amount\.step"):
        load_config(path)
    path.write_text("colour = 'red'\n", encoding="utf-8")
    with pytest.raises(ValueError, match="colour"):
        load_config(path)
