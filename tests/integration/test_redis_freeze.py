"""Redis that hangs (not refuses): the click stream goes on, nothing is lost, each once.

The embedded Redis is frozen with SIGSTOP for 30 s while customers keep running into
trouble, then resumed. Interventions must reach Kafka on time throughout, ``/readyz``
must show Redis unavailable, and once Redis is back the stream must hold every
intervention exactly once (the catch-up from Kafka writes what the fast path could not).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from app.runtime.embedded import ServerProcess, free_port, start_broker, start_redis
from app.runtime.testing import Services
from tests.integration.clients import event, get, post, read_redis_stream, read_topic, unique

pytestmark = pytest.mark.integration

FREEZE_S = 30.0


@pytest.fixture
def stack_with_redis(tmp_path: Path) -> Iterator[tuple[Services, ServerProcess]]:
    broker = start_broker(free_port(), tmp_path / "broker")
    redis = start_redis(free_port(), tmp_path / "redis")
    try:
        yield (
            Services(
                f"kafka://127.0.0.1:{broker.port}",
                f"redis://127.0.0.1:{redis.port}/0",
                embedded=True,
            ),
            redis,
        )
    finally:
        os.kill(redis.process.pid, signal.SIGCONT)  # a stopped process ignores SIGTERM
        redis.stop()
        broker.stop()


async def _trouble(web_url: str, bootstrap: str, customer: str) -> float:
    """A payment failure for ``customer``; how long until its intervention is on Kafka."""
    sent = time.monotonic()
    status, _ = await post(f"{web_url}/v1/events", event(customer, "payment_failed",
                                                         error="declined"))  # fmt: skip
    assert status == 202
    [found] = await read_topic(bootstrap, "interventions",
                               lambda v: v.get("customer_id") == customer)  # fmt: skip
    assert found["reason"] == "payment_failure"
    return time.monotonic() - sent


async def _readiness(web_url: str) -> dict[str, object]:
    status, body, _ = await get(f"{web_url}/readyz")
    assert status == 200, body  # Redis away does not stop the worker taking traffic
    return orjson.loads(body)


async def test_a_frozen_redis_neither_stalls_the_clicks_nor_loses_an_intervention(
    stack_with_redis, worker_factory
):
    services, redis = stack_with_redis
    worker = worker_factory(services)
    bootstrap = services.bootstrap
    before = unique("before")
    await _trouble(worker.web_url, bootstrap, before)
    await read_redis_stream(services.redis_url, lambda v: v["customer_id"] == before)

    os.kill(redis.process.pid, signal.SIGSTOP)
    frozen_at = time.monotonic()
    during = []
    try:
        while time.monotonic() - frozen_at < FREEZE_S:
            customer = unique("during")
            during.append(customer)
            took = await _trouble(worker.web_url, bootstrap, customer)
            assert took < 5.0, f"an intervention took {took:.1f} s to reach Kafka"
            await asyncio.sleep(2.0)
        health = await _readiness(worker.web_url)
        assert health["redis"] == "unavailable" and health["redis_catch_up_behind"] > 0, health
    finally:
        os.kill(redis.process.pid, signal.SIGCONT)

    everyone = {before, *during}
    entries = await read_redis_stream(services.redis_url, lambda v: v["customer_id"] in everyone,
                                      want=len(everyone), timeout_s=30)  # fmt: skip
    ids = [entry["intervention_id"] for entry in entries]
    assert {entry["customer_id"] for entry in entries} == everyone
    assert len(ids) == len(set(ids)), "an intervention is on the Redis stream twice"
    deadline = time.monotonic() + 15
    while (health := await _readiness(worker.web_url))["redis"] != "ok":
        assert time.monotonic() < deadline, health
        await asyncio.sleep(0.5)
