"""Token lifecycle (ids, list, revoke, expiry, last use, per-person agent
tokens), the failed-authentication throttle and ``Cache-Control: no-store``;
on both stores, through the HTTP API and the ``doorstep token`` commands."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3

import pytest
from click.testing import CliRunner

from app.auth import create_token, hash_token
from app.cli import main
from app.store import SQLiteStore, TokenRecord
from app.store.base import token_id_of, utcnow
from app.store.redis import RedisStore
from tests.conftest import REDIS_URL

DAY = "2026-12-01"


@pytest.fixture(params=["sqlite", "redis"])
def app(request, make_app):
    return make_app(redis=request.param == "redis", AUTH_FAIL_LIMIT=5)


def _store(app):
    return app.extensions["doorstep"].store


def _ago(seconds: float) -> str:
    then = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)
    return then.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_dispatchers_create_list_and_revoke_tokens_over_the_api(app, client):
    created = client.post("/v1/tokens", json={"role": "agent", "agent_id": "crew-a", "member": "张伟",
                                              "label": "phone 1", "expires_in": "30d"})
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    secret, token_id = body["token"], body["id"]
    assert secret.startswith("ds_") and token_id == token_id_of(hash_token(secret))
    assert (body["role"], body["agent_id"], body["member"], body["expired"]) == ("agent", "crew-a", "张伟", False)
    expires = dt.datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert abs(expires - dt.datetime.now(dt.UTC) - dt.timedelta(days=30)) < dt.timedelta(minutes=1)
    assert created.headers["Location"] == f"/v1/tokens/{token_id}"
    assert created.headers["Cache-Control"] == "no-store"

    agent = app.test_client(token=secret)
    assert agent.get(f"/v1/agents/crew-a/itinerary?date={DAY}").status_code == 404  # known token, no plan yet

    listed = client.get("/v1/tokens").get_json()["tokens"]
    mine = next(t for t in listed if t["id"] == token_id)
    assert mine["member"] == "张伟" and mine["last_used_at"] is not None
    text = json.dumps(listed)
    assert secret not in text and hash_token(secret) not in text  # neither the secret nor its full hash
    assert len(listed) == 2  # the test's dispatcher token and this one

    assert client.delete(f"/v1/tokens/{token_id}").status_code == 204
    refused = agent.get(f"/v1/agents/crew-a/itinerary?date={DAY}")
    assert refused.status_code == 401 and refused.get_json()["error"] == "unauthorized"  # at once
    assert client.delete(f"/v1/tokens/{token_id}").status_code == 404
    assert client.delete("/v1/tokens/not-an-id").status_code == 404
    assert token_id not in {t["id"] for t in client.get("/v1/tokens").get_json()["tokens"]}

    # only dispatchers manage tokens; requests are validated
    system = app.test_client(token=create_token(_store(app), "system"))
    assert system.get("/v1/tokens").status_code == 403
    assert system.post("/v1/tokens", json={"role": "dispatcher"}).status_code == 403
    for bad, field in (({"role": "agent"}, "agent_id"), ({"role": "system", "agent_id": "x"}, "agent_id"),
                       ({"role": "system", "member": "x"}, "member"), ({"role": "system", "expires_in": "soon"},
                                                                           "expires_in"),
                       ({"role": "root"}, "role")):
        response = client.post("/v1/tokens", json=bad)
        assert response.status_code == 422, bad
        assert response.get_json()["errors"][0]["field"] == field


def test_expired_tokens_are_refused(app):
    store = _store(app)
    past = TokenRecord(token_hash=hash_token("ds_expired"), role="dispatcher", expires_at=_ago(1))
    store.save_token(past)
    response = app.test_client(token="ds_expired").get("/v1/jobs/x")
    assert response.status_code == 401 and "expired" in response.get_json()["message"]
    future = create_token(store, "dispatcher", expires_in=dt.timedelta(hours=1))
    assert app.test_client(token=future).get("/v1/jobs/x").status_code == 404


def test_last_use_is_written_at_most_once_a_minute(app):
    store = _store(app)
    secret = create_token(store, "system")
    client = app.test_client(token=secret)
    assert store.get_token(hash_token(secret)).last_used_at is None
    client.get("/v1/events")
    first = store.get_token(hash_token(secret)).last_used_at
    assert first is not None
    for _ in range(5):
        client.get("/v1/events")
    assert store.get_token(hash_token(secret)).last_used_at == first  # no write per request
    store.touch_token(hash_token(secret), _ago(61))
    client.get("/v1/events")
    assert store.get_token(hash_token(secret)).last_used_at > first
    store.touch_token(hash_token("0" * 64), utcnow())  # a revoked token is not brought back
    assert store.get_token("0" * 64) is None


def test_outcomes_record_the_person_of_a_per_member_agent_token(app, client, payload):
    plan = client.post("/v1/plans?wait=60", json=payload()).get_json()["plan"]
    route = next(r for r in plan["routes"] if r["stops"])
    crew, visit = route["agent_id"], route["stops"][0]["visit_id"]
    created = client.post("/v1/tokens", json={"role": "agent", "agent_id": crew, "member": "张伟"}).get_json()
    other = client.post("/v1/tokens", json={"role": "agent", "agent_id": crew, "member": "李娜"}).get_json()
    as_zhang = app.test_client(token=created["token"])
    outcome = as_zhang.post(f"/v1/visits/{visit}/outcome", json={"date": DAY, "status": "arrived"})
    assert outcome.status_code == 201, outcome.get_json()
    assert outcome.get_json()["actor"] == {"role": "agent", "token_id": created["id"], "member": "张伟"}
    assert outcome.headers["Cache-Control"] == "no-store"
    stored = [json.loads(r) for r in _store(app).list_outcomes(DAY, visit)]
    assert stored[0]["actor"]["member"] == "张伟" and stored[0]["actor"]["token_id"] == created["id"]
    assert created["id"] != other["id"]
    event = client.get("/v1/events").get_json()["events"][-1]
    assert event["type"] == "outcome.recorded" and event["data"]["actor"] == {"role": "agent",
                                                                              "token_id": created["id"]}
    assert "张伟" not in json.dumps(event, ensure_ascii=False)  # events name the token, not the person


def test_failed_authentication_is_throttled_per_address_across_processes(app, make_app):
    good = app.config["TEST_DISPATCHER_TOKEN"]
    attacker = app.test_client(token="ds_wrong")
    attacker.environ_base["REMOTE_ADDR"] = "203.0.113.7"
    for _ in range(5):
        assert attacker.get("/v1/jobs/x").status_code == 401
    blocked = attacker.get("/v1/jobs/x")
    assert blocked.status_code == 429
    assert blocked.get_json()["error"] == "too_many_failed_logins"
    assert 1 <= int(blocked.headers["Retry-After"]) <= 60
    # a right token from the blocked address waits too (else guessing would go on) …
    same_address = app.test_client(token=good)
    same_address.environ_base["REMOTE_ADDR"] = "203.0.113.7"
    assert same_address.get("/v1/jobs/x").status_code == 429
    # … other addresses are not affected
    elsewhere = app.test_client(token=good)
    elsewhere.environ_base["REMOTE_ADDR"] = "198.51.100.1"
    assert elsewhere.get("/v1/jobs/x").status_code == 404
    # another server process on the same store sees the same count
    if app.config["STORE"] == "redis":
        second = make_app(redis=False, STORE="redis", REDIS_URL=REDIS_URL, REDIS_PREFIX=app.config["REDIS_PREFIX"],
                          JOBS="thread", AUTH_FAIL_LIMIT=5)
    else:
        second = make_app(AUTH_FAIL_LIMIT=5)  # the same DATA_DIR
    other_process = second.test_client(token="ds_wrong-again")
    other_process.environ_base["REMOTE_ADDR"] = "203.0.113.7"
    assert other_process.get("/v1/jobs/x").status_code == 429
    # requests without any token are not counted as guesses
    anonymous = app.test_client(token="")
    anonymous.environ_base["REMOTE_ADDR"] = "198.51.100.2"
    for _ in range(7):
        assert anonymous.get("/v1/jobs/x").status_code == 401


def test_responses_that_need_a_token_are_not_cached(app, client, payload):
    assert client.post("/v1/plans?wait=60", json=payload()).headers["Cache-Control"] == "no-store"
    for path in (f"/v1/plans/{DAY}", f"/v1/agents/crew-a/itinerary?date={DAY}",
                 f"/v1/agents/crew-a/itinerary?date={DAY}&format=ics", "/v1/events", f"/v1/followups?date={DAY}",
                 "/v1/jobs/none", "/v1/tokens"):
        response = client.get(path)
        assert response.headers.get("Cache-Control") == "no-store", path
    assert app.test_client(token="").get(f"/v1/plans/{DAY}").headers["Cache-Control"] == "no-store"  # 401 too
    assert "no-store" not in app.test_client(token="").get("/v1/openapi.json").headers.get("Cache-Control", "")


def test_tokens_stored_before_ids_and_expiry_keep_working(tmp_path, make_app, redis_prefix):
    # a SQLite file of the previous release: tokens without member / expires_at / last_used_at
    data = tmp_path / "data"
    data.mkdir()
    old_hash = hash_token("ds_from-last-release")
    with sqlite3.connect(data / "doorstep.sqlite3") as conn:
        conn.execute("CREATE TABLE tokens (token_hash TEXT PRIMARY KEY, role TEXT NOT NULL, agent_id TEXT, "
                     "label TEXT, created_at TEXT NOT NULL)")
        conn.execute("INSERT INTO tokens VALUES (?, 'dispatcher', NULL, 'ops', '2026-01-01T00:00:00.000Z')",
                     (old_hash,))
    app = make_app()
    client = app.test_client(token="ds_from-last-release")
    assert client.get("/v1/jobs/x").status_code == 404
    listed = {t["id"]: t for t in client.get("/v1/tokens").get_json()["tokens"]}
    assert listed[token_id_of(old_hash)]["label"] == "ops"
    assert listed[token_id_of(old_hash)]["expires_at"] is None
    assert client.delete(f"/v1/tokens/{token_id_of(old_hash)}").status_code == 204
    assert client.get("/v1/jobs/x").status_code == 401

    # a Redis hash of the previous release
    store = RedisStore(REDIS_URL, prefix=redis_prefix)
    store.redis.hset(f"{redis_prefix}token:{old_hash}",
                     mapping={"role": "system", "label": "erp", "created_at": "2026-01-01T00:00:00.000Z"})
    record = store.find_token(token_id_of(old_hash))
    assert record is not None and (record.role, record.label, record.member) == ("system", "erp", None)
    assert [t.token_id for t in store.list_tokens()] == [token_id_of(old_hash)]
    store.close()


def test_token_commands_create_list_and_revoke(tmp_path, make_app):
    data = ["--data-dir", str(tmp_path / "data")]
    runner = CliRunner()
    created = runner.invoke(main, ["token", "create", "--role", "agent", "--agent", "crew-01", "--member", "张伟",
                                   "--expires-in", "30d", *data])
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip()
    token_id = token_id_of(hash_token(secret))
    assert token_id in created.stderr and "张伟" in created.stderr
    listed = runner.invoke(main, ["token", "list", *data])
    assert listed.exit_code == 0 and token_id in listed.stdout and "张伟" in listed.stdout
    assert secret not in listed.stdout
    as_json = json.loads(runner.invoke(main, ["token", "list", "--json", *data]).stdout)
    assert as_json["tokens"][0]["expires_at"] is not None
    app = make_app()
    assert app.test_client(token=secret).get(f"/v1/agents/crew-01/itinerary?date={DAY}").status_code == 404
    revoked = runner.invoke(main, ["token", "revoke", token_id, *data])
    assert revoked.exit_code == 0, revoked.output
    assert app.test_client(token=secret).get(f"/v1/agents/crew-01/itinerary?date={DAY}").status_code == 401
    assert runner.invoke(main, ["token", "revoke", token_id, *data]).exit_code == 1
    bad = runner.invoke(main, ["token", "create", "--role", "system", "--expires-in", "forever", *data])
    assert bad.exit_code == 2 and "--expires-in" in bad.output
    assert runner.invoke(main, ["token", "create", "--role", "system", "--member", "x", *data]).exit_code == 2


def test_sqlite_store_lists_and_finds_tokens(tmp_path):
    store = SQLiteStore.in_dir(tmp_path)
    a = TokenRecord(token_hash="ab" * 32, role="agent", agent_id="crew-a", member="张伟", expires_at=_ago(-60))
    store.save_token(a)
    assert store.get_token("ab" * 32) == a and store.find_token(a.token_id) == a
    assert store.find_token("tok_000000000000") is None and store.find_token("nope") is None


def test_token_and_delivery_operations_are_in_the_openapi_document(client):
    from app.api import schemas

    # a valid document: tests/test_app_openapi.py checks it (every app serves the same one)
    document = client.get("/v1/openapi.json").get_json()
    paths = document["paths"]

    def ref(path, method, status=None):
        op = paths[path][method]
        content = (op["requestBody"] if status is None else op["responses"][status])["content"]["application/json"]
        return content["schema"]["$ref"].rsplit("/", 1)[-1]

    assert ref("/v1/tokens", "get", "200") == "TokenList"
    assert ref("/v1/tokens", "post") == "TokenCreate" and ref("/v1/tokens", "post", "201") == "TokenCreated"
    assert "204" in paths["/v1/tokens/{token_id}"]["delete"]["responses"]
    assert ref("/v1/webhooks/deliveries", "get", "200") == "DeliveryList"
    assert ref("/v1/webhooks/deliveries/{delivery_id}/retry", "post", "200") == "DeliveryView"
    assert "409" in paths["/v1/webhooks/deliveries/{delivery_id}/retry"]["post"]["responses"]
    assert set(document["components"]["schemas"]["OutcomeView"]["properties"]) == \
        set(schemas.OutcomeView.model_json_schema()["properties"]) >= {"actor"}
