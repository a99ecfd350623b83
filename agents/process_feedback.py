"""The feedback agent: contract §3 feedback from the ``intervention-feedback`` topic into Redis."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

import faust
from faust.types import Message
from redis.exceptions import RedisError

from agents.process_clicks import SOURCE_HEADER
from app.errors import InvalidEvent
from app.feedback import parse_feedback
from app.runtime.topics import FEEDBACK

if TYPE_CHECKING:
    from app.runtime.faust_app import NudgeflowApp

__all__ = ["attach_process_feedback", "handle_feedback"]

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
    """Parse → check against the intervention index → record; count the result.

    Feedback the HTTP view took is on the topic too, marked with ``SOURCE_HEADER``:
    it is recorded and counted already, so it is passed over. Refused feedback is
    logged and counted in ``nudgeflow_feedback_rejected_total{reason}`` and goes
    nowhere else; a Redis failure (``store_unavailable``) or a bug (``internal_error``)
    is logged and counted the same way, and the agent goes on.
    """
    if _source(message) == "http":
        return
    where = f"{message.topic}[{message.partition}]@{message.offset}"
    try:
        feedback = parse_feedback(
            message.value or b"", int(time.time() * 1000), app.max_future_skew_ms
        )
        async with asyncio.timeout(_REDIS_TIMEOUT_S):
            await app.feedback.apply(feedback)
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
        app.metrics.feedback.labels(outcome=feedback.outcome).inc()
        return
    app.metrics.feedback_rejected.labels(reason=reason).inc()


def _source(message: Message) -> str | None:
    headers = message.headers or ()
    items = headers.items() if isinstance(headers, Mapping) else headers
    for key, value in items:
        if key == SOURCE_HEADER:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None
