"""The store going away: a real ``redis-server`` of the test's own (free port,
tmp dir) is killed, hung and restarted under a running app; SQLite is locked
by another writer. Requests answer 503 ``store_unavailable`` with
``Retry-After`` meanwhile, work again afterwards, and nothing acknowledged is
lost (a write answered 503 is retried with its Idempotency-Key).

The server runs with ``--appendonly yes --appendfsync always`` and no RDB
snapshots: with ``--appendonly no`` a killed Redis restarts empty, and no
service could keep an acknowledged write through that (docs/operations.md).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest
import redis

DAY = "2026-12-01"

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server binary")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A redis-server process on 127.0.0.1:port with its files in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.2).ping()
                return
            except redis.exceptions.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def pause(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.resume()
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def _visits(plan) -> list[str]:
    return [s["visit_id"] for r in plan["routes"] for s in r["stops"]]


def _unavailable(response) -> None:
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.get_json()["error"] == "store_unavailable"
    assert int(response.headers["Retry-After"]) > 0


def test_redis_killed_and_restarted(make_app, payload, redis_server):
    app = make_app(STORE="redis", REDIS_URL=redis_server.url, REDIS_PREFIX="outage:", JOBS="thread",
                   REDIS_TIMEOUT_S=0.5)
    client = app.test_client()
    plan = client.post("/v1/plans?wait=60", json=payload()).get_json()["plan"]
    first, second = _visits(plan)[:2]
    crew = plan["routes"][0]["agent_id"]
    acked = client.post(f"/v1/visits/{first}/outcome", json={"date": DAY, "status": "arrived"},
                        headers={"Idempotency-Key": "k-first"})
    assert acked.status_code == 201

    redis_server.kill()
    started = time.monotonic()
    _unavailable(client.get(f"/v1/agents/{crew}/itinerary?date={DAY}"))
    _unavailable(client.post(f"/v1/visits/{second}/outcome", json={"date": DAY, "status": "arrived"},
                             headers={"Idempotency-Key": "k-second"}))
    _unavailable(client.post("/v1/plans", json=payload()))
    _unavailable(client.get("/v1/events"))
    _unavailable(client.post("/v1/tokens", json={"role": "system"}))
    assert time.monotonic() - started < 10  # refused connections fail fast

    redis_server.start()  # same port, same folder: the append-only file is read back
    itinerary = client.get(f"/v1/agents/{crew}/itinerary?date={DAY}")
    assert itinerary.status_code == 200
    store = app.extensions["doorstep"].store
    assert len(store.list_outcomes(DAY, first)) == 1  # the acknowledged write survived
    assert store.get_visit_state(DAY, first).status == "arrived"
    # the write answered 503 is retried with its key: recorded once
    retried = client.post(f"/v1/visits/{second}/outcome", json={"date": DAY, "status": "arrived"},
                          headers={"Idempotency-Key": "k-second"})
    assert retried.status_code == 201
    replayed = client.post(f"/v1/visits/{second}/outcome", json={"date": DAY, "status": "arrived"},
                           headers={"Idempotency-Key": "k-second"})
    assert replayed.status_code == 201 and replayed.headers["Idempotent-Replayed"] == "true"
    assert len(store.list_outcomes(DAY, second)) == 1
    outcomes = [e for e in client.get("/v1/events").get_json()["events"] if e["type"] == "outcome.recorded"]
    assert sorted(e["data"]["visit_id"] for e in outcomes) == sorted([first, second])


def test_a_hung_redis_times_out_into_503(make_app, payload, redis_server):
    app = make_app(STORE="redis", REDIS_URL=redis_server.url, REDIS_PREFIX="hang:", JOBS="thread",
                   REDIS_TIMEOUT_S=0.3)
    client = app.test_client()
    assert client.post("/v1/plans?wait=60", json=payload()).status_code == 201
    redis_server.pause()  # accepts connections, answers nothing
    try:
        started = time.monotonic()
        _unavailable(client.get(f"/v1/plans/{DAY}"))
        assert time.monotonic() - started < 3  # the socket timeout (and one quick retry), not a hang
    finally:
        redis_server.resume()
    assert client.get(f"/v1/plans/{DAY}").status_code == 200


def test_a_locked_sqlite_answers_503_then_works(make_app, payload, tmp_path):
    app = make_app(SQLITE_TIMEOUT_S=0.2)
    client = app.test_client()
    plan = client.post("/v1/plans?wait=60", json=payload()).get_json()["plan"]
    visit = _visits(plan)[0]
    blocker = sqlite3.connect(tmp_path / "data" / "doorstep.sqlite3", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        _unavailable(client.post(f"/v1/visits/{visit}/outcome", json={"date": DAY, "status": "arrived"}))
        assert client.get(f"/v1/plans/{DAY}").status_code == 200  # readers are not blocked (WAL)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    store = app.extensions["doorstep"].store
    assert store.list_outcomes(DAY, visit) == []  # the refused write left nothing behind
    assert client.post(f"/v1/visits/{visit}/outcome", json={"date": DAY, "status": "arrived"}).status_code == 201


class CuttingProxy:
    """A TCP proxy to the test Redis that, once armed, forwards the next
    ``EXEC`` and then drops that connection before the reply comes back: the
    transaction ran, but the client cannot know. Only the connection that sent
    it loses replies: one the client opens right after the cut passes through
    (a flag shared by all connections once swallowed the reply to the UNWATCH of
    a client that reconnected before the cutting pump ran again, on a loaded machine)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.armed = False
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            cutting = threading.Event()  # this connection's: set once its EXEC went through
            threading.Thread(target=self._pump, args=(client, upstream, True, cutting), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False, cutting), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, to_redis: bool, cutting: threading.Event) -> None:
        cut = False
        try:
            while data := source.recv(65536):
                if to_redis and self.armed and b"EXEC" in data:
                    self.armed, cut = False, True
                    cutting.set()
                if not to_redis and cutting.is_set():  # the reply to EXEC: swallowed
                    continue
                target.sendall(data)
                if cut:
                    time.sleep(0.2)  # let Redis run it, then cut before the reply
                    source.shutdown(socket.SHUT_RDWR)
                    target.shutdown(socket.SHUT_RDWR)
                    return
        except OSError:
            pass
        finally:
            source.close()
            target.close()

    def close(self) -> None:
        self.listener.close()


def test_a_transaction_whose_reply_was_lost_is_reported_not_repeated(redis_prefix):
    from urllib.parse import urlsplit

    from app.store.redis import RedisStore
    from tests.conftest import REDIS_URL

    parts = urlsplit(REDIS_URL)
    proxy = CuttingProxy(parts.port or 6379)
    store = RedisStore(f"redis://127.0.0.1:{proxy.port}{parts.path}", prefix=redis_prefix, socket_timeout_s=2)
    direct = RedisStore(REDIS_URL, prefix=redis_prefix)
    try:
        assert store.publish_plan(DAY, "{}", "{}") == 1
        proxy.armed = True
        with pytest.raises(redis.exceptions.ConnectionError):
            store.publish_plan(DAY, '{"second": true}', "{}")  # ran, but the answer was lost: not retried
        assert [v.version for v in direct.list_versions(DAY)] == [1, 2]  # once, not twice
        assert store.publish_plan(DAY, "{}", "{}") == 3  # the connection is re-opened
    finally:
        store.close()
        direct.close()
        proxy.close()
