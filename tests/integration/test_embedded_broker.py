"""The worker on the embedded broker once a partition holds many record batches."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from app.runtime.topics import CLICKS, declare_topics, topic_specs
from tests.integration.clients import event, metric_families, unique

pytestmark = pytest.mark.integration

BATCHES = 20_000
HANDLED = ("nudgeflow_events_processed", "nudgeflow_events_duplicate", "nudgeflow_events_rejected")


async def _handled(web_url: str) -> float:
    families = await metric_families(web_url)
    return sum(sample.value for name in HANDLED for sample in families[name].samples
               if sample.name.endswith("_total"))  # fmt: skip


async def test_a_partition_of_many_batches_does_not_stall_the_worker(private_stack, worker_factory):
    # Tansu lists every batch of a partition on each fetch and answers with nothing once
    # the fetch wait runs out. With a 2 ms wait and these 20 000 one-record batches, a
    # worker without app.runtime.compat.tansu_fetch_wait handled none of them in 35 s.
    await declare_topics(private_stack.broker_url, topic_specs("nudgeflow", 8), 1)
    customers = [unique("batches") for _ in range(50)]
    producer = AIOKafkaProducer(bootstrap_servers=private_stack.bootstrap, linger_ms=0)
    await producer.start()
    try:
        for i in range(BATCHES):  # each awaited before the next: one batch per event
            value = orjson.dumps(event(customers[i % 50], "page_view", page=f"/p{i}"))
            await (await producer.send(CLICKS, value, partition=0))
    finally:
        await producer.stop()

    worker = worker_factory(private_stack, fetch_max_wait_ms=2)
    deadline = asyncio.get_running_loop().time() + 60
    while (handled := await _handled(worker.web_url)) < BATCHES:
        assert asyncio.get_running_loop().time() < deadline, f"{handled:.0f} of {BATCHES}"
        await asyncio.sleep(0.5)
    assert "the broker ran out of the 2 ms fetch wait" in worker.log_tail(100_000)
