"""Webhooks (contract §3): each intervention POSTed, signed, to every configured URL.

A consumer of ``interventions`` in a group of its own (``<app id>-webhooks``) runs in
the worker beside the click agent: its fetches, pauses and commits are its own, so a
slow or failing receiver never holds the click stream. Workers share the group, so
the partitions of ``interventions`` spread over them as the click partitions do.

Kafka stays the source of truth and delivery is at-least-once: an offset is
committed only when every record up to it is done, delivered to every URL or put on
``interventions-webhook-failed``. After a crash or a rebalance the records past the
last commit are sent again, so receivers de-duplicate on ``intervention_id`` (also in
the ``X-Nudgeflow-Intervention-Id`` header). A group seen for the first time starts at
the earliest retained intervention.

The policy is pure and tested alone: ``sign`` and ``verify`` for the signature,
``verdict`` for what an answer means, ``retry_wait_s`` and ``parse_retry_after`` for
the waits, ``PendingOffsets`` for what may be committed.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Literal, NamedTuple
from urllib.parse import urlsplit

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from mode import Service

from app.deliver.consumer import start_interventions_consumer
from app.errors import ConfigError
from app.runtime.metrics import Metrics
from app.runtime.topics import INTERVENTIONS, INTERVENTIONS_WEBHOOK_FAILED

if TYPE_CHECKING:
    from aiokafka import ConsumerRecord

    from config import Settings

__all__ = [
    "INTERVENTION_ID_HEADER",
    "SIGNATURE_HEADER",
    "PendingOffsets",
    "Verdict",
    "WebhookFailure",
    "WebhookService",
    "check_webhook_settings",
    "parse_retry_after",
    "retry_wait_s",
    "sign",
    "verdict",
    "verify",
]

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Nudgeflow-Signature"
INTERVENTION_ID_HEADER = "X-Nudgeflow-Intervention-Id"

#: ``delivered``: the receiver took it (2xx); ``retry``: try again later (timeouts,
#: connection errors, 408, 429, 5xx, anything unexpected); ``give_up``: another try
#: cannot help (any other 4xx: the receiver refuses this request).
Verdict = Literal["delivered", "retry", "give_up"]

# Statuses that mean "later" although they are 4xx: request timeout, too many requests.
_RETRYABLE_4XX = frozenset({408, 429})
# Statuses whose Retry-After the receiver means for us (RFC 9110 §10.2.3).
_RETRY_AFTER_STATUSES = frozenset({429, 503})
# One receiver gets at most this many POSTs at once: enough to keep a slow one busy
# without opening hundreds of connections to it.
_POSTS_PER_URL = 32
# Interventions taken from Kafka and not yet done (every URL delivered or dead-lettered)
# before the consumer pauses: bounds the memory, and what a crash makes us send again.
_RECORDS_IN_FLIGHT = 1000
# The longest a fetch waits for new interventions before the loop commits what is done.
_POLL_MS = 500


def sign(body: bytes, secret: str, t: int) -> str:
    """The ``X-Nudgeflow-Signature`` value of ``body`` sent at ``t`` (Unix seconds).

    ``t=<t>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed with the secret>`` (contract §3).

    Examples
    --------
    >>> sign(b'{"intervention_id":"i-1"}', "s3cret", 1_700_000_000)
    't=1700000000,v1=330285e2...'
    """
    return f"t={t},v1={_mac(body, secret, t)}"


def verify(header: str, body: bytes, secret: str, tolerance_s: float, now: float) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` at a ``t`` within ``tolerance_s``
    of ``now`` (Unix seconds): the receiver's check.

    The comparison takes constant time. Several ``v1=`` entries are allowed (any one
    may match, as while a secret is rotated); keys other than ``t`` and ``v1`` are
    ignored. A tolerance of a few minutes stops a captured request being replayed
    later; within it, de-duplicate on ``intervention_id``.

    Examples
    --------
    >>> body = b'{"intervention_id":"i-1"}'
    >>> header = sign(body, "s3cret", 1_700_000_000)
    >>> verify(header, body, "s3cret", 300, now=1_700_000_060)
    True
    >>> verify(header, b'{"intervention_id":"i-2"}', "s3cret", 300, now=1_700_000_060)
    False
    >>> verify(header, body, "s3cret", 300, now=1_700_000_600)  # too old
    False
    """
    t: int | None = None
    signatures: list[bytes] = []
    for item in header.split(","):
        key, equals, value = item.strip().partition("=")
        if not equals:
            return False
        if key == "t":
            if t is not None or not (value.isascii() and value.isdigit()):
                return False
            t = int(value)
        elif key == "v1":
            signatures.append(value.encode())
    if t is None or not signatures or abs(now - t) > tolerance_s:
        return False
    expected = _mac(body, secret, t).encode()
    # Every entry is compared, so the time taken does not tell which one matched.
    matches = [hmac.compare_digest(expected, signature) for signature in signatures]
    return any(matches)


def _mac(body: bytes, secret: str, t: int) -> str:
    return hmac.new(secret.encode(), b"%d." % t + body, hashlib.sha256).hexdigest()


def verdict(status: int | None) -> Verdict:
    """What an HTTP answer means for a webhook; ``None``: no answer (timeout, connection).

    Examples
    --------
    >>> [verdict(s) for s in (200, 204, 400, 404, 408, 429, 500, 503, None)]
    ['delivered', 'delivered', 'give_up', 'give_up', 'retry', 'retry', 'retry', 'retry', 'retry']
    """
    if status is None:
        return "retry"
    if 200 <= status < 300:
        return "delivered"
    if 400 <= status < 500 and status not in _RETRYABLE_4XX:
        return "give_up"
    return "retry"


def retry_wait_s(
    tries: int,
    backoff_s: float,
    backoff_max_s: float,
    draw: float,
    retry_after_s: float | None = None,
) -> float:
    """The wait after ``tries`` failed tries: full jitter below an exponential ceiling.

    The ceiling is ``backoff_s`` doubled after each try, at most ``backoff_max_s``; the
    wait is ``draw`` (uniform in [0, 1]) times it, so receivers that failed together are
    not retried together. A receiver's ``Retry-After`` (``retry_after_s``) is waited
    instead, also at most ``backoff_max_s``.

    Examples
    --------
    >>> [retry_wait_s(n, 0.5, 60.0, draw=1.0) for n in (1, 2, 3, 8, 9)]
    [0.5, 1.0, 2.0, 60.0, 60.0]
    >>> retry_wait_s(3, 0.5, 60.0, draw=0.25)
    0.5
    >>> retry_wait_s(1, 0.5, 60.0, draw=0.9, retry_after_s=120.0)
    60.0
    """
    if tries < 1:
        raise ValueError(f"tries must be at least 1, got {tries}")
    if not 0.0 <= draw <= 1.0:
        raise ValueError(f"draw must be in [0, 1], got {draw}")
    if retry_after_s is not None:
        return min(backoff_max_s, max(0.0, retry_after_s))
    # The exponent stops where the ceiling has long passed any sane maximum (no overflow).
    return draw * min(backoff_max_s, backoff_s * 2.0 ** min(tries - 1, 64))


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay seconds or an HTTP date.

    ``None`` when absent or unreadable; a date in the past is no wait.

    Examples
    --------
    >>> parse_retry_after("120", now=0.0)
    120.0
    >>> parse_retry_after("Tue, 14 Nov 2023 22:13:40 GMT", now=1_700_000_000.0)
    20.0
    >>> parse_retry_after("soon", now=0.0) is None
    True
    """
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a zone-less one is read as such
        return None
    return max(0.0, when.timestamp() - now)


def check_webhook_settings(urls: list[str], secret: str) -> None:
    """Refuse webhook settings that cannot work, naming the variable to fix.

    Examples
    --------
    >>> check_webhook_settings(["https://bot.example/hook"], "s3cret")
    >>> check_webhook_settings(["https://bot.example/hook"], "")
    Traceback (most recent call last):
    ...
    app.errors.ConfigError: NUDGEFLOW_WEBHOOK_URLS lists 1 URL(s) but NUDGEFLOW_WEBHOOK_SECRET ...
    """
    if not secret:
        raise ConfigError(
            f"NUDGEFLOW_WEBHOOK_URLS lists {len(urls)} URL(s) but NUDGEFLOW_WEBHOOK_SECRET is "
            "empty: receivers could not verify the X-Nudgeflow-Signature; set a shared secret"
        )
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"NUDGEFLOW_WEBHOOK_URLS: {_shown(url)!r} is not an http(s) URL")
    if len(set(urls)) != len(urls):
        repeated = next(url for url in urls if urls.count(url) > 1)
        raise ConfigError(f"NUDGEFLOW_WEBHOOK_URLS lists {_shown(repeated)!r} twice")


def _shown(url: str) -> str:
    """``url`` without user info, query or fragment, which may hold credentials (for logs)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}" if parts.scheme else "<not a URL>"


class PendingOffsets:
    """One partition's offsets taken for delivery, and the offset that may be committed.

    Records finish in any order; the commit position only moves past a record once it
    and every record before it are done.

    Examples
    --------
    >>> pending = PendingOffsets()
    >>> for offset in (5, 6, 7):
    ...     pending.add(offset)
    >>> pending.done(6)
    >>> pending.committable() is None, len(pending)
    (True, 3)
    >>> pending.done(5)
    >>> pending.committable(), len(pending)
    (7, 1)
    """

    __slots__ = ("_done", "_next", "_taken")

    def __init__(self) -> None:
        self._taken: deque[int] = deque()
        self._done: set[int] = set()
        self._next: int | None = None

    def add(self, offset: int) -> None:
        """Take ``offset``; offsets come in increasing order."""
        last = self._taken[-1] if self._taken else (self._next or 0) - 1
        if offset <= last:
            raise ValueError(f"offset {offset} taken after {last}")
        self._taken.append(offset)

    def done(self, offset: int) -> None:
        """Mark a taken offset as done."""
        self._done.add(offset)
        taken, finished = self._taken, self._done
        while taken and taken[0] in finished:
            first = taken.popleft()
            finished.discard(first)
            self._next = first + 1

    def committable(self) -> int | None:
        """The offset to commit (the next one to read), or ``None`` before the first is done."""
        return self._next

    def __len__(self) -> int:
        return len(self._taken)


@dataclass(slots=True, frozen=True)
class WebhookFailure:
    """An intervention a URL never took: the value put on ``interventions-webhook-failed``."""

    intervention: bytes
    url: str
    attempts: int
    status: int | None
    error: str
    failed_ts: int

    def encode(self) -> bytes:
        """JSON with the intervention as sent, the URL, tries, last status and error, time.

        Examples
        --------
        >>> WebhookFailure(b'{"intervention_id":"i-1"}', "https://bot.example/hook", 3, 500,
        ...                "HTTP 500", 1_700_000_000_000).encode()[:40]
        b'{"intervention":{"intervention_id":"i-1"'
        """
        return orjson.dumps(
            {
                "intervention": orjson.Fragment(self.intervention),
                "url": self.url,
                "attempts": self.attempts,
                "status": self.status,
                "error": self.error,
                "failed_ts": self.failed_ts,
            }
        )


class _Answer(NamedTuple):
    status: int | None
    error: str
    retry_after_s: float | None


@dataclass(slots=True, eq=False)
class _Partition:
    pending: PendingOffsets = field(default_factory=PendingOffsets)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    committed: int | None = None


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, service: WebhookService) -> None:
        self._service = service

    async def on_partitions_revoked(self, revoked: Collection[TopicPartition]) -> None:
        await self._service.release(set(revoked))

    async def on_partitions_assigned(self, assigned: Collection[TopicPartition]) -> None:
        log.info("webhooks: %d partition(s) of %s assigned", len(assigned), INTERVENTIONS)


class WebhookService(Service):
    """Consumes ``interventions`` in the group ``<app id>-webhooks`` and POSTs each
    intervention to every URL, retrying with backoff, dead-lettering what fails.

    Settings are checked at once: URLs without a secret are a ``ConfigError``.
    """

    def __init__(
        self, settings: Settings, producer: Callable[[], AIOKafkaProducer], metrics: Metrics
    ) -> None:
        check_webhook_settings(settings.webhook_urls, settings.webhook_secret.get_secret_value())
        super().__init__()
        self.settings = settings
        self.urls = list(settings.webhook_urls)
        self.group_id = f"{settings.app_id}-webhooks"
        self.producer = producer
        self.metrics = metrics
        self._secret = settings.webhook_secret.get_secret_value()
        self._slots = {url: asyncio.Semaphore(_POSTS_PER_URL) for url in self.urls}
        self._partitions: dict[TopicPartition, _Partition] = {}
        self._in_flight = 0
        self._consumer: AIOKafkaConsumer | None = None
        self._session: aiohttp.ClientSession | None = None
        self._reader: asyncio.Task[None] | None = None
        metrics.delivery_errors.labels(channel="webhook")

    async def on_start(self) -> None:
        s = self.settings
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=s.webhook_timeout_s),
            connector=aiohttp.TCPConnector(limit=len(self.urls) * _POSTS_PER_URL),
        )
        consumer = await start_interventions_consumer(s, self.group_id, "earliest",
                                                      _Rebalance(self))  # fmt: skip
        self._consumer = consumer
        self._reader = asyncio.create_task(self._read(consumer))
        log.info("webhooks: POSTing interventions to %s (consumer group %s)",
                 ", ".join(_shown(url) for url in self.urls), self.group_id)  # fmt: skip

    async def on_stop(self) -> None:
        """Stop reading, commit what is done, abandon the rest (the group sends it again)."""
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        if self._consumer is not None:
            await self._commit(self._consumer, set(self._partitions))
        await self.release(set(self._partitions), commit=False)
        if self._consumer is not None:
            await self._consumer.stop()
        if self._session is not None:
            await self._session.close()

    async def release(self, partitions: set[TopicPartition], *, commit: bool = True) -> None:
        """Give ``partitions`` up (a rebalance or a stop): commit what is done, cancel the rest."""
        if commit and self._consumer is not None:
            await self._commit(self._consumer, partitions)
        tasks: list[asyncio.Task[None]] = []
        for tp in partitions:
            released = self._partitions.pop(tp, None)
            if released is not None:
                tasks += released.tasks
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        commit_interval_s = self.settings.broker_commit_interval_s
        committed_at = 0.0
        try:
            while True:
                if time.monotonic() - committed_at >= commit_interval_s:
                    await self._commit(consumer, set(self._partitions))
                    committed_at = time.monotonic()
                room = _RECORDS_IN_FLIGHT - self._in_flight
                assigned = consumer.assignment()
                # Paused partitions keep the group membership alive (getmany goes on)
                # while the receivers catch up.
                if room > 0:
                    consumer.resume(*assigned)
                else:
                    consumer.pause(*assigned)
                try:
                    batches = await consumer.getmany(timeout_ms=_POLL_MS, max_records=max(1, room))
                except KafkaError as exc:
                    log.error("webhooks: reading %s failed, trying again: %r", INTERVENTIONS, exc)
                    await asyncio.sleep(1.0)
                    continue
                for tp, records in batches.items():
                    for record in records:
                        self._take(tp, record)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A bug here would stop every webhook quietly: stop the worker instead.
            log.exception("webhooks: the consumer loop failed")
            await self.crash(exc)

    def _take(self, tp: TopicPartition, record: ConsumerRecord[bytes, bytes]) -> None:
        partition = self._partitions.get(tp)
        if partition is None:
            partition = self._partitions[tp] = _Partition()
        partition.pending.add(record.offset)
        task = asyncio.create_task(self._deliver_record(tp, record))
        partition.tasks.add(task)
        self._in_flight += 1
        task.add_done_callback(functools.partial(self._finished, partition, record.offset))

    def _finished(self, partition: _Partition, offset: int, task: asyncio.Task[None]) -> None:
        partition.tasks.discard(task)
        self._in_flight -= 1
        if task.cancelled():
            return  # given up with its partition: the next owner sends it
        if task.exception() is not None:  # _deliver_record handles everything it can
            log.error("webhooks: offset %d left undone: %r", offset, task.exception())
            return
        partition.pending.done(offset)

    async def _commit(self, consumer: AIOKafkaConsumer, partitions: set[TopicPartition]) -> None:
        offsets: dict[TopicPartition, int] = {}
        for tp in partitions:
            partition = self._partitions.get(tp)
            if partition is None:
                continue
            position = partition.pending.committable()
            if position is not None and position != partition.committed:
                offsets[tp] = position
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:  # a rebalance under way: the next owner sends them again
            log.warning("webhooks: commit of %s failed: %r", offsets, exc)
            return
        for tp, position in offsets.items():
            if (partition := self._partitions.get(tp)) is not None:
                partition.committed = position

    async def _deliver_record(
        self, tp: TopicPartition, record: ConsumerRecord[bytes, bytes]
    ) -> None:
        body = record.value
        try:
            if body is None:
                raise TypeError("no value")
            intervention_id = orjson.loads(body)["intervention_id"]
        except (orjson.JSONDecodeError, TypeError, KeyError) as exc:
            # Only workers write this topic: a record that is not an intervention is a bug.
            log.error("webhooks: %s[%d]@%d is not an intervention, skipped: %r",
                      tp.topic, tp.partition, record.offset, exc)  # fmt: skip
            return
        await asyncio.gather(
            *(self._deliver(url, body, str(intervention_id), record.key) for url in self.urls)
        )

    async def _deliver(
        self, url: str, body: bytes, intervention_id: str, key: bytes | None
    ) -> None:
        s, count = self.settings, self.metrics.webhook_deliveries
        attempts, answer = 0, _Answer(None, "not tried", None)
        try:
            while True:
                attempts += 1
                answer = await self._post(url, body, intervention_id)
                outcome = verdict(answer.status)
                if outcome == "delivered":
                    count.labels(outcome="delivered").inc()
                    return
                if outcome == "give_up" or attempts >= s.webhook_max_attempts:
                    break
                count.labels(outcome="retried").inc()
                wait_s = retry_wait_s(attempts, s.webhook_backoff_s, s.webhook_backoff_max_s,
                                      random.random(), answer.retry_after_s)  # fmt: skip
                await asyncio.sleep(wait_s)
        except Exception as exc:  # a bug: kept on the dead letters like any failure
            log.exception("webhooks: delivering %s to %s failed", intervention_id, _shown(url))
            answer = _Answer(answer.status, f"internal error: {exc!r}", None)
        count.labels(outcome="failed").inc()
        self.metrics.delivery_errors.labels(channel="webhook").inc()
        log.warning("webhooks: gave up on %s for %s after %d tries: %s", intervention_id,
                    _shown(url), attempts, answer.error)  # fmt: skip
        failure = WebhookFailure(body, url, attempts, answer.status, answer.error,
                                 int(time.time() * 1000))  # fmt: skip
        await self._dead_letter(failure, key)

    async def _post(self, url: str, body: bytes, intervention_id: str) -> _Answer:
        assert self._session is not None
        async with self._slots[url]:
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(body, self._secret, int(time.time())),
                INTERVENTION_ID_HEADER: intervention_id,
            }
            started = time.perf_counter()
            try:
                # Not redirected: the signature is for this URL's receiver only.
                async with self._session.post(
                    url, data=body, headers=headers, allow_redirects=False
                ) as response:
                    await response.read()
                    status = response.status
                    retry_after = (
                        parse_retry_after(response.headers.get("Retry-After"), time.time())
                        if status in _RETRY_AFTER_STATUSES
                        else None
                    )
                    return _Answer(status, f"HTTP {status}", retry_after)
            except TimeoutError:
                return _Answer(None, f"no answer within {self.settings.webhook_timeout_s} s", None)
            except aiohttp.ClientError as exc:
                return _Answer(None, f"{type(exc).__name__}: {exc}", None)
            finally:
                self.metrics.webhook_latency.observe(time.perf_counter() - started)

    async def _dead_letter(self, failure: WebhookFailure, key: bytes | None) -> None:
        """Put ``failure`` on the dead-letter topic, acknowledged; retried until it is."""
        wait_s = self.settings.webhook_backoff_s
        while True:
            try:
                sent = await self.producer().send(
                    INTERVENTIONS_WEBHOOK_FAILED, failure.encode(), key=key
                )
                await sent
                return
            except KafkaError as exc:
                log.error("webhooks: writing to %s failed, trying again: %r",
                          INTERVENTIONS_WEBHOOK_FAILED, exc)  # fmt: skip
                await asyncio.sleep(wait_s)
                wait_s = min(wait_s * 2, self.settings.webhook_backoff_max_s)
