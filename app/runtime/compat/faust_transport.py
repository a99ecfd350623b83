"""A Faust aiokafka transport with the fixes nudgeflow needs.

1. ``fetch_max_wait_ms``: Faust hard-codes 1 500 ms for its worker consumer.
   Apache Kafka answers a long-poll fetch as soon as data arrives, but Tansu is
   not woken by new data: a fetch that finds none sleeps half its remaining wait
   before it looks again, so there an event would wait up to 750 ms. The
   transport sets the value from the app (``NUDGEFLOW_FETCH_MAX_WAIT_MS``), and
   with the ``tansu`` broker flavour widens it while Tansu runs out of it
   (``app.runtime.compat.tansu_fetch_wait``).
2. Tansu answers ListOffsets(LATEST) with the last batch's base offset + 1 when
   that batch holds several records, while Fetch reports the true high
   watermark. Faust ends changelog recovery at ``end_offsets()``, so it would
   stop early and silently lose the newest table updates. With the ``tansu``
   broker flavour the high watermark is max(ListOffsets, what a Fetch reports).
3. When a fetch was *asked*: aiokafka stamps a partition's high watermark with
   the time its answer was processed, which can be long after the broker wrote
   it (a paused process, a widened fetch wait). The silence timers need a time
   the answer is surely no older than, so the worker consumer also keeps the
   time each answered fetch was sent (``fetch_position``), and how far its drain
   has handed each partition's records to the agent's queue (``settled_position``):
   aiokafka's position moves before they are there.

Only the methods below are overridden. The package checks the library versions
before importing this module (``versions.py``), so an upgrade fails loudly instead
of silently.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Iterable, Mapping
from typing import Any, cast

import faust
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from faust.exceptions import ProducerSendError
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message
from faust.types.tuples import ack_lock
from mode import Service, ServiceT
from mode.utils.futures import notify

from app.runtime.compat.streams import DirectQueue
from app.runtime.compat.tansu_fetch_wait import widen_fetch_wait_while_truncated

__all__ = [
    "NudgeflowTransport",
    "committed_offset",
    "fetch_position",
    "fetch_true_highwaters",
    "raw_producer",
    "settled_position",
]


async def fetch_true_highwaters(
    bootstrap_servers: list[str], partitions: Iterable[TP], timeout_s: float = 10.0
) -> dict[TP, int]:
    """The high watermark of each partition as a real Fetch reports it.

    Works around brokers whose ListOffsets(LATEST) is wrong (Tansu 0.6).
    """
    wanted = list(partitions)
    if not wanted:
        return {}
    tps = [TopicPartition(tp.topic, tp.partition) for tp in wanted]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        enable_auto_commit=False,
        fetch_max_wait_ms=10,
        max_partition_fetch_bytes=1024,
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while any(consumer.highwater(tp) is None for tp in tps):
            if loop.time() > deadline:
                missing = [tp for tp in tps if consumer.highwater(tp) is None]
                raise TimeoutError(f"no fetch answer for {missing}")
            await consumer.getmany(*tps, timeout_ms=50, max_records=1)
        return {tp: int(consumer.highwater(k)) for tp, k in zip(wanted, tps, strict=True)}
    finally:
        await consumer.stop()


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka hands this to its Fetcher in start(), which has not run yet.
        consumer._fetch_max_wait_ms = self.app.fetch_max_wait_ms  # type: ignore[attr-defined]
        return consumer

    async def on_start(self) -> None:
        await super().on_start()
        app = cast(Any, self.app)
        if self._consumer is not None:
            _remember_when_fetches_were_asked(self._consumer)
            if app.tansu_compat:
                widen_fetch_wait_while_truncated(self._consumer, app.fetch_max_wait_ms)


#: Per worker consumer: partition → wall time (ms) the fetch of its last accepted answer was sent.
_ASKED_MS = "_nudgeflow_fetch_asked_ms"


def _remember_when_fetches_were_asked(consumer: AIOKafkaConsumer) -> None:
    """Keep, per partition, when the fetch whose answer set its high watermark was sent.

    The broker builds the answer after it receives the request, so the high
    watermark it reports is at least as new as the send time, however late the
    answer is processed.
    """
    fetcher: Any = consumer._fetcher
    process_answer = fetcher._proc_fetch_request
    asked_ms: dict[TopicPartition, int] = {}
    setattr(consumer, _ASKED_MS, asked_ms)

    async def _proc_fetch_request(assignment: Any, node_id: int, request: Any) -> bool:
        sent_ms = int(time.time() * 1000)
        needs_wakeup = bool(await process_answer(assignment, node_id, request))
        if assignment.active:
            for topic, partitions in request.topics:
                for partition, _offset, _max_bytes in partitions:
                    tp = TopicPartition(topic, partition)
                    state = assignment.state_value(tp)
                    # aiokafka stamps each partition it accepts from the answer.
                    if state is not None and (state.timestamp or 0) >= sent_ms:
                        asked_ms[tp] = sent_ms
        return needs_wakeup

    fetcher._proc_fetch_request = _proc_fetch_request


class _Consumer(faust_aiokafka.Consumer):
    # Partition → the first offset of a direct-queue topic dropped while flow was
    # suspended: fetched again when flow resumes (``resume_flow``).
    _direct_dropped: dict[TP, int]
    # Bumped as ``perform_seek`` starts and ends (odd while it runs): a batch asked of
    # aiokafka under another value may hold records the seek moved away from
    # (``_drain_messages``).
    _seek_epoch: int = 0
    # Partition → where a record dropped since the last seek began sent it back.
    _sought_back: dict[TP, int]
    # When the last commit began (monotonic seconds), whatever asked for it.
    _commit_started: float = 0.0
    # Partition of a direct-queue topic → the consumer's position when the drain last
    # handed all of a fetch's records to the queue, none dropped and no seek meanwhile:
    # every record before it is on the queue or was read before (``settled_position``).
    # aiokafka moves its position in the consumer thread as it hands records out, a
    # moment before the drain has them. Every seek clears it and counts in ``_seeks``.
    _settled: dict[TP, int]
    _seeks: int = 0
    # The group's generation when the records ``fetch_pieces`` hands out were fetched.
    _fetch_generation: int = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._settled = {}

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def perform_seek(self) -> None:
        # Back to the committed offsets: that re-fetches whatever was dropped before.
        # Nothing of a direct-queue topic is handed out while the seek runs (the drain
        # drops it, see ``_drain_messages``): upstream resets each read offset to the
        # committed one when the seek returns, under records handed out meanwhile, so the
        # next record looked like a gap over offsets already acked; counted twice, they
        # held the commits to one offset per commit (faust-streaming/faust#596).
        self._direct_dropped = {}
        self._sought_back = {}
        self._seek_epoch += 1
        self._unsettle()
        try:
            await super().perform_seek()
            # Upstream leaves a partition the group never committed on where it is, past
            # whatever was fetched and dropped during the rebalance (a fetch that comes
            # while flow is stopped is dropped whole): a worker killed before its first
            # commit on a partition left that partition's events unread for good. Such a
            # partition starts where the group does without a commit: at its beginning
            # (the app's ``consumer_auto_offset_reset`` is ``earliest``).
            direct_queues = self.app.direct_queues  # type: ignore[attr-defined]
            for tp in self.assignment():
                if tp.topic in direct_queues and self._committed_offset.get(tp) is None:
                    self._seek_back(tp, 0)
        finally:
            self._seek_epoch += 1
            self._unsettle()
        dropped, self._direct_dropped = self._direct_dropped, {}
        for tp, offset in dropped.items():
            self._seek_back(tp, offset)

    def _seek_back(self, tp: TP, dropped: int) -> None:
        # Where the seek sent the partition: its committed offset, or, as upstream does
        # not seek without one, the first record dropped since the seek began.
        if tp not in self.assignment():
            return
        offset = self._committed_offset.get(tp) or min(dropped, self._sought_back.get(tp, dropped))
        self._sought_back[tp] = offset
        self._seek_in_consumer_thread(tp, offset)
        self._read_offset[tp] = offset

    def _seek_in_consumer_thread(self, tp: TP, offset: int) -> None:
        # aiokafka's seek drops the partition's fetched records, a dict the consumer
        # thread may be reading at that moment (``Fetcher.fetched_records``: a KeyError
        # that crashed a worker at a takeover). So the seek runs in that thread. The
        # thread runs what it is handed in order: the next fetch asked of it comes after.
        self._unsettle()
        seek = self._thread._ensure_consumer().seek
        self._thread.thread_loop.call_soon_threadsafe(
            seek, TopicPartition(tp.topic, tp.partition), offset
        )

    def _unsettle(self) -> None:
        self._seeks += 1
        self._settled = {}

    def _settle(self) -> None:
        # Between two of the drain's fetches: the consumer thread hands nothing out now.
        direct_queues = self.app.direct_queues  # type: ignore[attr-defined]
        assignment = self._thread._ensure_consumer()._subscription.subscription.assignment
        settled: dict[TP, int] = {}
        for tp in self.assignment() if assignment is not None else ():
            if tp.topic in direct_queues:
                state = assignment.state_value(TopicPartition(tp.topic, tp.partition))
                if state is not None and state.has_valid_position:
                    settled[tp] = state.position
        self._settled = settled

    def resume_flow(self) -> None:
        # Recovery resumes the partitions and seeks them to the committed offsets a
        # moment before it resumes the flow (``Recovery._resume_streams``): what is
        # fetched in between is dropped while flow is still suspended. Upstream counts
        # it as read all the same, and it is never fetched again: skipped events, and
        # commits stuck behind the gap (faust-streaming/faust#596). Here a dropped
        # message is not counted as read, and its partition is sought back to it.
        dropped, self._direct_dropped = getattr(self, "_direct_dropped", {}), {}
        if dropped:
            assigned = self.assignment()
            for tp, offset in dropped.items():
                if tp in assigned:
                    self._seek_in_consumer_thread(tp, offset)
                    self._read_offset[tp] = offset
        super().resume_flow()

    def ack_many(self, messages: Iterable[Message]) -> None:
        # Upstream's ``ack`` for each message, with its lock taken and the waiter notified
        # once per batch rather than once per message. Messages of a direct-queue topic
        # never pass the conductor, so they are not in ``_unacked_messages`` unless
        # something else tracked them. Upstream also counts them in ``_n_acked``, which
        # only its drain loop reads, for ``broker_commit_every``: ours commits by time.
        committed_offsets, acked_indexes, acked_lists = (
            self._committed_offset, self._acked_index, self._acked)  # fmt: skip
        unacked = self._unacked_messages
        acks_enabled_for = self.app.topics.acks_enabled_for
        notified = False
        with ack_lock:
            for message in messages:
                if message.acked:
                    continue
                message.acked = True
                if not acks_enabled_for(message.topic):
                    continue
                notified = True
                tp, offset = message.tp, message.offset
                committed = committed_offsets[tp]
                if committed is not None and offset < committed:
                    continue
                acked_index = acked_indexes[tp]
                if offset in acked_index:
                    continue
                if unacked:
                    unacked.discard(message)
                acked_index.add(offset)
                acked_lists[tp].append(offset)
            if notified:
                notify(self._waiting_for_ack)

    def _new_offset(self, tp: TP) -> int | None:
        # Upstream's, without its walk when the acked offsets are one run (a partition
        # whose batches were all acked, the common case): upstream finds the first run of
        # consecutive offsets with ``groupby`` over every one of them, ~0.4 µs each.
        # ``ack_many`` keeps them unique (``_acked_index``), so a sorted list whose ends
        # are ``len - 1`` apart is one run. Gaps to fill, or a run that does not follow
        # the committed offset, take upstream's way.
        acked = self._acked[tp]
        if not acked or self._gap[tp]:
            return super()._new_offset(tp)
        acked.sort()
        first, last = acked[0], acked[-1]
        committed = self._committed_offset[tp]
        if last - first != len(acked) - 1 or (committed and first - committed > 1):
            return super()._new_offset(tp)
        self._acked_index[tp].difference_update(acked)
        acked.clear()
        return last + 1

    @Service.task
    async def _commit_handler(self) -> None:
        # Upstream's timer, but the app may let a tick pass while its agent is behind
        # (``NudgeflowApp.commit_can_wait``). Commits are timed only: upstream also
        # commits every ``broker_commit_every`` (10 000) events, which while a backlog
        # drains is every half second again.
        interval = self.commit_interval
        can_wait = self.app.commit_can_wait  # type: ignore[attr-defined]
        await self.sleep(interval)
        async for _ in self.itertimer(interval, name="commit"):
            if not can_wait(time.monotonic() - self._commit_started):
                await self.commit()

    async def _commit_tps(self, tps: Iterable[TP], start_new_transaction: bool) -> bool:
        self._commit_started = time.monotonic()
        # Upstream's, with the app's changelog written in between. Offsets may only be
        # committed once the table writes of the acked events are on the broker. The
        # offsets are taken first: the app lets the agent go on while it writes, and
        # what the agent acks meanwhile is not in this write (it goes with the next).
        commit_offsets = self._filter_committable_offsets(tps)
        await self.app.before_commit()  # type: ignore[attr-defined]
        if not commit_offsets:
            return False
        try:
            await self._handle_attached(commit_offsets)  # Faust's attached sends
        except ProducerSendError as exc:
            await self.crash(exc)
            return False
        return bool(
            await self._commit_offsets(commit_offsets, start_new_transaction=start_new_transaction)
        )

    async def fetch_pieces(self, timeout: float) -> AsyncGenerator[tuple[TP, list[Message]], None]:
        # Upstream's ``getmany``, but in pieces: a partition's records in lists of up to
        # a full batch of the agent (``_pieces``) rather than one by one, for the drain
        # to hand a direct queue whole lists (``_drain_messages``). And the high watermark
        # of a partition is read (across the consumer thread) and tracked once per fetch
        # rather than once per record: every record of one answer has the same.
        records, active_partitions = await self._wait_next_records(timeout)
        if records is None or self.should_stop:
            return
        if not self.flow_active:
            self.log.dev("getmany called while flow not active. Seek back to committed offsets.")
            try:
                await self.perform_seek()
            except Exception as exc:
                self.log.warning(f"exception performing seek when flow not active {exc}")
            return
        generation_id = self._fetch_generation = self.app.consumer_generation_id
        buffered = self._buffered_partitions
        # A partition moves between active and buffered (stream buffers filling up and
        # draining), but stays in one of the two through a fetch's records.
        accepted = {
            tp
            for tp in records
            if active_partitions is None or tp in active_partitions or tp in buffered
        }
        track = self.app.monitor.track_tp_end_offset
        for tp in accepted:
            track(tp, self.highwater(tp))
        to_message = self._to_message
        direct_queues = self.app.direct_queues  # type: ignore[attr-defined]
        piece_max = _piece_max(direct_queues)
        for tp, piece in _pieces(records, accepted, direct_queues, piece_max):
            if not self.flow_active:
                break
            if self.app.consumer_generation_id != generation_id:
                self.log.dev("Generation id changed from %r. Cancelling getmany.", generation_id)
                break
            yield tp, [to_message(tp, record) for record in piece]

    def _fetch_moved_on(self) -> bool:
        """What ends upstream's ``getmany`` between two records: flow stopped, or a new
        generation of the group since the fetch (``_drain_messages`` asks it after an
        await in the middle of a piece)."""
        return not self.flow_active or self.app.consumer_generation_id != self._fetch_generation

    async def _drain_messages(self, fetcher: ServiceT) -> None:  # pragma: no cover
        # Faust's loop, with four changes. It does not commit every
        # ``broker_commit_every`` messages (commits are timed: ``_commit_handler``).
        # Faust wraps every message in
        # ``wait_first(callback(message), suspend_flow.wait())`` -- two tasks and an
        # ``asyncio.wait`` per message, which caps a worker near 8 k events/s. Here the
        # callback is awaited directly, and ``suspend_flow`` is only raced while it is set.
        # Messages of a topic with a ``DirectQueue`` (``app.direct_queues``) go
        # straight onto it, skipping the conductor's per-message ``Event``; while flow
        # is suspended (a rebalance) they are dropped, not counted as read, and fetched
        # again when flow resumes (``resume_flow``); so are those of a batch asked for
        # before or while ``perform_seek`` ran, fetched again from where it sent them.
        # Once a fetch's records are all handed over, it notes how far every partition
        # of such a topic is settled (``_settle``). And the records come in pieces of up
        # to a full batch of the agent (``DirectQueue.batch_max``): a piece of a direct
        # topic that follows on from the partition's last read, without a gap, goes onto
        # the queue as one list (``DirectQueue.put_many``); any other piece message by
        # message, as upstream. The loop gets a turn after each full batch handed over,
        # not every 100 messages: a fetch can bring tens of thousands, and the agent
        # folds what it finds at its turn. With batches of 100 a backlog drained ~7 %
        # slower (a delivery, an ack and a loop turn each), and the commit timer did not
        # see the worker behind: the fetched records the drain still held counted
        # nowhere (``NudgeflowApp.clicks_waiting``).
        callback = self.callback
        direct_queues = self.app.direct_queues  # type: ignore[attr-defined]
        self._direct_dropped = getattr(self, "_direct_dropped", {})
        fetch_pieces = self.fetch_pieces
        consumer_should_stop = cast(Service, self)._stopped.is_set
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set
        suspended = self.suspend_flow.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        acks_enabled_for = self.app.topics.acks_enabled_for
        num_since_yield = 0
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                epoch, seeks, dropped = self._seek_epoch, self._seeks, False
                sought_back: set[TP] = set()
                ait = fetch_pieces(timeout=1.0)
                await self.sleep(0)
                yield_every = _piece_max(direct_queues)
                if not self.should_stop:
                    async for tp, piece in ait:
                        moved_on = False
                        if num_since_yield >= yield_every:
                            await asyncio.sleep(0)
                            num_since_yield = 0
                            if self._fetch_moved_on():
                                # Upstream's getmany stops after the record it handed out.
                                piece, moved_on = piece[:1], True
                        num_since_yield += len(piece)
                        direct = direct_queues.get(tp.topic)
                        if direct is not None and self._hand_over(direct, tp, piece, epoch):
                            if moved_on:
                                break
                            continue
                        for number, message in enumerate(piece):
                            if moved_on and number:
                                break  # as upstream's getmany stops after an await
                            offset = message.offset
                            if direct is not None:
                                # Dropped, not counted as read (no gap either), and
                                # fetched again: asked for before (or while) a seek moved
                                # the partition, from where the seek sent it; while flow
                                # is suspended (a rebalance), from itself at
                                # ``resume_flow``.
                                if self._seek_epoch % 2:  # a seek is running
                                    self._direct_dropped.setdefault(tp, offset)
                                    dropped = True
                                    continue
                                if self._seek_epoch != epoch:
                                    if tp not in sought_back:
                                        sought_back.add(tp)
                                        self._seek_back(tp, offset)
                                    dropped = True
                                    continue
                                if suspended():
                                    r_offset = get_read_offset(tp)
                                    if r_offset is None or offset >= r_offset:
                                        self._direct_dropped.setdefault(tp, offset)
                                        dropped = True
                                    continue
                            r_offset = get_read_offset(tp)
                            if r_offset is None or offset >= r_offset:
                                gap = offset - (r_offset or 0)
                                if gap > 1 and r_offset and acks_enabled_for(message.topic):
                                    await self._add_gap(tp, r_offset + 1, offset)
                                    moved_on = self._fetch_moved_on()
                                if suspended():
                                    await self.wait_first(
                                        callback(message), self.suspend_flow.wait()
                                    )
                                    moved_on = self._fetch_moved_on()
                                elif direct is not None:
                                    if not direct.put_nowait(message):
                                        await direct.put(message)
                                        moved_on = self._fetch_moved_on()
                                else:
                                    await callback(message)
                                    moved_on = self._fetch_moved_on()
                                set_read_offset(tp, offset)
                        if moved_on:
                            break
                    await ait.aclose()  # the fetch ends here, whether or not all was read
                    if self._seeks == seeks and not dropped:
                        self._settle()
                    unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)

    def _hand_over(self, queue: DirectQueue, tp: TP, piece: list[Message], epoch: int) -> bool:
        """Put ``piece`` on ``queue`` at once when nothing in it needs a look of its own:
        no seek since the fetch, flow not suspended, and offsets that follow on from the
        partition's last read without a gap; False, and nothing put, otherwise."""
        if self._seek_epoch != epoch or self._seek_epoch % 2 or self.suspend_flow.is_set():
            return False
        first = piece[0].offset
        if piece[-1].offset - first != len(piece) - 1:
            return False  # a gap inside (a compacted topic, a transaction's marker)
        r_offset = self._read_offset[tp]
        if r_offset is not None and (first < r_offset or (r_offset and first - r_offset > 1)):
            return False  # read before, or a gap since the last read
        if not queue.put_many(piece):
            return False  # full, or flow suspended: message by message, waiting
        self._read_offset[tp] = piece[-1].offset
        return True

    async def highwaters(self, *partitions: TP) -> Mapping[TP, int]:
        reported = await super().highwaters(*partitions)
        if not self.app.tansu_compat:  # type: ignore[attr-defined]
            return reported
        # Runs on the app's loop: a second consumer inside Faust's consumer thread stalls.
        fetched = await fetch_true_highwaters(
            faust_aiokafka.server_list(
                self.transport.url,
                # ``TransportT`` does not declare ``default_port``; the aiokafka Transport has it.
                cast(faust_aiokafka.Transport, self.transport).default_port,
            ),
            partitions,
        )
        return {tp: max(reported.get(tp) or 0, fetched[tp]) for tp in partitions}


def _piece_max(direct_queues: Mapping[str, DirectQueue]) -> int:
    """How many records the drain hands over between two turns of the loop: a full batch
    of the direct queues' agents (upstream: 100)."""
    return max((queue.batch_max for queue in direct_queues.values()), default=100)


def _pieces(
    records: Mapping[TP, list[Any]],
    accepted: set[TP],
    direct_queues: Mapping[str, object],
    piece_max: int,
) -> Iterable[tuple[TP, list[Any]]]:
    """The accepted partitions' records in pieces of up to ``piece_max``, the partitions
    taking turns (as upstream's scheduler does record by record), those of topics without
    a direct queue first in each turn: a few feedback records do not wait behind a fetch
    of clicks.

    Examples
    --------
    >>> a, b = TP("t", 0), TP("t", 1)
    >>> [(tp.partition, p) for tp, p in _pieces({a: [1, 2, 3], b: [4]}, {a, b}, {"t": 0}, 2)]
    [(0, [1, 2]), (1, [4]), (0, [3])]
    """
    turn = sorted(
        (tp for tp in records if tp in accepted and records[tp]),
        key=lambda tp: tp.topic in direct_queues,
    )
    start = 0
    while turn:
        for tp in turn:
            yield tp, records[tp][start : start + piece_max]
        start += piece_max
        turn = [tp for tp in turn if len(records[tp]) > start]


def fetch_position(app: faust.App, tp: TP) -> tuple[int | None, int | None, int | None]:
    """A partition's high watermark as the worker's consumer last heard it, the wall
    time (ms) the fetch that brought it was sent, and the consumer's position (the
    next offset it will hand out).

    aiokafka keeps the high watermark and the position per assigned partition (the
    first updated by each fetch answer, the second as records are handed to the
    consumer); the send time is the transport's. Faust exposes only the high
    watermark. Raises when the partition is not assigned.
    """
    consumer = cast(Any, app.consumer)._thread._ensure_consumer()
    partition = TopicPartition(tp.topic, tp.partition)
    state = consumer._subscription.subscription.assignment.state_value(partition)
    position = state.position if state.has_valid_position else None
    asked_ms = getattr(consumer, _ASKED_MS, {}).get(partition)
    return consumer.highwater(partition), asked_ms, position


def settled_position(app: faust.App, tp: TP) -> int | None:
    """How far the worker's queue of a direct-queue topic's partition holds every record:
    the consumer's position when its drain last handed over all of a fetch's records,
    or None since a seek until it has."""
    settled: dict[TP, int] = cast(Any, app.consumer)._settled
    return settled.get(tp)


def committed_offset(app: faust.App, tp: TP) -> int | None:
    """The offset the worker last committed for an assigned partition (the next one it
    reads after a restart), or None when it has none.

    Faust keeps it per assigned partition: read from the broker when it seeks after a
    rebalance, updated by each commit, dropped when the partition is revoked. Its
    monitor's copy is never dropped, so it goes stale when a partition comes back.
    """
    offset = cast(Any, app.consumer)._committed_offset.get(tp)
    return None if offset is None else int(offset)


def raw_producer(app: faust.App) -> AIOKafkaProducer:
    """The aiokafka producer under Faust's, for sending prebuilt record batches."""
    return cast(AIOKafkaProducer, cast(faust_aiokafka.Producer, app.producer)._ensure_producer())


class NudgeflowTransport(faust_aiokafka.Transport):
    """Faust's aiokafka transport with a configurable fetch wait and the Tansu shim."""

    Consumer = _Consumer
