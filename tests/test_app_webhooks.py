"""Webhooks from the durable outbox, against a real HTTP receiver on
127.0.0.1: signatures, retries with backoff, exactly one successful delivery
per event, dead deliveries and their retry, several deliverers sharing one
store (leases), and the deliveries endpoint. Both stores."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner

from app.store.base import NewEvent
from app.webhooks import Deliverer, Settings, backoff_s, verify

DAY = "2026-12-01"
SECRET = "whsec-test-1"
FAST = {"WEBHOOK_SECRET": SECRET, "WEBHOOK_BACKOFF_S": 0.05, "WEBHOOK_BACKOFF_MAX_S": 0.2, "WEBHOOK_POLL_S": 0.05}


class Receiver:
    """An HTTP server that answers ``fail_first`` 500s per event id, then 200
    (or always ``always`` when set), and records every request."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.always: int | None = None
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                event_id = self.headers.get("Doorstep-Event-Id")
                with receiver.lock:
                    seen = sum(1 for r in receiver.requests if r["event_id"] == event_id)
                    status = receiver.always or (500 if seen < receiver.fail_first else 200)
                    receiver.requests.append({"event_id": event_id, "headers": dict(self.headers), "body": body,
                                              "status": status, "path": self.path})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks?key=s3"

    def ok(self) -> Counter:
        with self.lock:
            return Counter(r["event_id"] for r in self.requests if r["status"] == 200)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(fail_first: int = 0) -> Receiver:
        made.append(Receiver(fail_first))
        return made[-1]

    yield make
    for r in made:
        r.close()


@pytest.fixture(params=["sqlite", "redis"])
def backend(request):
    return request.param


def _wait_for(predicate, timeout_s: float = 15.0):
    deadline = time.monotonic() + timeout_s
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)
    return predicate()


def test_failing_receiver_gets_each_event_once_signed_after_retries(make_app, payload, receiver, backend):
    hook = receiver(fail_first=2)
    app = make_app(redis=backend == "redis", WEBHOOK_URL=hook.url, **FAST)
    client = app.test_client()
    plan = client.post("/v1/plans?wait=60", json=payload()).get_json()["plan"]
    visit = plan["routes"][0]["stops"][0]["visit_id"]
    assert client.post(f"/v1/visits/{visit}/outcome", json={"date": DAY, "status": "arrived"}).status_code == 201
    events = client.get("/v1/events").get_json()["events"]
    ids = {e["event_id"] for e in events}
    assert len(ids) >= 3

    assert _wait_for(lambda: set(hook.ok()) == ids)
    time.sleep(0.3)  # nothing more comes
    assert hook.ok() == Counter(dict.fromkeys(ids, 1))  # one successful delivery per event
    assert Counter(r["event_id"] for r in hook.requests) == Counter(dict.fromkeys(ids, 3))  # 500, 500, 200

    for request in hook.requests:
        headers, body = request["headers"], request["body"]
        assert request["path"] == "/hooks?key=s3" and headers["Content-Type"] == "application/json"
        assert verify(SECRET, headers["Doorstep-Signature"], body)
        # what docs/api.md tells receivers to do, by hand
        parts = dict(p.split("=", 1) for p in headers["Doorstep-Signature"].split(","))
        expected = hmac.new(SECRET.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(expected, parts["v1"]) and abs(time.time() - int(parts["t"])) < 60
        assert not verify("another-secret", headers["Doorstep-Signature"], body)
        assert not verify(SECRET, headers["Doorstep-Signature"], body + b" ")
        assert json.loads(body)["event_id"] == headers["Doorstep-Event-Id"]
    for event_id in ids:
        tries = [r for r in hook.requests if r["event_id"] == event_id]
        assert [int(r["headers"]["Doorstep-Delivery-Attempt"]) for r in tries] == [1, 2, 3]
        assert len({r["headers"]["Doorstep-Delivery-Id"] for r in tries}) == 1

    listed = client.get("/v1/webhooks/deliveries").get_json()["deliveries"]
    assert {d["event_id"] for d in listed} == ids
    for d in listed:
        assert (d["status"], d["attempts"], d["last_status"]) == ("delivered", 3, 200)
        assert [h["status"] for h in d["history"]] == [500, 500, 200]
        assert d["delivered_at"] and d["next_attempt_at"] is None
    assert "Borrower" not in json.dumps(listed)
    assert client.get("/v1/webhooks/deliveries?status=dead").get_json()["deliveries"] == []
    assert client.get("/v1/webhooks/deliveries?status=nope").status_code == 422
    assert app.test_client(token="").get("/v1/webhooks/deliveries").status_code == 401


def test_a_dead_delivery_can_be_retried(make_app, receiver, backend):
    hook = receiver()
    hook.always = 503
    app = make_app(redis=backend == "redis", WEBHOOK_URL=hook.url, WEBHOOK_MAX_ATTEMPTS=3, **FAST)
    client = app.test_client()
    store = app.extensions["doorstep"].store
    (event,) = store.append_events([NewEvent("plan.published", {"date": DAY, "version": 1}, event_id="e-dead")])
    app.extensions["doorstep"].webhook.send([event])
    assert _wait_for(lambda: [d["status"] for d in client.get("/v1/webhooks/deliveries").get_json()["deliveries"]]
                     == ["dead"])
    (dead,) = client.get("/v1/webhooks/deliveries?status=dead").get_json()["deliveries"]
    assert dead["attempts"] == 3 and dead["last_status"] == 503 and len(hook.requests) == 3

    hook.always = None
    from app.auth import create_token

    system = app.test_client(token=create_token(store, "system"))
    retried = system.post(f"/v1/webhooks/deliveries/{dead['id']}/retry")
    assert retried.status_code == 200 and retried.get_json()["status"] == "pending"
    assert _wait_for(lambda: hook.ok() == Counter({"e-dead": 1}))
    assert _wait_for(lambda: store.get_delivery(dead["id"]).status == "delivered")
    done = store.get_delivery(dead["id"])
    assert [h["status"] for h in done.history] == [503, 503, 503, 200] and done.attempts == 1
    again = client.post(f"/v1/webhooks/deliveries/{dead['id']}/retry")
    assert again.status_code == 409 and again.get_json()["error"] == "not_dead"
    assert client.post("/v1/webhooks/deliveries/dlv_nope/retry").status_code == 404


def test_several_deliverers_share_the_outbox_without_double_delivery(make_app, receiver, backend):
    hook = receiver()
    app = make_app(redis=backend == "redis", WEBHOOK_URL=hook.url, WEBHOOK_DELIVERER="off", **FAST)
    store = app.extensions["doorstep"].store
    events = store.append_events([NewEvent("slot.booked", {"n": i}, event_id=f"e{i:03d}") for i in range(60)])
    settings = Settings(url=hook.url, secret=SECRET, batch=5)
    # three "processes": each its own store connection and deliverer
    from app.store import make_store

    stores = [make_store(app.config) for _ in range(3)]
    deliverers = [Deliverer(s, settings) for s in stores]

    def work(d: Deliverer) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(hook.ok()) < len(events):
            d.run_once()

    threads = [threading.Thread(target=work, args=(d,)) for d in deliverers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    assert hook.ok() == Counter({e.event_id: 1 for e in events})
    assert len(hook.requests) == len(events)  # no event attempted twice
    assert all(d.status == "delivered" for d in store.list_deliveries(limit=1000))


def test_a_deliverer_that_died_mid_attempt_is_taken_over_after_its_lease(make_app, receiver, backend):
    hook = receiver()
    app = make_app(redis=backend == "redis", WEBHOOK_URL=hook.url, WEBHOOK_DELIVERER="off", **FAST)
    store = app.extensions["doorstep"].store
    store.append_events([NewEvent("plan.published", {"date": DAY}, event_id="e-lease")])
    deliverer = Deliverer(store, Settings(url=hook.url, secret=SECRET))
    deliverer.fan_out()
    (claimed,) = store.claim_deliveries(time.time(), 0.2, "dead-process")  # claims, then "dies"
    assert store.claim_deliveries(time.time(), 0.2, "another") == []  # held
    time.sleep(0.25)
    assert deliverer.run_once() == 1  # the lease ended: taken over
    assert hook.ok() == Counter({"e-lease": 1})
    assert not store.finish_attempt(claimed, "dead-process")  # the late outcome is not stored
    assert store.get_delivery(claimed.id).status == "delivered"


def test_new_endpoint_starts_at_the_end_of_the_log_and_events_survive_a_restart(make_app, receiver, tmp_path):
    hook = receiver()
    app = make_app()
    store = app.extensions["doorstep"].store
    store.append_events([NewEvent("plan.published", {"date": DAY}, event_id="before")])
    # the service restarts with a webhook: history is not replayed
    second = make_app(WEBHOOK_URL=hook.url, WEBHOOK_DELIVERER="off", **FAST)
    second.extensions["doorstep"].store.append_events([NewEvent("plan.published", {"date": DAY}, event_id="after")])
    second.extensions["doorstep"].close()  # "crashes" before delivering
    third = make_app(WEBHOOK_URL=hook.url, **FAST)  # a later process delivers it
    assert _wait_for(lambda: hook.ok() == Counter({"after": 1}))
    assert [d.event_id for d in third.extensions["doorstep"].store.list_deliveries()] == ["after"]


def test_backoff_doubles_with_jitter_and_is_capped():
    settings = Settings(url="http://x", backoff_s=30, backoff_max_s=1800, max_attempts=8)
    for attempt, base in enumerate([30, 60, 120, 240, 480, 960, 1800, 1800], start=1):
        delays = [backoff_s(attempt, settings) for _ in range(50)]
        assert all(base * 0.5 <= d <= base for d in delays)
        assert len(set(delays)) > 1  # jitter
    total = sum(min(1800, 30 * 2 ** (n - 1)) for n in range(1, 8))
    assert 3000 < total < 4000  # eight attempts span about an hour


def test_deliver_command_runs_one_pass(make_app, receiver, tmp_path):
    from app.cli import main

    hook = receiver()
    app = make_app(WEBHOOK_URL=hook.url, WEBHOOK_DELIVERER="off", **FAST)
    app.extensions["doorstep"].store.append_events([NewEvent("plan.published", {"date": DAY}, event_id="cli")])
    result = CliRunner(env={"DOORSTEP_WEBHOOK_SECRET": SECRET}).invoke(
        main, ["deliver", "--once", "--data-dir", str(tmp_path / "data"), "--webhook-url", hook.url])
    assert result.exit_code == 0, result.output
    assert hook.ok() == Counter({"cli": 1})
    assert verify(SECRET, hook.requests[0]["headers"]["Doorstep-Signature"], hook.requests[0]["body"])


def test_delivered_rows_are_pruned_dead_and_pending_are_kept(make_app, receiver, backend):
    hook = receiver()
    hook.always = 500
    app = make_app(redis=backend == "redis", WEBHOOK_URL=hook.url, WEBHOOK_DELIVERER="off", **FAST)
    store = app.extensions["doorstep"].store
    store.append_events([NewEvent("slot.booked", {"n": i}, event_id=f"p{i}") for i in range(3)])
    deliverer = Deliverer(store, Settings(url=hook.url, secret=SECRET, max_attempts=1))
    assert deliverer.run_once() == 3
    assert {d.status for d in store.list_deliveries()} == {"dead"}
    hook.always = None
    for d in store.list_deliveries():
        if d.event_id != "p0":
            assert store.retry_delivery(d.id, time.time()) is not None
    assert deliverer.deliver_due() == 2
    store.append_events([NewEvent("slot.booked", {"n": 3}, event_id="p3")])
    deliverer.fan_out()
    assert len(store.claim_deliveries(time.time(), 60, "elsewhere")) == 1  # p3: pending, held by another process
    assert store.prune_deliveries(time.time() - 3600) == 0  # delivered just now: kept
    assert store.prune_deliveries(time.time() + 1) == 2
    assert {(d.event_id, d.status) for d in store.list_deliveries()} == {("p0", "dead"), ("p3", "pending")}
