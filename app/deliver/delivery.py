"""Delivering interventions: the Kafka topic and the Redis stream of contract §2."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from redis.exceptions import RedisError

from app.decide.uplift import UpliftMark
from app.deliver.redis_sink import backoff_s, deliver_once
from app.runtime.metrics import Metrics
from app.runtime.topics import INTERVENTIONS

__all__ = ["SENDER_TURNS", "Delivery", "Outbox", "RecentIds", "yield_to_sender"]

log = logging.getLogger(__name__)

# One fast-path write: Redis answers in a millisecond, or is not there.
_WRITE_TIMEOUT_S = 0.5
# Held for the writer while Redis is away: interventions (Kafka has them, the catch-up
# writes them) and uplift marks (only here: bounded, then the oldest are dropped).
_INTERVENTIONS_MAX = 10_000
_MARKS_MAX = 100_000
# Ids of the interventions the fast path wrote, remembered for the catch-up to skip:
# it reads them from Kafka a moment later (~100 bytes each).
_WRITTEN_MAX = 20_000
#: Turns of the event loop from a producer's send() to its request on the socket: three
#: with aiokafka 0.14 and linger_ms=0 (tests/integration/test_compat_behaviour.py).
SENDER_TURNS = 3


async def yield_to_sender() -> None:
    """Give the producer's sender the loop turns it needs to put what it was just handed
    on the wire, before whatever the caller does next holds the loop."""
    for _turn in range(SENDER_TURNS):
        await asyncio.sleep(0)


class RecentIds:
    """The last ``maxlen`` ids added, for membership tests.

    Examples
    --------
    >>> ids = RecentIds(2)
    >>> ids.add_all(["a", "b", "c"])
    >>> "a" in ids, "c" in ids
    (False, True)
    """

    def __init__(self, maxlen: int) -> None:
        self.maxlen = maxlen
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add_all(self, ids: Iterable[str]) -> None:
        """Remember ``ids``, forgetting the oldest beyond ``maxlen``."""
        kept = self._ids
        for key in ids:
            kept[key] = None
        while len(kept) > self.maxlen:
            kept.popitem(last=False)

    def __contains__(self, key: object) -> bool:
        return key in self._ids


@dataclass(slots=True)
class Outbox:
    """What a batch (or a timer tick) hands to ``Delivery.send``."""

    interventions: list[dict[str, Any]] = field(default_factory=list)
    uplift: list[UpliftMark] = field(default_factory=list)


class Delivery:
    """Sends each intervention to Kafka (source of truth) and to the Redis stream."""

    def __init__(
        self,
        producer: Callable[[], AIOKafkaProducer],
        redis: aioredis.Redis,
        *,
        stream_maxlen: int,
        retention_s: int,
        metrics: Metrics,
    ) -> None:
        self.producer = producer
        self.redis = redis
        self.stream_maxlen = stream_maxlen
        self.retention_s = retention_s
        self.metrics = metrics
        # Kafka sends not yet taken by ``take_unconfirmed``.
        self._unconfirmed: list[asyncio.Future[Any]] = []
        # Waiting for the Redis writer: (intervention, its JSON), and uplift marks.
        self._pending: list[tuple[dict[str, Any], bytes]] = []
        self._marks: list[UpliftMark] = []
        self._writer: asyncio.Task[None] | None = None
        #: Interventions this writer put on the Redis stream (``RedisSink`` skips them).
        self.written = RecentIds(_WRITTEN_MAX)

    def take_unconfirmed(self) -> list[asyncio.Future[Any]]:
        """The delivery futures of the Kafka sends since the last call (to await)."""
        taken, self._unconfirmed = self._unconfirmed, []
        return taken

    def track(self, future: asyncio.Future[Any]) -> None:
        """Have the next commit await another send of the batch (a rejected or a
        forwarded event), so its offset is committed only once the record is on the broker."""
        self._unconfirmed.append(future)

    async def send(self, outbox: Outbox, *, behind: bool = False) -> None:
        """Produce each intervention to ``interventions``, and hand it and the uplift marks
        to the Redis writer.

        Kafka sends are not awaited one by one: before an offset commit writes the
        customer states that record them, the commit awaits every send handed over
        so far (``take_unconfirmed``), so an intervention is on the broker before
        its trigger counts as processed or as seen.

        The producer's sender then gets its turns of the loop (``yield_to_sender``)
        before anything else runs: the Redis write's first step, or the agent's next
        batch when one is already fetched, went first and held the interventions back
        (a Redis write already in flight may still take them first, at its next step). At
        1 000 events/s that put a send on the wire p50 0.19 ms and p90 0.61 ms after
        ``send()``, against 0.58 and 1.53 ms. A worker ``behind`` (a full batch already
        waiting: a backlog, where throughput counts) goes on at once instead, and its
        sends leave in fewer, larger requests: a drain of 200 000 events ran ~6 %
        faster without the turns (5 of 5 alternating rounds).

        Redis is written by a task of its own (``deliver_once``: each intervention's
        stream entry and index key once, the uplift marks to their sets), never
        awaited here, with a short timeout: a slow or frozen Redis does not hold the
        click stream. Interventions it could not write are caught up from Kafka by
        ``RedisSink`` (counted in ``nudgeflow_delivery_errors_total{channel="redis"}``);
        uplift marks wait for the next write (up to ``_MARKS_MAX``; beyond, the oldest
        are dropped and counted under ``channel="uplift"``).
        """
        interventions, uplift = outbox.interventions, outbox.uplift
        if not interventions and not uplift:
            return
        payloads = [orjson.dumps(intervention) for intervention in interventions]
        send = self.producer().send
        for intervention, payload in zip(interventions, payloads, strict=True):
            future = await send(INTERVENTIONS, payload, key=intervention["customer_id"].encode())
            future.add_done_callback(self._on_kafka_delivery)
            self._unconfirmed.append(future)
        pending = self._pending
        pending.extend(zip(interventions, payloads, strict=True))
        if len(pending) > _INTERVENTIONS_MAX:  # Redis is away: Kafka has them all
            self.metrics.delivery_errors.labels(channel="redis").inc(
                len(pending) - _INTERVENTIONS_MAX
            )
            del pending[: len(pending) - _INTERVENTIONS_MAX]
        marks = self._marks
        marks.extend(uplift)
        if len(marks) > _MARKS_MAX:
            self.metrics.delivery_errors.labels(channel="uplift").inc(len(marks) - _MARKS_MAX)
            del marks[: len(marks) - _MARKS_MAX]
        if interventions and not behind:
            await yield_to_sender()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_redis())

    async def _write_redis(self) -> None:
        """Write what is pending until nothing is; back off while Redis fails."""
        failures = 0
        while self._pending or self._marks:
            interventions, self._pending = self._pending, []
            marks, self._marks = self._marks, []
            try:
                async with asyncio.timeout(_WRITE_TIMEOUT_S):
                    await deliver_once(self.redis, interventions, stream_maxlen=self.stream_maxlen,
                                       retention_s=self.retention_s, marks=marks)  # fmt: skip
                failures = 0
                self.written.add_all(i["intervention_id"] for i, _ in interventions)
            except (RedisError, OSError, TimeoutError) as exc:
                failures += 1
                self.metrics.delivery_errors.labels(channel="redis").inc(len(interventions))
                if failures == 1:
                    ids = [i["intervention_id"] for i, _ in interventions]
                    log.error("redis copy of %s deferred to the catch-up from Kafka: %r", ids, exc)
                self._marks[:0] = marks  # tried again with the next write
                await asyncio.sleep(backoff_s(failures))

    def _on_kafka_delivery(self, future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is not None:
            self.metrics.delivery_errors.labels(channel="kafka").inc()
            log.error("kafka delivery of an intervention failed: %r", future.exception())

    async def close(self) -> None:
        """Stop the Redis writer (the catch-up has what it did not write) and close the pool."""
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
        await self.redis.aclose()
