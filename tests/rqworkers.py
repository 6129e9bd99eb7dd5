"""Real ``doorstep worker`` processes for the tests that run jobs on RQ: start, stop, clean up.

Each test that starts workers stops them itself (:func:`stop_workers`) and
removes its queue's keys from Redis (:func:`drop_queue`).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tests.conftest import REDIS_URL

ROOT = Path(__file__).resolve().parent.parent


def start_worker(config: Mapping[str, Any], log: Path, *, heartbeat_timeout_s: int = 10,
                 env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """A ``doorstep worker`` on the app's queue (``config``: its Flask config), its output in ``log``."""
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "worker", "--redis-url", REDIS_URL, "--prefix", config["REDIS_PREFIX"],
         "--queue", config["RQ_QUEUE"], "--no-preload", "--heartbeat", "1",
         "--heartbeat-timeout", str(heartbeat_timeout_s)],
        cwd=ROOT, env=dict(env) if env is not None else None,
        stdout=open(log, "wb"), stderr=subprocess.STDOUT,
    )


def stop_workers(procs: Iterable[subprocess.Popen[bytes]], timeout_s: float = 10.0) -> None:
    """SIGTERM every running worker (a warm shutdown), then wait; kill one that outlasts ``timeout_s``."""
    running = [proc for proc in procs if proc.poll() is None]
    for proc in running:
        proc.send_signal(signal.SIGTERM)
    for proc in running:
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def drop_queue(queue: str) -> None:
    """Delete every Redis key that names ``queue`` (its jobs, registries and results)."""
    import redis

    conn = redis.Redis.from_url(REDIS_URL)
    for key in conn.scan_iter(match=f"*{queue}*"):
        conn.delete(key)
