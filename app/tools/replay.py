"""``nudgeflow replay``: send a JSONL file of click events to the collector or to Kafka.

``app.tools.replay_pacing`` turns lines into paced batches; here ``response_outcome``
reads a collector's answer, ``ReplaySummary`` counts, ``replay`` is the thin async
I/O around them and ``add_parser`` and ``run`` its command line.

The client never drops or fixes an event: invalid events are sent as they are,
so the server rejects them and says why (contract §1). Only lines that are not
a JSON object at all are left out, and reported with their line number.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import aiohttp
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError

from app.ingest.collector import MAX_BATCH_EVENTS, MAX_BODY_BYTES
from app.runtime.topics import CLICKS, bootstrap_servers
from app.tools.replay_pacing import (
    Batch,
    OutgoingEvent,
    Pacing,
    ParsedLine,
    batches,
    read_events,
    schedule,
)

__all__ = [
    "BatchOutcome",
    "ReplaySummary",
    "Target",
    "add_parser",
    "parse_target",
    "replay",
    "response_outcome",
    "run",
]

DEFAULT_TARGET = "http://127.0.0.1:6066"
DEFAULT_BATCH_EVENTS = 100
# Requests in flight to the collector. Each lane owns the customers hashed to it
# and sends its batches one after another, so one customer's events keep their order.
_HTTP_LANES = 4
_HTTP_TIMEOUT_S = 30.0
# Retries for connection errors and 5xx: 0.1 s doubling to 5 s, ~11 s in all, long
# enough to ride out a worker restart. Events carry event_id, so resending is safe.
_HTTP_ATTEMPTS = 8
_BACKOFF_FIRST_S = 0.1
_BACKOFF_MAX_S = 5.0
# How long one batch may wait on 429 answers (honouring Retry-After) before it counts
# them as failed attempts.
_THROTTLED_MAX_S = 300.0
# Batch futures awaited at a time before sending more to Kafka; the producer's own
# buffer bounds memory, this bounds the bookkeeping.
_KAFKA_PENDING_BATCHES = 64
_KAFKA_LINGER_MS = 5
# Bad lines and rejections listed in the summary; all are counted.
_MAX_EXAMPLES = 10


@dataclass(slots=True, frozen=True)
class BatchOutcome:
    """What the collector made of one batch; ``fatal`` says why the replay must stop."""

    accepted: int = 0
    rejected: int = 0
    examples: tuple[str, ...] = ()
    fatal: str | None = None


def response_outcome(status: int, body: bytes, line_nos: Sequence[int]) -> BatchOutcome:
    """Read the collector's answer to a batch of events from lines ``line_nos``.

    ``202`` and ``400`` with counts give the counts, and each error with the line it
    came from; a ``400`` or ``413`` that refuses the whole body rejects every event.
    Anything else (``401``, a wrong URL, a server that is not a collector) is fatal:
    every following request would fail the same way. Retry ``5xx`` before calling this.

    Examples
    --------
    >>> response_outcome(202, b'{"accepted": 1, "rejected": 1,'
    ...                  b' "errors": [{"index": 1, "event_id": "e", "error": "ts: missing"}]}',
    ...                  [4, 7])
    BatchOutcome(accepted=1, rejected=1, examples=('line 7: ts: missing',), fatal=None)
    >>> response_outcome(401, b'{"error": "X-Api-Key missing or wrong"}', [4]).fatal
    'HTTP 401: X-Api-Key missing or wrong'
    """
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict):
        answer = {}
    accepted, rejected = answer.get("accepted"), answer.get("rejected")
    if status in (202, 400) and type(accepted) is int and type(rejected) is int:
        examples = []
        errors = answer.get("errors")
        for error in errors[:_MAX_EXAMPLES] if isinstance(errors, list) else []:
            if isinstance(error, dict):
                index = error.get("index")
                if isinstance(index, int) and 0 <= index < len(line_nos):
                    where = f"line {line_nos[index]}"
                else:
                    where = "line ?"
                examples.append(f"{where}: {error.get('error')}")
        return BatchOutcome(accepted, rejected, tuple(examples))
    message = answer.get("error") or body[:200].decode(errors="replace") or "(empty body)"
    if status in (400, 413):
        lines = _line_range(line_nos)
        return BatchOutcome(rejected=len(line_nos), examples=(f"{lines}: {message}",))
    return BatchOutcome(fatal=f"HTTP {status}: {message}")


@dataclass(slots=True)
class ReplaySummary:
    """What a replay did: counts, a few examples of what went wrong, and its pace.

    ``sent`` counts events handed to the target; each ends ``accepted``,
    ``rejected`` (the collector said why) or ``failed`` (no answer, or the replay
    stopped). Over Kafka, ``accepted`` means written to ``clicks``: the worker
    validates later and keeps rejects on ``clicks-failed``.
    """

    target: str
    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    failed: int = 0
    bad_lines: int = 0
    elapsed_s: float = 0.0
    stopped: str | None = None
    bad_line_examples: list[str] = field(default_factory=list)
    rejection_examples: list[str] = field(default_factory=list)

    @property
    def rate_per_s(self) -> float:
        """Events sent per second of the replay."""
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def render(self) -> str:
        """The summary printed at the end of ``nudgeflow replay``.

        Examples
        --------
        >>> summary = ReplaySummary("kafka://localhost:9092", sent=50, accepted=50,
        ...                         bad_lines=1, elapsed_s=0.25,
        ...                         bad_line_examples=["line 3: not valid JSON"])
        >>> print(summary.render())
        replay to kafka://localhost:9092: sent 50 events in 0.25 s (200 events/s)
          accepted 50, rejected 0, failed 0, bad lines 1
          line 3: not valid JSON
        """
        lines = [
            f"replay to {self.target}: sent {self.sent} events in {self.elapsed_s:.2f} s "
            f"({self.rate_per_s:,.0f} events/s)",
            f"  accepted {self.accepted}, rejected {self.rejected}, failed {self.failed}, "
            f"bad lines {self.bad_lines}",
        ]
        lines += [f"  {example}" for example in self.bad_line_examples]
        if self.bad_lines > len(self.bad_line_examples):
            lines.append(f"  … and {self.bad_lines - len(self.bad_line_examples)} more bad lines")
        lines += [f"  rejected {example}" for example in self.rejection_examples]
        if self.stopped:
            lines.append(f"  stopped early: {self.stopped}")
        return "\n".join(lines)


@dataclass(slots=True, frozen=True)
class Target:
    """Where events go: the collector's ``/v1/events`` URL, or a Kafka broker URL."""

    kind: Literal["http", "kafka"]
    url: str


def parse_target(url: str) -> Target:
    """``http(s)://host:port`` (the collector) or ``kafka://host:port[;host:port]``.

    Examples
    --------
    >>> parse_target("http://127.0.0.1:6066/")
    Target(kind='http', url='http://127.0.0.1:6066/v1/events')
    >>> parse_target("kafka://h1:9092;h2:9092")
    Target(kind='kafka', url='kafka://h1:9092;h2:9092')
    """
    scheme, sep, rest = url.partition("://")
    if scheme in ("http", "https") and sep and rest.strip("/"):
        base = url.rstrip("/")
        return Target("http", base if base.endswith("/v1/events") else f"{base}/v1/events")
    servers = bootstrap_servers(url)
    if scheme == "kafka" and sep and servers and all(servers):
        return Target("kafka", url)
    raise ValueError(f"not http://host:port or kafka://host:port: {url!r}")


def _line_range(line_nos: Sequence[int]) -> str:
    if len(line_nos) == 1:
        return f"line {line_nos[0]}"
    return f"lines {line_nos[0]}–{line_nos[-1]}"  # noqa: RUF001


def _backoff_s(attempt: int) -> float:
    return float(min(_BACKOFF_MAX_S, _BACKOFF_FIRST_S * 2**attempt))


def _retry_after_s(header: str) -> float:
    """Seconds to wait from a ``Retry-After`` of seconds; 1 s when absent or a date.

    Examples
    --------
    >>> _retry_after_s("3"), _retry_after_s(""), _retry_after_s("Wed, 21 Oct 2026 07:28:00 GMT")
    (3.0, 1.0, 1.0)
    >>> _retry_after_s("3600")
    60.0
    """
    try:
        seconds = float(header)
    except ValueError:
        return 1.0
    return min(max(seconds, 0.05), _THROTTLED_MAX_S / 5)


def _add_examples(examples: list[str], new: Iterable[str]) -> None:
    examples.extend(list(new)[: _MAX_EXAMPLES - len(examples)])


# ---------------------------------------------------------------------------------
# I/O: send batches, record outcomes.

_Progress = Callable[[ReplaySummary], None]


class _HttpSender:
    """Batches to the collector: one sending task per lane, retries with backoff."""

    lanes = _HTTP_LANES
    max_bytes = MAX_BODY_BYTES

    def __init__(
        self, url: str, api_key: str | None, summary: ReplaySummary, on_progress: _Progress
    ) -> None:
        self._url = url
        self._headers = {"Content-Type": "application/json"}
        if api_key:
            self._headers["X-Api-Key"] = api_key
        self._summary = summary
        self._on_progress = on_progress
        self._crash: Exception | None = None
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.lanes),
            timeout=aiohttp.ClientTimeout(total=_HTTP_TIMEOUT_S),
        )
        # Two queued batches per lane: enough to keep each lane busy, little to drop.
        self._queues: list[asyncio.Queue[Batch | None]] = [
            asyncio.Queue(maxsize=2) for _ in range(self.lanes)
        ]
        self._tasks = [asyncio.create_task(self._run_lane(q)) for q in self._queues]

    async def start(self) -> None:
        """Nothing to connect up front: the first request shows whether the collector is up."""

    async def submit(self, batch: Batch) -> None:
        await self._queues[batch.lane].put(batch)

    async def close(self) -> None:
        try:
            for queue in self._queues:
                await queue.put(None)
            await asyncio.gather(*self._tasks)
        finally:
            await self._session.close()
        if self._crash is not None:
            raise self._crash

    async def _run_lane(self, queue: asyncio.Queue[Batch | None]) -> None:
        while (batch := await queue.get()) is not None:
            # After a stop the lane keeps draining, so submit() never blocks.
            if self._summary.stopped is None and self._crash is None:
                try:
                    await self._post(batch)
                except Exception as exc:  # a bug: stop sending, re-raised by close()
                    self._crash = exc

    async def _post(self, batch: Batch) -> None:
        summary = self._summary
        summary.sent += len(batch.events)
        body = batch.http_body()
        problem = ""
        attempt = 0
        throttled_s = 0.0
        while attempt < _HTTP_ATTEMPTS:
            try:
                async with self._session.post(self._url, data=body, headers=self._headers) as r:
                    status, answer = r.status, await r.read()
                    retry_after = r.headers.get("Retry-After", "")
            except (aiohttp.ClientError, TimeoutError) as exc:
                problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                await asyncio.sleep(_backoff_s(attempt))
                attempt += 1
                continue
            if status == 429 and throttled_s < _THROTTLED_MAX_S:
                # Rate limited: the collector says when to come back. Waiting is not a
                # failed attempt, so a long replay slows down instead of losing events.
                wait_s = _retry_after_s(retry_after)
                throttled_s += wait_s
                await asyncio.sleep(wait_s)
                continue
            if status >= 500 or status == 429:
                problem = f"HTTP {status}"
                await asyncio.sleep(_backoff_s(attempt))
                attempt += 1
                continue
            outcome = response_outcome(status, answer, [e.line_no for e in batch.events])
            summary.accepted += outcome.accepted
            summary.rejected += outcome.rejected
            _add_examples(summary.rejection_examples, outcome.examples)
            if outcome.fatal is not None:
                summary.failed += len(batch.events)
                summary.stopped = summary.stopped or f"{self._url}: {outcome.fatal}"
            self._on_progress(summary)
            return
        summary.failed += len(batch.events)
        summary.stopped = summary.stopped or (
            f"{self._url}: {problem} (after {_HTTP_ATTEMPTS} attempts)"
        )
        self._on_progress(summary)


class _KafkaSender:
    """Batches to the ``clicks`` topic, key = customer_id; the producer keeps per-key order."""

    lanes = 1
    # The producer splits and sizes its own requests.
    max_bytes = 2**62

    def __init__(self, broker_url: str, summary: ReplaySummary, on_progress: _Progress) -> None:
        self._broker_url = broker_url
        self._summary = summary
        self._on_progress = on_progress
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers(broker_url),
            acks=1,
            linger_ms=_KAFKA_LINGER_MS,
            max_batch_size=256 * 1024,
        )
        self._pending: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        try:
            await self._producer.start()
        except KafkaConnectionError as exc:
            self._summary.stopped = f"no broker at {self._broker_url}: {exc}"

    async def submit(self, batch: Batch) -> None:
        summary = self._summary
        futures: list[tuple[OutgoingEvent, asyncio.Future[Any]]] = []
        for event in batch.events:
            summary.sent += 1
            try:
                future = await self._producer.send(CLICKS, event.payload, key=event.key)
            except KafkaError as exc:  # this event only, e.g. larger than a request may be
                summary.failed += 1
                _add_examples(summary.rejection_examples, [f"line {event.line_no}: {exc!r}"])
            else:
                futures.append((event, future))
        if len(self._pending) >= _KAFKA_PENDING_BATCHES:
            done, self._pending = await asyncio.wait(
                self._pending, return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                task.result()
        self._pending.add(asyncio.create_task(self._settle(futures)))

    async def close(self) -> None:
        try:
            await asyncio.gather(*self._pending)
        finally:
            await self._producer.stop()

    async def _settle(self, futures: list[tuple[OutgoingEvent, asyncio.Future[Any]]]) -> None:
        summary = self._summary
        results = await asyncio.gather(*(f for _, f in futures), return_exceptions=True)
        for (event, _), result in zip(futures, results, strict=True):
            if isinstance(result, BaseException):
                summary.failed += 1
                # A delivery error is the broker's, not the event's: stop.
                summary.stopped = summary.stopped or f"{self._broker_url}: {result!r}"
                _add_examples(summary.rejection_examples, [f"line {event.line_no}: {result!r}"])
            else:
                summary.accepted += 1
        self._on_progress(summary)


async def replay(
    lines: Iterable[bytes | str],
    target: str,
    pacing: Pacing,
    *,
    shift_to_now: bool = False,
    batch_size: int = DEFAULT_BATCH_EVENTS,
    api_key: str | None = None,
    on_progress: Callable[[ReplaySummary], None] | None = None,
    on_bad_line: Callable[[ParsedLine], None] | None = None,
) -> ReplaySummary:
    """Send the JSONL ``lines`` to ``target``, paced, and say how it went.

    Parameters
    ----------
    lines
        JSONL lines, read lazily (a file object will do).
    target
        ``http://host:port`` (the collector) or ``kafka://host:port`` (topic ``clicks``).
    pacing
        Rate, recorded speed, or as fast as possible.
    shift_to_now
        Move every ``ts`` by now minus the first event's ``ts``.
    batch_size
        Events per request, 1 to 500 (the collector's limit).
    api_key
        Sent as ``X-Api-Key`` to the collector.
    on_progress, on_bad_line
        Called as batches are answered, and for each line that is not a JSON object.

    Returns
    -------
    ReplaySummary
        Counts, examples and pace. A replay that had to stop early (collector or
        broker unreachable, API key refused) says why in ``stopped``.
    """
    if not 1 <= batch_size <= MAX_BATCH_EVENTS:
        raise ValueError(f"batch_size must be 1 to {MAX_BATCH_EVENTS}, got {batch_size}")
    where = parse_target(target)
    summary = ReplaySummary(where.url)
    progress: _Progress = on_progress or (lambda _: None)
    sender: _HttpSender | _KafkaSender = (
        _HttpSender(where.url, api_key, summary, progress)
        if where.kind == "http"
        else _KafkaSender(where.url, summary, progress)
    )

    def good_lines(parsed: Iterable[ParsedLine]) -> Iterator[ParsedLine]:
        for line in parsed:
            if line.error is None:
                yield line
                continue
            summary.bad_lines += 1
            _add_examples(summary.bad_line_examples, [f"line {line.line_no}: {line.error}"])
            if on_bad_line is not None:
                on_bad_line(line)
            progress(summary)

    loop = asyncio.get_running_loop()
    start_s = loop.time()
    now_ms = int(time.time() * 1000)
    try:
        await sender.start()
        planned = batches(
            schedule(good_lines(read_events(lines)), pacing,
                     shift_to_ms=now_ms if shift_to_now else None),
            max_events=batch_size, max_bytes=sender.max_bytes, lanes=sender.lanes,
        )  # fmt: skip
        for batch in planned:
            if summary.stopped is not None:
                break
            delay_s = start_s + batch.due_s - loop.time()
            # Also when no wait is due: lets answers in between a fast file's batches.
            await asyncio.sleep(max(0.0, delay_s))
            await sender.submit(batch)
    finally:
        await sender.close()
    summary.elapsed_s = loop.time() - start_s
    progress(summary)
    return summary


# ---------------------------------------------------------------------------------
# Command line.


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``replay`` command to the ``nudgeflow`` command line."""
    parser = subparsers.add_parser(
        "replay",
        help="send a JSONL file of click events to the collector or to Kafka",
        description="Send a JSONL file of click events (one JSON object a line) to the "
        "HTTP collector or straight to the Kafka topic 'clicks'; as fast as possible "
        "unless --rate or --speed is given.",
    )
    parser.add_argument("file", type=Path, help="JSONL file of click events")
    parser.add_argument(
        "--to",
        default=None,
        type=_target_arg,
        metavar="URL",
        help="http://host:port (collector) or kafka://host:port (default: the collector of "
        f"the nudgeflow up running on this data directory, else {DEFAULT_TARGET})",
    )
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument("--rate", type=_positive, metavar="N", help="events per second")
    pace.add_argument(
        "--speed", type=_positive, metavar="X", help="X times the recorded pace (by event ts)"
    )
    parser.add_argument(
        "--shift-to-now",
        action="store_true",
        help="move every ts by now minus the first event's ts, so the stream looks live",
    )
    parser.add_argument(
        "--batch",
        type=_batch_size,
        default=DEFAULT_BATCH_EVENTS,
        metavar="N",
        help=f"events per request, 1 to {MAX_BATCH_EVENTS} (default {DEFAULT_BATCH_EVENTS})",
    )
    parser.add_argument(
        "--api-key", default=None, metavar="KEY", help="X-Api-Key for the collector"
    )


def run(args: argparse.Namespace) -> int:
    """Run ``nudgeflow replay`` as parsed by ``add_parser``; 0 unless it stopped early.

    Rejected events and bad lines are reported, not failures: replaying them is
    how the server's rejections get tested.
    """
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    path: Path = args.file
    try:
        total_lines = _count_lines(path)
        source = path.open("rb")
    except OSError as exc:
        print(f"nudgeflow replay: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    stderr = Console(stderr=True)
    columns = (
        TextColumn("replay"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("lines  {task.fields[counts]}"),
        TimeElapsedColumn(),
    )
    with source, Progress(*columns, console=stderr) as bar:
        task = bar.add_task("replay", total=total_lines, counts="")

        def show(summary: ReplaySummary) -> None:
            bar.update(
                task,
                completed=summary.sent + summary.bad_lines,
                counts=f"{summary.accepted} accepted, {summary.rejected} rejected, "
                f"{summary.bad_lines} bad",
            )

        def show_bad_line(line: ParsedLine) -> None:
            bar.console.print(f"line {line.line_no}: {line.error}", markup=False, highlight=False)

        try:
            summary = asyncio.run(
                replay(
                    source, args.to or DEFAULT_TARGET, Pacing(args.rate, args.speed),
                    shift_to_now=args.shift_to_now, batch_size=args.batch, api_key=args.api_key,
                    on_progress=show, on_bad_line=show_bad_line,
                )
            )  # fmt: skip
        except KeyboardInterrupt:
            print("nudgeflow replay: interrupted", file=sys.stderr)
            return 130
        if summary.stopped is None:
            bar.update(task, completed=total_lines)
    print(summary.render())
    return 0 if summary.stopped is None else 1


def _count_lines(path: Path) -> int:
    count, last = 0, b"\n"
    with path.open("rb") as source:
        while chunk := source.read(1 << 20):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")


def _target_arg(text: str) -> str:
    try:
        parse_target(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _batch_size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_BATCH_EVENTS:
        raise argparse.ArgumentTypeError(f"must be 1 to {MAX_BATCH_EVENTS}, got {text!r}")
    return value
