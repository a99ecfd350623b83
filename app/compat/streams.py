"""Reading an agent's events in batches.

Faust's ``Stream`` hands out one event per ``__anext__`` with a handshake of
several awaits (and ``take()`` adds a buffer task on top): ~100 µs per event.
An agent that processes whole batches reads its channel's queue directly and
acknowledges each event itself once the batch is done.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import faust
from faust.types import EventT, Message

__all__ = ["RawSchema", "event_batches"]


async def event_batches(
    stream: faust.StreamT[Any], max_events: int
) -> AsyncIterator[list[EventT[Any]]]:
    """Yield lists of up to ``max_events`` events as soon as at least one is there.

    The caller must ``ack()`` every event it receives (after its effects are handed
    to the producer), or the offsets are never committed.
    """
    queue = stream.channel.queue  # type: ignore[attr-defined]
    get, get_nowait = queue.get, queue.get_nowait
    while True:
        try:
            batch: list[EventT[Any]] = [await get()]
        except StopAsyncIteration:  # Faust throws this into the queue when the agent stops
            return
        while len(batch) < max_events:
            try:
                batch.append(get_nowait())
            except asyncio.QueueEmpty:
                break
        yield batch


class RawSchema(faust.Schema[bytes, bytes]):
    """Bytes in, bytes out: events carry the message's key and value as they are.

    Faust's schema decodes each message through its codec registry even for
    ``raw``; topics whose consumer decodes the value itself skip that work.
    """

    def compile(self, app: faust.types.AppT, **_: Any) -> Any:
        create_event = app.create_event

        async def decode(message: Message, *, propagate: bool = False) -> EventT[bytes]:
            return create_event(message.key, message.value, message.headers, message)

        return decode
