"""Delivering interventions: the Kafka topic and the Redis stream of contract §2."""

from __future__ import annotations

import logging
from typing import Any

import faust
import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from app.metrics import Metrics
from app.topics import REDIS_INTERVENTIONS_STREAM

__all__ = ["Delivery"]

log = logging.getLogger(__name__)


class Delivery:
    """Sends each intervention to Kafka (source of truth) and to the Redis stream."""

    def __init__(
        self,
        topic: faust.TopicT,
        redis: aioredis.Redis,
        *,
        stream_maxlen: int,
        metrics: Metrics,
    ) -> None:
        self.topic = topic
        self.redis = redis
        self.stream_maxlen = stream_maxlen
        self.metrics = metrics

    async def send(self, interventions: list[dict[str, Any]]) -> None:
        """Produce each to ``interventions`` and XADD each to ``nudgeflow:interventions``.

        The Redis entries of one call go in one pipeline. A Redis outage must not
        stall the click stream: the Kafka topic stays complete, and the failure is
        logged and counted in ``nudgeflow_delivery_errors_total{channel="redis"}``.
        """
        if not interventions:
            return
        payloads = [orjson.dumps(intervention) for intervention in interventions]
        for intervention, payload in zip(interventions, payloads, strict=True):
            await self.topic.send(key=intervention["customer_id"].encode(), value=payload)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for payload in payloads:
                    pipe.xadd(
                        REDIS_INTERVENTIONS_STREAM,
                        {"data": payload},
                        maxlen=self.stream_maxlen,
                        approximate=True,
                    )
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self.metrics.delivery_errors.labels(channel="redis").inc(len(payloads))
            ids = [i["intervention_id"] for i in interventions]
            log.error("redis delivery of %s failed: %r", ids, exc)

    async def close(self) -> None:
        """Close the Redis connection pool."""
        await self.redis.aclose()
