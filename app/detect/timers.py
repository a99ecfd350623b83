"""Event-time watermarks and timers of one partition, for rules that fire on silence.

Pure data structures: the caller passes in every time, wall-clock time included.

Faust and Quix Streams close windows only when another message arrives
(faust-streaming #238, #250; quix-streams #790); silence (a customer who stops
at payment) needs timers. Each ``clicks`` partition keeps:

- a ``PartitionClock``: the newest event time seen, and so the *watermark*
  (newest - allowed lateness). Processing one partition in offset order moves it
  the same way at any replay speed, so timers fired by it are deterministic.
- a ``TimerIndex``: customers by the event time at which a silence rule could next
  fire for them. It is a cache of the table (``next_due_ms`` of each state), rebuilt
  after a restart or a rebalance, so it needs no changelog of its own.

A partition that falls idle would never see its watermark move, so live traffic
would never hear its silences: ``PartitionClock.wall_watermark_ms`` lets the wall
clock move it, but only while the partition *follows the wall clock* (its newest
event arrived within ``live_bound_ms`` of its event time). A replay of old events
never does, so only its data moves its timers, and it fires the same ones at any
speed. The runtime also requires the partition to be fully read (no records
between the consumer's position and the broker's high watermark): a cancelling
event still waiting on the broker must be processed before the wall clock may
declare the silence.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

__all__ = ["TIMER_ROUNDS", "PartitionClock", "TimerIndex"]

#: A customer can have two silences due at once (each check re-arms the next): rounds of
#: a partition's due timers per look, enough to catch them without letting a rule that
#: never fires spin.
TIMER_ROUNDS = 4


@dataclass(slots=True)
class PartitionClock:
    """The event-time progress of one partition.

    Examples
    --------
    >>> clock = PartitionClock()
    >>> clock.observe(event_ts_ms=10_000, wall_ms=10_050)
    >>> clock.watermark_ms(lateness_ms=5_000)
    5000
    >>> clock.wall_watermark_ms(wall_ms=70_050, lateness_ms=5_000, live_bound_ms=300_000)
    65000
    """

    #: Newest event time seen on the partition (ms), 0 before any.
    newest_ts_ms: int = 0
    #: The wall clock when that event was processed.
    wall_at_newest_ms: int = 0

    def observe(self, event_ts_ms: int, wall_ms: int) -> None:
        """Account for one processed event."""
        if event_ts_ms > self.newest_ts_ms:
            self.newest_ts_ms = event_ts_ms
            self.wall_at_newest_ms = wall_ms

    def watermark_ms(self, lateness_ms: int) -> int:
        """Event time up to which the partition's data is complete: newest - lateness."""
        return self.newest_ts_ms - lateness_ms if self.newest_ts_ms else 0

    def follows_wall_clock(self, live_bound_ms: int) -> bool:
        """True when the newest event arrived within ``live_bound_ms`` of its event time."""
        return bool(self.newest_ts_ms) and (
            abs(self.wall_at_newest_ms - self.newest_ts_ms) <= live_bound_ms
        )

    def wall_watermark_ms(self, wall_ms: int, lateness_ms: int, live_bound_ms: int) -> int:
        """The watermark moved on by the wall time since the newest event, if live.

        Event time is taken to pass as fast as wall time since the newest event,
        from that event's own clock, so a partition whose clients' clocks lag the
        receiver's does not jump ahead.
        """
        data = self.watermark_ms(lateness_ms)
        if not self.follows_wall_clock(live_bound_ms):
            return data
        return max(data, self.newest_ts_ms + (wall_ms - self.wall_at_newest_ms) - lateness_ms)


@dataclass(slots=True)
class TimerIndex:
    """Customers of one partition by the event time their next silence rule is due.

    The latest ``schedule`` of a key says when it is due. Heap entries are never
    removed early: a key whose due time moved later keeps its earlier entry, and
    when that entry comes up the key is armed again for its latest due time
    instead of being returned. So a customer whose every click pushes the
    silence on (a dead-click wait, a session timeout) costs one push per entry
    that comes up, not a look at its state.

    Examples
    --------
    >>> timers = TimerIndex()
    >>> timers.schedule("c1", 5_000); timers.schedule("c2", 3_000); timers.schedule("c1", 4_000)
    >>> timers.pop_due(4_500), len(timers)
    (['c2', 'c1'], 0)
    >>> timers.schedule("c3", 1_000); timers.schedule("c3", 9_000)  # moved on: not due at 5 000
    >>> timers.pop_due(5_000), timers.next_due_ms()
    ([], 9000)
    """

    _heap: list[tuple[int, str]] = field(default_factory=list)
    # Each key's latest due time. Its earliest heap entry is at or before it.
    _due: dict[str, int] = field(default_factory=dict)

    def schedule(self, key: str, due_ms: int | None) -> None:
        """Look at ``key`` at ``due_ms`` rather than when it was scheduled before (None:
        nothing is due for it)."""
        due = self._due
        if due_ms is None:
            due.pop(key, None)
            return
        current = due.get(key)
        due[key] = due_ms
        if current is None or due_ms < current:
            heapq.heappush(self._heap, (due_ms, key))
        # A later time: the entry at ``current`` (or before) re-arms the key when it comes up.

    def next_due_ms(self) -> int | None:
        """The earliest due time of any key, or None."""
        heap, due = self._heap, self._due
        while heap:
            entry_ms, key = heap[0]
            due_ms = due.get(key)
            if due_ms == entry_ms:
                return entry_ms
            heapq.heappop(heap)
            if due_ms is not None and due_ms > entry_ms:
                heapq.heappush(heap, (due_ms, key))  # moved on: armed again
        return None

    def due_by(self, watermark_ms: int) -> bool:
        """True when some entry (perhaps of a key that moved on) is due at or before
        ``watermark_ms``."""
        heap = self._heap
        return bool(heap) and heap[0][0] <= watermark_ms

    def pop_due(self, watermark_ms: int) -> list[str]:
        """Every key due at or before ``watermark_ms``, earliest first, removed from the index;
        a key that moved on past it is armed again for when it is due."""
        heap, due = self._heap, self._due
        keys: list[str] = []
        while heap and heap[0][0] <= watermark_ms:
            entry_ms, key = heapq.heappop(heap)
            due_ms = due.get(key)
            if due_ms is None or due_ms < entry_ms:
                continue  # unscheduled, or an earlier entry has it
            if due_ms > entry_ms:
                # Moved on: armed again, and still popped by this loop if due by the
                # watermark, so keys come out in the order of their due times.
                heapq.heappush(heap, (due_ms, key))
            else:
                del due[key]
                keys.append(key)
        return keys

    def clear(self) -> None:
        """Forget every timer (the partition was revoked, or is being rebuilt)."""
        self._heap.clear()
        self._due.clear()

    def __len__(self) -> int:
        return len(self._due)
