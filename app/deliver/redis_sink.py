"""The Redis copy of the interventions: written at once, caught up from Kafka, each once.

Kafka ``interventions`` is the complete record; the Redis stream is a copy for chat
services. Two writers keep it, both with ``deliver_once``, one Lua call per
intervention that adds the stream entry only if the intervention's index key
(``REDIS_INTERVENTION_KEY``, kept for the retention) is new, so the stream holds each
intervention once however often it is written:

- the **fast path**: ``Delivery.send`` writes a batch's interventions right after
  producing them, in a task of its own with a short timeout, so a slow or frozen
  Redis never holds the click stream (at most one such write is in flight; the
  next batch does not wait for it);
- the **catch-up**: ``RedisSink`` consumes ``interventions`` in a consumer group of
  its own (``<app id>-redis``) and writes each record the same way, retrying with
  backoff until Redis answers, committing only what Redis took. What the fast path
  missed (a timeout, an outage, a crash) arrives this way; what this worker's fast
  path confirmed is skipped (``written``), and what another worker's wrote is a no-op.
  While Redis is away the group's lag grows and ``/readyz`` says so.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Container, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from mode import Service
from redis.exceptions import RedisError

from app.decide.uplift import UpliftMark
from app.deliver.consumer import start_interventions_consumer
from app.runtime.metrics import Metrics
from app.runtime.topics import (
    INTERVENTIONS,
    REDIS_INTERVENTION_KEY,
    REDIS_INTERVENTIONS_STREAM,
    REDIS_UPLIFT_KEY,
)

if TYPE_CHECKING:
    from config import Settings

__all__ = [
    "INDEXED_CONTEXT_FIELDS",
    "INDEXED_FIELDS",
    "RedisSink",
    "backoff_s",
    "deliver_once",
    "index_entry",
]

log = logging.getLogger(__name__)

#: What the index keeps of an intervention: enough to check and count feedback on it.
INDEXED_FIELDS = ("customer_id", "session_id", "reason", "kind", "emitted_ts")
#: Fields of the intervention's ``context`` the index keeps too, at its top level, when
#: there: the variant shown, so that feedback teaches the bandit that picked it.
INDEXED_CONTEXT_FIELDS = ("variant",)

# KEYS: index key, stream; ARGV: index value, retention s, stream maxlen, intervention JSON.
_DELIVER_ONCE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'data', ARGV[4])
  return 1
end
return 0
"""
_BATCH_MAX = 500
_POLL_MS = 500
# The catch-up writes what the fast path missed: a quarter of a second later is soon
# enough. Where the broker does not answer a fetch as soon as data arrives (Tansu looks
# again after half the wait), the worker's 20 ms had it fetch ~50 times a second at
# 1 000 events/s, and commit each partition after each fetch.
_FETCH_WAIT_MS = 500
_WRITE_TIMEOUT_S = 2.0
_BACKOFF_FIRST_S = 0.2
_BACKOFF_MAX_S = 5.0


def index_entry(intervention: dict[str, Any]) -> dict[str, Any]:
    """What the index keeps of ``intervention`` (``INDEXED_FIELDS``, then the
    ``INDEXED_CONTEXT_FIELDS`` it has).

    Examples
    --------
    >>> offer = {"customer_id": "c1", "session_id": "s1", "reason": "product_hesitation",
    ...          "kind": "offer", "emitted_ts": 5,
    ...          "context": {"page": "/p/9", "variant": "discount"}}
    >>> index_entry(offer)["variant"]
    'discount'
    >>> "variant" in index_entry({**offer, "context": {"page": "/p/9"}})
    False
    """
    entry = {key: intervention[key] for key in INDEXED_FIELDS}
    context = intervention.get("context") or {}
    entry.update((key, context[key]) for key in INDEXED_CONTEXT_FIELDS if key in context)
    return entry


def backoff_s(failures: int) -> float:
    """The wait after ``failures`` failed writes in a row: doubling, capped.

    Examples
    --------
    >>> [backoff_s(n) for n in (1, 2, 3, 10)]
    [0.2, 0.4, 0.8, 5.0]
    """
    wait: float = _BACKOFF_FIRST_S * 2 ** max(0, failures - 1)
    return min(_BACKOFF_MAX_S, wait)


async def deliver_once(
    redis: aioredis.Redis,
    interventions: Sequence[tuple[dict[str, Any], bytes]],
    *,
    stream_maxlen: int,
    retention_s: int,
    marks: Sequence[UpliftMark] = (),
) -> int:
    """Add each (intervention, its JSON) to the stream unless it is there, and each
    uplift mark's id to its set (``REDIS_UPLIFT_KEY``); returns how many interventions
    were new. One pipeline (the marks of one set in one ``SADD``); raises on any Redis
    error (a retry of the whole batch adds only what is missing: both are idempotent)."""
    if not interventions and not marks:
        return 0
    async with redis.pipeline(transaction=False) as pipe:
        for intervention, payload in interventions:
            index = orjson.dumps(index_entry(intervention))
            key = REDIS_INTERVENTION_KEY.format(intervention["intervention_id"])
            pipe.eval(_DELIVER_ONCE, 2, key, REDIS_INTERVENTIONS_STREAM, index, retention_s,
                      stream_maxlen, payload)  # fmt: skip
        members: dict[str, list[str]] = {}
        for mark in marks:
            key = REDIS_UPLIFT_KEY.format(mark.day, mark.reason, mark.group, mark.mark)
            members.setdefault(key, []).append(mark.intervention_id)
        for key, ids in members.items():
            pipe.sadd(key, *ids)
            # A day's sets outlive the retention by the conversion window's days.
            pipe.expire(key, retention_s + 2 * 86_400)
        results: list[Any] = await pipe.execute()
    return sum(int(a) for a in results[: len(interventions)])


class RedisSink(Service):
    """Catches the Redis stream up from ``interventions`` (group ``<app id>-redis``)."""

    def __init__(
        self,
        settings: Settings,
        redis: aioredis.Redis,
        metrics: Metrics,
        written: Container[str],
    ) -> None:
        super().__init__()
        self.settings = settings
        self.redis = redis
        self.metrics = metrics
        # Intervention ids the fast path confirmed on the stream: not written again.
        self.written = written
        self.group_id = f"{settings.app_id}-redis"
        self.retention_s = settings.intervention_retention_days * 86_400
        # Whether the last write reached Redis, and since when it has not.
        self.redis_up = True
        self.down_since: float | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._reader: asyncio.Task[None] | None = None
        # Partition → the next offset not yet in Redis, and the last committed.
        self._done: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        metrics.redis_up.set(1)

    def health(self) -> dict[str, Any]:
        """For ``/readyz``: is Redis taking writes, and how far behind is its copy."""
        lag = 0
        consumer = self._consumer
        if consumer is not None:
            for tp in consumer.assignment():
                highwater, done = consumer.highwater(tp), self._done.get(tp)
                if highwater is not None and done is not None:
                    lag += max(0, highwater - done)
        down_s = 0.0 if self.down_since is None else time.monotonic() - self.down_since
        return {"redis": "ok" if self.redis_up else "unavailable", "redis_down_s": round(down_s, 1),
                "redis_catch_up_behind": lag}  # fmt: skip

    async def on_start(self) -> None:
        # A new group starts now: what came before was written by the fast path.
        consumer = await start_interventions_consumer(
            self.settings, self.group_id, "latest", _CommitOnRevoke(self),
            fetch_max_wait_ms=max(self.settings.fetch_max_wait_ms, _FETCH_WAIT_MS),
        )  # fmt: skip
        self._consumer = consumer
        self._reader = asyncio.create_task(self._read(consumer))

    async def on_stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        if self._consumer is not None:
            await self.commit_done()
            await self._consumer.stop()

    async def commit_done(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        """Commit how far Redis has every assigned partition (or ``partitions``), where
        that moved since the last commit."""
        consumer = self._consumer
        if consumer is None:
            return
        wanted = consumer.assignment() if partitions is None else set(partitions)
        offsets = {tp: offset for tp, offset in self._done.items()
                   if tp in wanted and self._committed.get(tp) != offset}  # fmt: skip
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:  # a rebalance: the next owner writes them again, once
            log.warning("redis catch-up: commit of %s failed: %r", offsets, exc)
            return
        self._committed.update(offsets)

    async def release(self, partitions: Iterable[TopicPartition]) -> None:
        """Commit what was written of ``partitions`` and forget them: another worker may
        move them on before they come back."""
        given_up = set(partitions)
        await self.commit_done(given_up)
        for tp in given_up:
            self._done.pop(tp, None)
            self._committed.pop(tp, None)

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        # Committed on a timer, as the worker's offsets are, not after every fetch: a new
        # owner writes again what came since (each intervention lands once).
        commit_interval_s = self.settings.broker_commit_interval_s
        committed_at = time.monotonic()
        while True:
            if time.monotonic() - committed_at >= commit_interval_s:
                await self.commit_done()
                committed_at = time.monotonic()
            try:
                batches = await consumer.getmany(timeout_ms=_POLL_MS, max_records=_BATCH_MAX)
            except KafkaError as exc:
                log.error("redis catch-up: reading %s failed, trying again: %r", INTERVENTIONS,
                          exc)  # fmt: skip
                await asyncio.sleep(1.0)
                continue
            for tp, records in batches.items():
                interventions = []
                written = self.written
                for record in records:
                    try:
                        intervention = orjson.loads(record.value)
                    except orjson.JSONDecodeError:
                        log.error("redis catch-up: %s@%s is not JSON, skipped", tp, record.offset)
                        continue
                    if intervention.get("intervention_id") not in written:
                        interventions.append((intervention, record.value))
                self._done.setdefault(tp, records[0].offset)
                await self._write_until_taken(interventions)
                if tp in consumer.assignment():  # not given up (``release``) meanwhile
                    self._done[tp] = records[-1].offset + 1

    async def _write_until_taken(self, interventions: list[tuple[dict[str, Any], bytes]]) -> None:
        failures = 0
        while True:
            try:
                async with asyncio.timeout(_WRITE_TIMEOUT_S):
                    added = await deliver_once(
                        self.redis, interventions, stream_maxlen=self.settings.redis_stream_maxlen,
                        retention_s=self.retention_s,
                    )  # fmt: skip
            except (RedisError, OSError, TimeoutError) as exc:
                failures += 1
                if self.redis_up:
                    log.error("redis unavailable, the interventions wait on Kafka: %r", exc)
                    self.redis_up, self.down_since = False, time.monotonic()
                    self.metrics.redis_up.set(0)
                await asyncio.sleep(backoff_s(failures))
                continue
            if not self.redis_up:
                log.warning("redis is back after %.1f s", time.monotonic() - (self.down_since or 0))
                self.redis_up, self.down_since = True, None
                self.metrics.redis_up.set(1)
            if added:
                self.metrics.redis_caught_up.inc(added)
            return


class _CommitOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Commits what the catch-up wrote of the partitions it gives up, and forgets them."""

    def __init__(self, sink: RedisSink) -> None:
        self.sink = sink

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self.sink.release(revoked)

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        pass
