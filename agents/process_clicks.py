"""The customer agent: clicks in, state updated, timers run, interventions out."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import faust
from faust.types import Message

from app.deliver.delivery import Outbox
from app.detect.pipeline import process_event
from app.errors import InvalidEvent
from app.ingest.events import decode_event
from app.ingest.partitioning import customer_partition
from app.runtime.compat import raw_producer
from app.runtime.topics import CLICKS

if TYPE_CHECKING:
    from app.runtime.faust_app import NudgeflowApp

__all__ = ["SOURCE_HEADER", "attach_process_clicks", "handle_batch"]

log = logging.getLogger(__name__)

#: Header the collector sets, so events it already counted are not counted again here.
SOURCE_HEADER = "nudgeflow-source"
#: Set on an event re-produced from another partition: the clicks partition it was on.
FORWARDED_HEADER = "nudgeflow-forwarded-from"


def attach_process_clicks(app: NudgeflowApp) -> None:
    """Register the agent that consumes ``clicks`` (keyed, so one customer stays in order)."""

    @app.agent(app.clicks_topic, name="process_clicks")
    async def process_clicks(stream: faust.StreamT[bytes]) -> None:
        # The consumer hands this topic's messages to ``app.clicks_queue`` directly
        # (app.runtime.compat.streams), so the stream Faust passes in stays empty.
        async for batch in app.clicks_queue.batches(app.settings.batch_max_events):
            await app.wait_for_changelog()  # outside the batch lock, which a commit takes
            async with app.batch_lock:
                await handle_batch(app, batch)


async def handle_batch(app: NudgeflowApp, messages: list[Message]) -> None:
    """Per event: decode → fire the partition's due timers → fold, detect, decide → keep the
    state; then deliver, count and ack the batch."""
    metrics, customers, event_time, models = app.metrics, app.customers, app.event_time, app.models
    rules = app.rules
    partitions = app.settings.topic_partitions
    rule_scores = metrics.model_score.labels(model="rules")
    lateness_ms, max_skew_ms = rules.time.allowed_lateness_ms, app.max_future_skew_ms
    outbox = Outbox()
    rejected: list[tuple[Message, str, str]] = []
    from_kafka = processed = duplicates = late = 0
    newest_ts_ms = 0
    now_ms = int(time.time() * 1000)  # the batch is delivered as one, so it is emitted as one
    if event_time.stale:
        await event_time.rebuild(now_ms)
    for message in messages:
        started = time.perf_counter()
        from_kafka += _source(message) == "kafka"
        try:
            click = decode_event(message.value, now_ms, max_skew_ms)
        except InvalidEvent as exc:
            rejected.append((message, exc.reason, str(exc)))
            continue
        partition = message.partition
        if customers.partition_of(click.customer_id) != partition:
            expected = customer_partition(click.customer_id, partitions)
            if expected != partition:
                await _forward(app, message, click.customer_id, expected, rejected)
                continue
        clock = event_time.clock(partition)
        try:
            # A client clock ahead of the record's time must not pull the partition's
            # watermark (and everyone's timers) forward.
            record_ms = int(message.timestamp * 1000) if message.timestamp else click.ts_ms
            clock.observe(min(click.ts_ms, record_ms + lateness_ms), now_ms)
            watermark_ms = clock.watermark_ms(lateness_ms)
            event_time.fire_due(partition, watermark_ms, now_ms, outbox)
            live_ms = now_ms if clock.follows_wall_clock(max_skew_ms) else 0
            state = customers.get(click.customer_id)
            learner = models.learner(partition) if models is not None else None
            if learner is not None:
                rules = learner.rules
            outcome = process_event(state, click, rules, watermark_ms, now_ms, live_ms,
                                    message.offset)  # fmt: skip
            if outcome.duplicate:
                duplicates += 1
                continue
            if learner is not None and not learner.models.includes(message.offset):
                # Learned once, in offset order (a replay after a checkpoint skips it).
                learner.learn_event(click.customer_id, state, outcome.state, click, outcome.late)
                learner.annotate(outcome.interventions, outcome.state, state)
                learner.models.include(message.offset)
            event_time.apply(click.customer_id, partition, outcome, state, outbox)
            for signal in outcome.signals:
                rule_scores.observe(signal.score)
            late += outcome.late
            processed += 1
            newest_ts_ms = max(newest_ts_ms, click.ts_ms)
        except Exception as exc:  # a bug must not stall the partition: keep the event, go on
            log.exception("internal error on %s[%s]@%s", message.topic, message.partition,
                          message.offset)  # fmt: skip
            rejected.append((message, "internal_error", f"internal error: {exc!r}"))
        finally:
            metrics.processing.observe(time.perf_counter() - started)

    # The models' counts and scores reach /metrics at the timer tick (faust_app), not here.
    await app.delivery.send(outbox, behind=app.clicks_queue.behind())
    for message, reason, error in rejected:
        await _reject(app, message, reason, error)
    app.clicks_queue.ack(messages)
    app.count_interventions(outbox.interventions)
    metrics.events_received.labels(source="kafka").inc(from_kafka)
    metrics.events_processed.inc(processed)
    metrics.events_duplicate.inc(duplicates)
    metrics.events_late.inc(late)
    if newest_ts_ms:
        metrics.event_lag.set(time.time() - newest_ts_ms / 1000)


async def _forward(
    app: NudgeflowApp,
    message: Message,
    customer_id: str,
    expected: int,
    rejected: list[tuple[Message, str, str]],
) -> None:
    """Re-produce an event found on another partition than its customer's, keyed right.

    Its customer's state, timers and order live on ``expected``: processed here, it
    would start a second state that a rebalance later overwrites. The send is awaited
    before the offset is committed. An event already forwarded once is refused instead
    (workers that disagree on the partition count must not bounce it for ever).
    """
    headers = list(_header_items(message))
    if any(key == FORWARDED_HEADER for key, _ in headers):
        error = (
            f"on clicks partition {message.partition}, not {expected} (customer_id's), after "
            "a forward: do the workers agree on NUDGEFLOW_TOPIC_PARTITIONS?"
        )
        rejected.append((message, "wrong_partition", error))
        return
    headers = [(k, v) for k, v in headers if k != SOURCE_HEADER]
    headers += [(SOURCE_HEADER, b"forwarded"), (FORWARDED_HEADER, str(message.partition).encode())]
    future = await raw_producer(app).send(CLICKS, message.value, key=customer_id.encode(),
                                          partition=expected, headers=headers)  # fmt: skip
    app.delivery.track(future)
    app.metrics.events_forwarded.inc()


async def _reject(app: NudgeflowApp, message: Message, reason: str, error: str) -> None:
    log.warning("rejected %s[%s]@%s: %s", message.topic, message.partition, message.offset, error)
    origin = {"topic": message.topic, "partition": message.partition, "offset": message.offset}
    sent = await app.keep_failed(
        reason=reason, error=error, payload=message.value, source=_source(message),
        origin=origin, key=message.key,
    )  # fmt: skip
    app.delivery.track(sent)


def _source(message: Message) -> str:
    if not message.headers:
        return "kafka"  # most producers set none: no generator for them
    for key, value in _header_items(message):
        if key == SOURCE_HEADER:
            return value.decode() if isinstance(value, bytes) else str(value)
    return "kafka"


def _header_items(message: Message) -> Iterable[tuple[str, bytes]]:
    headers = message.headers or ()
    return headers.items() if isinstance(headers, Mapping) else headers
