"""The Redis catch-up from Kafka writes only what the fast path did not.

Every intervention is read back from ``interventions`` by the worker's catch-up
(``RedisSink``, group ``<app id>-redis``); what the worker's own fast path already
put on the stream is skipped rather than written again (a no-op in Redis, but a
Lua call per intervention for the worker and for Redis).
"""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from app.runtime.topics import INTERVENTIONS
from tests.integration import crash_replay
from tests.integration.clients import event, post, read_redis_stream, unique

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
    while sum((await crash_replay.committed(private_stack, INTERVENTIONS, group)).values()) < (
        CUSTOMERS
    ):
        assert time.monotonic() < deadline, "the catch-up never read the interventions"
        await asyncio.sleep(0.5)

    # One Lua call each, by the fast path: the catch-up read them all and wrote again only
    # the few it read before the fast path's write had returned (without the skip: 2 each).
    assert CUSTOMERS <= await _evals(private_stack.redis_url) <= CUSTOMERS * 5 // 4
