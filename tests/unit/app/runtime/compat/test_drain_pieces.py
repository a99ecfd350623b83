"""The consumer's drain in pieces: which records go onto a direct queue as one list."""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.consumer import Consumer as Upstream
from faust.types import TP
from intervaltree import IntervalTree
from mode.utils.queues import FlowControlEvent

from app.runtime.compat import DirectQueue
from app.runtime.compat.faust_transport import _Consumer, _pieces

CLICKS_0 = TP("clicks", 0)


def _consumer(read: int | None, *, epoch: int = 2, suspended: bool = False) -> Any:
    """What ``_hand_over`` reads of the consumer: seek epoch, suspension, read offsets."""
    suspend_flow = SimpleNamespace(is_set=lambda: suspended)
    read_offset: defaultdict[TP, int | None] = defaultdict(lambda: None)
    read_offset[CLICKS_0] = read
    consumer = SimpleNamespace(_seek_epoch=epoch, suspend_flow=suspend_flow,
                               _read_offset=read_offset)  # fmt: skip
    consumer.hand_over = lambda *args: _Consumer._hand_over(consumer, *args)  # type: ignore[arg-type]
    return consumer


def _queue(maxsize: int = 100) -> DirectQueue:
    app: Any = SimpleNamespace(flow_control=FlowControlEvent(initially_suspended=False))
    return DirectQueue(app, "clicks", maxsize)


def _messages(*offsets: int) -> list[Any]:
    return [SimpleNamespace(offset=offset, tp=CLICKS_0) for offset in offsets]


@pytest.mark.parametrize("read", [None, 0, 9, 10])
def test_a_piece_that_follows_on_goes_onto_the_queue_at_once(read: int | None) -> None:
    consumer, queue, piece = _consumer(read), _queue(), _messages(10, 11, 12)

    assert consumer.hand_over(queue, CLICKS_0, piece, 2) is True
    assert queue.size() == 3
    assert consumer._read_offset[CLICKS_0] == 12


@pytest.mark.parametrize(
    ("read", "offsets", "why"),
    [
        (9, (10, 12, 13), "a gap inside the piece"),
        (7, (10, 11, 12), "a gap since the last read"),
        (11, (10, 11, 12), "read before, in part"),
    ],
)
def test_a_piece_with_a_gap_or_read_before_goes_message_by_message(
    read: int, offsets: tuple[int, ...], why: str
) -> None:
    consumer, queue = _consumer(read), _queue()

    assert consumer.hand_over(queue, CLICKS_0, _messages(*offsets), 2) is False, why
    assert queue.size() == 0
    assert consumer._read_offset[CLICKS_0] == read


@pytest.mark.parametrize(
    ("consumer", "fetch_epoch", "why"),
    [
        (_consumer(9, epoch=3), 3, "a seek was running as the fetch was asked, and still is"),
        (_consumer(9, epoch=4), 2, "a seek came since the fetch"),
        (_consumer(9, suspended=True), 2, "flow is suspended (a rebalance)"),
    ],
)
def test_nothing_is_put_at_once_around_a_seek_or_a_rebalance(
    consumer: Any, fetch_epoch: int, why: str
) -> None:
    queue = _queue()

    assert consumer.hand_over(queue, CLICKS_0, _messages(10, 11), fetch_epoch) is False, why
    assert queue.size() == 0
    assert consumer._read_offset[CLICKS_0] == 9


def test_a_piece_that_does_not_fit_waits_message_by_message() -> None:
    consumer, queue = _consumer(9), _queue(maxsize=2)

    assert consumer.hand_over(queue, CLICKS_0, _messages(10, 11, 12), 2) is False
    assert queue.size() == 0
    assert consumer._read_offset[CLICKS_0] == 9


def test_pieces_take_turns_and_other_topics_go_first_in_each_turn() -> None:
    c0, c1, feedback, revoked = TP("clicks", 0), TP("clicks", 1), TP("feedback", 0), TP("x", 0)
    records = {c0: [1, 2, 3, 4, 5], c1: [6], feedback: [7, 8, 9], revoked: [10]}

    pieces = list(_pieces(records, {c0, c1, feedback}, {"clicks": object()}, 2))

    assert pieces == [(feedback, [7, 8]), (c0, [1, 2]), (c1, [6]), (feedback, [9]),
                      (c0, [3, 4]), (c0, [5])]  # fmt: skip


@pytest.mark.parametrize(
    ("acked", "committed", "gaps"),
    [
        ([5, 6, 7, 8], 4, []),  # one run after the committed offset: the fast way
        ([8, 6, 7, 5], 4, []),  # acked out of order
        ([5, 6, 8, 9], 4, []),  # two runs: the first counts
        ([7, 8, 9], 4, []),  # a hole after the committed offset: nothing to commit
        ([5, 6, 7], None, []),  # nothing committed yet
        ([5, 6, 9, 10], 4, [(7, 9)]),  # a gap (compaction) filled in
    ],
)
def test_the_new_offset_is_upstreams(
    acked: list[int], committed: int | None, gaps: list[tuple[int, int]]
) -> None:
    def consumer() -> Any:
        # Only the fields ``_new_offset`` reads (no service started).
        c = _Consumer.__new__(_Consumer)
        c._acked = {CLICKS_0: list(acked)}
        c._acked_index = {CLICKS_0: set(acked)}
        c._committed_offset = {CLICKS_0: committed}
        c._gap = {CLICKS_0: IntervalTree.from_tuples(gaps)}
        return c

    ours, theirs = consumer(), consumer()
    ours_offset = ours._new_offset(CLICKS_0)
    theirs_offset = Upstream._new_offset(theirs, CLICKS_0)

    assert ours_offset == theirs_offset
    assert ours._acked == theirs._acked and ours._acked_index == theirs._acked_index
