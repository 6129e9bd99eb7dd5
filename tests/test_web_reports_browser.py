"""The dispatcher page's Reports tab in headless Chromium (as in
tests/test_web_browser.py): the table shows the report's figures, Chart.js
(served from the package) draws both charts, the grouping can change, and
the CSV export downloads the same figures. Skips without Chromium."""

from __future__ import annotations

import copy
import csv
import io
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import _PAYLOAD
from tests.test_web_browser import DESKTOP, LiveServer, assert_clean, close_page, login, new_page, shots  # noqa: F401

DAY = "2026-12-01"
#: Days past due of v0..v5.
OVERDUE = [10, 40, 75, 5, 0, 120]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    from app import create_app

    server = LiveServer(create_app({"DATA_DIR": str(tmp_path_factory.mktemp("web-reports")), "TRAVEL": "straight"}))
    yield server
    server.close()


def _seed(live: LiveServer) -> None:
    """The test day (v0, v1, v4 for crew-a; v2, v3, v5 for crew-b) with
    outcomes, two promises and a payment that keeps one."""
    client = live.client()
    body = copy.deepcopy(_PAYLOAD)
    for i, visit in enumerate(body["visits"]):
        visit["case"] = {"days_past_due": OVERDUE[i], "overdue_amount": 8000, "currency": "CNY"}
        visit["pinned_agent"] = "crew-a" if i in (0, 1, 4) else "crew-b"
    assert client.post("/v1/plans?wait=60", json=body).status_code == 201
    outcomes = {
        "v0": {"status": "completed", "result": "promise_to_pay", "amount": 600, "currency": "CNY",
               "promised_date": "2026-12-02", "met": "borrower"},
        "v1": {"status": "completed", "result": "not_at_home", "met": "nobody"},
        "v4": {"status": "completed", "result": "paid", "amount": 150, "currency": "CNY", "met": "borrower"},
        "v2": {"status": "completed", "result": "refused", "met": "family"},
        "v3": {"status": "completed", "result": "promise_to_pay", "amount": 400, "currency": "CNY",
               "promised_date": "2026-12-03", "met": "borrower"},
    }
    for visit_id, outcome in outcomes.items():
        response = client.post(f"/v1/visits/{visit_id}/outcome", json={"date": DAY, **outcome})
        assert response.status_code == 201, response.get_json()
    paid = client.post("/v1/payments", json={"payment_id": "bank-1", "case_id": "CASE-000", "amount": 600,
                                             "currency": "CNY", "received_on": "2026-12-02"})
    assert paid.status_code == 201, paid.get_json()


def _painted(page: Any, selector: str) -> int:
    """How many pixels of a canvas are painted (not transparent)."""
    return int(page.evaluate("""(selector) => {
        const canvas = document.querySelector(selector);
        const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        let painted = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted += 1;
        return painted;
    }""", selector))


def _cells(page: Any, group: str) -> list[str]:
    return [c.strip() for c in page.locator(f"#report-table tr[data-group='{group}'] td").all_text_contents()]


def test_the_reports_tab_draws_the_period(browser, live, shots):  # noqa: F811
    _seed(live)
    expected = live.client().get("/v1/reports?from=2026-12-01&to=2026-12-07&group_by=crew").get_json()
    lines = {line["group"]: line for line in expected["groups"]}
    assert (lines["crew-a"]["visits_made"], lines["crew-a"]["contacts"], lines["crew-a"]["recovered_amount"]) == (
        3, 2, 600.0)
    assert (lines["crew-b"]["visits_made"], lines["crew-b"]["promises_made"]) == (2, 1)

    page = new_page(browser, live, DESKTOP)
    page.goto(f"{live.url}/web/?date={DAY}")
    login(page, live.token("dispatcher"))
    page.click("#reports-tab")
    page.wait_for_selector("#reports-view:not([hidden])")
    assert page.locator("#app").is_hidden()
    page.fill("#report-from", "2026-12-01")
    page.fill("#report-to", "2026-12-07")
    page.click("#report-run")
    page.wait_for_selector("#reports-view[data-ready='2026-12-01:2026-12-07:crew']")

    crew_a = _cells(page, "crew-a")  # group, planned, made, contact rate, promises, kept rate, promised, recovered …
    assert crew_a[:4] == ["crew-a", "3", "3", "66.7 %"]
    assert crew_a[4] == "1 (1 / 1)" and crew_a[5] == "100.0 %"
    assert crew_a[6] == "CNY 600.00" and crew_a[7] == "CNY 600.00"
    assert crew_a[10] == f"CNY {lines['crew-a']['cost']:,.2f}"
    assert _cells(page, "crew-b")[:4] == ["crew-b", "3", "2", "100.0 %"]
    total = [c.strip() for c in page.locator("#report-table tfoot td").all_text_contents()]
    assert total[:3] == ["Total", "6", "5"]
    assert "5 of 6 visits made" in (page.locator("#report-summary").text_content() or "")
    for canvas in ("#chart-results", "#chart-amounts"):
        assert _painted(page, canvas) > 2000, canvas  # bars, axes and legend drawn
    shots(page, "reports")

    with page.expect_download() as download_info:
        page.click("#report-csv")
    download = download_info.value
    assert download.suggested_filename == "doorstep-report-2026-12-01-2026-12-07-crew.csv"
    with open(download.path(), encoding="utf-8") as handle:
        rows = list(csv.DictReader(io.StringIO(handle.read())))
    assert [r["crew"] for r in rows] == ["crew-a", "crew-b", "(total)"]
    assert rows[0]["recovered_amount"] == "600.0" and rows[-1]["visits_made"] == "5"

    page.select_option("#report-group", "bucket")
    page.wait_for_selector("#reports-view[data-ready='2026-12-01:2026-12-07:bucket']")
    buckets = page.locator("#report-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.group)")
    assert buckets == ["M0", "M1", "M2", "M3+"]
    assert _cells(page, "M3+")[:3] == ["M3+", "2", "1"]  # v2 (75 days) made, v5 (120 days) not
    page.click(".view-tab[data-view='plan']")
    page.wait_for_selector("#app:not([hidden])")
    assert page.locator("#reports-view").is_hidden()
    assert_clean(page)
    close_page(page)
