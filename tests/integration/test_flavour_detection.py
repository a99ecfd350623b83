"""A worker on the embedded broker takes the tansu flavour even when it is not given it."""

from __future__ import annotations

import asyncio
import statistics
import time

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from app.runtime.compat.broker_flavour import TANSU_CLUSTER_ID, broker_cluster_id
from tests.integration.clients import event, unique

pytestmark = pytest.mark.integration


async def _events_of(session: aiohttp.ClientSession, web_url: str, customer: str) -> int:
    async with session.get(f"{web_url}/v1/customers/{customer}") as response:
        if response.status != 200:
            return 0
        return int(orjson.loads(await response.read())["profile"]["events"])


async def test_a_worker_told_kafka_on_the_embedded_broker_runs_as_tansu(
    private_stack, worker_factory
):
    assert await broker_cluster_id([private_stack.bootstrap]) == TANSU_CLUSTER_ID
    worker = worker_factory(private_stack, broker_flavour="kafka")
    assert "using the 'tansu' flavour" in worker.log_tail(100_000)

    # And it is fast. With the kafka flavour's 500 ms fetch wait, Tansu (not woken by
    # new data) looks again 250 ms into a fetch: an event sent 50 ms after the previous
    # one was handled waits ~200 ms. With the tansu flavour's 20 ms, a few ms.
    customer = unique("flavour")
    latencies_ms: list[float] = []
    producer = AIOKafkaProducer(bootstrap_servers=private_stack.bootstrap, linger_ms=0)
    await producer.start()
    async with aiohttp.ClientSession() as session:
        for n in range(1, 6):
            await asyncio.sleep(0.05)
            sent = time.monotonic()
            value = orjson.dumps(event(customer, "page_view", page=f"/p{n}"))
            await producer.send_and_wait("clicks", value, key=customer.encode())
            while await _events_of(session, worker.web_url, customer) < n:
                assert time.monotonic() - sent < 10, f"event {n} not handled in 10 s"
                await asyncio.sleep(0.005)
            latencies_ms.append((time.monotonic() - sent) * 1000)
    await producer.stop()
    assert statistics.median(latencies_ms) < 100, latencies_ms
