"""The dispatcher page lists a visit left out for an imprecise geocode with its
reason and how to confirm a point (headless Chromium, live server; see
tests/test_web_browser.py for the fixtures)."""

from __future__ import annotations

import json

from tests.test_web_browser import DESKTOP, assert_clean, close_page, demo_problem, live, login, new_page, shots

__all__ = ["live", "shots"]  # fixtures used by name

NO_SUCH_ROAD = "上海市黄浦区不存在路999号"


def test_dispatcher_sees_an_imprecise_visit_and_how_to_confirm_it(browser, live, shots, tmp_path):
    date = "2026-12-03"
    day = demo_problem(date)
    visit = day["visits"][0]
    visit_id = visit["id"]
    visit["addresses"] = [{"text": NO_SUCH_ROAD, "kind": "home"}]  # only the district is known
    day_file = tmp_path / "day.json"
    day_file.write_text(json.dumps(day, ensure_ascii=False), encoding="utf-8")

    page = new_page(browser, live, DESKTOP)
    page.goto(f"{live.url}/web/")
    login(page, live.token("dispatcher"))
    page.set_input_files("#json-file", str(day_file))
    page.wait_for_selector("#input-summary:has-text('12 visits, 3 crews')")
    page.click("#plan-btn")
    page.wait_for_selector("#crew-table tbody tr", timeout=90_000)

    plan = live.client().get(f"/v1/plans/{date}").get_json()["plan"]
    (entry,) = [u for u in plan["unassigned"] if u["visit_id"] == visit_id]
    assert entry["code"] == "geocode_imprecise"
    item = page.locator(f"#unassigned li.unassigned-item[data-visit='{visit_id}']")
    assert item.locator(".badge.code").text_content() == "geocode_imprecise"
    assert "district level" in item.locator(".reason").text_content()
    hint = item.locator(".suggestion.imprecise").text_content()
    assert "Address 0 found only at district level" in hint and "Confirm a point" in hint
    assert page.locator("#flags").get_by_text(visit_id).count() >= 1  # the flag is listed too
    shots(page, "dispatcher-imprecise")
    assert_clean(page)
    close_page(page)
