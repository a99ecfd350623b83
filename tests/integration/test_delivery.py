"""Delivering interventions on the real broker and Redis: what reaches the wire first."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from aiokafka.conn import AIOKafkaConnection
from aiokafka.protocol.produce import ProduceRequest
from prometheus_client import CollectorRegistry
from redis.asyncio.connection import Connection

from app.deliver.delivery import Delivery, Outbox
from app.runtime.metrics import Metrics
from app.runtime.topics import (
    INTERVENTIONS,
    REDIS_INTERVENTIONS_STREAM,
    declare_topics,
    topic_specs,
)
from tests.integration.clients import unique

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("behind", [False, True], ids=["caught_up", "behind"])
async def test_a_batchs_interventions_are_on_the_wire_before_redis_is_written(
    private_stack, monkeypatch, behind
):
    # Kafka is the record, Redis its copy: the produce request leaves before the Redis
    # writer's first command, and before send() returns to the agent, whose next batch
    # would otherwise hold the loop first. Unless the agent is behind: then its next
    # batch goes first, and the request leaves at the loop's next turns.
    await declare_topics(private_stack.broker_url, topic_specs("nudgeflow", 4), 1)
    producer = AIOKafkaProducer(bootstrap_servers=private_stack.bootstrap, linger_ms=0)
    redis = aioredis.from_url(private_stack.redis_url)
    await producer.start()
    delivery = Delivery(lambda: producer, redis, stream_maxlen=1000, retention_s=60,
                        metrics=Metrics.create(CollectorRegistry()))  # fmt: skip
    wire: list[str] = []
    kafka_send, redis_send = AIOKafkaConnection.send, Connection.send_packed_command

    def kafka(self: AIOKafkaConnection, request: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(request, ProduceRequest):
            wire.append("kafka")
        return kafka_send(self, request, *args, **kwargs)

    async def redis_command(self: Connection, *args: Any, **kwargs: Any) -> None:
        wire.append("redis")
        await redis_send(self, *args, **kwargs)

    try:
        await producer.send_and_wait(INTERVENTIONS, b"{}", partition=0)  # metadata, connection
        await redis.ping()
        monkeypatch.setattr(AIOKafkaConnection, "send", kafka)
        monkeypatch.setattr(Connection, "send_packed_command", redis_command)
        for _ in range(3):
            wire.clear()
            intervention = {"intervention_id": unique("i"), "customer_id": unique("wire"),
                            "session_id": "s", "reason": "rage_click", "kind": "assist",
                            "emitted_ts": 0}  # fmt: skip
            await delivery.send(Outbox(interventions=[intervention]), behind=behind)
            assert wire == ([] if behind else ["kafka"])
            await asyncio.gather(*delivery.take_unconfirmed())
            deadline = asyncio.get_running_loop().time() + 5
            while "redis" not in wire:
                assert asyncio.get_running_loop().time() < deadline, wire
                await asyncio.sleep(0.01)
            assert "kafka" in wire
            if not behind:
                assert wire[0] == "kafka"
            # The next send starts with the writer idle: one still writing takes what
            # is handed to it meanwhile at its next step, turns or not.
            while delivery._writer is not None and not delivery._writer.done():
                await asyncio.sleep(0.01)
        assert await redis.xlen(REDIS_INTERVENTIONS_STREAM) == 3
    finally:
        await delivery.close()
        await producer.stop()
