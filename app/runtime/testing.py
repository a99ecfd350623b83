"""Running nudgeflow for tests and benchmarks: services, worker processes, their settings.

Shipped as code (like Bytewax's ``testing.py``) so integration tests, benchmarks and
the quality evaluation start workers the same way.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from app.runtime.embedded import free_port

__all__ = ["Services", "WorkerProcess", "start_worker", "worker_env"]


@dataclass
class Services:
    """Where a broker and a Redis listen."""

    broker_url: str
    redis_url: str
    embedded: bool

    @property
    def bootstrap(self) -> str:
        return self.broker_url.split("://", 1)[1]


@dataclass
class WorkerProcess:
    """A ``nudgeflow worker`` running as a child process."""

    process: subprocess.Popen[bytes]
    web_url: str
    log_path: Path
    env: dict[str, str]

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 20.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout_s)
        return self.process.returncode


def worker_env(services: Services, data_dir: Path, **settings: str) -> dict[str, str]:
    """Environment for a worker on ``services``, with test-friendly timings.

    No holdout group unless asked: a test (or an evaluation) that follows a customer
    must see what the policy decides for them delivered, whatever their id hashes to; no
    rate limit per client address.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUDGEFLOW_")}
    env.update(
        NUDGEFLOW_BROKER=services.broker_url,
        NUDGEFLOW_REDIS_URL=services.redis_url,
        NUDGEFLOW_BROKER_FLAVOUR="tansu" if services.embedded else "kafka",
        NUDGEFLOW_WEB_HOST="127.0.0.1",
        NUDGEFLOW_WEB_BIND="127.0.0.1",
        NUDGEFLOW_WEB_PORT=str(free_port()),
        NUDGEFLOW_DATA_DIR=str(data_dir),
        # Tansu answers a JoinGroup after half the session timeout: 4 s joins in 2 s.
        NUDGEFLOW_BROKER_SESSION_TIMEOUT_S="4",
        NUDGEFLOW_BROKER_HEARTBEAT_INTERVAL_S="0.5",
        NUDGEFLOW_HOLDOUT_SHARE="0",
        # One local client sends as fast as the worker takes (tests, benchmarks): no limit
        # per address. The rate-limit tests set theirs.
        NUDGEFLOW_RATE_LIMIT_IP_PER_S="0",
    )
    env.update({f"NUDGEFLOW_{k.upper()}": v for k, v in settings.items()})
    return env


def start_worker(
    env: dict[str, str], log_path: Path, ready_timeout_s: float = 60.0, *, caught_up: bool = True
) -> WorkerProcess:
    """Start ``nudgeflow worker`` and wait until ``/readyz`` answers 200.

    With ``caught_up=False``, only until it holds partitions with its tables recovered,
    before it has processed what was already waiting on them: a backlog a benchmark
    times the draining of, or a test kills the worker in the middle of.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "worker"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    worker = WorkerProcess(process, f"http://127.0.0.1:{env['NUDGEFLOW_WEB_PORT']}", log_path, env)
    deadline = time.monotonic() + ready_timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"worker exited with {process.returncode}:\n{worker.log_tail()}")
        try:
            with urllib.request.urlopen(f"{worker.web_url}/readyz", timeout=1) as response:
                if response.status == 200:
                    return worker
        except urllib.error.HTTPError as exc:  # 503, with the detail
            if not caught_up and _serving(exc.read()):
                return worker
        except OSError:
            pass
        time.sleep(0.1)
    worker.stop(signal.SIGKILL)
    raise RuntimeError(f"worker not ready in {ready_timeout_s} s:\n{worker.log_tail()}")


def _serving(body: bytes) -> bool:
    """Partitions held, tables recovered, no rebalance: ready but for the catch-up."""
    try:
        readiness = json.loads(body)
    except ValueError:  # not the worker's answer yet
        return False
    return (
        bool(readiness.get("assigned_partitions"))
        and readiness.get("tables_recovered") is True
        and readiness.get("rebalancing") is False
    )
