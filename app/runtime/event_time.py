"""Watermarks and timers of the ``clicks`` partitions this worker owns, and applying outcomes.

The pure parts are ``app.detect.timers`` (clocks and timer indexes) and
``app.detect.pipeline`` (what a timer or an event does to a state); this module
keeps one clock and one index per partition, rebuilds them from the table after
a rebalance, and writes what the pipeline returns back into the table.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from app.detect.pipeline import Outcome, Rules, fire_timers, next_due_ms
from app.detect.state import expire_state
from app.detect.timers import PartitionClock, TimerIndex
from app.runtime.metrics import Metrics

if TYPE_CHECKING:
    from tables.customer_to_state import CustomerStore

__all__ = ["EventTime"]

log = logging.getLogger(__name__)

_MAX_ROUNDS = 4


class EventTime:
    """One ``PartitionClock`` and one ``TimerIndex`` per owned ``clicks`` partition."""

    def __init__(
        self, customers: CustomerStore, rules: Rules, metrics: Metrics, live_bound_ms: int
    ) -> None:
        self.customers = customers
        # How close to the wall clock a partition's newest event must be for it to follow it.
        self.live_bound_ms = live_bound_ms
        self.rules = rules
        self.metrics = metrics
        self.clocks: dict[int, PartitionClock] = {}
        self.timers: dict[int, TimerIndex] = {}
        # Set at every rebalance: clocks and timers are rebuilt from the recovered table.
        self.stale = True
        # Customer ids the expiry sweep has still to visit in its current pass.
        self._unswept: list[str] = []

    def clock(self, partition: int) -> PartitionClock:
        """The partition's clock (created empty for a partition not seen yet)."""
        clock = self.clocks.get(partition)
        if clock is None:
            clock = self.clocks[partition] = PartitionClock()
            self.timers[partition] = TimerIndex()
        return clock

    def rebuild(self, partitions: set[int], now_ms: int) -> None:
        """Clocks and timers of ``partitions`` from the table, as a restart or rebalance left it.

        The newest event time of a partition is the newest ``last_seen`` of its
        customers, so the watermark continues where the previous owner left it. A
        partition whose newest event is recent follows the wall clock again at once
        (as if that event had arrived on time); one of old events does not.
        """
        self.clocks.clear()
        self.timers.clear()
        thresholds = self.rules.thresholds
        for partition, items in self.customers.by_partition(partitions).items():
            clock = self.clock(partition)
            timers = self.timers[partition]
            for key, state in items:
                clock.newest_ts_ms = max(clock.newest_ts_ms, state.profile.last_seen_ts_ms)
                timers.schedule(key, next_due_ms(state, thresholds))
            recent = now_ms - clock.newest_ts_ms <= self.live_bound_ms
            clock.wall_at_newest_ms = clock.newest_ts_ms if recent else now_ms
        self.stale = False
        log.info("event time rebuilt for partitions %s: %d timers", sorted(partitions),
                 self.pending())  # fmt: skip

    def fire_due(
        self, partition: int, watermark_ms: int, emitted_ms: int, sent: list[dict[str, Any]]
    ) -> None:
        """Run the timers of ``partition`` due by ``watermark_ms``; interventions go to ``sent``."""
        timers = self.timers.get(partition)
        if timers is None or not timers.due_by(watermark_ms):
            return  # the common case, once per event: one look at the heap
        # A customer can have two silences due at once (each check re-arms the next); a few
        # rounds catch them without letting a rule that never fires spin here.
        for _round in range(_MAX_ROUNDS):
            keys = timers.pop_due(watermark_ms)
            if not keys:
                return
            for key in keys:
                state = self.customers.get(key)
                if state is None:
                    continue
                self.metrics.timers_fired.inc()
                try:
                    outcome = fire_timers(state, watermark_ms, self.rules, emitted_ms)
                except Exception:  # a bug must not stop the partition: keep the state as it was
                    log.exception("internal error on the timer of a customer of clicks[%s]",
                                  partition)  # fmt: skip
                    continue
                self.apply(key, partition, outcome, state, sent)

    def apply(
        self,
        customer_id: str,
        partition: int,
        outcome: Outcome,
        before: object,
        sent: list[dict[str, Any]],
    ) -> None:
        """Write an outcome back: the state (or its deletion), its next timer, its interventions."""
        state = outcome.state
        if state is None:
            if before is not None:
                self.customers.delete(customer_id, partition)
                self.metrics.customers_expired.inc()
        elif state is not before:
            self.customers.put(customer_id, state, partition)
            self.timers[partition].schedule(customer_id, outcome.due_ms)
        sent.extend(outcome.interventions)
        metrics = self.metrics
        for _reason, cause in outcome.suppressed:
            metrics.interventions_suppressed.labels(cause=cause).inc()

    def sweep(self, max_customers: int) -> None:
        """End idle sessions and delete expired customers, ``max_customers`` at a time.

        Decided by each partition's data watermark, as the customer's next event
        would decide it (``expire_state``), so a sweep never changes what a replay
        decides; it only frees memory sooner. A pass over every customer takes
        as many calls as it needs; then the next pass begins.
        """
        if not self._unswept:
            self._unswept = self.customers.keys()
        chunk = self._unswept[-max_customers:]
        del self._unswept[-max_customers:]
        rules = self.rules
        lateness = rules.time.allowed_lateness_ms
        for key in chunk:
            state = self.customers.get(key)
            partition = self.customers.partition_of(key)
            clock = self.clocks.get(partition) if partition is not None else None
            if state is None or clock is None or partition is None:
                continue
            expired = expire_state(state, clock.watermark_ms(lateness), rules.limits, rules.time)
            if expired is not state:
                self.apply(key, partition, Outcome(state=expired), state, [])

    def pending(self) -> int:
        """Customers with a silence rule due, over all partitions."""
        return sum(len(timers) for timers in self.timers.values())
