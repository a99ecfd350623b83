"""The consumer of ``interventions`` that each delivery channel beyond Kafka runs.

A channel (the Redis catch-up, webhooks) reads the topic in a consumer group of its
own, so its fetches, pauses and commits are its own: a slow channel never holds the
click stream or another channel. The timings are the worker's (session, heartbeat,
fetch wait), and on the embedded broker the fetch wait widens as the worker's does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener

from app.runtime.compat.tansu_fetch_wait import widen_fetch_wait_while_truncated
from app.runtime.topics import INTERVENTIONS, bootstrap_servers

if TYPE_CHECKING:
    from config import Settings

__all__ = ["start_interventions_consumer"]


async def start_interventions_consumer(
    settings: Settings,
    group_id: str,
    auto_offset_reset: Literal["earliest", "latest"],
    listener: ConsumerRebalanceListener | None = None,
    *,
    fetch_max_wait_ms: int | None = None,
) -> AIOKafkaConsumer:
    """A started consumer of ``interventions`` in ``group_id``, committing by hand; its
    fetch wait is the worker's unless ``fetch_max_wait_ms`` says otherwise."""
    s = settings
    fetch_wait_ms = s.fetch_max_wait_ms if fetch_max_wait_ms is None else fetch_max_wait_ms
    session_timeout_ms = int(s.broker_session_timeout_s * 1000)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers(s.broker),
        group_id=group_id,
        client_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset=auto_offset_reset,
        session_timeout_ms=session_timeout_ms,
        rebalance_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=int(s.broker_heartbeat_interval_s * 1000),
        request_timeout_ms=max(30_000, session_timeout_ms * 2),
        fetch_max_wait_ms=fetch_wait_ms,
    )
    if listener is None:
        consumer.subscribe([INTERVENTIONS])
    else:
        consumer.subscribe([INTERVENTIONS], listener=listener)
    await consumer.start()
    if s.broker_flavour == "tansu":  # as the worker's consumer (app.runtime.compat)
        widen_fetch_wait_while_truncated(consumer, fetch_wait_ms)
    return consumer
