"""Real services for integration tests: the embedded broker and Redis, and worker processes.

Everything starts on free loopback ports and is stopped at the end, also when a
test fails. Set ``NUDGEFLOW_TEST_BROKER`` and ``NUDGEFLOW_TEST_REDIS_URL`` to run
the shared-stack tests against an external Kafka and Redis instead (the compose
stack); tests that need a private stack always start their own embedded one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app.embedded import EmbeddedStack, free_port


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
    """Environment for a worker on ``services``, with test-friendly timings."""
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
    )
    env.update({f"NUDGEFLOW_{k.upper()}": v for k, v in settings.items()})
    return env


def start_worker(
    env: dict[str, str], log_path: Path, ready_timeout_s: float = 60.0
) -> WorkerProcess:
    """Start ``nudgeflow worker`` and wait until ``/readyz`` answers 200."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker"],
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
        except OSError:
            pass
        time.sleep(0.1)
    worker.stop(signal.SIGKILL)
    raise RuntimeError(f"worker not ready in {ready_timeout_s} s:\n{worker.log_tail()}")


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """The broker and Redis shared by the tests of one session."""
    broker, redis = (
        os.environ.get("NUDGEFLOW_TEST_BROKER"),
        os.environ.get("NUDGEFLOW_TEST_REDIS_URL"),
    )
    if broker and redis:
        yield Services(broker, redis, embedded=False)
        return
    stack = EmbeddedStack.start(free_port(), free_port(), tmp_path_factory.mktemp("stack"))
    try:
        yield Services(stack.broker_url, stack.redis_url, embedded=True)
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def worker(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    """One worker on the shared services, for the whole session."""
    data_dir = tmp_path_factory.mktemp("worker")
    process = start_worker(worker_env(services, data_dir), data_dir / "worker.log")
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def private_stack(tmp_path: Path) -> Iterator[Services]:
    """A broker and Redis of the test's own, for tests that stop or reconfigure workers."""
    stack = EmbeddedStack.start(free_port(), free_port(), tmp_path / "stack")
    try:
        yield Services(stack.broker_url, stack.redis_url, embedded=True)
    finally:
        stack.stop()


@pytest.fixture
def worker_factory(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start workers on any services; all are stopped when the test ends."""
    started: list[WorkerProcess] = []

    def _start(services: Services, **settings: Any) -> WorkerProcess:
        data_dir = tmp_path / f"worker-{len(started)}"
        env = worker_env(services, data_dir, **{k: str(v) for k, v in settings.items()})
        process = start_worker(env, data_dir / "worker.log")
        started.append(process)
        return process

    try:
        yield _start
    finally:
        for process in started:
            process.stop()
