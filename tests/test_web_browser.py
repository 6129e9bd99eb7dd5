"""End-to-end tests of the web pages in headless Chromium (Debian's chromium,
driven by Playwright with the system browser; never ``playwright install``).

A live server (werkzeug, a free port on 127.0.0.1) runs the app on an SQLite
file under ``tmp_path`` with the bundled road network. The tests log in with
tokens, upload a demo day, plan it, check the map, timeline and figures, open
an agent's page, report an outcome, re-plan with a cancelled visit and see
what moved. Every page is saved as a screenshot under ``tmp_path`` and
``$DOORSTEP_ARTIFACTS/web`` (default ``/tmp/doorstep-artifacts/web``).

Without Chromium (or Playwright) the tests skip, saying so; ``.ci/run``
installs Chromium.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

#: Playwright waits this long (ms) for anything.
TIMEOUT_MS = 30_000
DESKTOP = {"width": 1440, "height": 1000}
PHONE = {"width": 390, "height": 844}


# --------------------------------------------------------------------------- #
# Browser, server, artefacts
# --------------------------------------------------------------------------- #
class LiveServer:
    def __init__(self, app: Any) -> None:
        from werkzeug.serving import make_server

        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="web-test-server", daemon=True)
        self.thread.start()

    @property
    def store(self) -> Any:
        return self.app.extensions["doorstep"].store

    def token(self, role: str, agent_id: str | None = None) -> str:
        from app.auth import create_token

        return create_token(self.store, role, agent_id)

    def client(self, role: str = "dispatcher", agent_id: str | None = None) -> Any:
        """A Flask test client on the same app and store (to check what the browser did)."""
        client = self.app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {self.token(role, agent_id)}"
        return client

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)
        self.app.extensions["doorstep"].close()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, warm_map: None) -> Iterator[LiveServer]:
    """A live server planning on the bundled road network, once the warm-up has stored it (its jobs
    would otherwise build it beside the warm-up: the suite starts with this module)."""
    from app import create_app

    # TRAVEL None: the bundled road network plans, and routes follow the streets
    app = create_app({"DATA_DIR": str(tmp_path_factory.mktemp("web-data")), "TRAVEL": None})
    server = LiveServer(app)
    yield server
    server.close()


@pytest.fixture
def shots(tmp_path: Path) -> Any:
    """``shots(page, name)``: a full-page screenshot to tmp_path and the artefact folder."""
    folder = Path(os.environ.get("DOORSTEP_ARTIFACTS") or "/tmp/doorstep-artifacts") / "web"

    def shoot(page: Any, name: str, full_page: bool = True) -> Path:
        path = tmp_path / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, folder / path.name)
        except OSError:  # a read-only artefact folder must not fail the test
            pass
        return path

    return shoot


def new_page(browser: Any, live: LiveServer, viewport: dict[str, int], context: Any = None) -> Any:
    """A clean tab of ``browser`` (:class:`tests.browser.Tabs`), or a new page of ``context`` (a context
    with options of its own), recording requests that leave the server and errors in the page.
    Given back with :func:`close_page`."""
    if context is None:
        page = browser.tabs.take(live.url, viewport)
        on = lambda event, handler: browser.tabs.on(page, event, handler)  # noqa: E731 - removed when given back
    else:
        page = context.new_page()
        on = page.on
    page.set_default_timeout(TIMEOUT_MS)
    page.offsite = []  # type: ignore[attr-defined]
    page.errors = []  # type: ignore[attr-defined]
    page.tabs = browser.tabs if context is None else None  # type: ignore[attr-defined]
    origin = urlsplit(live.url).netloc

    def on_request(request: Any) -> None:
        url = urlsplit(request.url)
        if url.scheme in ("http", "https", "ws", "wss") and url.netloc != origin:
            page.offsite.append(request.url)  # type: ignore[attr-defined]

    on("request", on_request)
    on("pageerror", lambda exc: page.errors.append(str(exc)))  # type: ignore[attr-defined]

    def on_console(message: Any) -> None:
        # HTTP errors the page handles (401 for a bad token, 404 for an unknown crew) are logged
        # by the browser as "Failed to load resource"; anything else is a bug
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            page.errors.append(message.text)  # type: ignore[attr-defined]

    on("console", on_console)
    return page


def close_page(page: Any) -> None:
    """The end of a page of :func:`new_page`: its tab goes back to the pool, or its context is closed."""
    if page.tabs is not None:
        page.tabs.give_back(page)
    else:
        close_page(page)


def login(page: Any, token: str) -> None:
    page.fill("#token-input", token)
    page.click("#login-btn")
    page.wait_for_selector("#app:not([hidden])")


def demo_problem(date: str, time_limit_s: float = 10.0) -> dict[str, Any]:
    from solver.demo import generate_day

    problem = generate_day(seed=0, visits=12, crews=3, date=dt.date.fromisoformat(date))
    payload = problem.model_dump(mode="json", exclude_none=True)
    payload["options"]["time_limit_s"] = time_limit_s
    # the pages are under test, not the search: it stops after 10 iterations; the limit only caps it
    # (it counts geocoding and the matrix too: 1 s planned nothing on a machine loaded at the suite's start)
    payload["options"]["max_iterations"] = 10
    return payload


def plan_by_api(live: LiveServer, date: str) -> dict[str, Any]:
    response = live.client().post("/v1/plans?wait=120", json=demo_problem(date))
    assert response.status_code == 201, response.get_json()
    return response.get_json()["plan"]


def assert_clean(page: Any) -> None:
    assert page.offsite == [], f"requests left the server: {page.offsite}"  # type: ignore[attr-defined]
    assert page.errors == [], f"errors in the page: {page.errors}"  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- #
# Dispatcher: upload, plan, map, timeline, figures
# --------------------------------------------------------------------------- #
def test_dispatcher_uploads_plans_and_sees_the_day(browser, live, shots, tmp_path):
    date = "2026-12-01"
    day_file = tmp_path / "day.json"
    day_file.write_text(json.dumps(demo_problem(date), ensure_ascii=False), encoding="utf-8")
    page = new_page(browser, live, DESKTOP)
    page.goto(f"{live.url}/web/")
    page.wait_for_selector("#login:not([hidden])")

    page.fill("#token-input", "ds_not-a-token")
    page.click("#login-btn")
    page.wait_for_selector("#login-error:has-text('unknown or revoked')")
    login(page, live.token("dispatcher"))
    page.wait_for_selector("#map path.street")  # the street network is drawn

    page.set_input_files("#json-file", str(day_file))
    page.wait_for_selector("#input-summary:has-text('12 visits, 3 crews')")
    page.click("#plan-btn")
    page.wait_for_selector("#job:not([hidden])")
    page.wait_for_selector("#crew-table tbody tr", timeout=90_000)
    assert page.locator("#job").get_attribute("data-status") == "succeeded"

    plan = live.client().get(f"/v1/plans/{date}").get_json()["plan"]
    routes = plan["routes"]
    summary = plan["summary"]
    assert summary["visits_total"] == 12 and summary["visits_planned"] >= 6
    # one coloured route line per crew with visits, following the streets
    drawn = page.locator("#map path.route")
    with_stops = [r for r in routes if r["stops"]]
    assert drawn.count() == len(with_stops)
    assert sorted(drawn.nth(i).get_attribute("data-agent") for i in range(drawn.count())) == \
        sorted(r["agent_id"] for r in with_stops)
    colours = {drawn.nth(i).get_attribute("stroke") for i in range(drawn.count())}
    assert len(colours) == len(with_stops)
    assert all(len(drawn.nth(i).get_attribute("d").split("L")) > len(r["stops"]) + 2
               for i, r in enumerate(with_stops))  # street geometry, not straight legs
    assert page.locator("#map path.street").count() > 3
    # numbered stops, in each crew's order
    for route in with_stops:
        markers = page.locator(f"#map g.stop-marker[data-agent='{route['agent_id']}']")
        assert markers.count() == len(route["stops"])
        numbers = [markers.nth(i).locator("text").text_content() for i in range(markers.count())]
        visits = [markers.nth(i).get_attribute("data-visit") for i in range(markers.count())]
        assert numbers == [str(i + 1) for i in range(len(route["stops"]))]
        assert visits == [s["visit_id"] for s in route["stops"]]
    assert page.locator("#map g.unassigned-marker").count() == len(plan["unassigned"])
    assert page.locator("#unassigned li.unassigned-item").count() == len(plan["unassigned"])
    # timeline: one row per crew, a bar per visit
    assert page.locator("#timeline .crew-row").count() == len(routes) == 3
    assert page.locator("#timeline .tl-visit").count() == summary["visits_planned"]
    assert page.locator("#timeline .tl-slot").count() == sum(1 for r in routes for s in r["stops"] if s["slot"])
    # key figures
    expected = f"{summary['visits_planned']} / {summary['visits_total']}"
    assert page.locator("#fig-visits .tile-value").text_content() == expected
    assert page.locator("#fig-priority .tile-value").text_content() == \
        f"{summary['priority_planned']} / {summary['priority_total']}"
    assert page.locator("#crew-table tbody tr").count() == len(routes)

    # hover a stop: its details; click it: the details panel
    first = with_stops[0]["stops"][0]["visit_id"]
    marker = page.locator(f"#map g.stop-marker[data-visit='{first}']")
    marker.hover()
    page.wait_for_selector(f"#mapwrap .tooltip:not([hidden]):has-text('{first}')")
    marker.click()
    page.wait_for_selector(f"#details:not([hidden]):has-text('Visit {first}')")
    assert page.locator("#details").get_by_text("Borrower").count() == 1
    page.mouse.move(700, 990)  # off the marker: the tooltip goes, the details stay
    page.wait_for_selector("#mapwrap .tooltip", state="hidden")
    shots(page, "dispatcher")
    assert_clean(page)
    close_page(page)


# --------------------------------------------------------------------------- #
# Agent: itinerary in order, outcome
# --------------------------------------------------------------------------- #
def test_agent_sees_its_stops_in_order_and_reports_an_outcome(browser, live, shots):
    date = "2026-12-02"
    plan = plan_by_api(live, date)
    route = max(plan["routes"], key=lambda r: len(r["stops"]))
    crew = route["agent_id"]
    page = new_page(browser, live, PHONE)
    keys: list[str | None] = []
    page.on("request", lambda r: "/outcome" in r.url and keys.append(r.headers.get("idempotency-key")))
    page.goto(f"{live.url}/web/agent?date={date}")
    login(page, live.token("agent", crew))
    page.wait_for_selector("li.stop-card")

    cards = page.locator("li.stop-card")
    assert cards.count() == len(route["stops"])
    assert [cards.nth(i).get_attribute("data-visit") for i in range(cards.count())] == \
        [s["visit_id"] for s in route["stops"]]
    assert [cards.nth(i).locator(".seq").text_content() for i in range(cards.count())] == \
        [str(i + 1) for i in range(len(route["stops"]))]
    first = cards.nth(0)
    assert first.locator("a.nav-amap").get_attribute("href").startswith("https://uri.amap.com/navigation?to=")
    assert first.locator("a.nav-geo").get_attribute("href").startswith("geo:")
    assert first.locator("a.tel").get_attribute("href").startswith("tel:")  # its own borrower's phone
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # no sideways scrolling

    visit = route["stops"][0]["visit_id"]
    first.locator(".btn-complete").click()
    first.locator("select.result").select_option("paid")
    first.locator("input.amount").fill("500")
    first.locator("textarea.note").fill("paid in cash")
    first.locator(".btn-submit-outcome").click()
    page.wait_for_selector(f"#status:has-text('Saved: {visit} completed (paid)')")
    page.wait_for_selector(f"li.stop-card[data-visit='{visit}'] .status-chip:has-text('completed')")
    assert len(keys) == 1 and keys[0]

    itinerary = live.client().get(f"/v1/agents/{crew}/itinerary?date={date}").get_json()
    stop = next(s for s in itinerary["stops"] if s["visit_id"] == visit)
    assert (stop["status"], stop["result"]) == ("completed", "paid")
    outcomes = [json.loads(o) for o in live.store.list_outcomes(date, visit)]
    assert len(outcomes) == 1
    assert (outcomes[0]["amount"], outcomes[0]["recorded_by"], outcomes[0]["note"]) == (500, "agent", "paid in cash")
    page.locator("li.stop-card").nth(1).locator(".btn-complete").click()  # an open form, for the screenshot
    shots(page, "agent", full_page=False)  # what the phone shows
    shots(page, "agent-full")
    assert_clean(page)
    close_page(page)


# --------------------------------------------------------------------------- #
# Re-plan: what moved, on both pages
# --------------------------------------------------------------------------- #
def test_replan_with_a_cancelled_visit_shows_what_moved(browser, live, shots):
    date = "2026-12-03"
    plan = plan_by_api(live, date)
    route = max(plan["routes"], key=lambda r: len(r["stops"]))
    crew = route["agent_id"]
    cancelled = route["stops"][0]["visit_id"]

    # the crew looks at its day first (the version it has seen)
    agent = new_page(browser, live, PHONE)
    agent.goto(f"{live.url}/web/agent?date={date}")
    login(agent, live.token("agent", crew))
    agent.wait_for_selector(f"li.stop-card[data-visit='{cancelled}']")
    assert agent.locator("#changes-banner").is_hidden()

    page = new_page(browser, live, DESKTOP)
    page.goto(f"{live.url}/web/dispatcher?date={date}")
    login(page, live.token("dispatcher"))
    page.wait_for_selector("#crew-table tbody tr")
    page.select_option("#cancel-select", cancelled)
    page.click("#cancel-add")
    page.wait_for_selector(f"#replan-chips .chip:has-text('cancel {cancelled}')")
    # and an urgent visit at a point on the map
    page.click("#urgent summary")
    page.fill("#urgent-lat", "31.2300")
    page.fill("#urgent-lon", "121.4750")
    page.fill("#urgent-address", "上海市黄浦区福州路100号")
    page.fill("#urgent-from", "09:00")
    page.fill("#urgent-to", "20:00")
    page.uncheck("#urgent-required")
    page.click("#urgent-add")
    page.wait_for_selector("#replan-chips .chip:has-text('add URGENT-1')")
    page.click("#replan-btn")
    page.wait_for_selector("#changes-panel:not([hidden])", timeout=90_000)

    day = live.client().get(f"/web/api/days/{date}").get_json()
    assert day["version"] == 2
    assert page.locator("#version-select").input_value() == "2"
    items = {c["visit_id"]: c for c in day["changes"]["items"]}
    assert items[cancelled]["kinds"] == ["closed"]
    shown = page.locator("#changes li.change")
    assert shown.count() == len(items)
    assert "closed" in page.locator(f"#changes li.change[data-visit='{cancelled}']").get_attribute("class")
    assert page.locator("#changes li.change[data-visit='URGENT-1']").count() == 1
    moved = [v for v, c in items.items() if {"crew", "order", "added", "planned"} & set(c["kinds"])
             and any(s["visit_id"] == v for r in day["plan"]["routes"] for s in r["stops"])]
    assert page.locator("#map g.stop-marker.moved").count() == len(moved)
    assert page.locator("#timeline .tl-visit.moved").count() == len(moved)
    assert page.locator(f"#map g.stop-marker[data-visit='{cancelled}']").count() == 0
    assert page.locator("#replan-chips .chip").count() == 0  # the changes were sent
    page.locator("#changes-panel").scroll_into_view_if_needed()
    shots(page, "dispatcher-replan")
    assert_clean(page)

    # the crew's page shows what changed since the version it saw
    agent.click("#refresh")
    agent.wait_for_selector("#changes-banner:not([hidden])")
    assert "v1 → v2" in agent.locator("#changes-text").text_content()
    assert agent.locator(f"#removed li[data-visit='{cancelled}']").count() == 1
    assert agent.locator(f"li.stop-card[data-visit='{cancelled}']").count() == 0
    shots(agent, "agent-changes", full_page=False)
    agent.click("#ack")
    agent.wait_for_selector("#changes-banner", state="hidden")
    agent.reload()
    agent.wait_for_selector("li.stop-card, li.empty")
    assert agent.locator("#changes-banner").is_hidden()
    assert_clean(agent)
    close_page(page)
    close_page(agent)


def test_agent_page_for_a_dispatcher_picks_a_crew(browser, live):
    date = "2026-12-04"
    plan = plan_by_api(live, date)
    crew = plan["routes"][0]["agent_id"]
    page = new_page(browser, live, PHONE)
    started = time.perf_counter()
    page.goto(f"{live.url}/web/agent?date={date}&agent={crew}")
    login(page, live.token("dispatcher"))
    page.wait_for_selector("#crew-pick:not([hidden])")
    page.wait_for_selector("li.stop-card, li.empty")
    assert page.locator("li.stop-card").count() == len(plan["routes"][0]["stops"])
    page.fill("#crew-input", "crew-nobody")
    page.click("#load")
    page.wait_for_selector("#status:has-text('No visits for crew-nobody')")
    assert time.perf_counter() - started < 20
    assert_clean(page)
    close_page(page)


def test_agent_of_a_crew_marked_absent_is_told(browser, live, shots):
    date = "2026-12-07"
    plan = plan_by_api(live, date)
    route = max(plan["routes"], key=lambda r: len(r["stops"]))
    crew = route["agent_id"]
    page = new_page(browser, live, PHONE)
    page.goto(f"{live.url}/web/agent?date={date}")
    login(page, live.token("agent", crew))
    page.wait_for_selector("li.stop-card")

    first_start = min(r["start"] for r in plan["routes"])
    body = {"now": first_start, "crews": [{"agent_id": crew, "absent": True}]}
    response = live.client().post(f"/v1/plans/{date}/reoptimize?wait=120", json=body)
    assert response.status_code == 201, response.get_json()

    page.click("#refresh")
    page.wait_for_selector("#changes-banner:not([hidden]):has-text('not in the current plan')")
    assert page.locator("li.stop-card").count() == 0
    assert page.locator("#removed li").count() == len(route["stops"])
    shots(page, "agent-absent", full_page=False)
    assert_clean(page)
    close_page(page)


# --------------------------------------------------------------------------- #
# Slot confirmations (issue 13): the agent records the borrower's answer, both pages show it
# --------------------------------------------------------------------------- #
def test_slot_confirmations_on_the_agent_page_and_the_dispatcher_timeline(browser, live, shots):
    date = "2026-12-07"
    plan = plan_by_api(live, date)
    route = max(plan["routes"], key=lambda r: len(r["stops"]))
    crew = route["agent_id"]
    first, second = route["stops"][0]["visit_id"], route["stops"][1]["visit_id"]
    # the bank's gateway proposed the second stop's slot by SMS
    sms = live.client("system").post(f"/v1/visits/{second}/contact",
                                     json={"date": date, "channel": "sms", "result": "proposed"})
    assert sms.status_code == 201, sms.get_json()

    agent = new_page(browser, live, PHONE)
    agent.goto(f"{live.url}/web/agent?date={date}")
    login(agent, live.token("agent", crew))
    card = agent.locator(f"li.stop-card[data-visit='{first}']")
    card.locator(".confirm-chip[data-confirmation='none']").wait_for()
    assert agent.locator(f"li.stop-card[data-visit='{second}'] .confirm-chip").get_attribute(
        "data-confirmation") == "proposed"
    card.locator(".btn-contact-confirmed").click()
    agent.wait_for_selector(f"li.stop-card[data-visit='{first}'] .confirm-chip[data-confirmation='confirmed']")
    history = live.client().get(f"/v1/visits/{first}/contacts?date={date}").get_json()
    assert history["state"] == "confirmed" and history["attempts"][0]["actor"]["role"] == "agent"
    shots(agent, "agent-confirmations", full_page=False)
    assert_clean(agent)
    close_page(agent)

    page = new_page(browser, live, DESKTOP)
    page.goto(f"{live.url}/web/dispatcher?date={date}")
    login(page, live.token("dispatcher"))
    page.wait_for_selector(f".tl-slot[data-visit='{first}']")
    assert page.locator(f".tl-slot[data-visit='{first}']").get_attribute("data-confirmation") == "confirmed"
    assert page.locator(f".tl-slot[data-visit='{second}']").get_attribute("data-confirmation") == "proposed"
    assert "c-confirmed" in page.locator(f".tl-slot[data-visit='{first}']").get_attribute("class")
    assert page.locator("#fig-rules").text_content().startswith("cn-cba-2026")
    shots(page, "dispatcher-confirmations")
    assert_clean(page)
    close_page(page)
