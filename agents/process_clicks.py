"""The customer agent: clicks in, state updated, interventions out."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import faust
from faust.types import Message

from app.detect.pipeline import process_event
from app.errors import InvalidEvent
from app.ingest.events import decode_event

if TYPE_CHECKING:
    from app.runtime.faust_app import NudgeflowApp

__all__ = ["SOURCE_HEADER", "attach_process_clicks", "handle_batch"]

log = logging.getLogger(__name__)

#: Header the collector sets, so events it already counted are not counted again here.
SOURCE_HEADER = "nudgeflow-source"


def attach_process_clicks(app: NudgeflowApp) -> None:
    """Register the agent that consumes ``clicks`` (keyed, so one customer stays in order)."""

    @app.agent(app.clicks_topic, name="process_clicks")
    async def process_clicks(stream: faust.StreamT[bytes]) -> None:
        # The consumer hands this topic's messages to ``app.clicks_queue`` directly
        # (app.runtime.compat.streams), so the stream Faust passes in stays empty.
        async for batch in app.clicks_queue.batches(app.settings.batch_max_events):
            async with app.batch_lock:
                await handle_batch(app, batch)


async def handle_batch(app: NudgeflowApp, messages: list[Message]) -> None:
    """Decode → advance → keep the state → detect, per event; then send, count and ack."""
    metrics, customers = app.metrics, app.customers
    thresholds, limits = app.settings.signal_thresholds, app.state_limits
    interventions: list[dict[str, Any]] = []
    rejected: list[tuple[Message, str, str]] = []
    from_kafka = processed = duplicates = 0
    newest_ts_ms = 0
    now_ms = int(time.time() * 1000)  # the batch is delivered as one, so it is emitted as one
    for message in messages:
        started = time.perf_counter()
        from_kafka += _source(message) == "kafka"
        try:
            click = decode_event(message.value)
        except InvalidEvent as exc:
            rejected.append((message, exc.reason, str(exc)))
            continue
        try:
            outcome = process_event(customers.get(click.customer_id), click, thresholds, limits,
                                    now_ms)  # fmt: skip
            if outcome.duplicate:
                duplicates += 1
                continue
            customers.put(click.customer_id, outcome.state, message.partition)  # type: ignore[arg-type]
            interventions.extend(outcome.interventions)
            for _signal, cause in outcome.suppressed:
                metrics.interventions_suppressed.labels(cause=cause).inc()
            processed += 1
            newest_ts_ms = max(newest_ts_ms, click.ts_ms)
        except Exception as exc:  # a bug must not stall the partition: keep the event, go on
            log.exception("internal error on %s[%s]@%s", message.topic, message.partition,
                          message.offset)  # fmt: skip
            rejected.append((message, "internal_error", f"internal error: {exc!r}"))
        finally:
            metrics.processing.observe(time.perf_counter() - started)

    await app.delivery.send(interventions)
    for message, reason, error in rejected:
        await _reject(app, message, reason, error)
    app.clicks_queue.ack(messages)

    now_s = time.time()
    for intervention in interventions:
        metrics.interventions.labels(intervention["kind"], intervention["reason"]).inc()
        metrics.model_score.labels(model="rules").observe(intervention["score"])
        metrics.event_to_intervention.observe(max(0.0, now_s - intervention["event_ts"] / 1000))
    metrics.events_received.labels(source="kafka").inc(from_kafka)
    metrics.events_processed.inc(processed)
    metrics.events_duplicate.inc(duplicates)
    if newest_ts_ms:
        metrics.event_lag.set(now_s - newest_ts_ms / 1000)


async def _reject(app: NudgeflowApp, message: Message, reason: str, error: str) -> None:
    log.warning("rejected %s[%s]@%s: %s", message.topic, message.partition, message.offset, error)
    origin = {"topic": message.topic, "partition": message.partition, "offset": message.offset}
    await app.keep_failed(reason=reason, error=error, payload=message.value,
                          source=_source(message), origin=origin, key=message.key)  # fmt: skip


def _source(message: Message) -> str:
    headers = message.headers or ()
    items = headers.items() if isinstance(headers, Mapping) else headers
    for key, value in items:
        if key == SOURCE_HEADER:
            return value.decode() if isinstance(value, bytes) else str(value)
    return "kafka"
