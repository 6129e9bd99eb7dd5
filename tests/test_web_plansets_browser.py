"""The dispatcher page makes a draft over two dates and publishes it
(headless Chromium, as in tests/test_web_browser.py): the "Days" and "draft"
controls post ``dates`` with ``?publish=false``, the plan set's per-date
summary shows, Publish makes each date's plan current. Skips without
Chromium."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.test_web_browser import (  # noqa: F401 - fixtures
    DESKTOP,
    LiveServer,
    assert_clean,
    close_page,
    demo_problem,
    login,
    new_page,
    shots,
)

DATES = ["2026-12-08", "2026-12-09"]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    from app import create_app

    server = LiveServer(create_app({"DATA_DIR": str(tmp_path_factory.mktemp("web-sets")), "TRAVEL": "straight"}))
    yield server
    server.close()


def test_a_two_day_draft_is_summarised_then_published(browser, live, shots):  # noqa: F811
    page = new_page(browser, live, DESKTOP)
    page.goto(f"{live.url}/web/")
    login(page, live.token("dispatcher"))
    day = demo_problem(DATES[0], time_limit_s=1.0)
    for agent in day["agents"]:
        agent["max_visits"] = 3  # 9 a date: the second date takes what the first cannot make
    page.fill("#problem-text", json.dumps(day))
    page.wait_for_selector("#input-summary:has-text('12 visits, 3 crews')")
    page.fill("#plan-days", "2")
    page.check("#plan-draft")
    page.click("#plan-btn")
    page.wait_for_selector("#planset-panel[data-status='draft']", timeout=90_000)

    client = live.client()
    set_id = page.locator("#planset-panel").get_attribute("data-id")
    stored = client.get(f"/v1/plan-sets/{set_id}").get_json()
    assert stored["status"] == "draft" and stored["dates"] == DATES
    assert client.get(f"/v1/plans/{DATES[0]}").status_code == 404  # a draft publishes nothing
    rows = page.locator("#planset-table tbody tr")
    assert [rows.nth(i).get_attribute("data-date") for i in range(rows.count())] == DATES
    for i, day in enumerate(stored["days"]):
        summary = day["plan"]["summary"]
        assert rows.nth(i).locator("td.planned").text_content() == \
            f"{summary['visits_planned']} / {summary['visits_total']}"
        assert rows.nth(i).locator("td.left").text_content() == str(len(day["plan"]["unassigned"]))
        assert rows.nth(i).locator("td.version").text_content() == "draft"
    # what the first date cannot make is a candidate on the second; each visit is planned once
    planned = [s["visit_id"] for d in stored["days"] for r in d["plan"]["routes"] for s in r["stops"]]
    assert len(planned) == len(set(planned)) == stored["summary"]["visits_planned"]
    first, second = (d["plan"]["summary"] for d in stored["days"])
    assert first["visits_planned"] <= 9 and second["visits_planned"] >= 1
    assert second["visits_total"] == 12 - first["visits_planned"]
    assert f"{stored['summary']['visits_planned']} visit(s) planned" in page.locator("#planset-summary").text_content()
    assert page.locator("#planset-publish").is_visible()
    shots(page, "dispatcher-draft-set")

    page.click("#planset-publish")
    page.wait_for_selector("#planset-panel[data-status='published']")
    page.wait_for_selector("#crew-table tbody tr")  # the first date's plan, now current, is loaded
    assert not page.locator("#planset-publish").is_visible()
    published = client.get(f"/v1/plan-sets/{set_id}").get_json()
    assert published["status"] == "published"
    for i, day in enumerate(published["days"]):
        current = client.get(f"/v1/plans/{day['date']}").get_json()
        assert current["version"] == day["version"]
        assert rows.nth(i).locator("td.version").text_content() == f"v{day['version']}"
    second = published["days"][1]["plan"]["summary"]
    rows.nth(1).get_by_role("button", name="Open").click()
    page.wait_for_function(f"document.querySelector('#day-date').value === '{DATES[1]}'")
    page.wait_for_selector(f"#fig-visits .tile-value:has-text('{second['visits_planned']} / "
                           f"{second['visits_total']}')")
    assert_clean(page)
    close_page(page)
