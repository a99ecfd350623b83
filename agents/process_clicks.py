"""The customer agent: clicks in, state updated, interventions out."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

import faust
from faust.types import EventT, Message

from app.errors import InvalidEvent
from app.events import decode_event
from app.failures import failed_event_record
from app.pipeline import process_event

if TYPE_CHECKING:
    from app.faust_app import NudgeflowApp

__all__ = ["SOURCE_HEADER", "attach_process_clicks", "handle_click"]

log = logging.getLogger(__name__)

#: Header the collector sets, so events it already counted are not counted again here.
SOURCE_HEADER = "nudgeflow-source"


def attach_process_clicks(app: NudgeflowApp) -> None:
    """Register the agent that consumes ``clicks`` (keyed, so one customer stays in order)."""

    @app.agent(app.clicks_topic, name="process_clicks")
    async def process_clicks(stream: faust.StreamT[bytes]) -> None:
        event: EventT[bytes]
        async for event in stream.events():
            await handle_click(app, event.message)


async def handle_click(app: NudgeflowApp, message: Message) -> None:
    """Decode → advance → write the table → send → count, for one message."""
    started = time.perf_counter()
    metrics = app.metrics
    if _source(message) != "http":
        metrics.events_received.labels(source="kafka").inc()
    try:
        event = decode_event(message.value)
    except InvalidEvent as exc:
        await _reject(app, message, exc.reason, str(exc))
        return
    try:
        table = app.customer_to_state
        now_ms = int(time.time() * 1000)
        outcome = process_event(
            table.get(event.customer_id), event,
            app.settings.signal_thresholds, app.state_limits, now_ms,
        )  # fmt: skip
        if outcome.duplicate:
            metrics.events_duplicate.inc()
            return
        table[event.customer_id] = outcome.state
        for _signal, cause in outcome.suppressed:
            metrics.interventions_suppressed.labels(cause=cause).inc()
        for intervention in outcome.interventions:
            await app.delivery.send(intervention)
            metrics.interventions.labels(intervention["kind"], intervention["reason"]).inc()
            metrics.model_score.labels(model="rules").observe(intervention["score"])
            metrics.event_to_intervention.observe((now_ms - event.ts_ms) / 1000)
        metrics.events_processed.inc()
        metrics.event_lag.set(time.time() - event.ts_ms / 1000)
    except Exception as exc:  # a bug must not stall the partition: keep the event, go on
        log.exception("internal error on %s[%s]@%s", message.topic, message.partition,
                      message.offset)  # fmt: skip
        await _reject(app, message, "internal_error", f"internal error: {exc!r}")
    finally:
        metrics.processing.observe(time.perf_counter() - started)


async def _reject(app: NudgeflowApp, message: Message, reason: str, error: str) -> None:
    log.warning("rejected %s[%s]@%s: %s", message.topic, message.partition, message.offset, error)
    app.metrics.events_rejected.labels(reason=reason).inc()
    record = failed_event_record(
        reason=reason,
        error=error,
        payload=message.value,
        source=_source(message),
        received_ts_ms=int(time.time() * 1000),
        origin={"topic": message.topic, "partition": message.partition, "offset": message.offset},
    )
    await app.failed_topic.send(key=message.key, value=record)


def _source(message: Message) -> str:
    headers = message.headers or ()
    items = headers.items() if isinstance(headers, Mapping) else headers
    for key, value in items:
        if key == SOURCE_HEADER:
            return value.decode() if isinstance(value, bytes) else str(value)
    return "kafka"
