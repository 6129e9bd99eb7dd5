"""An external routing server prices travel: OSRM's table API (and Valhalla's
sources_to_targets) served on 127.0.0.1 by a small HTTP server that computes
its answers on the bundled road network. Real sockets, real solves."""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

from solver import solve
from solver.check import check_plan
from solver.compile import compile_problem
from solver.geo.network import load_bundled_network
from solver.geo.routing import RoutingServerTravel, TravelUnavailable, travel_model_from_config
from solver.model import Location
from solver.travel import UNREACHABLE_S, StraightLineTravel, TravelModel
from tests.factories import problem

OSRM_MODES = {"car": "drive", "bike": "ebike", "foot": "walk"}
VALHALLA_MODES = {"auto": "drive", "bicycle": "ebike", "pedestrian": "walk"}


class RoutingStub:
    """OSRM ``/table/v1`` and Valhalla ``/sources_to_targets`` answered from a
    travel model, refusing requests over ``max_table_size`` coordinates (or
    more than its square of pairs) as OSRM does (``400 TooBig``)."""

    def __init__(self, model: TravelModel, max_table_size: int = 100) -> None:
        self.model = model
        self.max_table_size = max_table_size
        self.fail_next = 0  # answer this many requests with 503 first
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # OSRM
                url = urlsplit(self.path)  # not urlparse: it cuts the path at ";"
                parts = url.path.split("/")
                if len(parts) != 5 or parts[1:3] != ["table", "v1"] or parts[3] not in OSRM_MODES:
                    self._send(400, {"code": "InvalidUrl", "message": f"URL string malformed: {url.path}"})
                    return
                coords = [tuple(map(float, c.split(","))) for c in parts[4].split(";")]
                query = parse_qs(url.query)
                every = list(range(len(coords)))
                sources = [int(i) for i in query["sources"][0].split(";")] if "sources" in query else every
                targets = [int(i) for i in query["destinations"][0].split(";")] if "destinations" in query else every
                status, body = stub.answer(OSRM_MODES[parts[3]], coords, sources, targets,
                                           query.get("annotations", [""])[0].split(","))
                if status == 200:
                    body = {"code": "Ok", "durations": body["durations"], "distances": body["distances"]}
                self._send(status, body)

            def do_POST(self) -> None:  # Valhalla
                payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path != "/sources_to_targets" or payload.get("costing") not in VALHALLA_MODES:
                    self._send(400, {"error_code": 100, "error": "bad request"})
                    return
                sources = [(p["lon"], p["lat"]) for p in payload["sources"]]
                targets = [(p["lon"], p["lat"]) for p in payload["targets"]]
                coords = sources + targets
                status, body = stub.answer(VALHALLA_MODES[payload["costing"]], coords, list(range(len(sources))),
                                           list(range(len(sources), len(coords))), ["duration", "distance"])
                if status == 200:
                    body = {"sources_to_targets": [
                        [{"time": t, "distance": None if d is None else d / 1000.0, "from_index": i, "to_index": j}
                         for j, (t, d) in enumerate(zip(trow, drow))]
                        for i, (trow, drow) in enumerate(zip(body["durations"], body["distances"]))]}
                self._send(status, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, mode: str, coords: list[tuple[float, ...]], sources: list[int], targets: list[int],
               annotations: list[str]) -> tuple[int, dict[str, Any]]:
        """Durations and distances between the request's points, or OSRM's TooBig."""
        with self.lock:
            self.requests.append({"mode": mode, "coordinates": len(coords), "sources": len(sources),
                                  "targets": len(targets)})
            if self.fail_next:
                self.fail_next -= 1
                return 503, {"code": "Unavailable", "message": "busy"}
        if len(coords) > self.max_table_size or len(sources) * len(targets) > self.max_table_size ** 2:
            return 400, {"code": "TooBig", "message": "Too many table coordinates"}
        if sorted(annotations) != ["distance", "duration"]:
            return 400, {"code": "InvalidOptions", "message": "annotations"}
        matrix = self.model.matrix([Location(lat=lat, lon=lon) for lon, lat in coords], mode)  # type: ignore[arg-type]
        grid = np.ix_(sources, targets)
        reachable = np.ones(matrix.durations.shape, bool) if matrix.reachable is None else matrix.reachable
        durations = [[float(v) if ok else None for v, ok in zip(row, oks)]
                     for row, oks in zip(matrix.durations[grid], reachable[grid])]
        distances = [[float(v) if ok else None for v, ok in zip(row, oks)]
                     for row, oks in zip(matrix.distances[grid], reachable[grid])]
        return 200, {"durations": durations, "distances": distances}

    def __enter__(self) -> RoutingStub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def network():
    return load_bundled_network()


@pytest.fixture
def osrm(network) -> Iterator[RoutingStub]:
    with RoutingStub(network, max_table_size=10) as stub:
        yield stub


def _points(n: int, seed: int = 3) -> list[Location]:
    """``n`` points in central Huangpu, 5 decimals (the client sends 6)."""
    rng = np.random.default_rng(seed)
    return [Location(lat=round(float(lat), 5), lon=round(float(lon), 5))
            for lat, lon in zip(rng.uniform(31.222, 31.240, n), rng.uniform(121.468, 121.488, n))]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_plan_is_priced_with_the_servers_matrix(osrm, network):
    travel = RoutingServerTravel(osrm.url, max_table_size=10)
    branch = {"location": {"lat": 31.2305, "lon": 121.4737}}
    visits = [{"id": f"v{i}", "addresses": [{"location": {"lat": p.lat, "lon": p.lon}}]}
              for i, p in enumerate(_points(6))]
    agents = [{"id": "c", "shift": {"start": "08:00", "end": "18:00"}, "start": branch, "travel_mode": "ebike"}]
    p = problem(visits, agents, time_limit_s=1)

    data = compile_problem(p, travel)
    expected = network.matrix(data.points, "ebike")
    np.testing.assert_array_equal(data.matrices["ebike"].durations, expected.durations)
    np.testing.assert_array_equal(data.matrices["ebike"].distances, expected.distances)
    assert {r["mode"] for r in osrm.requests} == {"ebike"}

    plan = solve(p, travel)
    check_plan(p, plan, travel).raise_if_invalid()
    route = plan.route("c")
    assert len(route.stops) == 6
    legs = [route.start_location] + [s.location for s in route.stops]
    for (a, b), stop in zip(itertools.pairwise(legs), route.stops):
        leg = network.matrix([a, b], "ebike")
        assert (stop.travel_s, stop.distance_m) == (int(leg.durations[0, 1]), int(leg.distances[0, 1]))


def test_more_points_than_one_request_holds_are_asked_in_blocks(osrm, network):
    points = _points(23)
    travel = RoutingServerTravel(osrm.url, max_table_size=10, parallel_requests=3)
    matrix = travel.matrix(points, "drive")
    expected = network.matrix(points, "drive")
    np.testing.assert_array_equal(matrix.durations, expected.durations)
    np.testing.assert_array_equal(matrix.distances, expected.distances)
    # chunks of 5: 5 chunks, 25 blocks, none over the server's limit (all answered)
    assert len(osrm.requests) == travel.requests == 25
    assert max(r["coordinates"] for r in osrm.requests) <= 10
    assert sum(r["sources"] * r["targets"] for r in osrm.requests) == 23 * 23


def test_the_second_call_is_served_from_the_cache(osrm):
    points = _points(8)
    travel = RoutingServerTravel(osrm.url, max_table_size=10)
    first = travel.matrix(points, "walk")
    asked = len(osrm.requests)
    assert asked == 1
    again = travel.matrix(list(points), "walk")
    assert len(osrm.requests) == asked  # nothing asked
    assert travel.matrix_cache.hits == 1
    np.testing.assert_array_equal(first.durations, again.durations)
    travel.matrix(points, "drive")  # another profile is another matrix
    assert len(osrm.requests) == asked + 1


def test_cached_matrices_on_disk_survive_a_new_client(osrm, tmp_path):
    points = _points(5)
    settings = {"provider": "osrm", "url": osrm.url, "matrix_cache_dir": str(tmp_path)}
    first = RoutingServerTravel.from_config(settings).matrix(points, "drive")
    assert len(osrm.requests) == 1 and list(tmp_path.glob("*.npz"))
    again = RoutingServerTravel.from_config(settings).matrix(points, "drive")
    assert len(osrm.requests) == 1
    np.testing.assert_array_equal(first.durations, again.durations)


def test_a_server_that_is_down_gives_a_clear_error_fast():
    url = f"http://127.0.0.1:{_free_port()}"
    travel = RoutingServerTravel(url, retries=2, retry_wait_s=0.05)
    started = time.perf_counter()
    with pytest.raises(TravelUnavailable) as caught:
        travel.matrix(_points(4), "drive")
    assert time.perf_counter() - started < 2.0
    assert str(caught.value).startswith(f"routing_unavailable: OSRM at {url} did not answer")
    assert "after 3 tries" in str(caught.value)
    assert travel.requests == 3


def test_a_server_that_hangs_times_out():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts connections, never answers
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        travel = RoutingServerTravel(url, timeout_s=0.3, retries=1, retry_wait_s=0.05)
        started = time.perf_counter()
        with pytest.raises(TravelUnavailable, match=r"did not answer \(no answer within 0.3 s after 2 tries\)"):
            travel.matrix(_points(3), "walk")
        assert time.perf_counter() - started < 3.0
    finally:
        listener.close()


def test_a_busy_server_is_retried_a_bounded_number_of_times(osrm, network, recwarn):
    points = _points(4)
    travel = RoutingServerTravel(osrm.url, retries=2, retry_wait_s=0.01)
    osrm.fail_next = 2
    matrix = travel.matrix(points, "drive")  # 503, 503, then the answer
    np.testing.assert_array_equal(matrix.durations, network.matrix(points, "drive").durations)
    assert len(osrm.requests) == 3
    assert not [w for w in recwarn if "Server down" in str(w.message)]  # routingpy's own retry is off

    osrm.fail_next = 3
    with pytest.raises(TravelUnavailable, match=r"did not answer \(HTTP 503 after 3 tries\)"):
        travel.matrix(_points(4, seed=9), "drive")
    assert len(osrm.requests) == 6


class _Island:
    """Straight-line travel, except that nothing reaches or leaves ``island``."""

    def __init__(self, island: Location) -> None:
        self.island = island

    def matrix(self, points, mode):
        from solver.travel import TravelMatrix

        base = StraightLineTravel().matrix(points, mode)
        cut = np.array([abs(p.lat - self.island.lat) < 1e-6 and abs(p.lon - self.island.lon) < 1e-6
                        for p in points])
        reachable = ~(cut[:, None] ^ cut[None, :])
        return TravelMatrix(base.durations, base.distances, reachable)


def test_pairs_without_a_route_are_unreachable():
    points = _points(5)
    with RoutingStub(_Island(points[2])) as stub:
        matrix = RoutingServerTravel(stub.url).matrix(points, "walk")
    assert matrix.reachable is not None
    assert not matrix.is_reachable(0, 2) and not matrix.is_reachable(2, 4) and matrix.is_reachable(0, 4)
    assert matrix.is_reachable(2, 2) and matrix.durations[2, 2] == 0
    assert matrix.durations[0, 2] == UNREACHABLE_S


def test_a_refused_request_is_not_retried(osrm):
    travel = RoutingServerTravel(osrm.url, max_table_size=50)  # the server holds 10
    with pytest.raises(TravelUnavailable, match=r"refused the matrix request \(HTTP 400 TooBig"):
        travel.matrix(_points(12), "drive")
    assert len(osrm.requests) == 1


def test_a_job_fails_with_routing_unavailable_when_the_server_is_down(make_app, payload, tmp_path, monkeypatch):
    # the configured server is down: the job process, which builds the configured travel, fails the job clearly
    url = f"http://127.0.0.1:{_free_port()}"
    _config_with(tmp_path, monkeypatch, provider="osrm", url=url, retries=1, retry_wait_s=0.05)
    app = make_app(TRAVEL="network")
    client = app.test_client()
    job = client.post("/v1/plans", json=payload()).get_json()
    deadline = time.monotonic() + 30
    while job["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.1)
        job = client.get(f"/v1/jobs/{job['job_id']}").get_json()
    assert job["status"] == "failed"
    assert f"routing_unavailable: OSRM at {url} did not answer" in job["error"]


def test_valhalla_answers_through_the_same_interface(network):
    with RoutingStub(network, max_table_size=8) as stub:
        points = _points(11)
        travel = RoutingServerTravel(stub.url, kind="valhalla", max_table_size=8)
        matrix = travel.matrix(points, "walk")
    expected = network.matrix(points, "walk")
    np.testing.assert_array_equal(matrix.durations, expected.durations)
    # Valhalla answers kilometres; routingpy truncates to whole metres
    assert np.abs(matrix.distances - expected.distances).max() <= 1
    assert {r["mode"] for r in stub.requests} == {"walk"} and len(stub.requests) == 9


def test_the_configuration_chooses_the_travel_model(osrm):
    assert travel_model_from_config({"routing": {"provider": "bundled"}}) is load_bundled_network()
    assert isinstance(travel_model_from_config({"routing": {"provider": "straight"}}), StraightLineTravel)
    cfg = {"routing": {"provider": "osrm", "url": osrm.url, "profiles": {"drive": "bike"}}}
    model = travel_model_from_config(cfg)
    assert isinstance(model, RoutingServerTravel) and model is travel_model_from_config(cfg)
    model.matrix(_points(3), "drive")
    assert osrm.requests[-1]["mode"] == "ebike"  # the configured profile was asked
    with pytest.raises(ValueError, match="needs a url"):
        travel_model_from_config({"routing": {"provider": "osrm"}})
    with pytest.raises(ValueError, match="unknown"):
        travel_model_from_config({"routing": {"provider": "graphhopper"}})


def _config_with(tmp_path, monkeypatch, **routing: object) -> None:
    """A copy of the configuration folder with these [routing] keys, in force."""
    import re
    import shutil

    from solver.config import config_dir

    folder = tmp_path / "config"
    shutil.copytree(config_dir(), folder)
    text = (folder / "defaults.toml").read_text(encoding="utf-8")
    for key, value in routing.items():
        text, n = re.subn(rf"^{key} = .*$", f"{key} = {json.dumps(value)}", text, count=1, flags=re.M)
        assert n == 1, key
    (folder / "defaults.toml").write_text(text, encoding="utf-8")
    monkeypatch.setenv("DOORSTEP_CONFIG_DIR", str(folder))


def test_jobs_and_the_cli_use_the_configured_server(osrm, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from app.cli import main
    from app.jobs import TravelProvider

    _config_with(tmp_path, monkeypatch, provider="osrm", url=osrm.url, max_table_size=10)
    model = TravelProvider(None).get()
    assert isinstance(model, RoutingServerTravel) and model.url == osrm.url

    (tmp_path / "visits.csv").write_text("id,lat,lon\n" + "".join(
        f"v{i},{p.lat},{p.lon}\n" for i, p in enumerate(_points(12))), encoding="utf-8")
    (tmp_path / "agents.csv").write_text("id,shift,start_lat,start_lon,travel_mode\n"
                                         "c,08:00-18:00,31.2305,121.4737,walk\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["plan", str(tmp_path / "visits.csv"), str(tmp_path / "agents.csv"),
                                       "--date", "2026-12-01", "--time-limit", "1", "--max-iterations", "10",
                                       "--out", str(tmp_path / "p.json")])
    assert result.exit_code == 0, result.output
    assert {r["mode"] for r in osrm.requests} == {"walk"}
    assert max(r["coordinates"] for r in osrm.requests) <= 10  # 13 points: asked in blocks


def test_the_cli_says_when_the_server_is_down(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from app.cli import main

    url = f"http://127.0.0.1:{_free_port()}"
    _config_with(tmp_path, monkeypatch, provider="osrm", url=url, retry_wait_s=0.05)
    (tmp_path / "visits.csv").write_text("id,lat,lon\nv1,31.23,121.48\n", encoding="utf-8")
    (tmp_path / "agents.csv").write_text("id,shift,start_lat,start_lon\nc,08:00-18:00,31.2305,121.4737\n",
                                         encoding="utf-8")
    started = time.perf_counter()
    result = CliRunner().invoke(main, ["plan", str(tmp_path / "visits.csv"), str(tmp_path / "agents.csv"),
                                       "--date", "2026-12-01", "--time-limit", "1", "--max-iterations", "10"])
    assert result.exit_code == 3, result.output
    assert f"error: routing_unavailable: OSRM at {url} did not answer" in result.stderr
    assert time.perf_counter() - started < 5
