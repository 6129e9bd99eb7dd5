"""The agent's page shows the case at the door (headless Chromium, as in
tests/test_web_browser.py): days overdue, the amount as the role allows, and
risk flags. Skips without Chromium."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator

import pytest

from tests.conftest import _PAYLOAD
from tests.test_web_browser import PHONE, LiveServer, assert_clean, close_page, login, new_page, shots  # noqa: F401

DAY = "2026-12-01"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    from app import create_app

    server = LiveServer(create_app({"DATA_DIR": str(tmp_path_factory.mktemp("web-cases")), "TRAVEL": "straight"}))
    yield server
    server.close()


def test_the_agent_sees_the_case_at_the_door(browser, live, shots):  # noqa: F811
    body = copy.deepcopy(_PAYLOAD)
    for visit in body["visits"]:
        visit["case"] = {"days_past_due": 75, "overdue_amount": 30000, "currency": "CNY", "broken_promises": 2,
                         "risk_flags": ["agitated"]}
    planned = live.client().post("/v1/plans?wait=60", json=body)
    assert planned.status_code == 201, planned.get_json()
    route = max(planned.get_json()["plan"]["routes"], key=lambda r: len(r["stops"]))
    page = new_page(browser, live, PHONE)
    page.goto(f"{live.url}/web/agent?date={DAY}")
    login(page, live.token("agent", route["agent_id"]))
    page.wait_for_selector("li.stop-card .case-data")
    first = page.locator("li.stop-card").nth(0).locator(".case-data")
    text = first.text_content() or ""
    assert "75 days overdue" in text and "CNY 30,000" in text and "2 broken promises" in text
    assert first.locator(".badge.risk").text_content() == "agitated"
    shots(page, "agent-case", full_page=False)
    assert_clean(page)
    close_page(page)


def test_the_agent_page_sends_the_phone_position_as_proof_of_visit(browser, live):
    date = "2026-12-03"
    body = copy.deepcopy(_PAYLOAD)
    body["date"] = date
    planned = live.client().post("/v1/plans?wait=60", json=body)
    assert planned.status_code == 201, planned.get_json()
    route = max(planned.get_json()["plan"]["routes"], key=lambda r: len(r["stops"]))
    stop = route["stops"][0]
    context = browser.new_context(viewport=PHONE, locale="en-GB", timezone_id="Asia/Shanghai",
                                  geolocation={"latitude": stop["location"]["lat"] + 0.0045,  # ~500 m north
                                               "longitude": stop["location"]["lon"], "accuracy": 25},
                                  permissions=["geolocation"])
    page = new_page(browser, live, PHONE, context)
    page.goto(f"{live.url}/web/agent?date={date}")
    login(page, live.token("agent", route["agent_id"]))
    card = page.locator(f"li.stop-card[data-visit='{stop['visit_id']}']")
    card.locator(".btn-arrived").click()
    page.wait_for_selector(f"li.stop-card[data-visit='{stop['visit_id']}'] .status-chip:has-text('arrived')")
    [record] = [json.loads(o) for o in live.store.list_outcomes(date, stop["visit_id"])]
    assert record["position"]["accuracy_m"] == 25
    assert record["geo_mismatch"] is True and 450 < record["distance_m"] < 550
    assert_clean(page)
    context.close()


def test_the_outcome_form_records_who_was_met_and_how(browser, live, shots):  # noqa: F811
    date = "2026-12-04"
    body = copy.deepcopy(_PAYLOAD)
    body["date"] = date
    planned = live.client().post("/v1/plans?wait=60", json=body)
    assert planned.status_code == 201, planned.get_json()
    route = max(planned.get_json()["plan"]["routes"], key=lambda r: len(r["stops"]))
    visit = route["stops"][0]["visit_id"]
    page = new_page(browser, live, PHONE)
    page.goto(f"{live.url}/web/agent?date={date}")
    login(page, live.token("agent", route["agent_id"]))
    card = page.locator(f"li.stop-card[data-visit='{visit}']")
    card.locator(".btn-complete").click()
    card.locator("select.result").select_option("refused")
    card.locator("select.met").select_option("family")
    card.locator("select.attitude").select_option("evasive")
    card.locator("select.willingness").select_option("2")
    card.locator("select.ability").select_option("3")
    shots(page, "agent-record", full_page=False)
    card.locator(".btn-submit-outcome").click()
    page.wait_for_selector(f"#status:has-text('Saved: {visit} completed (refused)')")
    [record] = [json.loads(o) for o in live.store.list_outcomes(date, visit)]
    assert (record["met"], record["attitude"], record["willingness"], record["ability"]) == ("family", "evasive", 2, 3)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert_clean(page)
    close_page(page)
