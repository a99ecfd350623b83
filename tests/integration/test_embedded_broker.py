"""The worker on the embedded broker once a partition holds many record batches."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from app.runtime.compat.tansu_fetch_wait import widen_fetch_wait_while_truncated
from app.runtime.topics import CLICKS, TopicSpec, declare_topics, topic_specs
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


async def test_a_steady_stream_does_not_widen_the_fetch_wait(private_stack):
    # Tansu reads a partition's high watermark after listing it, so an answer often shows
    # a partition empty below its high watermark while records are being produced to it.
    # Taken as a truncated answer, that doubled a worker's 20 ms wait every few seconds
    # under a steady 1 000 events/s (to 68 ms in 20 s), and each empty fetch then slept
    # half of it. This stream widened it within seconds on every run before the fix. On a
    # broker of its own: the session's holds the other tests' batches, and listing them
    # can truly outlast the wait, which must widen it.
    topic, partitions, floor_ms = unique("steady"), 8, 20
    await declare_topics(private_stack.broker_url, [TopicSpec(topic, partitions)], 1)
    consumer = AIOKafkaConsumer(bootstrap_servers=private_stack.bootstrap, enable_auto_commit=False,
                                fetch_max_wait_ms=floor_ms)  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=private_stack.bootstrap, linger_ms=5)
    await consumer.start()
    await producer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        widen_fetch_wait_while_truncated(consumer, floor_ms)
        fetcher = consumer._fetcher
        waits: set[int] = set()
        received = 0

        async def consume() -> None:
            nonlocal received
            while True:
                batches = await consumer.getmany(timeout_ms=100)
                received += sum(len(records) for records in batches.values())
                waits.add(fetcher._fetch_max_wait_ms)

        consuming = asyncio.create_task(consume())
        sent, started = 0, time.monotonic()
        while (elapsed := time.monotonic() - started) < 8.0:  # 2 000 records/s
            for _ in range(int(elapsed * 2000) - sent):
                await producer.send(topic, b"x" * 200, partition=sent % partitions)
                sent += 1
            await asyncio.sleep(0.002)
        await producer.flush()
        deadline = time.monotonic() + 10
        while received < sent and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        consuming.cancel()
    finally:
        await producer.stop()
        await consumer.stop()
    assert received == sent
    assert waits == {floor_ms}
