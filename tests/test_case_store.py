"""The case methods of the store (get_case, write_case, list_case_entries,
open_cases) on both backends: versions as a compare-and-set, idempotency,
follow-ups and events written together, the set of cases with open promises."""

from __future__ import annotations

import json

import pytest

from app.store import Idempotency, IdempotencyMismatch, NewEvent, SQLiteStore
from app.store.base import CaseConflict, CaseWrite
from app.store.redis import RedisStore
from tests.conftest import REDIS_URL


@pytest.fixture(params=["sqlite", "redis"])
def backend(request, tmp_path):
    if request.param == "sqlite":
        return lambda: SQLiteStore.in_dir(tmp_path)
    prefix = request.getfixturevalue("redis_prefix")
    return lambda: RedisStore(REDIS_URL, prefix=prefix)


@pytest.fixture
def store(backend):
    s = backend()
    yield s
    s.close()


def _write(version, state, *, entries=(), open_=False, followups=(), events=(), idem=None):
    return CaseWrite(case_id="C-1", expect_version=version, state_json=json.dumps(state), has_open_promises=open_,
                     entries=[json.dumps(e) for e in entries], followups=followups, events=events, idempotency=idem)


def test_a_case_is_written_with_a_compare_and_set_on_its_version(store, backend):
    assert store.get_case("C-1") == (0, None) and store.list_case_entries("C-1") == [] and store.open_cases() == []
    replayed, events = store.write_case(_write(0, {"n": 1}, entries=[{"type": "payment"}], open_=True,
                                               events=[NewEvent("payment.received", {"case_id": "C-1"})]))
    assert replayed is None and [e.type for e in events] == ["payment.received"]
    other = backend()  # another process sees it
    assert other.get_case("C-1") == (1, json.dumps({"n": 1}))
    assert other.open_cases() == ["C-1"]
    other.close()
    with pytest.raises(CaseConflict):
        store.write_case(_write(0, {"n": 9}))  # written meanwhile
    assert store.get_case("C-1")[1] == json.dumps({"n": 1})
    store.write_case(_write(1, {"n": 2}, entries=[{"type": "promise_kept"}, {"type": "escalation"}]))
    assert store.get_case("C-1") == (2, json.dumps({"n": 2}))
    assert [json.loads(e)["type"] for e in store.list_case_entries("C-1")] == ["payment", "promise_kept",
                                                                              "escalation"]
    assert store.open_cases() == []  # no open promise any more
    assert [e.type for e in store.list_events()] == ["payment.received"]


def test_idempotent_case_writes_replay_or_refuse(store):
    idem = Idempotency("payment:x", "k-1", "hash-a", 201, '{"ok": 1}')
    assert store.write_case(_write(0, {"n": 1}, idem=idem))[0] is None
    replayed, events = store.write_case(_write(1, {"n": 2}, idem=idem))
    assert replayed is not None and (replayed.status, replayed.body_json) == (201, '{"ok": 1}') and events == []
    assert store.get_case("C-1")[0] == 1  # nothing written by the replay
    with pytest.raises(IdempotencyMismatch):
        store.write_case(_write(1, {"n": 2}, idem=Idempotency("payment:x", "k-1", "hash-b", 201, "{}")))


def test_follow_ups_of_a_case_are_listed_for_their_date(store):
    record = {"id": "fu-1", "kind": "visit", "date": "2026-12-05"}
    store.write_case(_write(0, {"n": 1}, followups=[("fu-1", "2026-12-05", json.dumps(record))]))
    assert [json.loads(r)["id"] for r in store.list_followups("2026-12-05")] == ["fu-1"]


def test_many_cases_are_read_at_once(store):
    store.write_case(_write(0, {"n": 1}))
    other = CaseWrite(case_id="C-2", expect_version=0, state_json='{"n": 2}', has_open_promises=False)
    store.write_case(other)
    assert store.get_cases(["C-2", "nope", "C-1", "C-2"]) == {"C-1": '{"n": 1}', "C-2": '{"n": 2}'}
    assert store.get_cases([]) == {}


def test_attachments_keep_their_bytes_and_a_record_only_one(store, backend):
    content = bytes(range(256)) * 3  # every byte value survives (Redis keeps them as base64)
    store.save_attachment("att_1", json.dumps({"sha256": "x"}), content)
    store.save_attachment("att_2", json.dumps({"sha256": "y"}), None)  # bytes kept in a folder
    assert store.get_attachment("att_1") == (json.dumps({"sha256": "x"}), content)
    assert store.get_attachment("att_1", content=False) == (json.dumps({"sha256": "x"}), None)
    other = backend()  # another process sees them
    assert other.get_attachment("att_2") == (json.dumps({"sha256": "y"}), None)
    other.close()
    store.delete_attachment("att_1")
    assert store.get_attachment("att_1") is None and store.get_attachment("att_9") is None


def test_an_event_emitted_once_is_never_emitted_again(store, backend):
    assert not store.emitted("safety.overdue:2026-12-01:v0")
    [first] = store.emit_once("safety.overdue:2026-12-01:v0", [NewEvent("safety.overdue", {"visit_id": "v0"})])
    assert store.emitted("safety.overdue:2026-12-01:v0") and not store.emitted("safety.overdue:2026-12-01:v1")
    assert first.type == "safety.overdue" and first.data == {"visit_id": "v0"}
    other = backend()
    assert other.emit_once("safety.overdue:2026-12-01:v0", [NewEvent("safety.overdue", {"visit_id": "v0"})]) == []
    other.close()
    assert len(store.emit_once("safety.overdue:2026-12-01:v1", [NewEvent("safety.overdue", {})])) == 1
    assert [e.type for e in store.list_events()] == ["safety.overdue", "safety.overdue"]
