"""Load test of the hot read path: ``GET /v1/agents/{id}/itinerary``.

It runs the service the way the README says, on this machine only
(127.0.0.1):

1. a temporary data dir (embedded SQLite store) and a dispatcher token made
   with ``doorstep token create``;
2. ``doorstep serve`` (gunicorn; ``python -m app.cli serve`` from this
   checkout) with its defaults (one process per core, 8 threads each, access
   log to a file);
3. the demo day (``python -m solver.demo``), planned with
   ``POST /v1/plans?wait=…``;
4. every crew's itinerary pulled over keep-alive connections for a fixed
   time at each concurrency level (50, 100, 200 connections by default), as
   fast as the connections go (closed loop: latency then grows with the queue,
   by Little's law about connections ÷ throughput) and paced near
   ``--rate`` requests/s in all (1,500 by default: each connection waits
   between its requests, as phones do);
5. the highest level again while a day of 1,000 visits is planning: first
   as a job of the service (embedded mode: a niced child process of one web process),
   then as a separate process at nice 10 (``doorstep plan``), which is how
   planning is meant to run beside the web processes;
6. per level: requests per second, latency p50 / p95 / p99, errors (socket
   errors, timeouts, statuses other than 200) and the server's resident
   memory (gunicorn master + workers, from ``/proc``).

The client is ``wrk`` (Debian package ``wrk``; the script tries
``apt-get install -y wrk`` when it is missing) with a Lua script that rotates
the crews' paths and prints the percentiles; without it, a pure-Python
asyncio client (raw sockets, keep-alive) does the same, slower: on a small
machine it takes CPU from the server, so its figures are pessimistic.

Every figure is printed and the whole output is appended to
``bench/results/load-<date>.txt`` (``load-<date>-redis.txt`` with Redis). The target of issue 11: p95 ≤ 50 ms at
200 connections, no errors, ≥ 1,500 requests/s, also while planning.

Usage::

    python bench/load.py                          # 10 s per level
    python bench/load.py --duration 5 --levels 50 200 --no-solve
    python bench/load.py --client python          # without wrk
    python bench/load.py --redis-url redis://127.0.0.1:6379/15   # Redis store, a niced worker plans
    python bench/load.py --keep-awake             # on a VM whose idle vCPUs wake slowly

On this project's virtual machines an idle vCPU wakes slowly: a paced level on an
otherwise idle machine measured 584-712 requests/s with p95 ~250 ms, and the same
level with a spinning nice-19 process (``--keep-awake``) or a plan solving beside it
1,500-1,574 requests/s with p95 24-36 ms. The server is the same in both; the
wake-ups are the machine's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

#: wrk script: rotate the paths, send the token, print percentiles as JSON.
WRK_LUA = r"""
local paths = {}
local token = os.getenv("DOORSTEP_TOKEN")
for line in io.lines(os.getenv("DOORSTEP_PATHS")) do paths[#paths + 1] = line end
local counter = 0
function request()
  counter = counter + 1
  local path = paths[(counter % #paths) + 1]
  return wrk.format("GET", path, {["Authorization"] = "Bearer " .. token})
end
-- paced runs: each connection waits about DOORSTEP_INTERVAL_MS between a
-- response and its next request (uniform 0.5-1.5 x; 0: as fast as it can)
local interval = tonumber(os.getenv("DOORSTEP_INTERVAL_MS") or "0")
function delay()
  if interval <= 0 then return 0 end
  return interval * (0.5 + math.random())
end
local non200 = 0
function response(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


# --------------------------------------------------------------------------- #
# Output
# --------------------------------------------------------------------------- #
class Report:
    """Prints lines and keeps them for the results file."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, text: str = "") -> None:
        print(text, flush=True)
        self.lines.append(text)

    def save(self, path: Path) -> None:
        """Append the run to ``path`` (runs of a day follow one another)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as out:
            if out.tell():
                out.write("\n" + "=" * 100 + "\n\n")
            out.write("\n".join(self.lines) + "\n")


# --------------------------------------------------------------------------- #
# The service
# --------------------------------------------------------------------------- #
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(*args: str, env: dict[str, str] | None = None) -> str:
    """``doorstep ARGS`` from this checkout; its standard output."""
    done = subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True)
    return done.stdout


def request(port: int, method: str, path: str, token: str, body: bytes | None = None,
            timeout: float = 600) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Authorization": f"Bearer {token}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else None
    finally:
        conn.close()


def wait_ready(port: int, proc: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"doorstep serve exited with {proc.returncode}")
        with contextlib.suppress(OSError):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/v1/openapi.json")
            if conn.getresponse().status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError("doorstep serve did not answer in time")


def process_tree(root: int) -> list[int]:
    """``root`` and its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def rss_mb(root: int) -> float:
    """Resident memory of ``root`` and its descendants, MB."""
    total_kb = 0
    for pid in process_tree(root):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
    return total_kb / 1024


def cpu_seconds(root: int) -> float:
    """User + system CPU seconds used so far by ``root`` and its descendants."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in process_tree(root):
        with contextlib.suppress(OSError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / ticks


@contextlib.contextmanager
def service(data_dir: Path, port: int, extra: Sequence[str]) -> Iterator[subprocess.Popen[bytes]]:
    log = open(data_dir / "serve.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--data-dir", str(data_dir),
         "--access-log", str(data_dir / "access.log"), *extra],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        wait_ready(port, proc)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@contextlib.contextmanager
def planning_worker(work: Path, redis_url: str, prefix: str) -> Iterator[subprocess.Popen[bytes]]:
    """One ``doorstep worker`` at nice 10 (Redis mode)."""
    log = open(work / "worker.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(["nice", "-n", "10", sys.executable, "-m", "app.cli", "worker", "--redis-url", redis_url,
                             "--prefix", prefix], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def drop_keys(redis_url: str, prefix: str) -> None:
    """Delete the run's keys from Redis."""
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start:start + 500])
    client.close()


# --------------------------------------------------------------------------- #
# Clients
# --------------------------------------------------------------------------- #
def ensure_wrk() -> str | None:
    """The wrk binary, installed with apt-get when possible; None otherwise."""
    found = shutil.which("wrk")
    if found:
        return found
    if shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], capture_output=True, check=False)
        found = shutil.which("wrk")
    return found


def run_wrk(wrk: str, port: int, token: str, paths_file: Path, connections: int, seconds: float,
            work: Path, rate: float = 0.0) -> dict[str, Any]:
    """wrk as fast as it can (``rate`` 0), or paced near ``rate`` requests/s in all."""
    script = work / "itinerary.lua"
    script.write_text(WRK_LUA, encoding="utf-8")
    # each connection also waits for its answers: aim 10 % higher so the total comes near ``rate``
    interval_ms = 0.9 * 1000.0 * connections / rate if rate > 0 else 0.0
    env = {**os.environ, "DOORSTEP_TOKEN": token, "DOORSTEP_PATHS": str(paths_file),
           "DOORSTEP_INTERVAL_MS": f"{interval_ms:.3f}"}
    threads = min(2, connections)
    done = subprocess.run(
        [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s", "--timeout", "5s",
         "-s", str(script), f"http://127.0.0.1:{port}"],
        env=env, capture_output=True, text=True, check=True,
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("WRKJSON "))
    raw = json.loads(line.removeprefix("WRKJSON "))
    errors = raw["connect"] + raw["read"] + raw["write"] + raw["timeout"] + raw["status"]
    return {
        "requests": raw["requests"], "seconds": raw["duration_us"] / 1e6, "errors": errors,
        "p50_ms": raw["p50_us"] / 1000, "p95_ms": raw["p95_us"] / 1000, "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000, "raw": done.stdout.strip(),
    }


async def _python_connection(port: int, requests: list[bytes], until: float, latencies: list[float],
                             errors: list[int], offset: int, interval_s: float) -> None:
    import random

    reader = writer = None
    index = offset
    while time.monotonic() < until:
        if interval_s > 0:
            await asyncio.sleep(interval_s * (0.5 + random.random()))
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert reader is not None
            started = time.perf_counter()
            writer.write(requests[index % len(requests)])
            index += 1
            status_line = await asyncio.wait_for(reader.readline(), 5)
            length, close = 0, False
            while True:
                line = await asyncio.wait_for(reader.readline(), 5)
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
                elif name.lower() == "connection" and value.strip().lower() == "close":
                    close = True
            await asyncio.wait_for(reader.readexactly(length), 5)
            latencies.append(time.perf_counter() - started)
            if status_line.split()[1:2] != [b"200"]:
                errors[0] += 1
            if close:
                writer.close()
                reader = writer = None
        except (TimeoutError, OSError, asyncio.IncompleteReadError, IndexError, ValueError):
            errors[0] += 1
            if writer is not None:
                writer.close()
            reader = writer = None
            await asyncio.sleep(0.01)
    if writer is not None:
        writer.close()


def run_python(port: int, token: str, paths: list[str], connections: int, seconds: float,
               rate: float = 0.0) -> dict[str, Any]:
    requests = [f"GET {p} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
                for p in paths]
    latencies: list[float] = []
    errors = [0]

    async def main() -> float:
        started = time.monotonic()
        until = started + seconds
        interval = 0.9 * connections / rate if rate > 0 else 0.0
        await asyncio.gather(*(_python_connection(port, requests, until, latencies, errors, i, interval)
                               for i in range(connections)))
        return time.monotonic() - started

    elapsed = asyncio.run(main())
    latencies.sort()

    def pct(q: float) -> float:
        return 1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else float("nan")

    return {"requests": len(latencies), "seconds": elapsed, "errors": errors[0], "p50_ms": pct(0.50),
            "p95_ms": pct(0.95), "p99_ms": pct(0.99), "max_ms": 1000 * latencies[-1] if latencies else float("nan"),
            "raw": ""}


# --------------------------------------------------------------------------- #
# The run
# --------------------------------------------------------------------------- #
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[50, 100, 200], help="concurrent connections")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per level (at most 60)")
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--rate", type=float, default=1500.0,
                        help="also run the highest level paced near this many requests/s in all (0: no)")
    parser.add_argument("--big-visits", type=int, default=1000, help="visits of the day planned in the last level")
    parser.add_argument("--big-crews", type=int, default=60)
    parser.add_argument("--big-time-limit", type=float, default=40.0)
    parser.add_argument("--no-solve", action="store_true", help="skip the level run while planning")
    parser.add_argument("--redis-url", default=None,
                        help="use the Redis store (keys under a prefix of the run, deleted after) and a niced "
                             "`doorstep worker` for the jobs; e.g. redis://127.0.0.1:6379/15")
    parser.add_argument("--serve-arg", action="append", default=[], help="extra `doorstep serve` argument")
    parser.add_argument("--out", type=Path, default=None, help="results file [bench/results/load-<date>.txt]")
    parser.add_argument("--keep-awake", action="store_true",
                        help="run a spinning process at nice 19 during the levels: on a virtual machine whose "
                             "idle vCPUs wake slowly, paced (open-loop) levels otherwise measure the wake-ups")
    args = parser.parse_args(argv)
    seconds = min(60.0, max(1.0, args.duration))
    out = args.out or RESULTS / f"load-{dt.date.today().isoformat()}{'-redis' if args.redis_url else ''}.txt"
    report = Report()

    wrk = ensure_wrk() if args.client in ("auto", "wrk") else None
    if args.client == "wrk" and wrk is None:
        parser.error("wrk is not installed and could not be installed")
    client = "wrk" if wrk else "python"
    load1, _, _ = os.getloadavg()
    report(f"doorstep load test {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {socket.gethostname()}: "
           f"{os.cpu_count()} CPU(s), load average {load1:.2f} before the run; client {client}; "
           f"{seconds:g} s per level")

    with tempfile.TemporaryDirectory(prefix="doorstep-load-") as folder:
        work = Path(folder)
        store_args = ["--data-dir", str(work)]
        prefix = f"doorstep-load-{os.getpid()}:"
        if args.redis_url:
            store_args = ["--redis-url", args.redis_url, "--prefix", prefix]
        token = cli("token", "create", "--role", "dispatcher", *store_args).strip().splitlines()[-1]
        port = free_port()
        with contextlib.ExitStack() as stack:
            if args.keep_awake:
                spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"], preexec_fn=lambda: os.nice(19))
                stack.callback(spinner.wait)
                stack.callback(spinner.kill)
                report("keep-awake: a spinning process at nice 19 keeps the CPUs from idling between paced requests")
            proc = stack.enter_context(service(work, port, [*(store_args if args.redis_url else []),
                                                            *args.serve_arg]))
            if args.redis_url:
                stack.enter_context(planning_worker(work, args.redis_url, prefix))
                stack.callback(drop_keys, args.redis_url, prefix)
                report("store: Redis; jobs on one `doorstep worker` at nice 10")
            else:
                report("store: embedded SQLite; jobs in niced child processes of the web processes")
            head = (work / "serve.log").read_text(encoding="utf-8", errors="replace").splitlines()
            report("server: " + next((x for x in head if "listening" in x), "?"))
            report(f"server RSS after start: {rss_mb(proc.pid):.0f} MB")

            # the demo day, planned and published
            subprocess.run([sys.executable, "-m", "solver.demo", str(work / "day.json")], cwd=ROOT, check=True,
                           capture_output=True)
            started = time.monotonic()
            status, created = request(port, "POST", "/v1/plans?wait=300", token, (work / "day.json").read_bytes())
            if status != 201:
                raise RuntimeError(f"planning the demo day answered {status}: {created}")
            plan = created["plan"]
            date = plan["date"]
            crews = [r["agent_id"] for r in plan["routes"]]
            report(f"demo day {date}: {plan['summary']['visits_planned']} visits planned for {len(crews)} crews "
                   f"in {time.monotonic() - started:.1f} s; RSS {rss_mb(proc.pid):.0f} MB")
            paths = [f"/v1/agents/{crew}/itinerary?date={date}" for crew in crews]
            paths_file = work / "paths.txt"
            paths_file.write_text("\n".join(paths) + "\n", encoding="utf-8")
            sizes = [len(json.dumps(request(port, "GET", p, token)[1])) for p in paths]
            report(f"itinerary sizes {min(sizes)}-{max(sizes)} bytes")

            def level(connections: int, label: str, rate: float = 0.0) -> dict[str, Any]:
                cpu0 = cpu_seconds(proc.pid)
                if wrk:
                    result = run_wrk(wrk, port, token, paths_file, connections, seconds, work, rate)
                else:
                    result = run_python(port, token, paths, connections, seconds, rate)
                result["server_cpu_s"] = cpu_seconds(proc.pid) - cpu0
                label = f"{label}@{rate:g}" if rate else label
                result.update(connections=connections, label=label, rss_mb=rss_mb(proc.pid),
                              rps=result["requests"] / result["seconds"])
                if result["raw"]:
                    (work / f"wrk-{label}-{connections}.txt").write_text(result["raw"], encoding="utf-8")
                return result

            top = max(args.levels)
            results = [level(2, "warm-up")]
            results += [level(n, "idle") for n in args.levels]
            if args.rate:
                results.append(level(top, "idle", args.rate))
            if not args.no_solve:
                subprocess.run([sys.executable, "-m", "solver.demo", "--visits", str(args.big_visits), "--crews",
                                str(args.big_crews), "--seed", "7", "--date", "2026-12-02", str(work / "big.json")],
                               cwd=ROOT, check=True, capture_output=True)
                big = json.loads((work / "big.json").read_text(encoding="utf-8"))
                big["options"]["time_limit_s"] = args.big_time_limit
                (work / "big.json").write_text(json.dumps(big), encoding="utf-8")

                # (a) a job of the service: embedded, in a niced child process of one web process; with
                # Redis, on the niced `doorstep worker`
                label = "job-in-worker" if args.redis_url else "job-of-web"
                status, job = request(port, "POST", "/v1/plans", token, json.dumps(big).encode())
                if status != 202:
                    raise RuntimeError(f"submitting the big day answered {status}: {job}")
                time.sleep(1.0)
                before = request(port, "GET", f"/v1/jobs/{job['job_id']}", token)[1]
                if args.rate:
                    results.append(level(top, label, args.rate))
                results.append(level(top, label))
                after = request(port, "GET", f"/v1/jobs/{job['job_id']}", token)[1]
                where = "the worker" if args.redis_url else "a web process"
                report(f"{label}: planning {args.big_visits} visits / {args.big_crews} crews "
                       f"(time limit {args.big_time_limit:g} s) in {where}: job {before.get('status')} "
                       f"{(before.get('progress') or {}).get('stage')} before the levels, {after.get('status')} "
                       f"{(after.get('progress') or {}).get('stage')} after")
                while after.get("status") in ("queued", "running"):  # let it finish before the next part
                    time.sleep(2)
                    after = request(port, "GET", f"/v1/jobs/{job['job_id']}", token)[1]

                # (b) as planning will run: a separate process at nice 10, competing for the CPU
                # (with Redis, (a) was that already)
                if not args.redis_url:
                    planner = subprocess.Popen(
                        ["nice", "-n", "10", sys.executable, "-m", "app.cli", "plan", str(work / "big.json"),
                         "--time-limit", f"{args.big_time_limit:g}", "--out", str(work / "big-plan.json")],
                        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    )
                    try:
                        time.sleep(3.0)
                        if args.rate:
                            results.append(level(top, "niced-solver", args.rate))
                        results.append(level(top, "niced-solver"))
                        state = "still running" if planner.poll() is None else f"ended ({planner.returncode})"
                        report(f"niced-solver: `nice -n 10 doorstep plan` of the same day in its own process: "
                               f"{state} after the levels")
                    finally:
                        if planner.poll() is None:
                            planner.terminate()
                            planner.wait()

            report("")
            report(f"{'level':<18} {'conns':>5} {'req/s':>8} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'max ms':>7} "
                   f"{'errors':>6} {'requests':>8} {'srv cpu s':>9} {'RSS MB':>7}")
            for r in results:
                report(f"{r['label']:<18} {r['connections']:>5} {r['rps']:>8.0f} {r['p50_ms']:>7.1f} "
                       f"{r['p95_ms']:>7.1f} {r['p99_ms']:>7.1f} {r['max_ms']:>7.0f} {r['errors']:>6} "
                       f"{r['requests']:>8} {r['server_cpu_s']:>9.1f} {r['rss_mb']:>7.0f}")
            load1, _, _ = os.getloadavg()
            report(f"load average after the run: {load1:.2f} (other processes on this machine count too)")
            report("")
            report("raw client output:")
            for r in results:
                if r["raw"]:
                    report(f"--- {r['label']} {r['connections']} connections")
                    report(r["raw"])
            lines = (work / "access.log").read_text(encoding="utf-8", errors="replace").splitlines()
            report(f"--- access log: {len(lines)} lines; the last one: {lines[-1] if lines else ''}")
    report.save(out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
