"""Real services for integration tests: the embedded broker and Redis, and worker processes.

Everything starts on free loopback ports and is stopped at the end, also when a
test fails; each test process (pytest-xdist) has its own. Set ``NUDGEFLOW_TEST_BROKER``
and ``NUDGEFLOW_TEST_REDIS_URL`` to run the shared-stack tests against an external Kafka
and Redis instead (the compose stack), in one test process; tests that need a private
stack always start their own embedded one.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from app.runtime.embedded import EmbeddedStack, free_port
from app.runtime.testing import Services, WorkerProcess, start_worker, worker_env


def pytest_configure(config: pytest.Config) -> None:
    env = os.environ
    external = env.get("NUDGEFLOW_TEST_BROKER") and env.get("NUDGEFLOW_TEST_REDIS_URL")
    if external and (config.getoption("numprocesses", None) or 0):
        # Each test process would start its own worker, in one group on the same topics.
        raise pytest.UsageError(
            "an external stack is shared: run the tests in one process (TEST_WORKERS=0)"
        )


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
    """Start workers on any services (see ``start_worker`` for ``caught_up``); all are
    stopped when the test ends."""
    started: list[WorkerProcess] = []

    def _start(services: Services, *, caught_up: bool = True, **settings: Any) -> WorkerProcess:
        data_dir = tmp_path / f"worker-{len(started)}"
        env = worker_env(services, data_dir, **{k: str(v) for k, v in settings.items()})
        process = start_worker(env, data_dir / "worker.log", caught_up=caught_up)
        started.append(process)
        return process

    try:
        yield _start
    finally:
        for process in started:
            process.stop()


@pytest.fixture
async def redis(services: Services) -> AsyncIterator[aioredis.Redis]:
    """A client of the shared stack's Redis."""
    client = aioredis.from_url(services.redis_url)
    try:
        yield client
    finally:
        await client.aclose()
