"""Events: the log (GET /v1/events, SQLite table or Redis stream) and the webhook,
received by a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

DAY = "2026-12-01"


@pytest.fixture
def webhook_server():
    """A local HTTP server collecting the JSON bodies POSTed to it."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            received.append({"path": self.path, "content_type": self.headers.get("Content-Type"),
                             "body": json.loads(self.rfile.read(length))})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/doorstep?secret=s3", received
    server.shutdown()
    server.server_close()


def _wait_for(predicate, timeout_s: float = 10.0):
    deadline = time.monotonic() + timeout_s
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)
    return predicate()


def test_plan_outcome_and_replan_events_reach_the_log_and_the_webhook(make_app, payload, webhook_server):
    url, received = webhook_server
    app = make_app(WEBHOOK_URL=url)
    client = app.test_client()
    plan = client.post("/v1/plans?wait=60", json=payload()).get_json()["plan"]
    visit = plan["routes"][0]["stops"][0]["visit_id"]
    assert client.post(f"/v1/visits/{visit}/outcome", json={"date": DAY, "status": "completed",
                                                          "result": "not_at_home"}).status_code == 201

    log = client.get("/v1/events").get_json()
    types = [e["type"] for e in log["events"]]
    crews = sorted(r["agent_id"] for r in plan["routes"] if r["stops"])
    assert types == ["plan.published"] + ["itinerary.changed"] * len(crews) + ["outcome.recorded"]
    published = log["events"][0]["data"]
    assert (published["date"], published["version"], published["previous_version"]) == (DAY, 1, None)
    assert sorted(e["data"]["agent_id"] for e in log["events"] if e["type"] == "itinerary.changed") == crews
    outcome = log["events"][-1]["data"]
    assert (outcome["visit_id"], outcome["result"], len(outcome["followups"])) == (visit, "not_at_home", 1)
    assert log["next_after"] == log["events"][-1]["id"]
    assert client.get(f"/v1/events?after={log['next_after']}").get_json()["events"] == []
    page = client.get(f"/v1/events?after={log['events'][0]['id']}&limit=1").get_json()
    assert [e["id"] for e in page["events"]] == [log["events"][1]["id"]]
    # no borrower data in events
    text = json.dumps(log, ensure_ascii=False)
    assert "Borrower" not in text and "1380000" not in text

    assert _wait_for(lambda: len(received) == len(types))
    assert all(r["path"] == "/hooks/doorstep?secret=s3" and r["content_type"] == "application/json" for r in received)
    assert sorted(r["body"]["event_id"] for r in received) == sorted(e["event_id"] for e in log["events"])
    assert {r["body"]["type"] for r in received} == set(types)


def test_a_second_version_tells_only_the_crews_whose_itinerary_changed(client, payload):
    first = client.post("/v1/plans?wait=60", json=payload()).get_json()["plan"]
    assert client.post("/v1/plans?wait=60", json=payload()).status_code == 201  # same day again: same routes?
    second = client.get(f"/v1/plans/{DAY}").get_json()["plan"]
    events = client.get("/v1/events").get_json()["events"]
    changed = [e["data"]["agent_id"] for e in events if e["type"] == "itinerary.changed" and e["data"]["version"] == 2]

    def told(plan, agent):
        route = next(r for r in plan["routes"] if r["agent_id"] == agent)
        return [(s["visit_id"], s["address_index"], s["slot"]) for s in route["stops"]]

    assert changed == [a for a in ("crew-a", "crew-b") if told(first, a) != told(second, a)]


def test_a_failing_webhook_is_logged_and_never_fails_the_request(make_app, payload, caplog):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = make_app(WEBHOOK_URL=f"http://127.0.0.1:{port}/x?token=secret-token", WEBHOOK_TIMEOUT_S=0.5)
    with caplog.at_level(logging.WARNING, logger="doorstep.webhooks"):
        response = app.test_client().post("/v1/plans?wait=60", json=payload())
        assert response.status_code == 201
        assert _wait_for(lambda: "attempt 1 failed" in caplog.text)
    assert "ConnectionRefusedError" in caplog.text
    assert "secret-token" not in caplog.text


def test_events_come_from_the_redis_stream_when_redis_is_configured(make_app, payload):
    app = make_app(redis=True)
    client = app.test_client()
    assert client.post("/v1/plans?wait=60", json=payload()).status_code == 201
    store = app.extensions["doorstep"].store
    stream = store.redis.xrange(f"{app.config['REDIS_PREFIX']}events")
    events = client.get("/v1/events").get_json()["events"]
    assert [entry_id for entry_id, _ in stream] == [e["id"] for e in events]
    assert events[0]["type"] == "plan.published" and "-" in events[0]["id"]
    assert client.get("/v1/events?after=nonsense").status_code == 400
    assert client.get("/v1/events?limit=0").status_code == 400
