"""Server-sent events of interventions (contract §3): ``GET /v1/interventions/stream``.

Every worker writes every intervention to one global Redis stream; a worker holds one
*shared* reader of it (``XREAD BLOCK`` from the stream's end, started with the first open
SSE stream and stopped with the last) and fans each entry out to the bounded, in-memory
subscriptions of its customer. An idle client costs a small queue and a handler task, never
a Redis connection. A client that resumes with ``Last-Event-ID`` first gets the entries
after that id from ``XRANGE`` (filtered to its customer, in pages), then the live ones the
replay did not already carry: it subscribes before replaying, so nothing falls in between.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from app.runtime.topics import REDIS_INTERVENTIONS_STREAM

__all__ = [
    "KEEP_ALIVE",
    "Entry",
    "InterventionHub",
    "Subscription",
    "customer_of",
    "format_intervention",
    "intervention_events",
    "is_for_customer",
    "parse_stream_id",
]

log = logging.getLogger(__name__)

#: A stream entry: its id (``"<ms>-<seq>"``) and its ``data`` field (the intervention JSON).
Entry = tuple[str, bytes]

#: Sent after ``heartbeat_s`` (``NUDGEFLOW_SSE_HEARTBEAT_S``) without an intervention:
#: proxies and load balancers close connections idle for 30-60 s, and a write is how a
#: server learns that a client has gone (aiohttp does not tell a waiting handler).
KEEP_ALIVE = b": keep-alive\n\n"
# Interventions are a few per customer per session: 64 unsent ones mean a stuck client.
_MAX_PENDING = 64
# How long one XREAD waits on the server: also the longest a stop may wait for a reader
# whose cancellation was lost (see ``_read``); an idle worker sends one XREAD per block.
_BLOCK_MS = 2_000
_READ_COUNT = 100
_REPLAY_PAGE = 500
# A Redis that hangs (rather than refuses) must not hold the reader or a replay forever.
_COMMAND_TIMEOUT_S = 5.0
_RETRY_S = 1.0
_STREAM_ID = re.compile(r"(\d{1,20})-(\d{1,20})")


def parse_stream_id(text: str) -> tuple[int, int] | None:
    """``"<ms>-<seq>"`` as a comparable pair; None for anything else.

    Examples
    --------
    >>> parse_stream_id("1714564800000-3")
    (1714564800000, 3)
    >>> parse_stream_id("1714564800000-3") < parse_stream_id("1714564800000-10")
    True
    >>> parse_stream_id("1714564800000") is None, parse_stream_id("$") is None
    (True, True)
    """
    match = _STREAM_ID.fullmatch(text)
    return None if match is None else (int(match[1]), int(match[2]))


def format_intervention(entry_id: str, data: bytes) -> bytes:
    """One SSE message: ``event: intervention``, the entry id, the JSON as ``data:``.

    A line break in ``data`` (orjson writes none) would end the field, so each line
    gets its own ``data:`` and the client joins them back with newlines.

    Examples
    --------
    >>> format_intervention("1-0", b'{"kind":"assist"}')
    b'event: intervention\\nid: 1-0\\ndata: {"kind":"assist"}\\n\\n'
    """
    lines = b"".join(b"data: " + line + b"\n" for line in data.split(b"\n"))
    return b"event: intervention\nid: " + entry_id.encode() + b"\n" + lines + b"\n"


def customer_of(data: bytes) -> str | None:
    """The ``customer_id`` of an intervention's JSON; None when it has none or is not JSON.

    Examples
    --------
    >>> customer_of(b'{"customer_id": "c42", "kind": "assist"}')
    'c42'
    >>> customer_of(b"not json") is None, customer_of(b"[1]") is None
    (True, True)
    """
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    customer_id = value.get("customer_id") if isinstance(value, dict) else None
    return customer_id if isinstance(customer_id, str) else None


def is_for_customer(data: bytes, customer_id: str) -> bool:
    """Whether an intervention's JSON is for ``customer_id``: parsed only when the id
    appears in it at all, so a replay over the global stream parses few entries.

    Examples
    --------
    >>> is_for_customer(b'{"customer_id":"c4","context":{"ref":"c42"}}', "c42")
    False
    >>> is_for_customer(b'{"customer_id":"c42"}', "c42")
    True
    >>> is_for_customer(orjson.dumps({"customer_id": 'say "hi"'}), 'say "hi"')
    True
    """
    # As orjson (the delivery's encoder) escapes it inside the JSON.
    return orjson.dumps(customer_id)[1:-1] in data and customer_of(data) == customer_id


class Subscription:
    """One open stream's interventions of its customer, waiting to be sent (bounded)."""

    __slots__ = ("_arrived", "_max_pending", "_pending", "closed", "customer_id")

    def __init__(self, customer_id: str, max_pending: int) -> None:
        self.customer_id = customer_id
        self.closed = False
        self._max_pending = max_pending
        self._pending: list[Entry] = []
        self._arrived = asyncio.Event()

    def push(self, entry: Entry) -> bool:
        """Queue an entry; False (and nothing queued) when the queue is full."""
        if len(self._pending) >= self._max_pending:
            return False
        self._pending.append(entry)
        self._arrived.set()
        return True

    def close(self) -> None:
        """End the subscription: ``next_batch`` answers None from now on."""
        self.closed = True
        self._arrived.set()

    async def next_batch(self, timeout_s: float) -> list[Entry] | None:
        """The entries queued since the last call, waiting up to ``timeout_s`` for one
        (``[]`` when none came); None once closed."""
        if not self._pending and not self.closed:
            self._arrived.clear()
            try:
                async with asyncio.timeout(timeout_s):
                    await self._arrived.wait()
            except TimeoutError:
                return []
        if self.closed:
            return None
        batch, self._pending = self._pending, []
        return batch


class InterventionHub:
    """A worker's one reader of the interventions stream, and its subscriptions.

    Parameters
    ----------
    redis
        The worker's Redis client (a pool: the blocked ``XREAD`` holds one connection).
    stream
        The stream key.
    max_pending
        Entries a subscription may hold unsent; one more, and its client is dropped.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        stream: str = REDIS_INTERVENTIONS_STREAM,
        max_pending: int = _MAX_PENDING,
    ) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, not {max_pending}")
        self.redis = redis
        self.stream = stream
        self.max_pending = max_pending
        self._by_customer: dict[str, set[Subscription]] = {}
        self._subscribers = 0
        self._reader: asyncio.Task[None] | None = None
        self._started: asyncio.Future[None] | None = None
        self._stopped = False

    @property
    def subscribers(self) -> int:
        """Open subscriptions."""
        return self._subscribers

    async def subscribe(self, customer_id: str) -> Subscription:
        """Subscribe to ``customer_id``'s interventions from now on.

        Returns once the reader knows where it starts, so every entry added after this
        call returns reaches the subscription (or a replay that runs after it). Raises
        the Redis error when the reader cannot start; after ``stop`` the subscription
        is closed at once.
        """
        subscription = Subscription(customer_id, self.max_pending)
        if self._stopped:
            subscription.close()
            return subscription
        self._by_customer.setdefault(customer_id, set()).add(subscription)
        self._subscribers += 1
        if self._reader is None or self._started is None:
            self._started = asyncio.get_running_loop().create_future()
            self._reader = asyncio.create_task(self._read(self._started), name="sse_reader")
        try:
            await asyncio.shield(self._started)
        except BaseException:
            self.unsubscribe(subscription)
            raise
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Close ``subscription``; the reader stops with the last one."""
        subscription.close()
        subscriptions = self._by_customer.get(subscription.customer_id)
        if subscriptions is None or subscription not in subscriptions:
            return
        subscriptions.discard(subscription)
        if not subscriptions:
            del self._by_customer[subscription.customer_id]
        self._subscribers -= 1
        if self._subscribers == 0 and self._reader is not None:
            self._reader.cancel()
            self._reader = self._started = None

    async def replay(self, customer_id: str, after_id: str) -> AsyncIterator[list[Entry]]:
        """The stream's entries for ``customer_id`` after ``after_id`` (exclusive), a page
        at a time, up to the stream's end; entries trimmed away are gone."""
        start = f"({after_id}"
        while True:
            async with asyncio.timeout(_COMMAND_TIMEOUT_S):
                page = _entries(await self.redis.xrange(self.stream, min=start, count=_REPLAY_PAGE))
            yield [(i, data) for i, data in page if is_for_customer(data, customer_id)]
            if len(page) < _REPLAY_PAGE:
                return
            start = f"({page[-1][0]}"

    async def stop(self) -> None:
        """Close every subscription (their streams end) and stop the reader."""
        self._stopped = True
        reader, self._reader, self._started = self._reader, None, None
        for subscriptions in self._by_customer.values():
            for subscription in subscriptions:
                subscription.close()
        self._by_customer.clear()
        self._subscribers = 0
        if reader is not None:
            reader.cancel()
            await asyncio.wait([reader], timeout=_BLOCK_MS / 1000 + _COMMAND_TIMEOUT_S)

    async def _read(self, started: asyncio.Future[None]) -> None:
        """Read the stream for as long as ``started`` is the hub's. A cancellation can be
        lost: redis-py sends each command under ``asyncio.wait_for``, which on Python 3.11
        drops a cancel that lands as the write completes (CPython gh-86296). So the reader
        also ends when a newer one (or none) is wanted, within one ``XREAD`` block."""
        try:
            async with asyncio.timeout(_COMMAND_TIMEOUT_S):
                newest = await self.redis.xrevrange(self.stream, count=1)
        except (RedisError, OSError, TimeoutError) as exc:
            if self._started is started:
                self._reader = self._started = None
            started.set_exception(exc)
            return
        # An explicit id rather than "$": nothing added between two XREADs is missed.
        last_id = _entries(newest)[0][0] if newest else "0-0"
        started.set_result(None)
        failing = False
        while self._started is started:
            try:
                async with asyncio.timeout(_BLOCK_MS / 1000 + _COMMAND_TIMEOUT_S):
                    reply: Any = await self.redis.xread(
                        {self.stream: last_id}, count=_READ_COUNT, block=_BLOCK_MS
                    )
            except (RedisError, OSError, TimeoutError) as exc:
                if not failing:
                    log.warning("SSE reader: Redis unavailable, retrying every %.0f s: %r",
                                _RETRY_S, exc)  # fmt: skip
                failing = True
                await asyncio.sleep(_RETRY_S)
                continue
            if failing:
                log.info("SSE reader: Redis is back, reading on from %s", last_id)
                failing = False
            if self._started is not started:
                return
            for _stream, entries in reply or []:
                for entry in _entries(entries):
                    last_id = entry[0]
                    self._fan_out(entry)

    def _fan_out(self, entry: Entry) -> None:
        customer_id = customer_of(entry[1])
        subscriptions = self._by_customer.get(customer_id) if customer_id else None
        if not subscriptions:
            return
        for subscription in list(subscriptions):
            if not subscription.push(entry):
                log.warning("SSE client of customer %s dropped: %d interventions unsent, it "
                            "does not keep up", customer_id, self.max_pending)  # fmt: skip
                self.unsubscribe(subscription)


async def intervention_events(
    hub: InterventionHub,
    subscription: Subscription,
    after_id: str | None,
    heartbeat_s: float,
) -> AsyncGenerator[bytes, None]:
    """The bytes of one SSE stream: the entries after ``after_id`` (none without it), then
    live ones, each once, and ``KEEP_ALIVE`` after ``heartbeat_s`` without any. Ends when
    the subscription closes (a client too slow, or the worker stopping).

    ``subscription`` must be taken before this starts: the replay then reaches at least
    the first live entry, and live entries it already sent are skipped.
    """
    sent = parse_stream_id(after_id) if after_id is not None else None
    if after_id is not None:
        async for page in hub.replay(subscription.customer_id, after_id):
            if page:
                yield b"".join(format_intervention(i, data) for i, data in page)
                sent = parse_stream_id(page[-1][0])
    while (batch := await subscription.next_batch(heartbeat_s)) is not None:
        if not batch:
            yield KEEP_ALIVE
            continue
        fresh = [(i, data) for i, data in batch if _later(i, sent)]
        if fresh:
            yield b"".join(format_intervention(i, data) for i, data in fresh)


def _entries(reply: Any) -> list[Entry]:
    """redis-py's ``[(id, {field: value})]`` of XRANGE and XREAD (bytes, not decoded)."""
    return [(entry_id.decode(), fields.get(b"data", b"")) for entry_id, fields in reply]


def _later(entry_id: str, sent: tuple[int, int] | None) -> bool:
    key = parse_stream_id(entry_id)
    return sent is None or key is None or key > sent
