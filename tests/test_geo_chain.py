"""The geocoding chain against real HTTP servers on 127.0.0.1 (solver.geo.chain, providers).

Each server is a small ``http.server`` thread answering in the format of one
provider (Nominatim, Baidu, AMap), or failing (HTTP 500, too slow). The chain
talks to them through geopy's real geocoder classes over real sockets.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from solver.geo.cache import MemoryGeocodeCache, SQLiteGeocodeCache
from solver.geo.chain import GeocodingChain
from solver.geo.coords import wgs84_to_bd09, wgs84_to_gcj02
from solver.geo.gazetteer import load_bundled_gazetteer
from solver.geo.providers import ProviderSettings, build_provider
from solver.model import Location
from solver.travel import haversine_m

PEOPLES_SQUARE = (31.2304, 121.4737)  # WGS-84


class Server:
    """A loopback HTTP server whose answers come from ``respond(path, query)``."""

    def __init__(self, respond: Callable[[str, dict[str, str]], tuple[int, object]], delay_s: float = 0.0) -> None:
        self.requests: list[tuple[float, str, dict[str, str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                server.requests.append((time.monotonic(), parts.path, query))
                if delay_s:
                    time.sleep(delay_s)
                status, body = respond(parts.path, query)
                payload = json.dumps(body, ensure_ascii=False).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.domain = f"127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(respond, delay_s: float = 0.0) -> Server:
        server = Server(respond, delay_s)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def nominatim_answers(known: dict[str, dict]) -> Callable[[str, dict[str, str]], tuple[int, object]]:
    """Nominatim ``/search`` JSON: one hit for known queries, ``[]`` otherwise."""

    def respond(path: str, query: dict[str, str]) -> tuple[int, object]:
        assert path == "/search" and query["format"] == "json"
        hit = known.get(query["q"])
        return 200, [] if hit is None else [hit]

    return respond


HOUSE = {"lat": "31.2304", "lon": "121.4737", "display_name": "1 Test Road, Huangpu", "place_rank": 30,
         "class": "building", "type": "yes", "address": {"house_number": "1", "road": "Test Road"}}
QUARTER = {"lat": "31.2300", "lon": "121.4700", "display_name": "Huangpu", "place_rank": 18, "class": "boundary",
           "type": "administrative", "address": {}}


def nominatim_table(server: Server, name: str, **extra) -> dict:
    return {"name": name, "kind": "nominatim", "enabled": True, "domain": server.domain, "scheme": "http",
            "timeout_s": 2.0, "retries": 0, "min_delay_s": 0.0, "error_wait_s": 0.01, **extra}


def chain_of(*tables: dict, gazetteer=None, cache=None, environ=None) -> GeocodingChain:
    return GeocodingChain.from_config(
        {"flag_below_confidence": 0.5, "providers": list(tables), "offline_gazetteer": gazetteer is not None,
         "cache": "none"},
        gazetteer=gazetteer, cache=cache, environ=environ or {},
    )


def test_default_configuration_is_offline():
    chain = GeocodingChain.from_config()
    assert chain.providers == [] and chain.provider_names == ["gazetteer"]
    outcome = chain.lookup("上海市黄浦区西藏中路45号")
    assert outcome.result is not None and outcome.result.provider == "gazetteer"
    assert [a.status for a in outcome.attempts] == ["found"]


def test_a_timeout_and_a_server_error_give_way_to_the_next_provider(serve):
    slow = serve(nominatim_answers({"Test Road 1": HOUSE}), delay_s=1.0)
    broken = serve(lambda path, query: (500, {"error": "internal"}))
    good = serve(nominatim_answers({"Test Road 1": HOUSE}))
    chain = chain_of(
        nominatim_table(slow, "slow", timeout_s=0.2),
        nominatim_table(broken, "broken", retries=2),
        nominatim_table(good, "good"),
    )
    outcome = chain.lookup("Test Road 1")
    assert [(a.provider, a.status) for a in outcome.attempts] == [
        ("slow", "timeout"), ("broken", "failed"), ("good", "found")]
    assert "timed out" in outcome.attempts[0].error.lower()
    assert outcome.attempts[1].error.startswith("Geocoder")  # geopy's error class, reported not raised
    assert len(broken.requests) == 3  # one try and two retries
    result = outcome.result
    assert result.provider == "good" and result.precision == "exact" and not result.flagged
    assert haversine_m(result.location, Location(lat=31.2304, lon=121.4737)) < 0.01
    assert result.attempts == outcome.attempts and result.geocoded_at is not None


def test_every_provider_failing_falls_back_to_the_gazetteer_uncached(serve):
    broken = serve(lambda path, query: (502, {}))
    cache = MemoryGeocodeCache()
    chain = chain_of(nominatim_table(broken, "broken"), gazetteer=load_bundled_gazetteer(), cache=cache)
    result = chain.geocode("西藏中路45号")
    assert result is not None and result.provider == "gazetteer"
    assert [a.status for a in result.attempts] == ["failed", "found"]
    assert len(cache) == 0  # a failing provider may do better next time


def test_not_found_then_gazetteer_is_cached(serve):
    good = serve(nominatim_answers({}))
    cache = MemoryGeocodeCache()
    chain = chain_of(nominatim_table(good, "good"), gazetteer=load_bundled_gazetteer(), cache=cache)
    first = chain.lookup("福州路100号")
    assert [a.status for a in first.attempts] == ["not_found", "found"]
    second = chain.lookup("福州路 100 号")
    assert second.result.cached and [a.status for a in second.attempts] == ["cached"]
    assert second.result.location == first.result.location and second.result.provider == "gazetteer"
    assert len(good.requests) == 1


def test_a_low_confidence_answer_does_not_stop_the_chain(serve):
    vague = serve(nominatim_answers({"西藏中路45号": QUARTER}))
    chain = chain_of(nominatim_table(vague, "vague"), gazetteer=load_bundled_gazetteer())
    outcome = chain.lookup("西藏中路45号")
    assert [(a.provider, a.status) for a in outcome.attempts] == [("vague", "found"), ("gazetteer", "found")]
    assert outcome.attempts[0].confidence < 0.5 <= outcome.attempts[1].confidence
    assert outcome.result.provider == "gazetteer" and not outcome.flagged


def test_only_a_low_confidence_answer_is_flagged(serve):
    vague = serve(nominatim_answers({"Somewhere": QUARTER}))
    result = chain_of(nominatim_table(vague, "vague")).geocode("Somewhere")
    assert result.flagged and result.precision == "district" and result.confidence < 0.5


def test_baidu_answer_in_bd09_is_converted_to_wgs84(serve):
    bd_lat, bd_lon = wgs84_to_bd09(*PEOPLES_SQUARE)

    def respond(path, query):
        assert path == "/geocoding/v3/" and query["ak"] == "secret-ak" and query["output"] == "json"
        return 200, {"status": 0, "result": {"location": {"lng": bd_lon, "lat": bd_lat}, "precise": 1,
                                             "confidence": 80, "comprehension": 100, "level": "门址"}}

    baidu = serve(respond)
    table = {"name": "baidu", "kind": "baidu", "enabled": True, "domain": baidu.domain, "scheme": "http",
             "api_key_env": "TEST_BAIDU_AK", "timeout_s": 2.0, "retries": 0}
    result = chain_of(table, environ={"TEST_BAIDU_AK": "secret-ak"}).geocode("人民大道200号")
    assert result.provider == "baidu" and result.location.crs == "wgs84" and result.precision == "exact"
    assert haversine_m(result.location, Location(lat=PEOPLES_SQUARE[0], lon=PEOPLES_SQUARE[1])) < 1
    assert result.confidence == pytest.approx(0.76)


def test_amap_answer_in_gcj02_is_converted_to_wgs84(serve):
    gcj_lat, gcj_lon = wgs84_to_gcj02(*PEOPLES_SQUARE)

    def respond(path, query):
        assert path == "/v3/geocode/geo" and query["key"] == "amap-key"
        if query["address"] == "nowhere":
            return 200, {"status": "1", "info": "OK", "count": "0", "geocodes": []}
        return 200, {"status": "1", "info": "OK", "count": "1", "geocodes": [
            {"formatted_address": "上海市黄浦区人民大道200号", "location": f"{gcj_lon:.6f},{gcj_lat:.6f}",
             "level": "门牌号"}]}

    amap = serve(respond)
    table = {"name": "amap", "kind": "amap", "enabled": True, "domain": amap.domain, "scheme": "http",
             "api_key_env": "TEST_AMAP_KEY", "timeout_s": 2.0, "retries": 0}
    chain = chain_of(table, environ={"TEST_AMAP_KEY": "amap-key"})
    result = chain.geocode("人民大道200号")
    assert result.provider == "amap" and result.matched == "上海市黄浦区人民大道200号"
    assert haversine_m(result.location, Location(lat=PEOPLES_SQUARE[0], lon=PEOPLES_SQUARE[1])) < 1
    assert chain.lookup("nowhere").attempts[0].status == "not_found"


def test_a_bad_key_answer_is_a_reported_failure(serve):
    amap = serve(lambda path, query: (200, {"status": "0", "info": "INVALID_USER_KEY", "infocode": "10001"}))
    table = {"name": "amap", "kind": "amap", "enabled": True, "domain": amap.domain, "scheme": "http",
             "api_key_env": "K", "timeout_s": 2.0, "retries": 3, "error_wait_s": 0.01}
    outcome = chain_of(table, environ={"K": "wrong"}).lookup("人民大道200号")
    assert outcome.result is None
    (attempt,) = outcome.attempts
    assert attempt.status == "failed" and "INVALID_USER_KEY" in attempt.error


@pytest.mark.filterwarnings("ignore:Latitude normalization:UserWarning")
def test_an_answer_outside_the_globe_is_a_reported_failure(serve):
    bad = serve(nominatim_answers({"x": {**HOUSE, "lat": "95.0"}}))
    (attempt,) = chain_of(nominatim_table(bad, "bad")).lookup("x").attempts
    assert attempt.status == "failed" and "Latitude" in attempt.error and "90" in attempt.error


def test_a_provider_without_its_key_is_skipped_and_reported():
    table = {"name": "baidu", "kind": "baidu", "enabled": True, "api_key_env": "DOORSTEP_TEST_NO_SUCH_KEY"}
    chain = chain_of(table, gazetteer=load_bundled_gazetteer())
    assert chain.providers == []
    outcome = chain.lookup("西藏中路45号")
    assert outcome.attempts[0].status == "skipped" and "DOORSTEP_TEST_NO_SUCH_KEY" in outcome.attempts[0].error
    assert outcome.result.provider == "gazetteer"


def test_disabled_providers_are_not_built():
    table = {"name": "nominatim", "kind": "nominatim", "enabled": False}
    assert chain_of(table).provider_names == []


def test_unknown_provider_kind_is_an_error():
    with pytest.raises(ValueError, match="unknown geocoding provider kind 'bing'"):
        chain_of({"name": "x", "kind": "bing", "enabled": True})


def test_rate_limit_spaces_the_calls(serve):
    good = serve(nominatim_answers({"a": HOUSE, "b": HOUSE}))
    provider = build_provider(ProviderSettings.from_mapping(nominatim_table(good, "good", min_delay_s=0.6)))
    provider.geocode("a")
    provider.geocode("b")
    (t1, *_), (t2, *_) = good.requests
    # spaced from the start of the first call: the server may see the first request late (up to 0.2 s kept for that)
    assert t2 - t1 >= 0.4


def test_batch_geocodes_each_distinct_address_once_with_progress(serve):
    good = serve(nominatim_answers({"Test Road 1": HOUSE}))
    chain = chain_of(nominatim_table(good, "good"), cache=MemoryGeocodeCache())
    texts = ["Test Road 1", "Ｔｅｓｔ Ｒｏａｄ １", "", "Unknown Lane 3", "test road 1", "Unknown Lane 3"]
    seen: list[tuple[int, int]] = []
    outcomes = chain.geocode_many(texts, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(0, 2), (1, 2), (2, 2)]
    assert len(good.requests) == 2
    assert [o.query for o in outcomes] == texts
    assert [o.ok for o in outcomes] == [True, True, False, False, True, False]
    assert outcomes[2].error == "address text is empty"
    assert outcomes[3].error is None and outcomes[3].attempts[0].status == "not_found"
    assert outcomes[1].location == outcomes[0].location


def test_sqlite_cache_keeps_provider_and_time_across_restarts(serve, tmp_path):
    good = serve(nominatim_answers({"Test Road 1": HOUSE}))
    path = tmp_path / "var" / "geocode.sqlite"
    first = chain_of(nominatim_table(good, "good"), cache=SQLiteGeocodeCache(path)).geocode("Test Road 1")
    broken = serve(lambda path, query: (500, {}))
    again = chain_of(nominatim_table(broken, "broken"), cache=SQLiteGeocodeCache(path)).geocode("Test Road 1")
    assert again.cached and again.provider == "good" and again.geocoded_at == first.geocoded_at
    assert again.location == first.location and again.precision == "exact"
    assert broken.requests == []


def test_empty_address_is_a_clear_error():
    chain = GeocodingChain.from_config()
    with pytest.raises(ValueError, match="address text is empty"):
        chain.geocode("  ")
    assert chain.lookup("").error == "address text is empty"


def test_dispatcher_confirmation_is_used_next_time():
    chain = GeocodingChain.from_config({"cache": "memory"}, gazetteer=load_bundled_gazetteer())
    gcj = wgs84_to_gcj02(*PEOPLES_SQUARE)
    confirmed = chain.confirm("某小区3号楼", Location(lat=gcj[0], lon=gcj[1], crs="gcj02"))
    assert confirmed.provider == "dispatcher" and confirmed.confidence == 1.0
    result = chain.geocode("某小区3号楼")
    assert result.cached and result.provider == "dispatcher" and not result.flagged
    assert haversine_m(result.location, Location(lat=PEOPLES_SQUARE[0], lon=PEOPLES_SQUARE[1])) < 1
