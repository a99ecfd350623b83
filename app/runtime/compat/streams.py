"""Handing one topic's messages straight from the consumer to one agent, in batches.

Faust turns every message into an ``Event`` (schema decode, event object,
refcounts, a stream handshake of several awaits per ``__anext__``): most of a
worker's CPU at 20 k events/s goes there. The ``clicks`` agent decodes the
value itself and works on whole batches, so its messages skip all of that:
the consumer's drain loop (``app.runtime.compat.faust_transport``) puts them on a
``DirectQueue`` and the agent acknowledges each message itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import faust
from faust.types import Message
from mode.utils.queues import FlowControlQueue

__all__ = ["DirectQueue"]


class DirectQueue:
    """A bounded queue of raw messages for one topic, cleared at every rebalance.

    Like the queues of Faust's own streams it is managed by the app's flow
    control, so messages fetched before a rebalance are dropped with it (they
    are fetched again from the committed offsets).
    """

    def __init__(self, app: faust.App, topic: str, maxsize: int) -> None:
        self.app = app
        self.topic = topic
        self._queue: FlowControlQueue[Message] = FlowControlQueue(
            maxsize, flow_control=app.flow_control, clear_on_resume=True
        )
        #: Called with each batch once acknowledged (``app.runtime.catch_up`` counts them).
        self.on_acked: Callable[[list[Message]], None] | None = None
        # The batch the agent took last, until it asks for the next one.
        self._in_hand = 0
        #: Most messages the agent takes at once (set when it starts to take batches): the
        #: consumer's drain hands over that many before it gives the loop a turn.
        self.batch_max = 100

    async def put(self, message: Message) -> None:
        """Called by the consumer for each message of ``topic``; waits while full (or
        while flow is suspended)."""
        await self._queue.put(message)

    def put_nowait(self, message: Message) -> bool:
        """``put`` without waiting (three coroutines fewer a message): False, and nothing
        put, when the queue is full or flow is suspended; then ``put`` must wait."""
        queue = self._queue
        if queue.full() or not self.app.flow_control.is_active():
            return False
        queue.put_nowait(message)
        return True

    def put_many(self, messages: list[Message]) -> bool:
        """``put_nowait`` of a whole list at once: False, and nothing put, when it does not
        fit or flow is suspended. Appended as mode's ``force_put_nowait`` appends one
        message (the agent waiting for one is woken once)."""
        queue = self._queue
        if queue.maxsize - queue.qsize() < len(messages) or not self.app.flow_control.is_active():
            return False
        held: Any = queue  # asyncio.Queue's own fields, as mode uses them
        held._queue.extend(messages)
        held._unfinished_tasks += len(messages)
        held._finished.clear()
        held._wakeup_next(held._getters)
        return True

    async def batches(self, max_messages: int) -> AsyncIterator[list[Message]]:
        """Lists of up to ``max_messages`` messages, as soon as at least one is there."""
        queue = self._queue
        held: Any = queue  # asyncio.Queue's own fields, as mode uses them
        waiting, putters, wake = held._queue, held._putters, held._wakeup_next
        self.batch_max = max_messages
        while True:
            batch = [await queue.get()]
            # The rest at once: ``get_nowait`` a message at a time cost ~0.4 µs each.
            more = min(len(waiting), max_messages - 1)
            if more:
                take = waiting.popleft
                batch += [take() for _ in range(more)]
                for _ in range(more):  # as ``get_nowait`` does once per message taken
                    if not putters:
                        break
                    wake(putters)
            self._in_hand = len(batch)
            yield batch
            self._in_hand = 0

    def behind(self) -> bool:
        """Whether a full batch is already waiting: the agent is working off a backlog."""
        return self._queue.qsize() >= self.batch_max

    def size(self) -> int:
        """Messages not processed yet: waiting for the agent, or in the batch it took last
        and has not finished (it may be waiting for a lock before it begins)."""
        return self._queue.qsize() + self._in_hand

    def ack(self, messages: list[Message]) -> None:
        """Mark the messages processed: their offsets may now be committed."""
        # The worker's transport acks a batch at once (``faust_transport._Consumer``).
        self.app.consumer.ack_many(messages)  # type: ignore[attr-defined]
        if self.on_acked is not None:
            self.on_acked(messages)

    def __repr__(self) -> str:
        return f"<DirectQueue {self.topic} size={self._queue.qsize()}: {self._queue!r}>"
