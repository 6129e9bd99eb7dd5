"""Photos and audio of a visit: POST /v1/visits/{id}/attachments and
GET /v1/attachments/{id}. Real bytes (a PNG made with zlib, an Ogg page with
its CRC, a WAV from the standard library), real HTTP through the Flask test
client, on SQLite, on the real Redis and in a configured folder."""

from __future__ import annotations

import hashlib
import io
import struct
import wave
import zlib

import pytest

DAY = "2026-12-01"


def png_bytes(width: int = 2, height: int = 2) -> bytes:
    """A real PNG (RGB, one grey row after another)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\x80\x80\x80" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _ogg_crc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def ogg_bytes() -> bytes:
    """A real first Ogg page carrying an Opus identification header (RFC 7845)."""
    payload = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, 312, 48000, 0, 0)
    header = b"OggS" + struct.pack("<BBqIIIB", 0, 2, 0, 0x1234, 0, 0, 1) + bytes([len(payload)])
    page = header + payload
    crc = _ogg_crc(page)
    return page[:22] + struct.pack("<I", crc) + page[26:]


def wav_bytes() -> bytes:
    """A real WAV: 0.01 s of silence, 8 kHz mono 16 bit."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x00" * 80)
    return out.getvalue()


@pytest.fixture(params=["sqlite", "redis"])
def app(request, make_app):
    return make_app(redis=request.param == "redis")


@pytest.fixture
def crews(client, payload):
    response = client.post("/v1/plans?wait=60", json=payload())
    assert response.status_code == 201, response.get_json()
    return {s["visit_id"]: r["agent_id"] for r in response.get_json()["plan"]["routes"] for s in r["stops"]}


def _upload(client, visit, content, content_type="application/octet-stream", **headers):
    return client.post(f"/v1/visits/{visit}/attachments?date={DAY}", data=content,
                       headers={"Content-Type": content_type, **headers})


def test_a_photo_is_stored_with_its_digest_and_read_back_by_the_crew(client, client_as, crews):
    crew = crews["v0"]
    other = next(c for c in set(crews.values()) if c != crew)
    photo = png_bytes()
    mine = client_as("agent", crew)
    # the header says JPEG: the bytes are a PNG, and that is what is stored
    response = _upload(mine, "v0", photo, "image/jpeg")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["content_type"] == "image/png" and body["kind"] == "photo" and body["size"] == len(photo)
    assert body["sha256"] == hashlib.sha256(photo).hexdigest()
    assert body["uploaded_by"]["role"] == "agent" and body["uploaded_by"]["token_id"].startswith("tok_")
    assert body["agent_id"] == crew and body["case_id"] == "CASE-000"

    download = mine.get(body["links"]["content"])
    assert download.status_code == 200 and download.mimetype == "image/png"
    assert download.data == photo and hashlib.sha256(download.data).hexdigest() == body["sha256"]
    assert download.headers["X-Content-SHA256"] == body["sha256"]
    assert client.get(body["links"]["content"]).data == photo  # the dispatcher reads it too

    # another crew may neither read it nor attach to this visit; other systems may not read it
    assert client_as("agent", other).get(body["links"]["content"]).status_code == 403
    assert _upload(client_as("agent", other), "v0", photo).status_code == 403
    assert client_as("system").get(body["links"]["content"]).status_code == 403
    assert client.get("/v1/attachments/att_0000").status_code == 404

    # listed in the case's history, and evented without the bytes
    history = client.get("/v1/cases/CASE-000/history").get_json()["entries"]
    [entry] = [e for e in history if e["type"] == "attachment"]
    assert entry["details"]["attachment_id"] == body["attachment_id"]
    assert entry["details"]["sha256"] == body["sha256"]
    [event] = [e for e in client.get("/v1/events").get_json()["events"] if e["type"] == "attachment.added"]
    assert event["data"]["sha256"] == body["sha256"] and event["data"]["case_id"] == "CASE-000"


def test_audio_in_a_multipart_form_and_a_retry_with_the_same_key(client, crews):
    recording = ogg_bytes()
    form = {"file": (io.BytesIO(recording), "door.ogg", "audio/ogg")}
    first = client.post(f"/v1/visits/v1/attachments?date={DAY}&label=door", data=form,
                        content_type="multipart/form-data", headers={"Idempotency-Key": "att-1"})
    assert first.status_code == 201, first.get_json()
    assert first.get_json()["content_type"] == "audio/ogg" and first.get_json()["kind"] == "audio"
    again = client.post(f"/v1/visits/v1/attachments?date={DAY}&label=door",
                        data={"file": (io.BytesIO(recording), "door.ogg", "audio/ogg")},
                        content_type="multipart/form-data", headers={"Idempotency-Key": "att-1"})
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    other = _upload(client, "v1", wav_bytes(), "audio/wav", **{"Idempotency-Key": "att-1"})
    assert other.status_code == 409
    entries = client.get("/v1/cases/CASE-001/history").get_json()["entries"]
    assert [e["details"]["attachment_id"] for e in entries if e["type"] == "attachment"] == \
        [first.get_json()["attachment_id"]]
    wav = _upload(client, "v1", wav_bytes(), "audio/x-wav")
    assert wav.status_code == 201 and wav.get_json()["content_type"] == "audio/wav"
    assert client.get(wav.get_json()["links"]["content"], headers={"Accept": "audio/*"}).data == wav_bytes()
    refused = client.get(wav.get_json()["links"]["content"], headers={"Accept": "image/*"})
    assert refused.status_code == 406 and "audio/wav" in refused.get_json()["message"]


def test_wrong_type_too_big_and_empty_are_refused_naming_the_field(make_app, payload, tmp_path):
    config = tmp_path / "cases.toml"
    config.write_text('[attachments]\nmax_bytes = 2048\ntypes = ["image/png"]\n', encoding="utf-8")
    client = make_app(CASES_CONFIG=str(config)).test_client()
    assert client.post("/v1/plans?wait=60", json=payload()).status_code == 201

    text = _upload(client, "v0", b"hello, this is not a photo", "image/png")
    assert text.status_code == 415 and text.get_json()["errors"][0]["field"] == "file"
    ogg = _upload(client, "v0", ogg_bytes(), "audio/ogg")  # a known type the configuration does not take
    assert ogg.status_code == 415 and "audio/ogg" in ogg.get_json()["message"]
    big = _upload(client, "v0", png_bytes(200, 200) + b"\x00" * 4096, "image/png")
    assert big.status_code == 413 and big.get_json()["limit"] == {"field": "file", "max": 2048,
                                                                   "got": big.get_json()["limit"]["got"]}
    empty = _upload(client, "v0", b"", "image/png")
    assert empty.status_code == 422 and empty.get_json()["errors"][0]["field"] == "file"
    form = client.post(f"/v1/visits/v0/attachments?date={DAY}", data={"note": "x"},
                       content_type="multipart/form-data")
    assert form.status_code == 422 and form.get_json()["errors"][0]["field"] == "file"
    no_date = client.post("/v1/visits/v0/attachments", data=png_bytes(), content_type="image/png")
    assert no_date.status_code == 400 and no_date.get_json()["errors"][0]["field"] == "date"
    unknown = _upload(client, "nope", png_bytes(), "image/png")
    assert unknown.status_code == 404
    assert [e for e in client.get("/v1/events").get_json()["events"] if e["type"] == "attachment.added"] == []


def test_a_configured_folder_keeps_the_bytes_as_files(make_app, payload, tmp_path):
    folder = tmp_path / "media"
    config = tmp_path / "cases.toml"
    config.write_text(f'[attachments]\nfolder = "{folder}"\n', encoding="utf-8")
    app = make_app(CASES_CONFIG=str(config))
    client = app.test_client()
    assert client.post("/v1/plans?wait=60", json=payload()).status_code == 201
    photo = png_bytes(3, 3)
    body = _upload(client, "v2", photo, "image/png").get_json()
    [path] = list(folder.rglob("att_*"))
    assert path.name == body["attachment_id"] and path.read_bytes() == photo
    stored = app.extensions["doorstep"].store.get_attachment(body["attachment_id"])
    assert stored is not None and stored[1] is None  # the store keeps the record only
    assert client.get(body["links"]["content"]).data == photo
