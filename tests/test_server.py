"""``doorstep serve``: a real gunicorn server on 127.0.0.1, over real HTTP.

One server (two worker processes, four threads each, a 2-second request
deadline) runs for the module on an embedded store in a temporary folder,
planning with straight-line travel. The tests check what a client on the wire
sees: the Server header, the header and body limits, slow clients cut off
while others are served, concurrency across the workers, the itinerary cache
(same bytes as an uncached render, a new version or a recorded outcome shows
at once, ETag / 304), and a clean shutdown on SIGTERM. Then: in a fresh
process, API traffic never loads the road network; two worker processes on
the Redis store agree; the server settings' precedence.
"""

from __future__ import annotations

import concurrent.futures as cf
import copy
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from app.api.render import itinerary
from app.plancache import personalised
from app.store import SQLiteStore
from solver.model import Plan, Problem
from tests.conftest import _PAYLOAD

ROOT = Path(__file__).resolve().parent.parent
DAY = "2026-12-01"
REQUEST_TIMEOUT_S = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A running ``doorstep serve`` and a dispatcher token."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, token: str, data_dir: Path) -> None:
        self.proc, self.port, self.token, self.data_dir = proc, port, token, data_dir

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
                token: str | None = None) -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        sent = {"Authorization": f"Bearer {token or self.token}", **(headers or {})}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=sent)
        response = conn.getresponse()
        response.body = response.read()  # type: ignore[attr-defined]
        conn.close()
        return response

    def raw(self, data: bytes) -> bytes:
        """Send bytes on a new connection; everything the server answers until it closes."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(data)
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)

    def store(self) -> SQLiteStore:
        return SQLiteStore.in_dir(self.data_dir)


def _cli(*args: str) -> str:
    """``doorstep <args>`` run here (click's runner: the CLI's own code, without a fresh interpreter)."""
    from click.testing import CliRunner

    from app.cli import main

    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def _start(data_dir: Path, store_args: list[str], *extra: str) -> Server:
    """``doorstep serve`` on a free port (two processes, four threads, 2 s deadline), ready."""
    token = _cli("token", "create", "--role", "dispatcher", *store_args).strip().splitlines()[-1]
    port = _free_port()
    log = open(data_dir / "serve.log", "wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOORSTEP_SERVE_", "DOORSTEP_REDIS"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port), *store_args,
         "--travel", "straight", "--processes", "2", "--threads", "4", "--keepalive", "2",
         "--request-timeout", str(REQUEST_TIMEOUT_S), "--access-log", str(data_dir / "access.log"), *extra],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env,
    )
    log.close()
    running = Server(proc, port, token, data_dir)
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, (data_dir / "serve.log").read_text()
        try:
            if running.request("GET", "/v1/openapi.json").status == 200:
                return running
        except OSError:
            pass
        assert time.monotonic() < deadline, "doorstep serve did not start"
        time.sleep(0.1)


def _stop(running: Server) -> None:
    if running.proc.poll() is None:
        running.proc.send_signal(signal.SIGTERM)
        running.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("serve")
    running = _start(data_dir, ["--data-dir", str(data_dir)])
    created = running.request("POST", "/v1/plans?wait=60", copy.deepcopy(_PAYLOAD))
    assert created.status == 201, created.body  # type: ignore[attr-defined]
    yield running
    _stop(running)


def _read_response(s: socket.socket) -> bytes:
    """One HTTP response with a Content-Length, read from ``s``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        chunk = s.recv(65536)
        assert chunk
        body += chunk
    return head + b"\r\n\r\n" + body


def _status(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/") else 0


# --------------------------------------------------------------------------- #
# Wire
# --------------------------------------------------------------------------- #
def test_server_header_names_no_product_version(server):
    response = server.request("GET", "/v1/openapi.json")
    assert response.status == 200 and json.loads(response.body)["openapi"].startswith("3.")
    assert response.getheader("Server") == "doorstep"
    assert len(response.headers.get_all("Server")) == 1
    for response in (server.request("GET", "/nowhere"), server.request("GET", f"/v1/plans/{DAY}", token="ds_nope")):
        assert response.getheader("Server") == "doorstep"


def test_access_log_has_paths_without_query_strings(server):
    server.request("GET", f"/v1/agents/crew-a/itinerary?date={DAY}&secret=13800001234")
    time.sleep(0.2)
    log = (server.data_dir / "access.log").read_text()
    assert "GET /v1/agents/crew-a/itinerary HTTP/1.1\" 200" in log
    assert "?" not in log and "13800001234" not in log and "Bearer" not in log


def test_oversized_request_line_and_headers_are_refused(server):
    line = server.raw(b"GET /v1/openapi.json?" + b"x" * 5000 + b" HTTP/1.1\r\nHost: a\r\n\r\n")
    assert _status(line) == 400 and b"Request Line is too large" in line
    field = server.raw(b"GET /v1/openapi.json HTTP/1.1\r\nHost: a\r\nX-Big: " + b"y" * 9000 + b"\r\n\r\n")
    assert _status(field) in (400, 431)
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(60))
    fields = server.raw(b"GET /v1/openapi.json HTTP/1.1\r\nHost: a\r\n" + many + b"\r\n")
    assert _status(fields) in (400, 431)
    assert server.request("GET", "/v1/openapi.json").status == 200  # still serving


def test_a_body_above_the_limit_is_413_without_reading_it(server):
    # the headers announce 80 MB; the server answers before any of it is sent
    head = (f"POST /v1/plans HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {server.token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {80 * 1024 * 1024}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(head + b"{")
        answer = _read_response(s)
    assert _status(answer) == 413
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]


def test_slow_clients_are_cut_off_while_others_are_served(server):
    # more half-sent requests than the server has threads (2 x 4), and silent connections
    slow = []
    for _ in range(10):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        s.sendall(b"GET /v1/openapi.json HTTP/1.1\r\nHost: a\r\nX-Slow: ")
        slow.append(s)
    silent = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(3)]
    started = time.monotonic()
    try:
        for _ in range(5):  # others are served meanwhile, at once
            t = time.monotonic()
            assert server.request("GET", f"/v1/agents/crew-a/itinerary?date={DAY}").status == 200
            assert time.monotonic() - t < 1.0
        for s in slow + silent:  # closed by the server after the deadline, with nothing sent
            assert s.recv(100) == b""
        waited = time.monotonic() - started
        assert REQUEST_TIMEOUT_S - 0.5 < waited < REQUEST_TIMEOUT_S + 3
    finally:
        for s in slow + silent:
            s.close()


def test_concurrent_requests_across_worker_processes(server):
    workers = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _ppid(p) == server.proc.pid]
    assert len(workers) == 2

    def get(i: int) -> tuple[int, bytes]:
        crew = ("crew-a", "crew-b")[i % 2]
        response = server.request("GET", f"/v1/agents/{crew}/itinerary?date={DAY}")
        return response.status, response.body  # type: ignore[attr-defined]

    with cf.ThreadPoolExecutor(32) as pool:
        results = list(pool.map(get, range(200)))
    assert {status for status, _ in results} == {200}
    assert len({body for i, (_, body) in enumerate(results) if i % 2 == 0}) == 1  # every answer the same
    assert len({body for i, (_, body) in enumerate(results) if i % 2 == 1}) == 1
    cpu = [_cpu_ticks(p) for p in workers]
    assert all(ticks > 0 for ticks in cpu)  # both workers did work


def _ppid(proc_dir: Path) -> int:
    try:
        return int((proc_dir / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def _cpu_ticks(proc_dir: Path) -> int:
    fields = (proc_dir / "stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


# --------------------------------------------------------------------------- #
# Itinerary cache
# --------------------------------------------------------------------------- #
def _uncached(server: Server, agent_id: str) -> bytes:
    """The itinerary rendered from the store, without any cache, as the view's JSON."""
    store = server.store()
    version = store.current_version(DAY)
    assert version is not None
    plan = Plan.model_validate_json(store.get_plan(DAY, version).plan_json)
    problem = Problem.model_validate_json(store.get_problem(DAY, version))
    base = itinerary(problem, plan, agent_id, version=version)
    states = store.get_visit_states(DAY, [stop["visit_id"] for stop in base["stops"]])
    flask = Flask("render")
    flask.json.sort_keys = False  # type: ignore[attr-defined]
    with flask.app_context():
        return flask.json.response(personalised(base, states, True)).get_data()


def test_cached_itinerary_is_the_uncached_render_and_follows_new_versions_and_outcomes(server):
    path = f"/v1/agents/crew-a/itinerary?date={DAY}"
    first = server.request("GET", path)
    again = server.request("GET", path)
    assert first.status == again.status == 200
    assert first.body == again.body == _uncached(server, "crew-a")
    etag = first.getheader("ETag")
    assert etag and etag == again.getheader("ETag") and first.getheader("Cache-Control") == "no-store"

    # If-None-Match: 304, no body
    same = server.request("GET", path, headers={"If-None-Match": etag})
    assert same.status == 304 and same.body == b"" and same.getheader("ETag") == etag

    # a recorded outcome shows at once (in every worker), with a new ETag
    doc = json.loads(first.body)
    visit_id = doc["stops"][0]["visit_id"]
    recorded = server.request("POST", f"/v1/visits/{visit_id}/outcome", {"date": DAY, "status": "arrived"})
    assert recorded.status == 201, recorded.body
    for _ in range(4):
        after = server.request("GET", path, headers={"If-None-Match": etag})
        assert after.status == 200 and after.getheader("ETag") != etag
        assert json.loads(after.body)["stops"][0]["status"] == "arrived"
        assert after.body == _uncached(server, "crew-a")

    # a new version published by another process: the next read has it
    store = server.store()
    current = store.get_plan(DAY)
    version = store.publish_plan(DAY, current.plan_json, store.get_problem(DAY, current.version))
    for _ in range(4):
        newer = server.request("GET", path)
        assert json.loads(newer.body)["version"] == version
        assert newer.body == _uncached(server, "crew-a")
    assert server.request("GET", "/v1/agents/nobody/itinerary?date=" + DAY).status == 404


# --------------------------------------------------------------------------- #
# Shutdown (last: stops the module's server)
# --------------------------------------------------------------------------- #
def test_sigterm_finishes_the_request_in_flight_and_stops(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(f"GET /v1/agents/crew-b/itinerary?date={DAY} HTTP/1.1\r\nHost: a\r\n"
                  f"Authorization: Bearer {server.token}\r\n".encode())  # not finished yet
        time.sleep(0.3)
        server.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        s.sendall(b"\r\n")
        answer = _read_response(s)
    assert _status(answer) == 200
    assert server.proc.wait(timeout=20) == 0
    log = (server.data_dir / "serve.log").read_text()
    assert "Shutting down: Master" in log


# --------------------------------------------------------------------------- #
# The road network stays out of the web process
# --------------------------------------------------------------------------- #
_ROUND = textwrap.dedent("""
    import json, sys, tempfile
    from app import create_app
    from solver import solve
    from solver.model import Problem
    from solver.travel import StraightLineTravel
    from tests.conftest import _PAYLOAD

    app = create_app({"DATA_DIR": tempfile.mkdtemp(), "TRAVEL": None, "AUTH": False})  # plans on the road network
    store = app.extensions["doorstep"].store
    problem = Problem.model_validate(_PAYLOAD)
    plan = solve(problem, StraightLineTravel())  # published as a job would, without running one here
    store.publish_plan("2026-12-01", plan.model_dump_json(), problem.model_dump_json())
    client = app.test_client()
    statuses = []
    for path in ["/v1/agents/crew-a/itinerary?date=2026-12-01", "/v1/agents/crew-b/itinerary?date=2026-12-01",
                 "/v1/agents/crew-a/itinerary?date=2026-12-01&format=ics",
                 "/v1/agents/crew-a/itinerary?date=2026-12-01&format=geojson",
                 "/v1/plans/2026-12-01", "/v1/plans/2026-12-01/versions", "/v1/jobs/nope", "/v1/events",
                 "/v1/openapi.json", "/web/api/me"]:
        statuses.append(client.get(path).status_code)
    network = sys.modules.get("solver.geo.network")
    loaded = network is not None and network.load_bundled_network.cache_info().currsize > 0
    print(json.dumps({"statuses": statuses, "loaded": loaded}))
""")


def test_api_traffic_never_loads_the_road_network():
    done = subprocess.run([sys.executable, "-c", _ROUND], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["statuses"] == [200, 200, 200, 200, 200, 200, 404, 200, 200, 200]
    assert result["loaded"] is False


# --------------------------------------------------------------------------- #
# Several worker processes on the Redis store
# --------------------------------------------------------------------------- #
def test_worker_processes_share_the_redis_store(tmp_path):
    import redis

    from app.store.redis import RedisStore
    from solver import solve
    from solver.travel import StraightLineTravel
    from tests.conftest import REDIS_URL

    prefix = f"test-serve-{uuid.uuid4().hex[:8]}:"
    store = RedisStore(REDIS_URL, prefix=prefix)
    running = _start(tmp_path, ["--redis-url", REDIS_URL, "--prefix", prefix])
    try:
        problem = Problem.model_validate(copy.deepcopy(_PAYLOAD))
        plan = solve(problem, StraightLineTravel())  # published as a worker would
        store.publish_plan(DAY, plan.model_dump_json(), problem.model_dump_json())
        path = f"/v1/agents/crew-a/itinerary?date={DAY}"
        with cf.ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda _: running.request("GET", path), range(60)))
        assert {a.status for a in answers} == {200}
        assert len({a.body for a in answers}) == 1 and len({a.getheader("ETag") for a in answers}) == 1
        first = json.loads(answers[0].body)
        assert first["version"] == 1 and first["stops"]
        # an outcome recorded through one process shows in all of them
        visit_id = first["stops"][0]["visit_id"]
        assert running.request("POST", f"/v1/visits/{visit_id}/outcome",
                               {"date": DAY, "status": "arrived"}).status == 201
        for _ in range(6):
            assert json.loads(running.request("GET", path).body)["stops"][0]["status"] == "arrived"
    finally:
        _stop(running)
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()
        store.close()


# --------------------------------------------------------------------------- #
# Settings
# --------------------------------------------------------------------------- #
def test_settings_precedence_config_then_environment_then_options():
    from app.server import ServerSettings
    from solver.search.threads import available_cores

    config = {"threads": 4, "keepalive": 7, "access_log": "/var/log/a.log"}
    environ = {"DOORSTEP_SERVE_THREADS": "6", "DOORSTEP_SERVE_PROCESSES": "3", "PATH": "/bin"}
    settings = ServerSettings.resolve({"processes": 5, "threads": None}, environ=environ, config=config)
    assert (settings.processes, settings.threads, settings.keepalive) == (5, 6, 7)
    assert settings.access_log == "/var/log/a.log" and settings.request_timeout == 30.0
    options = settings.gunicorn_options()
    assert options["workers"] == 5 and options["threads"] == 6 and options["preload_app"] is False
    assert "%(U)s" in options["access_log_format"] and "%(q)s" not in options["access_log_format"]
    assert "%(r)s" not in options["access_log_format"] and "%(f)s" not in options["access_log_format"]
    assert ServerSettings.resolve(environ={}, config={}).worker_processes == available_cores()
    with pytest.raises(ValueError, match="DOORSTEP_SERVE_THREADZ"):
        ServerSettings.resolve(environ={"DOORSTEP_SERVE_THREADZ": "2"}, config={})
    with pytest.raises(ValueError, match="threads"):
        ServerSettings.resolve({"threads": "many"}, environ={}, config={})
    with pytest.raises(ValueError, match="limit_request_line"):
        ServerSettings.resolve({"limit_request_line": 10_000}, environ={}, config={})


def test_the_master_imports_the_views_before_forking_and_builds_no_app(monkeypatch, tmp_path):
    """``DoorstepServer`` (gunicorn's master) imports the API's view modules and the web pages, so
    the workers fork with them loaded; the app itself is still built by each worker (``load``)."""
    import app.api
    from app import create_app
    from app.server import DoorstepServer, ServerSettings

    imported: list[str] = []
    real = app.api.import_views
    monkeypatch.setattr(app.api, "import_views", lambda: imported.extend(m.__name__ for m in real()) or real())
    built: list[Flask] = []
    server = DoorstepServer(lambda: built.append(create_app({"DATA_DIR": str(tmp_path)})) or built[-1],
                            ServerSettings(port=_free_port()))
    assert imported == [f"app.api.{name}" for name in app.api.VIEW_MODULES] and not built
    served = server.load()  # what a worker does after the fork
    assert built == [served]
    # every blueprint the app registers comes from a module the master imported
    registered = {bp.import_name for bp in served.blueprints.values()}
    assert registered == set(imported) | {"app.web"}
    served.extensions["doorstep"].close()
