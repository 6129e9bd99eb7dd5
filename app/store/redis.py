"""The production store on Redis, shared by every app and worker process.

Keys live under a prefix (``doorstep:`` by default; tests use one per test):

=================================  ===========================================
``{p}job:{id}``                    hash: a job's fields (absent field = None)
``{p}jobs:active``                 set: ids of queued and running jobs
``{p}plan:{date}:current``         string: the current version number
``{p}plan:{date}:v:{n}``           hash: plan_json, problem_json, meta, created_at
``{p}plan:{date}:versions``        list: the version numbers, oldest first
``{p}events``                      stream: events (``doorstep:events``)
``{p}token:{sha256}``              hash: role, agent_id, label, created_at,
                                   member, expires_at, last_used_at
``{p}count:{key}@{window}``        string: a fixed-window counter (expires)
``{p}outbox:d:{id}``               hash: a webhook delivery's fields
``{p}outbox:due``                  sorted set: pending deliveries by next attempt
``{p}outbox:all``                  sorted set: every delivery by creation time
``{p}outbox:delivered``            sorted set: delivered ones by delivery time (pruning)
``{p}outbox:cursor:{endpoint}``    string: the last event fanned out to it
``{p}visit:{date}:{visit_id}``     hash: status, result, agent_id, updated_at
``{p}outcomes:{date}:{visit_id}``  list: outcome records (JSON)
``{p}followups:{date}``            list: follow-up records (JSON)
``{p}idem:{scope}:{key}``          hash: request_hash, status, body
``{p}attachment:{id}``             hash: meta (JSON), content (base64; absent: in a folder)
``{p}once:{marker}``               string: set when a one-time event was emitted
``{p}planset:{id}``                hash: status, record (JSON), updated_at: a plan set (app.multiday)
=================================  ===========================================

Atomicity: publishing a version is a ``WATCH`` of the date's current-version
key, then one ``MULTI``/``EXEC`` writing the version hash, the list entry, the
new current number and the events; a concurrent publisher makes ``EXEC`` fail
and the publish is retried with the next number (or, with ``expect_version``,
refused with :class:`VersionConflict`). Since the version hash is written in
the same transaction that makes it current, and versions are never changed
afterwards, a reader sees the old version or the new one, never a mix.
Recording an outcome watches the visit's state and the idempotency key the
same way.

The client has socket timeouts (``socket_timeout_s``): a Redis that is down or
hung makes a call raise ``redis.ConnectionError`` / ``TimeoutError`` within
that time, which the web service answers with 503 (:mod:`app.errors`).
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Sequence
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import WatchError
from redis.retry import Retry

from app.store.base import (
    ACTIVE,
    JOB_FLOAT_FIELDS,
    JOB_INT_FIELDS,
    TOKEN_FIELDS,
    CaseConflict,
    CaseWrite,
    Delivery,
    Event,
    EventsFor,
    Idempotency,
    IdempotencyMismatch,
    Job,
    NewEvent,
    NotFound,
    OutcomeWrite,
    PlanVersion,
    Store,
    TokenRecord,
    TransitionRefused,
    VersionConflict,
    VersionInfo,
    VisitState,
    utcnow,
)

DEFAULT_PREFIX = "doorstep:"
#: Events kept in the stream (approximately: XADD MAXLEN ~).
EVENTS_MAXLEN = 100_000
_CURSOR = re.compile(r"^\d{1,20}(-\d{1,20})?$")
#: Default socket timeouts of the client (seconds): a hung Redis fails a request, never hangs it.
SOCKET_TIMEOUT_S = 2.0

_TOUCH = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('HSET', KEYS[1], 'last_used_at', ARGV[1]) end
return 0
"""
_CLAIM = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], ARGV[3], id)
  redis.call('HSET', ARGV[5] .. id, 'next_attempt_at', ARGV[3], 'lease', ARGV[4])
end
return ids
"""
_DELIVERY_INT = frozenset({"attempts", "last_status"})


def _decode_delivery(data: dict[str, str]) -> Delivery:
    values: dict[str, Any] = {}
    for name in Delivery.__dataclass_fields__:
        if name not in data:
            continue
        raw = data[name]
        if name in _DELIVERY_INT:
            values[name] = int(raw)
        elif name == "next_attempt_at":
            values[name] = float(raw)
        elif name == "history":
            values[name] = tuple(json.loads(raw))
        else:
            values[name] = raw
    return Delivery(**values)


def _encode_delivery(delivery: Delivery) -> tuple[dict[str, str], list[str]]:
    """(fields to set, fields to delete) of a delivery's hash."""
    present: dict[str, str] = {}
    absent: list[str] = []
    for name, value in delivery.to_dict().items():
        if value is None:
            absent.append(name)
        elif name == "history":
            present[name] = json.dumps(value)
        else:
            present[name] = repr(value) if isinstance(value, float) else str(value)
    return present, absent


def _conflict_only(exc: WatchError) -> None:
    """Return for a real conflict (a watched key changed: retry the
    transaction); raise ``ConnectionError`` when redis-py turned a lost
    connection into a WatchError. Then whether ``EXEC`` ran is unknown, and
    retrying here could apply a write twice: the caller answers 503 and its
    client retries (with an Idempotency-Key where the endpoint takes one)."""
    if "occurred while watching" in str(exc):
        raise redis.exceptions.ConnectionError("the connection to Redis was lost during a transaction") from exc


def _decode_job(data: dict[str, str]) -> Job:
    values: dict[str, Any] = {}
    for name in Job.__dataclass_fields__:
        if name not in data:
            continue
        raw = data[name]
        if name in JOB_INT_FIELDS:
            values[name] = int(raw)
        elif name in JOB_FLOAT_FIELDS:
            values[name] = float(raw)
        else:
            values[name] = raw
    return Job.from_dict(values)


def _encode(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value) if isinstance(value, (dict, list)) else str(value)


class RedisStore(Store):
    """:class:`Store` on a Redis server."""

    backend = "redis"

    def __init__(self, url: str, *, prefix: str = DEFAULT_PREFIX, client: redis.Redis | None = None,
                 socket_timeout_s: float = SOCKET_TIMEOUT_S) -> None:
        self.url = url
        self.prefix = prefix
        # typed Any: redis-py's annotations cannot say that decode_responses=True makes every reply str
        self.redis: Any = client or redis.Redis.from_url(
            url, decode_responses=True, socket_timeout=socket_timeout_s, socket_connect_timeout=socket_timeout_s,
            # one quick retry of a dropped connection (a restarted server); a timeout is not waited out twice
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 1, supported_errors=(redis.exceptions.ConnectionError,)),
        )
        self._touch = self.redis.register_script(_TOUCH)
        self._claim = self.redis.register_script(_CLAIM)
        self.redis.ping()

    def __repr__(self) -> str:
        return f"RedisStore(prefix={self.prefix!r})"

    def _k(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    @property
    def events_key(self) -> str:
        return self._k("events")

    # -- jobs ---------------------------------------------------------------- #
    def _write_job(self, pipe: Any, job_id: str, values: dict[str, Any]) -> None:
        key = self._k("job", job_id)
        present = {k: _encode(v) for k, v in values.items() if v is not None}
        absent = [k for k, v in values.items() if v is None]
        if present:
            pipe.hset(key, mapping=present)
        if absent:
            pipe.hdel(key, *absent)
        status = values.get("status")
        if status is not None:
            if status in ACTIVE:
                pipe.sadd(self._k("jobs", "active"), job_id)
            else:
                pipe.srem(self._k("jobs", "active"), job_id)

    def save_job(self, job: Job) -> None:
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._k("job", job.id))
            self._write_job(pipe, job.id, job.to_dict())
            pipe.execute()

    def get_job(self, job_id: str) -> Job | None:
        data = self.redis.hgetall(self._k("job", job_id))
        return _decode_job(data) if data else None

    def update_job(self, job_id: str, *, if_status: Sequence[str] | None = None, **changes: Any) -> Job | None:
        self.check_job_changes(changes)
        changes["updated_at"] = utcnow()
        key = self._k("job", job_id)
        with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)
                    status = pipe.hget(key, "status")
                    if status is None:
                        raise NotFound(job_id)
                    if if_status is not None and status not in if_status:
                        pipe.unwatch()
                        return None
                    pipe.multi()
                    self._write_job(pipe, job_id, changes)
                    pipe.hgetall(key)
                    data = pipe.execute()[-1]
                    return _decode_job(data)
                except WatchError as exc:
                    _conflict_only(exc)
                    continue

    def active_jobs(self) -> list[Job]:
        ids = sorted(self.redis.smembers(self._k("jobs", "active")))
        jobs = [self.get_job(i) for i in ids]
        return sorted((j for j in jobs if j is not None and j.status in ACTIVE), key=lambda j: j.created_at)

    # -- plans --------------------------------------------------------------- #
    def publish_plan(
        self,
        date: str,
        plan_json: str,
        problem_json: str,
        *,
        meta: dict[str, Any] | None = None,
        expect_version: int | None = None,
        events: EventsFor | None = None,
    ) -> int:
        if not isinstance(plan_json, str) or not isinstance(problem_json, str):  # type: ignore[redundant-expr]  # callers are untyped too
            raise TypeError("plan_json and problem_json must be strings")
        current_key = self._k("plan", date, "current")
        with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(current_key)
                    highest = int(pipe.get(current_key) or 0)
                    if expect_version is not None and highest != expect_version:
                        pipe.unwatch()
                        raise VersionConflict(expect_version, highest or None)
                    version = highest + 1
                    new_events = list(events(version)) if events is not None else []
                    pipe.multi()
                    pipe.hset(
                        self._k("plan", date, "v", str(version)),
                        mapping={
                            "plan_json": plan_json,
                            "problem_json": problem_json,
                            "meta": json.dumps(meta or {}),
                            "created_at": utcnow(),
                        },
                    )
                    pipe.rpush(self._k("plan", date, "versions"), version)
                    pipe.set(current_key, version)
                    self._xadd(pipe, new_events)
                    pipe.execute()
                    return version
                except WatchError as exc:
                    _conflict_only(exc)
                    continue

    def get_plan(self, date: str, version: int | None = None) -> PlanVersion | None:
        if version is None:
            current = self.redis.get(self._k("plan", date, "current"))
            if current is None:
                return None
            version = int(current)
        data = self.redis.hmget(self._k("plan", date, "v", str(version)), "plan_json", "meta", "created_at")
        if data[0] is None:
            return None
        return PlanVersion(date=date, version=version, created_at=data[2], plan_json=data[0], meta=json.loads(data[1]))

    def list_versions(self, date: str) -> list[VersionInfo]:
        numbers = [int(v) for v in self.redis.lrange(self._k("plan", date, "versions"), 0, -1)]
        with self.redis.pipeline(transaction=False) as pipe:
            for n in numbers:
                pipe.hmget(self._k("plan", date, "v", str(n)), "created_at", "meta")
            rows = pipe.execute()
        return [
            VersionInfo(date=date, version=n, created_at=row[0], meta=json.loads(row[1]))
            for n, row in zip(numbers, rows)
            if row[0] is not None
        ]

    def current_version(self, date: str) -> int | None:
        current = self.redis.get(self._k("plan", date, "current"))
        return None if current is None else int(current)

    def get_problem(self, date: str, version: int) -> str | None:
        found: str | None = self.redis.hget(self._k("plan", date, "v", str(version)), "problem_json")
        return found

    # -- events -------------------------------------------------------------- #
    def _xadd(self, pipe: Any, events: Sequence[NewEvent]) -> list[tuple[str, str, str, dict[str, Any]]]:
        added = []
        for event in events:
            event_id = event.event_id or uuid.uuid4().hex
            fields = {
                "event_id": event_id,
                "type": event.type,
                "at": event.at,
                "data": json.dumps(event.data, ensure_ascii=False),
            }
            pipe.xadd(self.events_key, fields, maxlen=EVENTS_MAXLEN, approximate=True)
            added.append((event_id, event.type, event.at, dict(event.data)))
        return added

    def append_events(self, events: Sequence[NewEvent]) -> list[Event]:
        if not events:
            return []
        with self.redis.pipeline(transaction=True) as pipe:
            added = self._xadd(pipe, events)
            ids = pipe.execute()
        return [Event(str(i), *rest) for i, rest in zip(ids, added)]

    def list_events(self, after: str | None = None, limit: int = 100) -> list[Event]:
        start = f"({after}" if after else "-"
        rows = self.redis.xrange(self.events_key, min=start, max="+", count=int(limit))
        return [
            Event(entry_id, f["event_id"], f["type"], f["at"], json.loads(f["data"])) for entry_id, f in rows
        ]

    def valid_cursor(self, cursor: str) -> bool:
        return bool(_CURSOR.match(cursor))

    # -- tokens -------------------------------------------------------------- #
    def save_token(self, record: TokenRecord) -> None:
        values = {k: v for k, v in vars(record).items() if v is not None and k != "token_hash"}
        self.redis.hset(self._k("token", record.token_hash), mapping=values)

    def _token(self, token_hash: str, data: dict[str, str]) -> TokenRecord | None:
        if not data.get("role"):
            return None
        return TokenRecord(token_hash=token_hash, **{k: data.get(k) for k in TOKEN_FIELDS})  # type: ignore[arg-type]

    def get_token(self, token_hash: str) -> TokenRecord | None:
        return self._token(token_hash, self.redis.hgetall(self._k("token", token_hash)))

    def delete_token(self, token_hash: str) -> bool:
        return bool(self.redis.delete(self._k("token", token_hash)))

    def get_token_and_count(self, token_hash: str, key: str, window_s: int) -> tuple[TokenRecord | None, int, float]:
        now = time.time()
        window = int(now // window_s)
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self._k("token", token_hash))
            pipe.get(self._k("count", f"{key}@{window}"))
            data, count = pipe.execute()
        return self._token(token_hash, data), int(count or 0), (window + 1) * window_s - now

    def _scan_tokens(self, match_hash: str = "") -> list[TokenRecord]:
        start = len(self._k("token", ""))
        keys = sorted(self.redis.scan_iter(match=self._glob(self._k("token", match_hash)) + "*", count=500))
        with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hgetall(key)
            rows = pipe.execute()
        found = [self._token(key[start:], row) for key, row in zip(keys, rows)]
        return sorted((t for t in found if t is not None), key=lambda t: (t.created_at, t.token_hash))

    def list_tokens(self) -> list[TokenRecord]:
        return self._scan_tokens()

    def find_token(self, token_id: str) -> TokenRecord | None:
        hex_part = token_id[4:]
        if not token_id.startswith("tok_") or not re.fullmatch(r"[0-9a-f]{12}", hex_part):
            return None
        return next((t for t in self._scan_tokens(hex_part) if t.token_id == token_id), None)

    def touch_token(self, token_hash: str, at: str) -> None:
        self._touch(keys=[self._k("token", token_hash)], args=[at])

    # -- counters ------------------------------------------------------------ #
    def count_hit(self, key: str, window_s: int, *, add: int = 1) -> tuple[int, float]:
        now = time.time()
        window = int(now // window_s)
        slot = self._k("count", f"{key}@{window}")
        if add:
            with self.redis.pipeline(transaction=True) as pipe:
                pipe.incrby(slot, add)
                pipe.expire(slot, window_s * 2)
                count = int(pipe.execute()[0])
        else:
            count = int(self.redis.get(slot) or 0)
        return count, (window + 1) * window_s - now

    # -- webhook outbox ------------------------------------------------------ #
    def _glob(self, text: str) -> str:
        return re.sub(r"([*?\[\]\\])", r"\\\1", text)

    def outbox_cursor(self, endpoint: str) -> str | None:
        cursor: str | None = self.redis.get(self._k("outbox", "cursor", endpoint))
        return cursor

    def advance_outbox(self, endpoint: str, expect: str | None, cursor: str, deliveries: Sequence[Delivery]) -> bool:
        cursor_key = self._k("outbox", "cursor", endpoint)
        with self.redis.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(cursor_key)
                if pipe.get(cursor_key) != expect:
                    pipe.unwatch()
                    return False
                exists = [bool(pipe.exists(self._k("outbox", "d", d.id))) for d in deliveries]
                base = time.time()
                pipe.multi()
                for i, (delivery, present) in enumerate(zip(deliveries, exists)):
                    if present:
                        continue
                    fields, _absent = _encode_delivery(delivery)
                    pipe.hset(self._k("outbox", "d", delivery.id), mapping=fields)
                    pipe.zadd(self._k("outbox", "due"), {delivery.id: delivery.next_attempt_at})
                    pipe.zadd(self._k("outbox", "all"), {delivery.id: base + i * 1e-6})
                pipe.set(cursor_key, cursor)
                pipe.execute()
                return True
            except WatchError as exc:
                _conflict_only(exc)
                return False

    def claim_deliveries(self, now: float, lease_s: float, lease: str, limit: int = 20) -> list[Delivery]:
        ids = self._claim(keys=[self._k("outbox", "due")],
                          args=[repr(now), int(limit), repr(now + lease_s), lease, self._k("outbox", "d", "")])
        return [d for d in (self.get_delivery(i) for i in ids) if d is not None]

    def finish_attempt(self, delivery: Delivery, lease: str) -> bool:
        key = self._k("outbox", "d", delivery.id)
        with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)
                    held, status = pipe.hmget(key, "lease", "status")
                    if held != lease or status != "pending":
                        pipe.unwatch()
                        return False
                    fields, absent = _encode_delivery(delivery)
                    pipe.multi()
                    pipe.hset(key, mapping=fields)
                    pipe.hdel(key, *absent, "lease")
                    if delivery.status == "pending":
                        pipe.zadd(self._k("outbox", "due"), {delivery.id: delivery.next_attempt_at})
                    else:
                        pipe.zrem(self._k("outbox", "due"), delivery.id)
                    if delivery.status == "delivered":
                        pipe.zadd(self._k("outbox", "delivered"), {delivery.id: time.time()})
                    pipe.execute()
                    return True
                except WatchError as exc:
                    _conflict_only(exc)
                    continue

    def get_delivery(self, delivery_id: str) -> Delivery | None:
        data = self.redis.hgetall(self._k("outbox", "d", delivery_id))
        return _decode_delivery(data) if data else None

    def list_deliveries(self, status: str | None = None, limit: int = 100) -> list[Delivery]:
        found: list[Delivery] = []
        start, batch = 0, max(limit, 100)
        while len(found) < limit:
            ids = self.redis.zrevrange(self._k("outbox", "all"), start, start + batch - 1)
            if not ids:
                break
            with self.redis.pipeline(transaction=False) as pipe:
                for i in ids:
                    pipe.hgetall(self._k("outbox", "d", i))
                rows = pipe.execute()
            found += [d for d in map(_decode_delivery, filter(None, rows)) if status is None or d.status == status]
            start += batch
        return found[:limit]

    def prune_deliveries(self, delivered_before: float) -> int:
        ids = self.redis.zrangebyscore(self._k("outbox", "delivered"), "-inf", repr(delivered_before))
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            with self.redis.pipeline(transaction=True) as pipe:
                pipe.delete(*(self._k("outbox", "d", d) for d in chunk))
                pipe.zrem(self._k("outbox", "all"), *chunk)
                pipe.zrem(self._k("outbox", "delivered"), *chunk)
                pipe.execute()
        return len(ids)

    def retry_delivery(self, delivery_id: str, now: float) -> Delivery | None:
        key = self._k("outbox", "d", delivery_id)
        with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)
                    if pipe.hget(key, "status") != "dead":
                        pipe.unwatch()
                        return None
                    pipe.multi()
                    pipe.hset(key, mapping={"status": "pending", "attempts": "0", "next_attempt_at": repr(now)})
                    pipe.hdel(key, "lease")
                    pipe.zadd(self._k("outbox", "due"), {delivery_id: now})
                    pipe.execute()
                    break
                except WatchError as exc:
                    _conflict_only(exc)
                    continue
        return self.get_delivery(delivery_id)

    # -- visits, outcomes, follow-ups ----------------------------------------- #
    def _state(self, data: dict[str, str], date: str, visit_id: str) -> VisitState:
        return VisitState(
            date, visit_id, data.get("status"), data.get("result"), data.get("agent_id"), data.get("updated_at")
        )

    def get_visit_state(self, date: str, visit_id: str) -> VisitState:
        return self._state(self.redis.hgetall(self._k("visit", date, visit_id)), date, visit_id)

    def get_visit_states(self, date: str, visit_ids: Sequence[str]) -> list[VisitState]:
        if not visit_ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for visit_id in visit_ids:
            pipe.hgetall(self._k("visit", date, visit_id))
        return [self._state(data, date, visit_id) for data, visit_id in zip(pipe.execute(), visit_ids)]

    def get_idempotency(self, scope: str, key: str) -> Idempotency | None:
        data = self.redis.hgetall(self._k("idem", scope, key))
        if not data:
            return None
        return Idempotency(scope, key, data["request_hash"], int(data["status"]), data["body"])

    def record_outcome(self, write: OutcomeWrite) -> tuple[Idempotency | None, list[Event]]:
        state_key = self._k("visit", write.date, write.visit_id)
        idem = write.idempotency
        idem_key = self._k("idem", idem.scope, idem.key) if idem is not None else None
        watched = [state_key] + ([idem_key] if idem_key else [])
        with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(*watched)
                    if idem_key is not None:
                        stored = pipe.hgetall(idem_key)
                        if stored:
                            pipe.unwatch()
                            if stored["request_hash"] != idem.request_hash:  # type: ignore[union-attr]
                                raise IdempotencyMismatch(idem.key)  # type: ignore[union-attr]
                            return (
                                Idempotency(idem.scope, idem.key, stored["request_hash"], int(stored["status"]),  # type: ignore[union-attr]
                                            stored["body"]),
                                [],
                            )
                    state = self._state(pipe.hgetall(state_key), write.date, write.visit_id)
                    if state.status not in write.allowed_from:
                        pipe.unwatch()
                        raise TransitionRefused(state)
                    now = utcnow()
                    pipe.multi()
                    values = {"status": write.status, "updated_at": now}
                    if write.result is not None:
                        values["result"] = write.result
                    if write.agent_id is not None:
                        values["agent_id"] = write.agent_id
                    pipe.hset(state_key, mapping=values)
                    pipe.rpush(self._k("outcomes", write.date, write.visit_id), write.outcome_json)
                    for _fid, fdate, record in write.followups:
                        pipe.rpush(self._k("followups", fdate), record)
                    added = self._xadd(pipe, write.events)
                    if idem_key is not None:
                        pipe.hset(
                            idem_key,
                            mapping={"request_hash": idem.request_hash, "status": idem.status,  # type: ignore[union-attr]
                                     "body": idem.body_json, "created_at": now},  # type: ignore[union-attr]
                        )
                    results = pipe.execute()
                    first = 2 + len(write.followups)
                    ids = results[first : first + len(added)]
                    return None, [Event(str(i), *rest) for i, rest in zip(ids, added)]
                except WatchError as exc:
                    _conflict_only(exc)
                    continue

    def list_outcomes(self, date: str, visit_id: str) -> list[str]:
        return list(self.redis.lrange(self._k("outcomes", date, visit_id), 0, -1))

    def list_followups(self, date: str) -> list[str]:
        return list(self.redis.lrange(self._k("followups", date), 0, -1))

    # -- housekeeping ------------------------------------------------------- #
    def drop_all(self) -> int:
        """Delete every key under the prefix (tests; never the default prefix by accident)."""
        keys = list(self.redis.scan_iter(match=self._glob(self.prefix) + "*", count=500))
        for i in range(0, len(keys), 500):
            self.redis.delete(*keys[i : i + 500])
        return len(keys)

    def close(self) -> None:
        self.redis.close()

    # -- collection cases (app.cases) ---------------------------------------- #
    # {p}case:{id}       hash: version, state (JSON)
    # {p}caselog:{id}    list: history entries (JSON)
    # {p}cases:open      set: ids of cases with open promises
    def get_case(self, case_id: str) -> tuple[int, str | None]:
        version, state = self.redis.hmget(self._k("case", case_id), "version", "state")
        return (0, None) if state is None else (int(version or 0), str(state))

    def write_case(self, write: CaseWrite) -> tuple[Idempotency | None, list[Event]]:
        case_key = self._k("case", write.case_id)
        idem = write.idempotency
        idem_key = self._k("idem", idem.scope, idem.key) if idem is not None else None
        watched = [case_key] + ([idem_key] if idem_key else [])
        with self.redis.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(*watched)
                if idem is not None and idem_key is not None:
                    stored = pipe.hgetall(idem_key)
                    if stored:
                        pipe.unwatch()
                        if stored["request_hash"] != idem.request_hash:
                            raise IdempotencyMismatch(idem.key)
                        return Idempotency(idem.scope, idem.key, str(stored["request_hash"]),
                                           int(stored["status"]), str(stored["body"])), []
                if int(pipe.hget(case_key, "version") or 0) != write.expect_version:
                    pipe.unwatch()
                    raise CaseConflict(write.case_id)
                now = utcnow()
                pipe.multi()
                pipe.hset(case_key, mapping={"version": write.expect_version + 1, "state": write.state_json,
                                             "updated_at": now})
                if write.has_open_promises:
                    pipe.sadd(self._k("cases", "open"), write.case_id)
                else:
                    pipe.srem(self._k("cases", "open"), write.case_id)
                if write.entries:
                    pipe.rpush(self._k("caselog", write.case_id), *write.entries)
                for _fid, fdate, record in write.followups:
                    pipe.rpush(self._k("followups", fdate), record)
                added = self._xadd(pipe, write.events)
                if idem is not None and idem_key is not None:
                    pipe.hset(idem_key, mapping={"request_hash": idem.request_hash, "status": idem.status,
                                                 "body": idem.body_json, "created_at": now})
                results = pipe.execute()
            except WatchError as exc:
                _conflict_only(exc)
                raise CaseConflict(write.case_id) from None
        first = 2 + (1 if write.entries else 0) + len(write.followups)
        ids = results[first: first + len(added)]
        return None, [Event(str(i), *rest) for i, rest in zip(ids, added)]

    def list_case_entries(self, case_id: str) -> list[str]:
        return [str(entry) for entry in self.redis.lrange(self._k("caselog", case_id), 0, -1)]

    def open_cases(self) -> list[str]:
        return sorted(str(case_id) for case_id in self.redis.smembers(self._k("cases", "open")))

    def get_cases(self, case_ids: Sequence[str]) -> dict[str, str]:
        ids = list(dict.fromkeys(case_ids))
        found: dict[str, str] = {}
        for start in range(0, len(ids), 1000):
            chunk = ids[start:start + 1000]
            with self.redis.pipeline(transaction=False) as pipe:
                for case_id in chunk:
                    pipe.hget(self._k("case", case_id), "state")
                states = pipe.execute()
            found.update({case_id: str(state) for case_id, state in zip(chunk, states) if state is not None})
        return found

    # -- reports (app.reports) --------------------------------------------- #
    def current_days(self, dates: Sequence[str]) -> dict[str, tuple[PlanVersion, str]]:
        wanted = list(dict.fromkeys(dates))
        if not wanted:
            return {}
        with self.redis.pipeline(transaction=False) as pipe:
            for date in wanted:
                pipe.get(self._k("plan", date, "current"))
            currents = pipe.execute()
        planned = [(date, int(current)) for date, current in zip(wanted, currents) if current is not None]
        with self.redis.pipeline(transaction=False) as pipe:
            for date, version in planned:
                pipe.hmget(self._k("plan", date, "v", str(version)), "plan_json", "meta", "created_at",
                           "problem_json")
            rows = pipe.execute()
        found: dict[str, tuple[PlanVersion, str]] = {}
        for (date, version), row in zip(planned, rows):
            if row[0] is None or row[3] is None:
                continue
            found[date] = (PlanVersion(date=date, version=version, created_at=row[2], plan_json=row[0],
                                       meta=json.loads(row[1] or "{}")), str(row[3]))
        return found

    def list_case_entries_many(self, case_ids: Sequence[str]) -> dict[str, list[str]]:
        ids = list(dict.fromkeys(case_ids))
        found: dict[str, list[str]] = {}
        for start in range(0, len(ids), 1000):
            chunk = ids[start:start + 1000]
            with self.redis.pipeline(transaction=False) as pipe:
                for case_id in chunk:
                    pipe.lrange(self._k("caselog", case_id), 0, -1)
                lists = pipe.execute()
            found.update({case_id: [str(e) for e in entries] for case_id, entries in zip(chunk, lists) if entries})
        return found

    # -- plan sets (app.multiday) ------------------------------------------- #
    def save_plan_set(self, set_id: str, status: str, record_json: str) -> None:
        self.redis.hset(self._k("planset", set_id), mapping={"status": status, "record": record_json,
                                                             "updated_at": utcnow()})

    def get_plan_set(self, set_id: str) -> tuple[str, str] | None:
        status, record = self.redis.hmget(self._k("planset", set_id), "status", "record")
        return None if status is None or record is None else (str(status), str(record))

    def update_plan_set(self, set_id: str, *, expect_status: str, status: str, record_json: str) -> bool:
        key = self._k("planset", set_id)
        with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)
                    if pipe.hget(key, "status") != expect_status:
                        pipe.unwatch()
                        return False
                    pipe.multi()
                    pipe.hset(key, mapping={"status": status, "record": record_json, "updated_at": utcnow()})
                    pipe.execute()
                    return True
                except WatchError as exc:
                    _conflict_only(exc)
                    continue

    def keep_idempotency(self, idem: Idempotency) -> Idempotency | None:
        key = self._k("idem", idem.scope, idem.key)
        with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)
                    stored = pipe.hgetall(key)
                    if stored:
                        pipe.unwatch()
                        return Idempotency(idem.scope, idem.key, str(stored["request_hash"]), int(stored["status"]),
                                           str(stored["body"]))
                    pipe.multi()
                    pipe.hset(key, mapping={"request_hash": idem.request_hash, "status": idem.status,
                                            "body": idem.body_json, "created_at": utcnow()})
                    pipe.execute()
                    return None
                except WatchError as exc:
                    _conflict_only(exc)
                    continue

    # -- attachments and one-time events ------------------------------------- #
    def save_attachment(self, attachment_id: str, meta_json: str, content: bytes | None) -> None:
        fields = {"meta": meta_json}
        if content is not None:  # the client decodes replies as text: bytes go as base64
            fields["content"] = base64.b64encode(content).decode("ascii")
        self.redis.hset(self._k("attachment", attachment_id), mapping=fields)

    def get_attachment(self, attachment_id: str, *, content: bool = True) -> tuple[str, bytes | None] | None:
        key = self._k("attachment", attachment_id)
        meta, encoded = self.redis.hmget(key, "meta", "content") if content else (self.redis.hget(key, "meta"), None)
        if meta is None:
            return None
        return str(meta), None if encoded is None else base64.b64decode(encoded)

    def delete_attachment(self, attachment_id: str) -> None:
        self.redis.delete(self._k("attachment", attachment_id))

    def emit_once(self, marker: str, events: Sequence[NewEvent]) -> list[Event]:
        key = self._k("once", marker)
        with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)
                    if pipe.exists(key):
                        pipe.unwatch()
                        return []
                    pipe.multi()
                    pipe.set(key, utcnow())
                    added = self._xadd(pipe, events)
                    results = pipe.execute()
                    break
                except WatchError as exc:
                    _conflict_only(exc)
                    continue  # another process set it meanwhile: it is seen on the next turn
        ids = results[1: 1 + len(added)]
        return [Event(str(i), *rest) for i, rest in zip(ids, added)]

    def emitted(self, marker: str) -> bool:
        return bool(self.redis.exists(self._k("once", marker)))
