"""Fixtures for the web-service tests (tests/test_app_*.py).

Apps get a real SQLite file under ``tmp_path`` (or the real Redis on
127.0.0.1:6379 under a key prefix of their own, cleaned up afterwards) and the
straight-line travel model, so planning runs the real solver without loading
the road network. Auth is on, as in production: every app gets a dispatcher
token and its test clients send it; ``app.test_client(token=...)`` sends
another (``token=""``: none), and the ``token`` fixture makes tokens.
"""

from __future__ import annotations

import copy
import gc
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from solver.processes import process_state
from tests.lazyroutes import defer_url_builders

defer_url_builders()  # ~430 apps: each rule's url_for builders compile on first use (tests/lazyroutes.py)

# Keep compiled bytecode even where PYTHONDONTWRITEBYTECODE is set: the suite starts many Python
# processes (job children, RQ workers, gunicorn, scripts), and each would compile every module again.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_WARMUP = pytest.StashKey["subprocess.Popen[bytes]"]()


def pytest_configure(config: pytest.Config) -> None:
    """The controller (not an xdist worker) starts :mod:`tests.warmup` beside the workers.

    ``DOORSTEP_TEST_WARMUP=0`` turns it off. The workers inherit
    ``DOORSTEP_TEST_WARMUP_PID`` and ``DOORSTEP_TEST_WARMUP_DONE`` (the file the
    warm-up creates when it ends), for :func:`warm_map`.
    """
    if hasattr(config, "workerinput") or os.environ.get("DOORSTEP_TEST_WARMUP", "1") == "0":
        return
    if not getattr(config.option, "numprocesses", None):  # one process runs the tests itself
        return
    done = os.path.join(tempfile.mkdtemp(prefix="doorstep-warmup-"), "done")
    os.environ["DOORSTEP_TEST_WARMUP_DONE"] = done
    config.stash[_WARMUP] = subprocess.Popen(
        [sys.executable, "-m", "tests.warmup"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    os.environ["DOORSTEP_TEST_WARMUP_PID"] = str(config.stash[_WARMUP].pid)
    _rewrite_ahead(config)


def _rewrite_ahead(config: pytest.Config) -> None:
    """Rewrite the test modules' asserts once, here, before the xdist workers start.

    pytest rewrites each test module's asserts on import and caches the result in
    ``__pycache__``; on a fresh clone the four workers import every module at once, find no
    cache, and each rewrites all of them: 3.3 s of CPU per worker (collection 6.2 s against
    2.9 s with the cache). Done here, beside the warm-up, once. It uses pytest's own rewriting
    (``_pytest.assertion.rewrite``, a private module): if that ever changes, this does nothing
    and the workers rewrite for themselves, as before; nothing the tests see changes.
    """
    try:
        from _pytest.assertion import rewrite

        state = config.stash[rewrite.assertstate_key]
        modules = [*sorted(Path(ROOT, "tests").glob("test_*.py")), Path(ROOT, "tests", "conftest.py")]
        for source in modules:
            cache = rewrite.get_cache_dir(source)
            pyc = cache / (source.name[:-3] + rewrite.PYC_TAIL)
            if rewrite._read_pyc(source, pyc) is not None or not rewrite.try_makedirs(cache):
                continue
            stat, code = rewrite._rewrite_test(source, config)
            rewrite._write_pyc(state, code, stat, pyc)
    except Exception:  # an optimisation only (see above)
        return


#: The worker's Chromium while its browser tests run: the launched browser and the generator that closes it.
_BROWSER: dict[str, Any] = {}


@pytest.fixture
def browser() -> Any:
    """Headless Chromium (:mod:`tests.browser`), one per worker: the browser tests share an xdist
    group (:func:`pytest_collection_modifyitems`), so they run one after another on one worker.
    Its reusable tabs are ``browser.tabs`` (:class:`tests.browser.Tabs`). Launched by the first
    browser test and closed after the last one (:func:`pytest_runtest_teardown`): left open until the
    session ended, it kept about 8 s of CPU busy on the two cores after its tests were done."""
    from tests.browser import Tabs, launch

    if "browser" not in _BROWSER:
        closer = launch()
        launched = next(closer)  # skips the test, saying why, without Chromium or Playwright
        launched.tabs = Tabs(launched)
        _BROWSER.update(browser=launched, closer=closer)
    return _BROWSER["browser"]


def _close_browser() -> None:
    """Close the worker's Chromium and its Playwright driver, if one is running."""
    closer = _BROWSER.pop("closer", None)
    _BROWSER.pop("browser", None)
    if closer is not None:
        next(closer, None)  # the rest of tests.browser.launch: closes the browser, then Playwright


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """After the test's own fixtures are torn down: close Chromium when this was the worker's last
    browser test in a row (the browser tests form one xdist group, handed to one worker together)."""
    yield
    if "browser" in getattr(item, "fixturenames", ()) and (
            nextitem is None or "browser" not in getattr(nextitem, "fixturenames", ())):
        _close_browser()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Close a Chromium still running (a run stopped early, ``-x``)."""
    _close_browser()


@pytest.fixture(scope="session")
def warm_map() -> None:
    """Wait until the warm-up the controller started (:mod:`tests.warmup`) has stored the
    bundled network and compiled the numba kernels (at most 5 minutes; no wait without one).

    For tests early in the suite's order that need the bundled map in the test process: run
    beside the warm-up on a fresh clone, such a test built the network and compiled every
    kernel again (``doorstep demo``: 19.5 s of CPU instead of 2.7 s).
    """
    done, pid = os.environ.get("DOORSTEP_TEST_WARMUP_DONE"), os.environ.get("DOORSTEP_TEST_WARMUP_PID")
    if not done or not pid:
        return
    deadline = time.monotonic() + 300
    while not os.path.exists(done) and process_state(int(pid)) not in (None, "Z") and time.monotonic() < deadline:
        time.sleep(0.1)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the warm-up if the suite ended first; remove its done file."""
    warmup = config.stash.get(_WARMUP, None)
    if warmup is None:
        return
    if warmup.poll() is None:
        warmup.kill()
        warmup.wait()
    done = os.environ.pop("DOORSTEP_TEST_WARMUP_DONE", None)
    os.environ.pop("DOORSTEP_TEST_WARMUP_PID", None)
    if done:
        shutil.rmtree(os.path.dirname(done), ignore_errors=True)


#: The Redis the tests use (a database of its own; keys under a per-test prefix).
REDIS_URL = os.environ.get("DOORSTEP_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

DAY = "2026-12-01"

#: A small day in central Shanghai: two crews, six visits with windows.
_PAYLOAD: dict[str, Any] = {
    "date": DAY,
    "timezone": "Asia/Shanghai",
    "visits": [
        {
            "id": f"v{i}",
            "case_id": f"CASE-{i:03d}",
            "duration_min": 30,
            "priority": 60,
            "purpose": "repayment plan follow-up",
            "borrower": {"name": f"Borrower {i}", "phone": f"1380000{i:04d}"},
            "addresses": [
                {
                    "text": f"Test road {i}",
                    "location": {"lat": lat, "lon": lon},
                    "time_windows": [{"start": start, "end": end}],
                }
            ],
        }
        for i, (lat, lon, start, end) in enumerate(
            [
                (31.2210, 121.4640, "09:00", "11:00"),
                (31.2250, 121.4700, "10:00", "12:00"),
                (31.2300, 121.4780, "14:00", "16:00"),
                (31.2350, 121.4820, "09:30", "10:30"),
                (31.2380, 121.4660, "13:00", "17:00"),
                (31.2330, 121.4740, "15:00", "16:30"),
            ]
        )
    ],
    "agents": [
        {
            "id": "crew-a",
            "members": ["Agent A1", "Agent A2"],
            "shift": {"start": "08:30", "end": "18:00"},
            "start": {"text": "Branch A", "location": {"lat": 31.2300, "lon": 121.4740}},
        },
        {
            "id": "crew-b",
            "members": ["Agent B1", "Agent B2"],
            "shift": {"start": "08:30", "end": "18:00"},
            "start": {"text": "Branch B", "location": {"lat": 31.2260, "lon": 121.4800}},
        },
    ],
    # searches stop after 10 iterations, long before the time limit (the small day needs few):
    # the limit only leaves room for compiling and timing on a loaded machine
    "options": {"time_limit_s": 5, "max_iterations": 10},
}


@pytest.fixture
def payload() -> Callable[[], dict[str, Any]]:
    """A factory of fresh copies of the small test day (mutate freely)."""
    return lambda: copy.deepcopy(_PAYLOAD)


class AuthClient(FlaskClient):
    """A test client sending ``Authorization: Bearer <token>`` (the app's
    dispatcher token unless another is given; ``token=""`` sends none)."""

    def __init__(self, *args: Any, token: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if token is None:
            token = self.application.config.get("TEST_DISPATCHER_TOKEN")
        if token:
            self.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"


def _redis_available() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.exceptions.ConnectionError:
        pytest.fail(
            f"Redis is not answering at {REDIS_URL}: start it with "
            "`redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no`"
        )


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own in the test Redis; its keys are deleted afterwards."""
    from app.store.redis import RedisStore

    _redis_available()
    prefix = f"doorstep-test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    store = RedisStore(REDIS_URL, prefix=prefix)
    store.drop_all()
    store.close()


@pytest.fixture
def make_app(tmp_path, request) -> Iterator[Callable[..., Any]]:
    """Build apps on ``tmp_path/data`` with straight-line travel; closed after the test.
    ``make_app(redis=True)`` puts the store on the test Redis (jobs stay in-process
    unless ``JOBS="rq"``)."""
    from app import create_app
    from app.auth import create_token
    from solver.travel import StraightLineTravel

    apps = []

    def make(redis: bool = False, **config: Any):
        settings: dict[str, Any] = {"DATA_DIR": str(tmp_path / "data"), "TRAVEL": StraightLineTravel()}
        if redis:
            prefix = request.getfixturevalue("redis_prefix")
            settings.update({"STORE": "redis", "REDIS_URL": REDIS_URL, "REDIS_PREFIX": prefix, "JOBS": "thread",
                             "RQ_QUEUE": f"{prefix}queue"})
        settings.update(config)
        app = create_app(settings)
        app.test_client_class = AuthClient
        app.config["TEST_DISPATCHER_TOKEN"] = create_token(app.extensions["doorstep"].store, "dispatcher")
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["doorstep"].close()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def token(app) -> Callable[..., str]:
    """``token(role, agent_id=None)``: a new bearer token in the app's store."""
    from app.auth import create_token

    return lambda role, agent_id=None: create_token(app.extensions["doorstep"].store, role, agent_id)


@pytest.fixture
def client_as(app, token) -> Callable[..., Any]:
    """``client_as(role, agent_id=None)``: a test client with a new token of that role."""
    return lambda role, agent_id=None: app.test_client(token=token(role, agent_id))


#: Modules that keep one xdist worker busy for long (wall seconds on one worker, measured warm on
#: two cores: a group of tests sharing a module fixture, or tests that wait on servers, workers,
#: browsers or job processes). They are handed out first, longest first: started late, such a module
#: ended the suite alone while the other workers sat idle (a 25 s tail). The rest follow in file order,
#: small units that even out the end. The browser modules form one group (they share a Chromium), which
#: starts where its first module is listed.
LONG_MODULES: dict[str, int] = {
    "test_web_browser": 34,
    "test_app_fuzz": 21,
    "test_geo_store": 13,
    "test_server": 13,
    "test_gazetteer": 12,
    "test_web_imprecise": 11,
    "test_web_cases_browser": 10,
    "test_jobs_isolation": 8,
    "test_split": 8,
    "test_app_jobs": 7,
    "test_map_import": 7,
    "test_geo_loading": 7,
    "test_web_plansets_browser": 6,
    "test_routing_server": 5,
    "test_web_reports_browser": 5,
}


@pytest.hookimpl(tryfirst=True)  # before xdist's worker reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist, the tests of a module that use one of its module-scoped fixtures (a
    gazetteer, a network, a server, a solved day) run on one worker, which builds the fixture
    once: spread over the four workers, each built it again (``--dist loadgroup`` in
    pyproject.toml; the other tests are handed out one by one as with ``--dist load``). The
    browser tests of every module are one group, sharing the worker's Chromium (spread, six
    Chromiums at once on two cores made the suite slower: fresh clone 127 s against 113-122 s).
    The :data:`LONG_MODULES` come first (a stable sort: the order within a module stays; every
    worker sorts the same way)."""
    for item in items:
        module = getattr(item, "module", None)
        info = getattr(item, "_fixtureinfo", None)
        if module is None or info is None:
            continue
        if "browser" in info.name2fixturedefs:  # one group: they share the worker's one Chromium
            item.add_marker(pytest.mark.xdist_group("browser"))
        elif any(defs and defs[-1].scope == "module" for defs in info.name2fixturedefs.values()):
            item.add_marker(pytest.mark.xdist_group(module.__name__))
    items.sort(key=lambda item: -LONG_MODULES.get(item.path.stem, 0))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Freeze the heap the collection built (every test module, the solver, the app, hypothesis,
    schemathesis) out of the garbage collector's view (:func:`gc.freeze`): each full collection
    walked all of it again, about 20 times per worker, 3.5 s of CPU per worker (measured with
    ``gc.callbacks``); frozen, the full collections walk only what the tests made. Objects are
    still freed by reference counting; only cycles made before the freeze are never collected.
    The young generation's threshold goes from 700 to 10,000 allocations: the tests allocate
    much and keep little, and each young collection promoted what survived towards the next
    full one (about 5 s of CPU less in all, per ``gc.callbacks``)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
