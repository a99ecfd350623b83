"""Where feedback is kept: Redis, beside the index of delivered interventions.

- ``REDIS_INTERVENTION_KEY`` (written by delivery): who and why of each delivered
  intervention; feedback on an id missing there is refused.
- ``REDIS_OUTCOMES_KEY``: per intervention, each outcome with its newest ``ts``; the
  customer view shows the latest.
- ``REDIS_FEEDBACK_KEY``: per reason and outcome, the set of intervention ids, so
  the per-reason statistics count each intervention once however often its
  feedback is sent.
- ``REDIS_VARIANT_LEARNED_KEY``: per intervention, whether its feedback has taught
  the variant bandit yet.

Every write is idempotent, so applying the same feedback twice (a retry, or the
HTTP path and the topic) changes nothing. Redis errors are the caller's to handle.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypedDict

import orjson
import redis.asyncio as aioredis

from app.feedback.feedback import Feedback, check_indexed, latest_outcome
from app.runtime.topics import (
    REDIS_FEEDBACK_KEY,
    REDIS_INTERVENTION_KEY,
    REDIS_OUTCOMES_KEY,
    REDIS_VARIANT_LEARNED_KEY,
)

__all__ = ["FeedbackStore", "LatestOutcome"]

# HSET only when newer: a late, older feedback must not hide the newer ts of an outcome.
# Lua numbers are doubles, exact for ms timestamps (< 2^53).
_SET_IF_NEWER = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current or tonumber(current) < tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
return redis.call('EXPIRE', KEYS[1], ARGV[3])
"""
_FEEDBACK_PREFIX = REDIS_FEEDBACK_KEY.split("{}", 1)[0]
# Keys asked for per SCAN round trip: one call lists a small deployment's statistics.
_SCAN_COUNT = 1000


class LatestOutcome(TypedDict):
    """An intervention's latest outcome and its ``ts`` (ms)."""

    outcome: str
    ts: int


class FeedbackStore:
    """Reads the intervention index and keeps outcomes and per-reason statistics in Redis.

    Parameters
    ----------
    redis
        An asyncio Redis client (delivery's: the same server holds the index).
    retention_s
        How long outcomes and statistics are kept after their last feedback.
    """

    def __init__(self, redis: aioredis.Redis, retention_s: int) -> None:
        if retention_s <= 0:
            raise ValueError(f"retention_s must be positive, got {retention_s}")
        self.redis = redis
        self.retention_s = retention_s

    async def intervention(self, intervention_id: str) -> dict[str, Any] | None:
        """What delivery indexed of the intervention, or ``None`` when it is unknown."""
        value = await self.redis.get(REDIS_INTERVENTION_KEY.format(intervention_id))
        if value is None:
            return None
        indexed = orjson.loads(value)
        return indexed if isinstance(indexed, dict) else None

    async def apply(self, feedback: Feedback) -> None:
        """Check ``feedback`` against the index and record it.

        Raises ``InvalidEvent`` (``unknown_intervention``, ``customer_mismatch``) and,
        when Redis fails, ``RedisError`` or ``OSError``.
        """
        indexed = await self.intervention(feedback.intervention_id)
        await self.record(feedback, check_indexed(feedback, indexed))

    async def record(self, feedback: Feedback, indexed: Mapping[str, Any]) -> None:
        """Keep the outcome's newest ``ts`` and count the intervention under its reason,
        in one round trip."""
        outcomes_key = REDIS_OUTCOMES_KEY.format(feedback.intervention_id)
        reason_key = REDIS_FEEDBACK_KEY.format(indexed.get("reason", "unknown"), feedback.outcome)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.eval(_SET_IF_NEWER, 1, outcomes_key, feedback.outcome, feedback.ts_ms,
                      self.retention_s)  # fmt: skip
            pipe.sadd(reason_key, feedback.intervention_id)
            pipe.expire(reason_key, self.retention_s)
            await pipe.execute()

    async def claim_variant_lesson(self, intervention_id: str) -> bool:
        """True the first time only: the intervention's one lesson for the variant bandit
        is the caller's to teach (kept for the retention, as the index it needs)."""
        key = REDIS_VARIANT_LEARNED_KEY.format(intervention_id)
        return bool(await self.redis.set(key, 1, nx=True, ex=self.retention_s))

    async def latest_outcomes(self, intervention_ids: Iterable[str]) -> dict[str, LatestOutcome]:
        """The latest outcome of each intervention that has feedback, in one round trip.

        The latest is the one with the newest ``ts``; ties go to the later step of
        the funnel (``app.feedback.feedback.FUNNEL``).
        """
        ids = list(dict.fromkeys(intervention_ids))
        if not ids:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for intervention_id in ids:
                pipe.hgetall(REDIS_OUTCOMES_KEY.format(intervention_id))
            hashes = await pipe.execute()
        latest: dict[str, LatestOutcome] = {}
        for intervention_id, fields in zip(ids, hashes, strict=True):
            found = latest_outcome({_text(k): int(v) for k, v in fields.items()})
            if found is not None:
                latest[intervention_id] = {"outcome": found[0], "ts": found[1]}
        return latest

    async def outcome_counts(self) -> dict[str, dict[str, int]]:
        """Reason → outcome → interventions of that reason with that outcome."""
        keys = [_text(key) async for key in self.redis.scan_iter(
            match=REDIS_FEEDBACK_KEY.format("*", "*"), count=_SCAN_COUNT)]  # fmt: skip
        if not keys:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.scard(key)
            sizes = await pipe.execute()
        counts: dict[str, dict[str, int]] = {}
        for key, size in zip(keys, sizes, strict=True):
            reason, outcome = key.removeprefix(_FEEDBACK_PREFIX).rsplit(":", 1)
            if size:  # expired between the scan and the count
                counts.setdefault(reason, {})[outcome] = int(size)
        return counts


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
