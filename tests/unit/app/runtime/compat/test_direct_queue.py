"""``DirectQueue``: the consumer's hand-over of ``clicks`` messages to the agent."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from mode.utils.queues import FlowControlEvent

from app.runtime.compat import DirectQueue


def _queue(maxsize: int, *, suspended: bool = False) -> DirectQueue:
    app: Any = SimpleNamespace(flow_control=FlowControlEvent(initially_suspended=suspended))
    return DirectQueue(app, "clicks", maxsize)


async def test_put_nowait_hands_messages_over_in_order() -> None:
    queue = _queue(3)

    assert [queue.put_nowait(m) for m in ("a", "b")] == [True, True]
    batch = await anext(queue.batches(10))

    assert batch == ["a", "b"]


def test_put_nowait_refuses_when_full_so_the_consumer_waits() -> None:
    queue = _queue(2)

    assert [queue.put_nowait(m) for m in ("a", "b", "c")] == [True, True, False]
    assert queue.size() == 2


def test_put_nowait_refuses_while_flow_is_suspended() -> None:
    # A rebalance suspends the flow: what is fetched then must wait (and is dropped with
    # the queue at resume), never slip in ahead of the seek.
    queue = _queue(10, suspended=True)

    assert queue.put_nowait("a") is False
    assert queue.size() == 0


async def test_a_batch_the_agent_took_counts_until_it_asks_for_the_next() -> None:
    # The agent may wait for a lock before it folds what it took: until it has, the
    # events are not processed, and a silence timer must not take them for it.
    queue = _queue(10)
    batches = queue.batches(2)
    for message in ("a", "b", "c"):
        queue.put_nowait(message)

    assert await anext(batches) == ["a", "b"]
    assert queue.size() == 3
    assert await anext(batches) == ["c"]
    assert queue.size() == 1
    queue.put_nowait("d")
    assert await anext(batches) == ["d"]
    assert queue.size() == 1


async def test_put_many_hands_a_list_over_in_order_after_what_is_there() -> None:
    queue = _queue(5)
    queue.put_nowait("a")

    assert queue.put_many(["b", "c", "d"]) is True
    assert await anext(queue.batches(10)) == ["a", "b", "c", "d"]


def test_put_many_puts_all_or_nothing() -> None:
    # A list that does not fit goes message by message instead (the consumer waits in
    # ``put``): never half of it on the queue and the rest lost from view.
    queue = _queue(3)
    queue.put_nowait("a")

    assert queue.put_many(["b", "c", "d"]) is False
    assert queue.size() == 1
    assert queue.put_many(["b", "c"]) is True
    assert queue.size() == 3


def test_put_many_refuses_while_flow_is_suspended() -> None:
    queue = _queue(10, suspended=True)

    assert queue.put_many(["a"]) is False
    assert queue.size() == 0


async def test_put_many_wakes_the_agent_waiting_for_a_batch() -> None:
    queue = _queue(10)
    batches = queue.batches(10)
    waiting = asyncio.ensure_future(anext(batches))
    await asyncio.sleep(0)
    assert not waiting.done()

    queue.put_many(["a", "b"])

    assert await asyncio.wait_for(waiting, 1) == ["a", "b"]


async def test_a_batch_taken_wakes_as_many_waiting_puts_as_it_freed_places() -> None:
    queue = _queue(2)
    batches = queue.batches(2)
    queue.put_many(["a", "b"])
    putting = [asyncio.ensure_future(queue.put(m)) for m in ("c", "d")]
    await asyncio.sleep(0)
    assert not any(p.done() for p in putting)

    assert await anext(batches) == ["a", "b"]
    await asyncio.wait_for(asyncio.gather(*putting), 1)
    assert await anext(batches) == ["c", "d"]


async def test_behind_while_a_full_batch_waits_beyond_the_one_taken() -> None:
    # The agent's next batch would be a full one: a backlog, where its sends need not
    # have the loop first.
    queue = _queue(10)
    batches = queue.batches(2)
    for message in ("a", "b", "c"):
        queue.put_nowait(message)

    assert await anext(batches) == ["a", "b"]
    assert queue.behind() is False  # one waiting
    queue.put_nowait("d")
    assert queue.behind() is True
    assert await anext(batches) == ["c", "d"]
    assert queue.behind() is False
