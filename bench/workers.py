"""Planning a benchmark day through ``doorstep worker`` processes on Redis.

:func:`plan_on_workers` starts N local ``doorstep worker`` processes on a
queue and key prefix of their own (Redis database ``--redis-db``), submits
the day as a plan job (:class:`app.jobs.RQJobRunner`, as the web app does),
waits for it and reads the published plan back. A day past ``[jobs]
split_above`` visits is split into parts solved as RQ jobs by all the workers
(:mod:`app.jobs.split`). While the job runs, the peak resident size of every
worker process and of the work horses it forks (one per job: the parent job,
then the parts) is sampled from ``/proc`` (``VmHWM``).

The workers get the city's network through :func:`bench_travel`, a travel
factory named ``bench.workers:bench_travel`` that loads it from the index
store (memory-mapped) by ``DOORSTEP_BENCH_CITY`` (``size:seed:store``). Each
worker loads it before taking jobs (``python -m bench.workers worker ...``,
:func:`main`), as ``doorstep worker`` preloads the configured network, so
that its work horses inherit it.

While the job runs, the stages its record goes through (queued, solving,
checking, publishing) are timed from outside (:class:`_Stages`).
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from solver.model import Plan, Problem  # noqa: E402
from solver.travel import TravelModel  # noqa: E402


@functools.cache
def bench_travel() -> TravelModel:
    """The benchmark city's road network (``DOORSTEP_BENCH_CITY``:
    ``size:seed:store``), as the workers' travel model."""
    from solver.geo.network import NetworkStore, RoadNetwork
    from solver.geo.network.store import store_key
    from solver.geo.synthetic import synthetic_city

    size, seed, store = os.environ["DOORSTEP_BENCH_CITY"].split(":", 2)
    key = store_key(f"synthetic:{size}:{seed}", RoadNetwork._settings(None, None, None))
    return NetworkStore(store).load_or_build(key, lambda: RoadNetwork(synthetic_city(int(size), seed=int(seed)).graph))


@dataclass
class _Peaks:
    """Peak resident sizes (MiB) of the workers and of their work horses."""

    workers: dict[int, float] = field(default_factory=dict)
    horses: dict[int, float] = field(default_factory=dict)  # by worker pid: the largest horse
    horse_count: dict[int, set[int]] = field(default_factory=dict)
    #: Seconds from submitting the job to the first sight of each (status, stage) of its record.
    stages: dict[str, float] = field(default_factory=dict)

    def stage_times(self, wall: float) -> str:
        """How long the job spent in each stage seen, up to ``wall``."""
        seen = [*sorted(self.stages.items(), key=lambda kv: kv[1]), ("done", wall)]
        return ", ".join(f"{name} {seen[k + 1][1] - at:.1f} s" for k, (name, at) in enumerate(seen[:-1]))


def _hwm_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _children(pids: set[int]) -> dict[int, int]:
    """Processes whose parent is in ``pids``: child pid -> parent pid."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid in pids:
            found[int(entry.name)] = ppid
    return found


def _sample(peaks: _Peaks, pids: list[int], stop: threading.Event, every_s: float = 0.3) -> None:
    while not stop.is_set():
        for pid in pids:
            hwm = _hwm_mib(pid)
            if hwm is not None:
                peaks.workers[pid] = max(peaks.workers.get(pid, 0.0), hwm)
        for child, parent in _children(set(pids)).items():
            hwm = _hwm_mib(child)
            if hwm is not None:
                peaks.horses[parent] = max(peaks.horses.get(parent, 0.0), hwm)
                peaks.horse_count.setdefault(parent, set()).add(child)
        stop.wait(every_s)


def plan_on_workers(problem: Problem, *, workers: int, redis_url: str, city: str,
                    timeout_s: float = 1800.0) -> tuple[Plan, float, _Peaks, str]:
    """Plan ``problem`` as a job on ``workers`` fresh ``doorstep worker``
    processes; returns the published plan, the wall time from submitting to
    success, the peak resident sizes and the job's search description."""
    from app.events import Webhook
    from app.jobs import JobLimits, RQJobRunner, TravelProvider
    from app.store.redis import RedisStore

    tag = f"bench-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DOORSTEP_BENCH_CITY": city, "PYTHONPATH": str(ROOT)}
    os.environ["DOORSTEP_BENCH_CITY"] = city
    procs = [subprocess.Popen(
        [sys.executable, "-m", "bench.workers", "worker", "--redis-url", redis_url, "--prefix", tag, "--queue", tag,
         "--no-preload", "--name", f"{tag}-{k}"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open(f"/tmp/{tag}-{k}.log", "wb"),  # noqa: SIM115 - the worker holds it
    ) for k in range(workers)]
    store = RedisStore(redis_url, prefix=tag)
    runner = RQJobRunner(store, TravelProvider("bench.workers:bench_travel"), Webhook(None), redis_url=redis_url,
                         queue=tag, limits=JobLimits.from_config())
    peaks = _Peaks()
    stop = threading.Event()
    sampler = threading.Thread(target=_sample, args=(peaks, [p.pid for p in procs], stop), daemon=True)
    try:
        _wait_for_workers(runner, workers)
        sampler.start()
        started = time.perf_counter()
        job = runner.submit(problem)
        while True:
            current = runner.get(job.id)
            if current is not None:
                seen = current.status if current.status != "running" else current.stage or "running"
                peaks.stages.setdefault(seen, time.perf_counter() - started)
            if current is not None and current.status in ("succeeded", "failed"):
                break
            if time.perf_counter() - started > timeout_s:
                raise SystemExit(f"job {job.id} still {current.status if current else '?'} after {timeout_s} s")
            time.sleep(0.1)
        wall = time.perf_counter() - started
        if current.status != "succeeded" or current.version is None:
            raise SystemExit(f"job failed: {current.error_code}: {current.error}")
        stored = store.get_plan(problem.date.isoformat(), current.version)
        assert stored is not None
        plan = Plan.model_validate_json(stored.plan_json)
        return plan, wall, peaks, f"{plan.solver.first_solution}; {plan.solver.metaheuristic}"
    finally:
        stop.set()
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for key in store.redis.scan_iter(match=f"*{tag}*"):
            store.redis.delete(key)
        store.redis.srem("rq:queues", f"rq:queue:{tag}")  # RQ's set of queue names (jobs and results expire)
        store.close()


def _wait_for_workers(runner: object, workers: int, timeout_s: float = 60.0) -> None:
    """Until ``workers`` workers listen on the runner's queue."""
    from rq import Worker

    queue = runner.queue  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout_s
    while Worker.count(connection=queue.connection, queue=queue) < workers:
        if time.monotonic() > deadline:
            raise SystemExit("the workers did not start (see /tmp/bench-*.log)")
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.workers worker ...``: ``doorstep worker`` with the
    benchmark city loaded first (:func:`bench_travel`), so that its work
    horses inherit it, warmed (kernels, hierarchies, segment indexes) as
    ``doorstep worker`` warms the configured network (which is all it preloads)."""
    from app.cli import main as cli
    from app.jobs.travel import warm_travel

    warm_travel(bench_travel())  # as `doorstep worker` warms the configured network
    cli.main(args=list(sys.argv[1:] if argv is None else argv), prog_name="doorstep")


if __name__ == "__main__":
    main()
