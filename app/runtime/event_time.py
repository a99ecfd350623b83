"""Watermarks and timers of the ``clicks`` partitions this worker owns, and applying outcomes.

The pure parts are ``app.detect.timers`` (clocks and timer indexes) and
``app.detect.pipeline`` (what a timer or an event does to a state); this module
keeps one clock and one index per partition, rebuilds them from the table after
a rebalance, and writes what the pipeline returns back into the table.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from faust.types import TP

from app.deliver.delivery import Outbox
from app.detect.pipeline import Outcome, Rules, fire_timers, next_due_ms, settled
from app.detect.state import expire_state
from app.detect.timers import TIMER_ROUNDS, PartitionClock, TimerIndex
from app.runtime.compat import fetch_position, settled_position
from app.runtime.metrics import Metrics
from app.runtime.topics import CLICKS

if TYPE_CHECKING:
    from app.runtime.faust_app import NudgeflowApp
    from tables.customer_to_state import CustomerStore
    from tables.partition_models import ModelStore

__all__ = ["EventTime", "fire_idle_partitions"]

log = logging.getLogger(__name__)

#: Customers the rebuild reads between two turns of the loop (~10 ms).
_REBUILD_CHUNK = 1_000


class EventTime:
    """One ``PartitionClock`` and one ``TimerIndex`` per owned ``clicks`` partition."""

    def __init__(
        self,
        customers: CustomerStore,
        rules: Rules,
        models: ModelStore | None,
        metrics: Metrics,
        live_bound_ms: int,
        assigned: Callable[[], set[int]],
    ) -> None:
        self.customers = customers
        # The ``clicks`` partitions this worker owns now.
        self.assigned = assigned
        # How close to the wall clock a partition's newest event must be for it to follow it.
        self.live_bound_ms = live_bound_ms
        self.rules = rules
        # The partitions' online models: their rules (adapted thresholds) and what they learn.
        self.models = models
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

    async def rebuild(self, now_ms: int) -> None:
        """Clocks and timers of the owned partitions from the table, as a restart or
        rebalance left it.

        The newest event time of a partition is the newest ``last_seen`` of its
        customers, so the watermark continues where the previous owner left it. A
        partition whose newest event is recent follows the wall clock again at once
        (as if that event had arrived on time); one of old events does not.

        Every customer is read, most of them decoded (recovery leaves states encoded;
        1.2 s for 100 000 on the benchmark machine), so the loop gets a turn every
        ``_REBUILD_CHUNK`` customers: web requests and metrics go on, and the caller
        holds the batch lock, so no event or timer runs on half-built indexes. A
        rebalance meanwhile marks them stale again.
        """
        self.stale = False
        self.clocks.clear()
        self.timers.clear()
        partitions = self.assigned()
        if self.models is not None:
            self.models.keep_only(partitions)
            for partition in partitions:
                self.models.learner(partition)  # restored now, not on the partition's next event
        for partition in partitions:
            self.clock(partition)
        self.customers.forget_dropped()
        for read, (partition, key, state) in enumerate(self.customers.by_partition(partitions)):
            clock = self.clocks[partition]
            clock.newest_ts_ms = max(clock.newest_ts_ms, state.profile.last_seen_ts_ms)
            self.timers[partition].schedule(key, next_due_ms(state, self.rules))
            if read % _REBUILD_CHUNK == _REBUILD_CHUNK - 1:
                await asyncio.sleep(0)
        for partition in partitions:
            clock = self.clocks[partition]
            recent = now_ms - clock.newest_ts_ms <= self.live_bound_ms
            clock.wall_at_newest_ms = clock.newest_ts_ms if recent else now_ms
        log.info("event time rebuilt for partitions %s: %d timers", sorted(partitions),
                 self.pending())  # fmt: skip

    def fire_due(self, partition: int, watermark_ms: int, emitted_ms: int, outbox: Outbox) -> None:
        """Run the timers of ``partition`` due by ``watermark_ms``; what they decide goes to
        ``outbox``."""
        timers = self.timers.get(partition)
        if timers is None or not timers.due_by(watermark_ms):
            return  # the common case, once per event: one look at the heap
        for _round in range(TIMER_ROUNDS):
            keys = timers.pop_due(watermark_ms)
            if not keys:
                return
            learner = self.models.learner(partition) if self.models is not None else None
            rules = learner.rules if learner is not None else self.rules
            for key in keys:
                state = self.customers.get(key)
                if state is None:
                    continue
                self.metrics.timers_fired.inc()
                try:
                    outcome = fire_timers(state, watermark_ms, rules, emitted_ms)
                    if learner is not None and outcome.state is not state:
                        learner.learn_ended(key, state, outcome.state)
                        learner.annotate(outcome.interventions, outcome.state, state)
                except Exception:  # a bug must not stop the partition: keep the state as it was
                    log.exception("internal error on the timer of a customer of clicks[%s]",
                                  partition)  # fmt: skip
                    continue
                if outcome.state is state:
                    # Nothing held yet (the due time came from rules the models have
                    # raised since, or from the base rules at a rebuild): look again when
                    # it is due now.
                    if outcome.due_ms is not None and outcome.due_ms > watermark_ms:
                        timers.schedule(key, outcome.due_ms)
                    continue
                self.apply(key, partition, outcome, state, outbox)

    def apply(
        self,
        customer_id: str,
        partition: int,
        outcome: Outcome,
        before: object,
        outbox: Outbox,
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
        outbox.interventions.extend(outcome.interventions)
        outbox.uplift.extend(outcome.uplift)
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
            if expired is state:
                continue
            if expired is not None and not self.customers.is_decoded(key):
                # An encoded state is small already: its next event or timer ends the
                # sessions as this would, and it stays out of the decoded ones meanwhile.
                continue
            self.apply(key, partition, settled(expired, rules), state, Outbox())

    def pending(self) -> int:
        """Customers with a silence rule due, over all partitions."""
        return sum(len(timers) for timers in self.timers.values())


async def fire_idle_partitions(app: NudgeflowApp) -> None:
    """Let the wall clock move the watermark of partitions that follow it and are fully read.

    Live traffic then hears a customer's silence on time even when nobody else on
    the partition clicks. The wall clock counts only up to the last fetch answer
    that showed the partition fully read: a record still on the broker (or one
    the consumer has not asked about yet, say after a pause) may be the event that
    cancels the silence.
    """
    event_time = app.event_time
    if event_time.stale:
        # After a restart or a rebalance with no event yet: rebuild here, so a silence
        # that began before is still heard.
        if not app.is_ready()[0]:
            return
        await event_time.rebuild(int(time.time() * 1000))
    lateness_ms, live_bound_ms = app.rules.time.allowed_lateness_ms, app.max_future_skew_ms
    now_ms = int(time.time() * 1000)
    outbox = Outbox()
    for partition, clock in list(event_time.clocks.items()):
        if not clock.follows_wall_clock(live_bound_ms):
            continue
        read_up_to_ms = _read_up_to_ms(app, partition)
        if read_up_to_ms is None:
            continue
        as_of_ms = min(now_ms, read_up_to_ms)
        watermark_ms = clock.wall_watermark_ms(as_of_ms, lateness_ms, live_bound_ms)
        event_time.fire_due(partition, watermark_ms, now_ms, outbox)
    await app.delivery.send(outbox)
    app.count_interventions(outbox.interventions)


def _read_up_to_ms(app: NudgeflowApp, partition: int) -> int | None:
    """When a fetch answer last showed every record of the partition processed, or None.

    Processed: on the agent's queue no more (nor in the batch it holds), and handed
    over to it by the consumer, not only fetched (``settled_position``).
    """
    if app.clicks_queue.size():
        return None
    tp = TP(CLICKS, partition)
    try:
        highwater, asked_ms, _position = fetch_position(app, tp)
        settled = settled_position(app, tp)
    except Exception:  # not assigned any more, or the consumer is restarting
        return None
    if highwater is None or asked_ms is None or settled is None or settled < highwater:
        return None
    # The answer was built after its fetch was sent, however late it was read.
    return asked_ms
