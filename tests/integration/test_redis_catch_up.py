"""The Redis catch-up from Kafka writes only what the fast path did not.

Every intervention is read back from ``interventions`` by the worker's catch-up
(``RedisSink``, group ``<app id>-redis``); what the worker's own fast path already
put on the stream is skipped rather than written again (a no-op in Redis, but a
Lua call per intervention for the worker and for Redis).
"""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from app.deliver.redis_sink import RedisSink
from app.runtime.metrics import Metrics
from app.runtime.testing import Services
from app.runtime.topics import INTERVENTIONS, declare_topics, topic_specs
from config.settings import Settings
from tests.integration import crash_replay
from tests.integration.clients import event, post, produce, read_redis_stream, unique

pytestmark = pytest.mark.integration

CUSTOMERS = 20


async def _evals(redis_url: str) -> int:
    client = aioredis.from_url(redis_url)
    try:
        stats = await client.info("commandstats")
    finally:
        await client.aclose()
    return int(stats.get("cmdstat_eval", {}).get("calls", 0))


async def test_the_catch_up_skips_what_the_fast_path_wrote(private_stack, worker_factory):
    worker = worker_factory(private_stack)
    customers = {unique("declined") for _ in range(CUSTOMERS)}
    for customer in customers:
        status, _ = await post(f"{worker.web_url}/v1/events",
                               event(customer, "payment_failed", error="declined"))  # fmt: skip
        assert status == 202
    entries = await read_redis_stream(private_stack.redis_url,
                                      lambda v: v["customer_id"] in customers,
                                      want=CUSTOMERS, timeout_s=30)  # fmt: skip
    assert len(entries) == CUSTOMERS

    deadline = time.monotonic() + 30
    group = "nudgeflow-redis"
    while await _committed(private_stack, group) < CUSTOMERS:
        assert time.monotonic() < deadline, "the catch-up never read the interventions"
        await asyncio.sleep(0.5)

    # One Lua call each, by the fast path: the catch-up read them all and wrote again only
    # the few it read before the fast path's write had returned (without the skip: 2 each).
    assert CUSTOMERS <= await _evals(private_stack.redis_url) <= CUSTOMERS * 5 // 4


@pytest.mark.parametrize("gives_up", ["it_stops", "another_joins"])
async def test_the_catch_up_commits_on_its_timer_and_what_it_gives_up(private_stack, gives_up):
    """Not after every fetch: that was a commit request per partition ~50 times a second.
    What it wrote is committed when it stops, or when a rebalance takes its partitions."""
    settings = Settings(broker=private_stack.broker_url, redis_url=private_stack.redis_url,
                        broker_flavour="tansu", broker_commit_interval_s=3600)  # fmt: skip
    await declare_topics(settings.broker, topic_specs(settings.app_id, crash_replay.PARTITIONS), 1)
    redis = aioredis.from_url(private_stack.redis_url)
    sinks = [RedisSink(settings, redis, Metrics.create(CollectorRegistry()), written=())]
    group = f"{settings.app_id}-redis"
    await sinks[0].start()
    try:
        await _assigned(sinks[0])
        await asyncio.sleep(1.0)  # its position (the end) resolved before the records below
        ids = [unique("caught-up") for _ in range(CUSTOMERS)]
        await produce(private_stack.bootstrap, INTERVENTIONS, [
            (intervention_id.encode(), orjson.dumps({
                "intervention_id": intervention_id, "customer_id": intervention_id,
                "session_id": "s1", "reason": "rage_click", "kind": "assist", "emitted_ts": 1,
            }))
            for intervention_id in ids
        ])  # fmt: skip
        entries = await read_redis_stream(private_stack.redis_url,
                                          lambda v: v["intervention_id"] in ids,
                                          want=CUSTOMERS, timeout_s=30)  # fmt: skip
        assert len(entries) == CUSTOMERS
        await asyncio.sleep(1.0)  # a few more fetches, each of which used to commit
        assert await _committed(private_stack, group) == 0
        if gives_up == "another_joins":
            sinks.append(RedisSink(settings, redis, Metrics.create(CollectorRegistry()),
                                   written=()))  # fmt: skip
            await sinks[1].start()
            await _assigned(sinks[1])
            assert await _committed(private_stack, group) == CUSTOMERS
    finally:
        for sink in sinks:
            await sink.stop()
        await redis.aclose()

    assert await _committed(private_stack, group) == CUSTOMERS


async def _assigned(sink: RedisSink) -> None:
    deadline = time.monotonic() + 30
    while not sink._consumer or not sink._consumer.assignment():
        assert time.monotonic() < deadline, "the catch-up joined no group"
        await asyncio.sleep(0.05)


async def _committed(services: Services, group: str) -> int:
    return sum((await crash_replay.committed(services, INTERVENTIONS, group)).values())
