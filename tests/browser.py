"""Headless Chromium for the web pages' end-to-end tests (Debian's chromium, driven by Playwright
with the system browser; never ``playwright install``).

One browser per xdist worker: ``tests/conftest.py`` puts every test that uses the ``browser``
fixture into one xdist group, so the browser tests run one after another on one worker and share
this browser (each launch costs about 2 s of CPU; six at once on two cores made the suite slower).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

__all__ = ["CHROMIUM_ARGS", "chromium_path", "launch"]

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
