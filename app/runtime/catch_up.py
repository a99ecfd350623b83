"""Catching up after a takeover: a worker answers for a ``clicks`` partition it was given
only once it has processed the partition up to where it ended at the assignment.

A worker given a partition recovers the partition's states from the table's changelog,
which holds them as of the previous owner's last commit. The events after the committed
offset, which the previous owner may have processed (and answered for) before it died,
are processed again from ``clicks``; until then a customer whose only events those are
would look never seen. So the worker reads the end offset of each partition it is newly
given, and the partition is caught up once the worker has processed, or the group has
committed, everything before that offset. Events sent after the assignment are ordinary
traffic, whose processing a reader never waits for. Unlike a time window, the rule is
deterministic: a customer never seen is a ``404`` as soon as their partition is caught up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from faust.types import TP

from app.runtime.compat.faust_transport import committed_offset
from app.runtime.topics import CLICKS

if TYPE_CHECKING:
    from faust.types import Message

    from app.runtime.faust_app import NudgeflowApp

__all__ = ["CatchUp", "follow_catch_up"]

log = logging.getLogger(__name__)

# A failed read of the end offsets (the broker away, the consumer restarting) is tried again.
_RETRY_S = 1.0


class CatchUp:
    """Which newly assigned partitions are not yet processed up to their end at the
    assignment, and how many records each still lacks.

    ``committed`` gives the group's committed offset of a partition (the next offset to
    read), or None without one.

    Examples
    --------
    >>> committed = {0: 100, 1: None}
    >>> catch_up = CatchUp(committed.get)
    >>> sorted(catch_up.assign({0, 1}, generation=1))
    [0, 1]
    >>> catch_up.remaining() is None  # the end offsets are not read yet
    True
    >>> catch_up.ends_read({0: 120, 1: 0}, generation=1)
    >>> catch_up.left(0), catch_up.left(1), catch_up.remaining()
    (20, 0, 20)
    >>> catch_up.processed_to(0, 120)
    >>> catch_up.left(0), catch_up.remaining()
    (0, 0)
    """

    def __init__(self, committed: Callable[[int], int | None]) -> None:
        self._committed = committed
        self._held: set[int] = set()
        # Partition not caught up → its end offset at the assignment (None: being read).
        self._ends: dict[int, int | None] = {}
        # Partition not caught up → the offset after the last record processed.
        self._processed: dict[int, int] = {}
        self._generation = 0

    def assign(self, partitions: Iterable[int], generation: int) -> set[int]:
        """Take a new assignment; the partitions whose end offsets are to be read now
        (those newly given, and those whose ends an earlier read did not bring)."""
        held = set(partitions)
        for partition in self._ends.keys() - held:  # revoked: another worker answers
            del self._ends[partition]
            self._processed.pop(partition, None)
        for partition in held - self._held:
            self._ends[partition] = None
            self._processed.pop(partition, None)
        self._held = held
        self._generation = generation
        return {p for p, end in self._ends.items() if end is None}

    def awaits_ends(self, generation: int) -> bool:
        """Whether end offsets read for ``generation``'s assignment are still wanted."""
        return generation == self._generation and None in self._ends.values()

    def ends_read(self, ends: dict[int, int], generation: int) -> None:
        """The end offsets read for ``generation``'s assignment (a later one asks anew)."""
        if generation != self._generation:
            return
        for partition, end in ends.items():
            if partition in self._ends and self._ends[partition] is None:
                self._ends[partition] = end

    def processed(self, messages: Iterable[Message]) -> None:
        """Note a batch the agent has processed and acknowledged."""
        ends = self._ends
        if not ends:
            return
        for message in messages:
            if message.partition in ends:
                self.processed_to(message.partition, message.offset + 1)

    def processed_to(self, partition: int, offset: int) -> None:
        """Note that every record of ``partition`` before ``offset`` is processed."""
        if offset > self._processed.get(partition, 0):
            self._processed[partition] = offset

    def left(self, partition: int) -> int | None:
        """Records of ``partition`` still to process: 0 once it is caught up (or when it
        was never taken over), None while its end offset is being read. A partition
        found caught up is forgotten: it stays so until it is assigned anew."""
        if partition not in self._ends:
            return 0
        end = self._ends[partition]
        if end is None:
            return None
        done = max(self._processed.get(partition, 0), self._committed(partition) or 0)
        if done < end:
            return end - done
        del self._ends[partition]
        self._processed.pop(partition, None)
        return 0

    def remaining(self) -> int | None:
        """Records still to process over every partition; None while an end is being read."""
        total, unknown = 0, False
        for partition in list(self._ends):
            left = self.left(partition)
            if left is None:
                unknown = True
            else:
                total += left
        return None if unknown else total


def follow_catch_up(app: NudgeflowApp) -> CatchUp:
    """A ``CatchUp`` of ``app``'s ``clicks`` partitions: it reads the end offsets of those
    each assignment gives, and counts the batches the ``clicks`` agent acknowledges."""
    catch_up = CatchUp(lambda partition: committed_offset(app, TP(CLICKS, partition)))
    generations = 0

    def _assigned(sender: object, assigned: set[TP], **kwargs: object) -> None:
        nonlocal generations
        generations += 1
        partitions = {tp.partition for tp in assigned if tp.topic == CLICKS}
        unread = catch_up.assign(partitions, generations)
        if unread:
            app.add_future(_read_ends(app, catch_up, unread, generations))

    app.on_partitions_assigned.connect(_assigned)  # type: ignore[arg-type]
    app.clicks_queue.on_acked = catch_up.processed
    return catch_up


async def _read_ends(app: NudgeflowApp, catch_up: CatchUp, partitions: set[int],
                     generation: int) -> None:  # fmt: skip
    tps = [TP(CLICKS, partition) for partition in sorted(partitions)]
    while catch_up.awaits_ends(generation):
        try:
            # With the tansu flavour, the high watermark a Fetch reports (compat).
            ends = await app.consumer.highwaters(*tps)
            catch_up.ends_read({tp.partition: int(ends[tp]) for tp in tps}, generation)
            return
        except Exception as exc:  # the broker away, the consumer restarting: try again
            log.warning("could not read the end offsets of %s, trying again: %r", tps, exc)
            await asyncio.sleep(_RETRY_S)
