"""A Faust aiokafka transport with two fixes nudgeflow needs.

1. ``fetch_max_wait_ms``: Faust hard-codes 1 500 ms for its worker consumer.
   Apache Kafka answers a long-poll fetch as soon as data arrives, but Tansu
   does not, so there every event would wait up to 1.5 s. The transport sets the
   value from the app (``NUDGEFLOW_FETCH_MAX_WAIT_MS``).
2. Tansu answers ListOffsets(LATEST) with the last batch's base offset + 1 when
   that batch holds several records, while Fetch reports the true high
   watermark. Faust ends changelog recovery at ``end_offsets()``, so it would
   stop early and silently lose the newest table updates. With the ``tansu``
   broker flavour the high watermark is max(ListOffsets, what a Fetch reports).

Only the two methods below are overridden; ``FAUST_VERSIONS_SUPPORTED`` is
checked at import so a Faust upgrade fails loudly instead of silently.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any, cast

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

__all__ = ["FAUST_VERSIONS_SUPPORTED", "NudgeflowTransport", "fetch_true_highwaters"]

FAUST_VERSIONS_SUPPORTED = ("0.15.",)

if not faust.__version__.startswith(FAUST_VERSIONS_SUPPORTED):  # pragma: no cover
    raise ImportError(
        f"nudgeflow's Faust transport is written for faust-streaming "
        f"{FAUST_VERSIONS_SUPPORTED}, found {faust.__version__}; check app/compat first"
    )


async def fetch_true_highwaters(
    bootstrap_servers: list[str], partitions: Iterable[TP], timeout_s: float = 10.0
) -> dict[TP, int]:
    """The high watermark of each partition as a real Fetch reports it.

    Works around brokers whose ListOffsets(LATEST) is wrong (Tansu 0.6).
    """
    wanted = list(partitions)
    if not wanted:
        return {}
    tps = [TopicPartition(tp.topic, tp.partition) for tp in wanted]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        enable_auto_commit=False,
        fetch_max_wait_ms=10,
        max_partition_fetch_bytes=1024,
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while any(consumer.highwater(tp) is None for tp in tps):
            if loop.time() > deadline:
                missing = [tp for tp in tps if consumer.highwater(tp) is None]
                raise TimeoutError(f"no fetch answer for {missing}")
            await consumer.getmany(*tps, timeout_ms=50, max_records=1)
        return {tp: int(consumer.highwater(k)) for tp, k in zip(wanted, tps, strict=True)}
    finally:
        await consumer.stop()


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka hands this to its Fetcher in start(), which has not run yet.
        consumer._fetch_max_wait_ms = self.app.fetch_max_wait_ms  # type: ignore[attr-defined]
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def highwaters(self, *partitions: TP) -> Mapping[TP, int]:
        reported = await super().highwaters(*partitions)
        if not self.app.tansu_compat:  # type: ignore[attr-defined]
            return reported
        # Runs on the app's loop: a second consumer inside Faust's consumer thread stalls.
        fetched = await fetch_true_highwaters(
            faust_aiokafka.server_list(
                self.transport.url,
                # ``TransportT`` does not declare ``default_port``; the aiokafka Transport has it.
                cast(faust_aiokafka.Transport, self.transport).default_port,
            ),
            partitions,
        )
        return {tp: max(reported.get(tp) or 0, fetched[tp]) for tp in partitions}


class NudgeflowTransport(faust_aiokafka.Transport):
    """Faust's aiokafka transport with a configurable fetch wait and the Tansu shim."""

    Consumer = _Consumer
