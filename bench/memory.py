"""Peak memory of a plan job, per day size and travel model.

Each measurement runs one plan job the way the service runs it: in a fresh
child process started by :mod:`app.jobs.process` (forkserver), with the job
memory cap (``[jobs] memory_mb``, address space) and a lower CPU priority.
The child builds its travel model from its name, solves the day with a short
time limit and checks the plan; the bench prints the child's peak resident
memory (``VmHWM``, read by the parent's watchdog), the number of locations
(visit addresses plus crew start and end points: the travel matrices grow with
its square) and how the job ended (``ok`` or the job's error code, e.g.
``memory_limit`` when the day does not fit under the cap).

Days come from :func:`solver.demo.generate_day` (the demo city, 1-2 addresses
per visit, mixed travel modes), one crew per 16 visits.

Usage::

    python bench/memory.py                          # 1,000 / 5,000 / 20,000 visits, straight and network
    python bench/memory.py --visits 1000 --travel straight --time-limit 2
    python bench/memory.py --memory-mb 4096          # measure above the default cap
    python bench/memory.py --spawn 10 --visits       # only the cost of starting a job process (both travels)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.jobs.limits import JobLimits
from app.jobs.process import measure_plan_job
from solver.demo import generate_day


def _locations(problem) -> int:
    return sum(len(v.addresses) for v in problem.visits) + 2 * len(problem.agents)


def spawn_overhead(jobs: int, data_dir: Path, travel: str = "straight") -> None:
    """Print how long a job takes from submission to running in its own
    process (the forkserver warm: the first job also starts the server), and
    the whole 5-visit job's wall and CPU seconds (its process's user + system
    time: with ``travel="network"`` that includes loading the road network)."""
    import statistics

    from app.events import Webhook
    from app.jobs import ProcessJobRunner, TravelProvider
    from app.store.sqlite import SQLiteStore

    store = SQLiteStore(data_dir / f"spawn-{travel}.sqlite3")
    runner = ProcessJobRunner(store, TravelProvider(travel), Webhook(None), workers=1,
                              limits=JobLimits.from_config().replace(poll_s=0.01))
    problem = generate_day(seed=1, visits=5, crews=1)
    problem = problem.model_copy(update={"options": problem.options.model_copy(update={"time_limit_s": 0.1})})
    to_running: list[float] = []
    whole: list[float] = []
    cpu: list[float] = []
    try:
        for _ in range(jobs + 1):
            asked = time.perf_counter()
            job = runner.submit(problem)
            running = None
            while True:
                current = store.get_job(job.id)
                if running is None and current.status != "queued":
                    running = time.perf_counter() - asked
                if current.finished and job.id in runner.reports:
                    break
                time.sleep(0.002)
            to_running.append(running or 0.0)
            whole.append(time.perf_counter() - asked)
            cpu.append(runner.reports[job.id].cpu_s)
    finally:
        runner.shutdown()
        store.close()
    print(f"{travel}: first job (starts the forkserver): submit -> running {to_running[0] * 1000:.0f} ms, "
          f"whole job {whole[0]:.2f} s, {cpu[0]:.2f} s of CPU in the job process")
    print(f"{travel}: next {jobs} jobs: submit -> running median {statistics.median(to_running[1:]) * 1000:.0f} ms "
          f"(max {max(to_running[1:]) * 1000:.0f} ms); whole 5-visit job median {statistics.median(whole[1:]):.2f} s, "
          f"CPU in the job process median {statistics.median(cpu[1:]):.2f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--visits", type=int, nargs="*", default=[1000, 5000, 20000])
    parser.add_argument("--travel", nargs="+", default=["straight", "network"])
    parser.add_argument("--time-limit", type=float, default=3.0, help="search time limit per job, s")
    parser.add_argument("--memory-mb", type=int, default=None, help="cap of the child [default: [jobs] memory_mb]")
    parser.add_argument("--wall-clock", type=float, default=900.0, help="wall-clock cap per job, s")
    parser.add_argument("--spawn", type=int, default=0, help="first measure starting N job processes")
    args = parser.parse_args(argv)
    if args.spawn and len(args.travel) > 1:
        # the first job of a process chooses what its forkserver preloads (app.jobs.process.job_context):
        # each travel is measured in a fresh interpreter, as a service with that travel starts
        for travel in args.travel:
            subprocess.run([sys.executable, __file__, "--spawn", str(args.spawn), "--visits", "--travel", travel],
                           check=True)
    elif args.spawn:
        with tempfile.TemporaryDirectory() as tmp:
            spawn_overhead(args.spawn, Path(tmp), args.travel[0])
    if not args.visits:
        return 0

    limits = JobLimits.from_config()
    if args.memory_mb is not None:
        limits = limits.replace(memory_mb=args.memory_mb)
    print(f"cap: {limits.memory_mb} MB address space per job; search time limit {args.time_limit:g} s")
    print(f"{'travel':<9} {'visits':>6} {'crews':>5} {'locations':>9} {'peak RSS MB':>11} {'wall s':>7}  result")
    with tempfile.TemporaryDirectory() as tmp:
        for visits in args.visits:
            crews = max(10, visits // 16)
            problem = generate_day(seed=1, visits=visits, crews=crews)
            problem = problem.model_copy(
                update={"options": problem.options.model_copy(update={"time_limit_s": args.time_limit})}
            )
            for travel in args.travel:
                started = time.perf_counter()
                result = measure_plan_job(problem, travel, limits, Path(tmp) / f"{travel}-{visits}",
                                          wall_clock_s=args.wall_clock)
                wall = time.perf_counter() - started
                peak = f"{result.peak_rss_mb:.0f}" if result.peak_rss_mb else "?"
                print(f"{travel:<9} {visits:>6} {crews:>5} {_locations(problem):>9} {peak:>11} {wall:>7.1f}  "
                      f"{result.outcome}", flush=True)
                if result.outcome != "ok" and result.job is not None and result.job.error:
                    print(f"{'':<9} {'':>6}   ({result.job.error[:160]})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
