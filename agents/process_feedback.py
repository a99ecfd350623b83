"""The feedback agent: contract §3 feedback from the ``intervention-feedback`` topic into Redis,
and verdicts on a variant into the bandit that picked it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import faust
from faust.types import Message
from redis.exceptions import RedisError

from agents.process_clicks import SOURCE_HEADER
from app.decide.variants import variant_lesson
from app.errors import InvalidEvent
from app.feedback import Feedback, check_indexed, parse_feedback
from app.ingest.partitioning import customer_partition
from app.runtime.topics import FEEDBACK

if TYPE_CHECKING:
    from app.runtime.faust_app import NudgeflowApp

__all__ = ["attach_process_feedback", "handle_feedback", "teach_variant"]

log = logging.getLogger(__name__)

# Redis answers in a millisecond; one that hangs must not hold the partition for long.
_REDIS_TIMEOUT_S = 2.0


def attach_process_feedback(app: NudgeflowApp) -> None:
    """Register the agent that consumes ``intervention-feedback`` (key = customer_id)."""
    topic = app.topic(
        FEEDBACK,
        partitions=app.settings.topic_partitions,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",  # the agent decodes, so garbage is refused, not a crash
    )

    @app.agent(topic, name="process_feedback")
    async def process_feedback(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            await handle_feedback(app, event.message)


async def handle_feedback(app: NudgeflowApp, message: Message) -> None:
    """Parse → check against the intervention index → record → teach the variant; count.

    Feedback the HTTP view took is on the topic too, marked with ``SOURCE_HEADER``:
    the view recorded and counted it already, so here it only teaches the variant
    bandit. Refused feedback is logged and counted in
    ``nudgeflow_feedback_rejected_total{reason}`` and goes nowhere else; a Redis
    failure (``store_unavailable``) or a bug (``internal_error``) is logged and
    counted the same way (not for marked feedback: the view counted it as taken),
    and the agent goes on.
    """
    from_http = _source(message) == "http"
    where = f"{message.topic}[{message.partition}]@{message.offset}"
    try:
        feedback = parse_feedback(
            message.value or b"", int(time.time() * 1000), app.max_future_skew_ms
        )
        async with asyncio.timeout(_REDIS_TIMEOUT_S):
            indexed = await app.feedback.intervention(feedback.intervention_id)
            checked = check_indexed(feedback, indexed)
            if not from_http:
                await app.feedback.record(feedback, checked)
    except InvalidEvent as exc:
        log.warning("feedback refused %s: %s", where, exc)
        reason = exc.reason
    except (RedisError, OSError, TimeoutError) as exc:
        log.error("feedback %s not recorded, Redis unavailable: %r", where, exc)
        reason = "store_unavailable"
    except Exception:  # a bug must not stop the agent: log it loudly, count it, go on
        log.exception("internal error on feedback %s", where)
        reason = "internal_error"
    else:
        if not from_http:
            app.metrics.feedback.labels(outcome=feedback.outcome).inc()
        try:
            await teach_variant(app, feedback, checked, where)
        except Exception:  # the feedback is recorded: log the bug loudly, count it, go on
            log.exception("internal error teaching the variant bandit from feedback %s", where)
            app.metrics.variant_rewards_skipped.labels(cause="internal_error").inc()
        return
    if not from_http:
        app.metrics.feedback_rejected.labels(reason=reason).inc()


async def teach_variant(
    app: NudgeflowApp, feedback: Feedback, indexed: Mapping[str, Any], where: str
) -> None:
    """Teach the variant bandit of the customer's ``clicks`` partition what the
    intervention's variant earned, at most once per intervention.

    Only a verdict (accepted, converted, dismissed) on an intervention indexed with a
    variant teaches. The bandit is the one of the partition of the customer, which
    picked the variant. ``intervention-feedback`` has as many partitions as ``clicks``
    (checked at start-up) and Faust assigns partition N of both to the same worker, so
    feedback keyed by ``customer_id`` with nudgeflow's partitioner finds it here;
    feedback that is not (another partitioner, another partition count) is logged and
    counted in ``nudgeflow_variant_rewards_skipped_total{cause="not_owned"}``.

    The first verdict on an intervention claims its lesson in Redis (``SET NX``)
    before the bandit learns it: a repeat, a later verdict (converted after accepted),
    or the same feedback from HTTP and the topic teaches nothing more
    (``already_learned``). A crash between the claim and the next models checkpoint
    loses the lesson; none is ever learned twice.
    """
    lesson = variant_lesson(indexed, feedback.outcome)
    models = app.models
    if lesson is None or models is None:
        return
    skipped = app.metrics.variant_rewards_skipped
    partition = customer_partition(feedback.customer_id, app.settings.topic_partitions)
    if partition not in app.event_time.assigned():
        log.warning("feedback %s not learned: the bandit of clicks[%s] is on another worker",
                    where, partition)  # fmt: skip
        skipped.labels(cause="not_owned").inc()
        return
    try:
        async with asyncio.timeout(_REDIS_TIMEOUT_S):
            first = await app.feedback.claim_variant_lesson(feedback.intervention_id)
    except (RedisError, OSError, TimeoutError) as exc:
        log.error("feedback %s not learned, Redis unavailable: %r", where, exc)
        skipped.labels(cause="store_unavailable").inc()
        return
    if not first:
        skipped.labels(cause="already_learned").inc()
        return
    async with app.batch_lock:  # the click agent uses the learners under it
        if partition not in app.event_time.assigned():  # revoked while Redis answered
            log.warning("feedback %s not learned: clicks[%s] was revoked", where, partition)
            skipped.labels(cause="not_owned").inc()
            return
        models.learner(partition).models.learn_variant(*lesson)
        app.model_metrics.export(models.learners)


def _source(message: Message) -> str | None:
    headers = message.headers or ()
    items = headers.items() if isinstance(headers, Mapping) else headers
    for key, value in items:
        if key == SOURCE_HEADER:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None
