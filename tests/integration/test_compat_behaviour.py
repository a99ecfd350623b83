"""What the worker relies on in app/runtime/compat, by behaviour, on the real embedded broker.

Each test runs a small Faust app in this process on ``NudgeflowTransport`` (the worker's
transport) against the session's broker, with topics and a consumer group of its own,
and watches what its agents are handed, what the group commits and when. They replace
checks of Faust's and aiokafka's source text: when an upgrade moves what the compat
layer overrides, these fail on what a worker would then get wrong.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.conn import AIOKafkaConnection
from faust.types import TP, Message, TransportT

from app.deliver.delivery import SENDER_TURNS
from app.runtime.compat import (
    DirectQueue,
    NudgeflowTransport,
    fetch_position,
    settled_position,
)
from app.runtime.testing import Services
from app.runtime.topics import TopicSpec, declare_topics
from tables.changelogged import declare_changelogged_table
from tests.integration.clients import unique

pytestmark = pytest.mark.integration

_PARTITIONS = 2
_COMMIT_INTERVAL_S = 0.1
_TIMEOUT_S = 30.0


@pytest.fixture(autouse=True)
def _faust_datadir_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Faust makes ``<app id>-data`` in the working directory: keep it out of the checkout."""
    monkeypatch.chdir(tmp_path)


@dataclass(frozen=True)
class _Seen:
    """One message as an agent was handed it, and when (this process's monotonic clock)."""

    app: str
    topic: str
    partition: int
    offset: int
    at: float


class _App(faust.App):
    """The attributes the compat transport reads from the worker's app, and a hook on commits."""

    fetch_max_wait_ms: int
    tansu_compat: bool
    direct_queues: dict[str, DirectQueue]
    on_commit: Callable[[], Awaitable[None]]
    # Answers the commit timer's question (the worker's: ``NudgeflowApp.commit_can_wait``).
    can_wait: Callable[[float], bool]
    rebalances_started: list[float]

    async def before_commit(self) -> None:
        await self.on_commit()

    def commit_can_wait(self, since_commit_s: float) -> bool:
        return self.can_wait(since_commit_s)

    def on_rebalance_start(self) -> None:
        self.rebalances_started.append(time.monotonic())
        super().on_rebalance_start()

    def _new_transport(self) -> TransportT:
        return NudgeflowTransport(self.conf.broker_consumer, self)

    def _new_producer_transport(self) -> TransportT:
        return NudgeflowTransport(self.conf.broker_producer, self)


@dataclass
class _Harness:
    """An app whose agents record each message; ``held`` partitions are not acked until
    released (``release``). Direct-topic messages go through a ``DirectQueue`` as the
    worker's ``clicks`` do; stream-topic messages through Faust's own stream."""

    name: str
    app: _App
    direct: str
    stream: str
    seen: list[_Seen]
    held: set[int] = field(default_factory=set)
    # How many messages the direct agent took at each turn.
    batch_sizes: list[int] = field(default_factory=list)
    _waiting: list[Message] = field(default_factory=list)

    def release(self) -> None:
        self.held.clear()
        waiting, self._waiting = self._waiting, []
        self.app.direct_queues[self.direct].ack(waiting)


async def _nothing() -> None:
    return None


def _harness(
    services: Services,
    group: str,
    direct: str,
    stream: str,
    name: str,
    batch_max: int = 100,
    **conf: Any,
) -> _Harness:
    app = _App(
        group,
        broker=services.broker_url,
        store="memory://",
        autodiscover=False,
        web_enabled=False,
        topic_partitions=_PARTITIONS,
        topic_allow_declare=True,
        broker_session_timeout=4,
        broker_heartbeat_interval=0.5,
        broker_rebalance_timeout=4,
        broker_commit_interval=_COMMIT_INTERVAL_S,
        consumer_auto_offset_reset="earliest",
        **conf,
    )
    app.fetch_max_wait_ms = 20
    app.tansu_compat = True
    app.on_commit = _nothing
    app.can_wait = lambda _since_commit_s: False
    app.rebalances_started = []
    queue = DirectQueue(app, direct, 10_000)
    app.direct_queues = {direct: queue}
    harness = _Harness(name, app, direct, stream, [])

    @app.agent(app.topic(direct, partitions=_PARTITIONS))
    async def read_direct(stream_: faust.StreamT[bytes]) -> None:
        async for batch in queue.batches(batch_max):
            harness.batch_sizes.append(len(batch))
            at = time.monotonic()
            harness.seen += [_Seen(name, direct, m.partition, m.offset, at) for m in batch]
            acked = [m for m in batch if m.partition not in harness.held]
            harness._waiting += [m for m in batch if m.partition in harness.held]
            queue.ack(acked)

    @app.agent(app.topic(stream, partitions=_PARTITIONS, value_serializer="raw"))
    async def read_stream(stream_: faust.StreamT[bytes]) -> None:
        async for event in stream_.events():
            message = event.message
            harness.seen.append(
                _Seen(name, stream, message.partition, message.offset, time.monotonic())
            )

    return harness


@asynccontextmanager
async def _running(harness: _Harness) -> AsyncIterator[_Harness]:
    await harness.app.start()
    try:
        await _until(lambda: harness.app.consumer.assignment(), "partitions assigned")
        yield harness
    finally:
        await harness.app.stop()


async def _topics(services: Services, *names: str) -> None:
    await declare_topics(services.broker_url, [TopicSpec(n, _PARTITIONS) for n in names], 1)


async def _until(done: Callable[[], object], what: str, timeout_s: float = _TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, f"not {what} in {timeout_s} s"
        await asyncio.sleep(0.02)


async def _produce(services: Services, topic: str, counts: dict[int, int], batch: int = 1) -> None:
    """``counts[p]`` records to partition ``p``; ``batch`` records per produce request."""
    producer = AIOKafkaProducer(bootstrap_servers=services.bootstrap, linger_ms=0)
    await producer.start()
    try:
        for partition, n in counts.items():
            for start in range(0, n, batch):
                sent = [
                    await producer.send(topic, b"%d" % i, partition=partition)
                    for i in range(start, min(n, start + batch))
                ]
                await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def _committed(services: Services, group: str, topic: str) -> dict[tuple[str, int], int]:
    """The group's committed offsets of ``topic``, read without joining the group.

    (The admin client's OffsetFetch cannot read Tansu's answer; a group-less consumer can.)
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=services.bootstrap, group_id=group,
                                enable_auto_commit=False)  # fmt: skip
    await consumer.start()
    try:
        committed = {}
        for partition in range(_PARTITIONS):
            offset = await consumer.committed(TopicPartition(topic, partition))
            if offset is not None:
                committed[topic, partition] = offset
        return committed
    finally:
        await consumer.stop()


async def _committed_when(
    services: Services,
    group: str,
    topic: str,
    done: Callable[[dict[tuple[str, int], int]], bool],
    what: str,
) -> dict[tuple[str, int], int]:
    """The group's committed offsets of ``topic`` once ``done`` holds of them."""
    deadline = time.monotonic() + _TIMEOUT_S
    while not done(committed := await _committed(services, group, topic)):
        assert time.monotonic() < deadline, f"not {what} in {_TIMEOUT_S} s: {committed}"
        await asyncio.sleep(0.05)
    return committed


def _offsets(seen: list[_Seen], topic: str, partition: int) -> list[int]:
    return [s.offset for s in seen if s.topic == topic and s.partition == partition]


async def test_each_partitions_messages_reach_the_agents_once_and_in_offset_order(services):
    # The drain loop (faust_transport._Consumer._drain_messages) is Faust's with the
    # per-message race against suspend_flow taken out and a direct path added: both
    # paths must still hand out every offset of a partition once, in order.
    direct, stream, group = unique("order-direct"), unique("order-stream"), unique("order")
    await _topics(services, direct, stream)
    counts = {0: 300, 1: 200}
    # Some before the app starts (one long first fetch), some while it runs (many).
    await _produce(services, direct, counts, batch=50)
    await _produce(services, stream, counts, batch=50)
    async with _running(_harness(services, group, direct, stream, "one")) as harness:
        await asyncio.gather(_produce(services, direct, counts), _produce(services, stream, counts))
        total = 4 * sum(counts.values())
        await _until(lambda: len(harness.seen) >= total, f"{total} messages seen")
        for topic in (direct, stream):
            for partition, n in counts.items():
                assert _offsets(harness.seen, topic, partition) == list(range(2 * n))

        # What fetch_position reads of aiokafka's state agrees with what was handed out.
        for partition, n in counts.items():
            highwater, asked_ms, position = fetch_position(harness.app, TP(direct, partition))
            assert (highwater, position) == (2 * n, 2 * n)
            assert asked_ms is not None and asked_ms <= time.time() * 1000


async def test_a_backlog_reaches_the_agent_in_full_batches(services):
    # A fetch can bring thousands of records: the drain hands the agent a full batch
    # before it gives the loop a turn (it used to every 100 messages, so the agent
    # folded, delivered and acked 100 at a time however far behind it was).
    direct, stream, group = unique("full-direct"), unique("full-stream"), unique("full")
    await _topics(services, direct, stream)
    counts = {0: 1500, 1: 1500}
    await _produce(services, direct, counts, batch=500)
    async with _running(_harness(services, group, direct, stream, "one", 1000)) as harness:
        await _until(lambda: len(harness.seen) >= 3000, "3000 messages seen")
        assert harness.app.direct_queues[direct].batch_max == 1000
        assert harness.batch_sizes.count(1000) >= 2, harness.batch_sizes
        for partition, n in counts.items():
            assert _offsets(harness.seen, direct, partition) == list(range(n))


async def test_a_partition_is_settled_only_once_the_drain_has_handed_its_records_over(services):
    # aiokafka moves a partition's position in the consumer thread as it hands records
    # out, before the drain has put them on the queue: a silence timer reading that
    # position would take a record still in transit for processed.
    direct, stream, group = unique("settle-direct"), unique("settle-stream"), unique("settle")
    await _topics(services, direct, stream)
    harness = _harness(services, group, direct, stream, "one")
    queue, tp = harness.app.direct_queues[direct], TP(direct, 0)
    let_in = asyncio.Event()
    put = queue.put

    async def put_when_let_in(message: Message) -> None:
        await let_in.wait()
        await put(message)

    # The queue takes nothing at once (a piece or a message): the drain waits in ``put``.
    queue.put_many = lambda _messages: False  # type: ignore[method-assign]
    queue.put_nowait = lambda _message: False  # type: ignore[method-assign]
    queue.put = put_when_let_in  # type: ignore[method-assign]
    async with _running(harness):
        await _until(lambda: settled_position(harness.app, tp) == 0, "partition 0 settled at 0")
        await _produce(services, direct, {0: 3}, batch=3)  # one fetch brings all three
        await _until(lambda: fetch_position(harness.app, tp)[2], "records handed out")
        await asyncio.sleep(0.3)  # several ticks of a timer
        highwater, _asked_ms, position = fetch_position(harness.app, tp)
        assert (highwater, position) == (3, 3)
        assert settled_position(harness.app, tp) == 0

        let_in.set()
        await _until(lambda: settled_position(harness.app, tp) == 3, "partition 0 settled at 3")
        await _until(lambda: len(harness.seen) == 3, "3 messages seen")


async def test_an_offset_is_committed_only_once_its_message_is_acked(services):
    # DirectQueue.ack is the only thing that marks a direct message done: the worker
    # acks a batch once it is folded and its interventions are sent.
    direct, stream, group = unique("ack-direct"), unique("ack-stream"), unique("ack")
    await _topics(services, direct, stream)
    harness = _harness(services, group, direct, stream, "one")
    harness.held = {1}
    async with _running(harness):
        await _produce(services, direct, {0: 40, 1: 40})
        await _until(lambda: len(harness.seen) == 80, "80 messages seen")
        # Partition 0's offsets are committed (so commits run); partition 1's, never acked,
        # are not, however many commits pass.
        committed = await _committed_when(
            services, group, direct, lambda c: c.get((direct, 0)) == 40, "partition 0 committed"
        )
        assert (direct, 1) not in committed, committed
        harness.release()
        await _committed_when(
            services, group, direct, lambda c: c.get((direct, 1)) == 40, "partition 1 committed"
        )


async def test_offsets_are_committed_only_after_the_apps_changelog_write(services):
    # The worker writes the changed table states in before_commit: an offset committed
    # ahead of that write would, after a crash, skip events whose states were never
    # written. The commit must wait for before_commit, and commit no offset acked after
    # before_commit began (those states are not in its write).
    direct, stream, group = unique("cl-direct"), unique("cl-stream"), unique("changelog")
    await _topics(services, direct, stream)
    harness = _harness(services, group, direct, stream, "one")
    armed, written, first_read = asyncio.Event(), asyncio.Event(), asyncio.Event()
    committed_while_writing: list[dict[tuple[str, int], int]] = []

    async def slow_changelog_write() -> None:
        if not armed.is_set():
            return
        if written.is_set():  # later commits wait until the test has read the first
            await first_read.wait()
            return
        # Messages acked while the write is under way, then what the broker holds.
        await _produce(services, direct, {0: 5, 1: 5})
        await _until(lambda: len(harness.seen) == 30, "10 more seen")
        committed_while_writing.append(await _committed(services, group, direct))
        written.set()

    harness.app.on_commit = slow_changelog_write
    harness.held = {0}
    async with _running(harness):
        try:
            await _produce(services, direct, {0: 20})
            await _until(lambda: len(harness.seen) == 20, "20 seen")
            armed.set()
            harness.release()  # the next commit takes these 20 offsets and writes slowly
            await asyncio.wait_for(written.wait(), _TIMEOUT_S)
            assert committed_while_writing == [{}]  # nothing committed before the write ended
            # Then the commit whose write that was: the 20 offsets, not the 10 acked during
            # the write; the next commit takes those.
            committed = await _committed_when(services, group, direct, bool, "the first commit")
            assert committed == {(direct, 0): 20}
        finally:
            first_read.set()
        await _committed_when(
            services,
            group,
            direct,
            lambda c: c == {(direct, 0): 25, (direct, 1): 5},
            "the second commit",
        )


async def test_commits_are_timed_and_the_app_may_let_a_tick_pass(services):
    # Faust also commits every 10 000 acked messages (``broker_commit_every``); the
    # worker's transport commits on its timer only, and asks the app at each tick.
    direct, stream, group = unique("tick-direct"), unique("tick-stream"), unique("tick-group")
    await _topics(services, direct, stream)
    harness = _harness(services, group, direct, stream, "a")
    asked: list[float] = []
    waiting = True

    def can_wait(since_commit_s: float) -> bool:
        asked.append(since_commit_s)
        return waiting

    harness.app.can_wait = can_wait
    async with _running(harness):
        await _produce(services, direct, {0: 12_000}, batch=1_000)
        await _until(lambda: len(harness.seen) == 12_000, "all 12 000 handed and acked")
        asked.clear()
        await _until(lambda: len(asked) >= 10, "ten ticks")
        assert await _committed(services, group, direct) == {}
        # Asked with the time since the last commit, not since the last tick.
        assert asked == sorted(asked) and asked[-1] >= 9 * _COMMIT_INTERVAL_S
        waiting = False
        await _committed_when(services, group, direct, lambda c: c == {(direct, 0): 12_000},
                              "committed at a tick once the app does not wait")  # fmt: skip


async def test_the_worker_consumer_fetch_wait_is_the_apps_not_fausts(services):
    # Faust hard-codes fetch_max_wait_ms=1500 for its worker consumer. Tansu is not woken
    # by new data: a fetch that finds none sleeps half its remaining wait, so with 1 500 ms
    # an event sent into an idle partition 0.1 s after a fetch began waits ~650 ms. With
    # the app's 20 ms (the transport's override) it waits a few ms. A consumer with
    # Faust's 1 500 ms, beside it, shows the measurement tells the two apart.
    direct, stream, group = unique("wait-direct"), unique("wait-stream"), unique("wait")
    await _topics(services, direct, stream)
    harness = _harness(services, group, direct, stream, "one")
    control = AIOKafkaConsumer(bootstrap_servers=services.bootstrap, fetch_max_wait_ms=1500)
    control_seen: list[float] = []

    async def read_control() -> None:
        while True:
            for records in (await control.getmany(timeout_ms=5000)).values():
                control_seen.extend(time.monotonic() for _ in records)

    def both_saw(n: int) -> Callable[[], bool]:
        return lambda: len(harness.seen) == len(control_seen) == n

    producer = AIOKafkaProducer(bootstrap_servers=services.bootstrap, linger_ms=0)
    await asyncio.gather(control.start(), producer.start())
    control.assign([TopicPartition(direct, 0)])
    reading = asyncio.create_task(read_control())
    app_ms: list[float] = []
    control_ms: list[float] = []
    try:
        async with _running(harness):
            for n in range(5):
                await _until(both_saw(n), f"{n} seen")
                # Both consumers have just sent their next fetch: send mid-wait.
                await asyncio.sleep(0.1)
                sent = time.monotonic()
                await producer.send_and_wait(direct, b"x", partition=0)
                await _until(both_saw(n + 1), f"{n + 1} seen")
                app_ms.append((harness.seen[-1].at - sent) * 1000)
                control_ms.append((control_seen[-1] - sent) * 1000)
    finally:
        reading.cancel()
        await asyncio.gather(control.stop(), producer.stop())
    assert statistics.median(app_ms) < 150, app_ms
    assert statistics.median(control_ms) > 400, control_ms


async def test_a_send_reaches_the_socket_within_the_sender_turns(services, monkeypatch):
    # A batch's delivery and a commit yield SENDER_TURNS turns of the loop before the next
    # batch or the checkpoints hold the loop, so that the interventions leave first: count
    # the turns a send takes.
    topic = unique("turns")
    await _topics(services, topic)
    producer = AIOKafkaProducer(bootstrap_servers=services.bootstrap, linger_ms=0)
    await producer.start()
    turns: list[int] = []
    turn = 0
    send = AIOKafkaConnection.send

    def counted(self: AIOKafkaConnection, request: Any, *args: Any, **kwargs: Any) -> Any:
        turns.append(turn)
        return send(self, request, *args, **kwargs)

    try:
        await producer.send_and_wait(topic, b"first", partition=0)  # metadata, connection
        monkeypatch.setattr(AIOKafkaConnection, "send", counted)
        for _ in range(3):
            turns.clear()
            turn = 0
            await producer.send(topic, b"x", partition=0)
            while not turns and turn < 10:
                turn += 1
                await asyncio.sleep(0)
            assert turns and turns[0] <= SENDER_TURNS, turns
            await asyncio.sleep(0.05)  # its answer, before the next
    finally:
        await producer.stop()


@pytest.mark.parametrize("tansu_compat", [True, False])
async def test_table_recovery_reads_the_changelog_to_its_true_end(services, tansu_compat):
    # Tansu answers ListOffsets(LATEST) of a partition whose last batch holds several
    # records with that batch's base offset + 1. Faust's recovery stops at the consumer's
    # highwaters(), so the transport takes them from a real Fetch (fetch_true_highwaters).
    direct, stream, group = unique("rec-direct"), unique("rec-stream"), unique("recovery")
    await _topics(services, direct, stream)
    changelog = f"{group}-things-changelog"
    await _topics(services, changelog)
    producer = AIOKafkaProducer(bootstrap_servers=services.bootstrap, linger_ms=100)
    await producer.start()
    try:  # one batch of 10 records
        sent = [await producer.send(changelog, b"v%d" % i, key=b"k%d" % i, partition=0)
                for i in range(10)]  # fmt: skip
        await asyncio.gather(*sent)
    finally:
        await producer.stop()

    harness = _harness(services, group, direct, stream, "one")
    harness.app.tansu_compat = tansu_compat
    table = declare_changelogged_table(harness.app, "things", _PARTITIONS, "raw", help="test")
    async with _running(harness):
        recovery = harness.app.tables.recovery  # type: ignore[attr-defined]
        await asyncio.wait_for(recovery.completed.wait(), _TIMEOUT_S)
        recovered = sorted(table.keys())
    if tansu_compat:
        assert recovered == sorted(f"k{i}" for i in range(10))
    else:  # if this fails, Tansu fixed ListOffsets: the shim can go
        assert len(recovered) < 10, recovered


async def test_a_second_worker_joining_loses_nothing_and_repeats_only_the_uncommitted(services):
    # At a rebalance Faust suspends the flow and clears the managed queues (a DirectQueue
    # among them); then each member starts its partitions from the committed offsets. So
    # nothing is lost, no two members handle one partition at once, and what is handed
    # out twice (at-least-once) lies past what was committed when the rebalance began.
    direct, stream, group = unique("reb-direct"), unique("reb-stream"), unique("rebalance")
    await _topics(services, direct, stream)
    one = _harness(services, group, direct, stream, "one")
    two = _harness(services, group, direct, stream, "two")
    produced = dict.fromkeys(range(_PARTITIONS), 0)
    # (when a read of the committed offsets had ended, what it read): lower bounds.
    commits: list[tuple[float, dict[tuple[str, int], int]]] = []
    stop = asyncio.Event()

    async def produce_steadily() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=services.bootstrap, linger_ms=0)
        await producer.start()
        try:
            while not stop.is_set():
                for partition in produced:
                    await producer.send_and_wait(direct, b"x", partition=partition)
                    produced[partition] += 1
                await asyncio.sleep(0.005)
        finally:
            await producer.stop()

    async def read_commits() -> None:
        while not stop.is_set():
            committed = await _committed(services, group, direct)
            commits.append((time.monotonic(), committed))

    async with _running(one):
        tasks = [asyncio.create_task(produce_steadily()), asyncio.create_task(read_commits())]
        try:
            await _until(lambda: len(one.seen) >= 100, "100 seen by one")
            joining_at = time.monotonic()
            async with _running(two):
                await _until(lambda: len(two.seen) >= 100, "100 seen by two")
                stop.set()
                await asyncio.gather(*tasks)
                total = sum(produced.values())
                await _until(lambda: len({(s.partition, s.offset) for s in one.seen + two.seen})
                             == total, f"all {total} seen")  # fmt: skip
                await _committed_when(
                    services, group, direct,
                    lambda c: all(c.get((direct, p)) == n for p, n in produced.items()),
                    "every offset committed",
                )  # fmt: skip
        finally:
            stop.set()
            await asyncio.gather(*tasks)

    [rebalanced_at, *_] = [at for at in one.app.rebalances_started if at > joining_at]
    [committed_then, *_] = [c for at, c in reversed(commits) if at <= rebalanced_at] or [{}]
    for partition, n in produced.items():
        mine = {h.name: _offsets(h.seen, direct, partition) for h in (one, two)}
        handed = mine["one"] + mine["two"]
        assert sorted(set(handed)) == list(range(n))  # nothing lost
        # In order, except that at the rebalance each member starts its partitions again
        # from the committed offsets.
        committed = committed_then.get((direct, partition), 0)
        for offsets in mine.values():
            rewinds = [b for a, b in itertools.pairwise(offsets) if b <= a]
            assert all(b >= committed for b in rewinds), (committed, rewinds)
        repeated = [o for o, count in Counter(handed).items() if count > 1]
        assert min(repeated, default=n) >= committed, (committed, repeated)
        if mine["two"]:  # moved: one was done with it before two began
            first_at_two = min(s.at for s in two.seen if s.partition == partition)
            assert all(s.at <= first_at_two for s in one.seen if s.partition == partition)
