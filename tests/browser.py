"""Headless Chromium for the web pages' end-to-end tests (Debian's chromium, driven by Playwright
with the system browser; never ``playwright install``).

One browser per xdist worker: ``tests/conftest.py`` puts every test that uses the ``browser``
fixture into one xdist group, so the browser tests run one after another on one worker and share
this browser (each launch costs about 2 s of CPU; six at once on two cores made the suite slower).

Its tabs are reused too (:class:`Tabs`): a new context and page cost Chromium about 0.5 s of CPU
(three renderer processes: the blank page's, a spare one and the site's), a navigation in an open
tab 0.15 s. Measured on 45 pages: 30 s of Chromium CPU in new contexts, 8.8 s in one reused tab.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

__all__ = ["CHROMIUM_ARGS", "Tabs", "chromium_path", "launch"]

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    """``$DOORSTEP_CHROMIUM`` when set (only it), else Debian's chromium."""
    chosen = os.environ.get("DOORSTEP_CHROMIUM")
    candidates = [chosen] if chosen else ["/usr/bin/chromium", shutil.which("chromium"),
                                          shutil.which("chromium-browser")]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def launch() -> Iterator[Any]:
    """A launched Chromium (Playwright ``Browser``), closed when the generator ends; skips, saying
    why, without Chromium or Playwright."""
    executable = chromium_path()
    if executable is None:
        where = os.environ.get("DOORSTEP_CHROMIUM") or "/usr/bin/chromium"
        pytest.skip(f"no Chromium at {where}: apt-get install chromium (.ci/run does), or set DOORSTEP_CHROMIUM")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright for Python is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Tabs:
    """The tabs of one Chromium, each in a browser context of its own, lent out clean and taken back.

    :meth:`take` hands out a free tab (or opens one) after wiping what an earlier test left
    for the origin it is about to visit: cookies, local and session storage, the HTTP cache.
    Two tabs lent at once are in two contexts, so their storage is apart (an agent's page
    and a dispatcher's, logged in with two tokens). A page navigated anew starts a fresh
    document: no script state survives. :meth:`give_back` removes the event handlers the
    test added. A tab never given back (a failed test) stays out of the pool.
    """

    def __init__(self, browser: Any) -> None:
        self.browser = browser
        self.free: list[Any] = []
        self.handlers: dict[int, list[tuple[str, Any]]] = {}

    def take(self, origin: str, viewport: dict[str, int]) -> Any:
        """A clean tab at ``viewport`` on a blank page of ``origin`` (e.g. ``http://127.0.0.1:8000``)."""
        if self.free:
            page = self.free.pop()
        else:
            context = self.browser.new_context(viewport=viewport, locale="en-GB", timezone_id="Asia/Shanghai")
            page = context.new_page()
        page.set_viewport_size(viewport)
        page.context.clear_cookies()
        session = page.context.new_cdp_session(page)
        try:
            session.send("Network.clearBrowserCache")
        finally:
            session.detach()
        page.goto(f"{origin}/web/static/web.css")  # a document of the origin that runs no script
        page.evaluate("() => { localStorage.clear(); sessionStorage.clear(); }")
        self.handlers[id(page)] = []
        return page

    def on(self, page: Any, event: str, handler: Any) -> None:
        """``page.on(event, handler)``, removed when the tab is given back."""
        page.on(event, handler)
        self.handlers.setdefault(id(page), []).append((event, handler))

    def give_back(self, page: Any) -> None:
        """Take a tab back: its handlers removed, its page blank (the app's pages poll the server
        and run timers, which went on in a tab left on them until the browser closed)."""
        for event, handler in self.handlers.pop(id(page), []):
            page.remove_listener(event, handler)
        page.goto("about:blank")
        self.free.append(page)
