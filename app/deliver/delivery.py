"""Delivering interventions: the Kafka topic and the Redis stream of contract §2."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from redis.exceptions import RedisError

from app.decide.uplift import UpliftMark
from app.runtime.metrics import Metrics
from app.runtime.topics import (
    INTERVENTIONS,
    REDIS_INTERVENTION_KEY,
    REDIS_INTERVENTIONS_STREAM,
    REDIS_UPLIFT_KEY,
)

__all__ = ["Delivery", "Outbox"]

log = logging.getLogger(__name__)

# What the index keeps of an intervention: enough to check and count feedback on it.
_INDEXED = ("customer_id", "session_id", "reason", "kind", "emitted_ts")


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

    def take_unconfirmed(self) -> list[asyncio.Future[Any]]:
        """The delivery futures of the Kafka sends since the last call (to await)."""
        taken, self._unconfirmed = self._unconfirmed, []
        return taken

    def track(self, future: asyncio.Future[Any]) -> None:
        """Have the next commit await another send of the batch (a rejected or a
        forwarded event), so its offset is committed only once the record is on the broker."""
        self._unconfirmed.append(future)

    async def send(self, outbox: Outbox) -> None:
        """Produce each intervention to ``interventions`` and XADD each to
        ``nudgeflow:interventions``; add the uplift marks to their Redis sets.

        Kafka sends are not awaited one by one: before an offset commit writes the
        customer states that record them, the commit awaits every send handed over
        so far (``take_unconfirmed``), so an intervention is on the broker before
        its trigger counts as processed or as seen. The Redis entries of one call go
        in one pipeline, with each intervention's index entry (``REDIS_INTERVENTION_KEY``:
        feedback names interventions by id). A Redis outage must not stall the click
        stream: the Kafka topic stays complete, and the failure is logged and counted
        in ``nudgeflow_delivery_errors_total{channel="redis"}``.

        Uplift marks go to one set per day, reason, group and mark
        (``REDIS_UPLIFT_KEY``) holding intervention ids: every worker adds to the same
        sets, so the counts are over all partitions, and a replay adds nothing.
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
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for intervention, payload in zip(interventions, payloads, strict=True):
                    pipe.xadd(
                        REDIS_INTERVENTIONS_STREAM,
                        {"data": payload},
                        maxlen=self.stream_maxlen,
                        approximate=True,
                    )
                    pipe.set(
                        REDIS_INTERVENTION_KEY.format(intervention["intervention_id"]),
                        orjson.dumps({key: intervention[key] for key in _INDEXED}),
                        ex=self.retention_s,
                    )
                for mark in uplift:
                    key = REDIS_UPLIFT_KEY.format(mark.day, mark.reason, mark.group, mark.mark)
                    pipe.sadd(key, mark.intervention_id)
                    # A day's sets outlive the retention by the conversion window's days.
                    pipe.expire(key, self.retention_s + 2 * 86_400)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self.metrics.delivery_errors.labels(channel="redis").inc(len(payloads) + len(uplift))
            ids = [i["intervention_id"] for i in interventions]
            log.error("redis delivery of %s failed: %r", ids, exc)

    def _on_kafka_delivery(self, future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is not None:
            self.metrics.delivery_errors.labels(channel="kafka").inc()
            log.error("kafka delivery of an intervention failed: %r", future.exception())

    async def close(self) -> None:
        """Close the Redis connection pool."""
        await self.redis.aclose()
