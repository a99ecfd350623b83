# cython: annotation_typing=True
"""One ``clicks`` partition replayed in memory, in offset order: the worker's steps without Kafka.

Per event, as ``agents/process_clicks.py`` and ``app/runtime/event_time.py`` do it:
the partition's clock observes the event time (at most the allowed lateness ahead of
the record's arrival), the timers due by the watermark fire, the event is folded with
the learner's rules, the learner learns from it (once per offset), and the new state
is kept with its next timer. A timer that finds nothing due yet (the models raised
a threshold since its due time was computed) is armed again for the new due time.

Tools and benchmarks that replay a stream through the logic use it
(``app/tools/abandonment_comparison.py``, ``benchmarks/bench_models.py``), so what
they measure is what the worker does, and a change to those steps is made once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from app.detect.learning import PartitionLearner
from app.detect.pipeline import Outcome, Rules, fire_timers, process_event
from app.detect.timers import TIMER_ROUNDS, PartitionClock, TimerIndex
from app.ingest.events import DEFAULT_MAX_FUTURE_SKEW_MS, ClickEvent
from tables.customer_state import CustomerState

__all__ = ["OutcomeHook", "PartitionRun"]

#: Called with (customer id, state before, outcome) for every event and timer that
#: changed a state.
OutcomeHook = Callable[[str, "CustomerState | None", Outcome], None]


@dataclass(slots=True)
class PartitionRun:
    """A partition's table, clock, timers and (optional) learner, driven event by event.

    Examples
    --------
    >>> run = PartitionRun()
    >>> e = ClickEvent("e1", "c1", "s1", "checkout_step", 1_000, step="payment", value=30.0)
    >>> _ = run.event(e, arrival_ms=1_000)
    >>> run.fire(watermark_ms=61_000, now_ms=61_000)
    >>> [i["reason"] for i in run.states["c1"].interventions]
    ['checkout_stall']
    """

    rules: Rules = field(default_factory=Rules)
    learner: PartitionLearner | None = None
    # How close to its arrival an event must be for the partition to follow the wall clock.
    live_bound_ms: int = DEFAULT_MAX_FUTURE_SKEW_MS
    on_outcome: OutcomeHook | None = None
    states: dict[str, CustomerState] = field(default_factory=dict)
    clock: PartitionClock = field(default_factory=PartitionClock)
    timers: TimerIndex = field(default_factory=TimerIndex)
    # The offset of the next event: after what the learner's models already include
    # (a learner carried over from another stream continues its count).
    offset: int = 0

    def __post_init__(self) -> None:
        if self.learner is not None:
            self.offset = max(self.offset, self.learner.models.offset + 1)

    @property
    def current_rules(self) -> Rules:
        """The rules as the learner last adapted them (the base rules without one)."""
        return self.learner.rules if self.learner is not None else self.rules

    def event(self, click: ClickEvent, arrival_ms: int) -> Outcome:
        """The next event, its record written at ``arrival_ms``; returns its outcome."""
        offset = self.offset
        self.offset += 1
        lateness_ms = self.rules.time.allowed_lateness_ms
        clock = self.clock
        clock.observe(min(click.ts_ms, arrival_ms + lateness_ms), arrival_ms)
        watermark_ms = clock.watermark_ms(lateness_ms)
        self.fire(watermark_ms, arrival_ms)
        live_ms = arrival_ms if clock.follows_wall_clock(self.live_bound_ms) else 0
        before = self.states.get(click.customer_id)
        rules = self.current_rules
        outcome = process_event(before, click, rules, watermark_ms, arrival_ms, live_ms, offset)
        if outcome.duplicate:
            return outcome
        if self.learner is not None:
            self.learn_event(click, before, outcome, offset)
        self._keep(click.customer_id, before, outcome)
        return outcome

    def fire(self, watermark_ms: int, now_ms: int) -> None:
        """Run the timers due by ``watermark_ms``."""
        timers = self.timers
        if not timers.due_by(watermark_ms):
            return
        for _round in range(TIMER_ROUNDS):
            keys = timers.pop_due(watermark_ms)
            if not keys:
                return
            rules = self.current_rules
            for key in keys:
                state = self.states.get(key)
                if state is None:
                    continue
                outcome = fire_timers(state, watermark_ms, rules, now_ms)
                if outcome.state is state:  # nothing due yet: look again when it is
                    if outcome.due_ms is not None and outcome.due_ms > watermark_ms:
                        timers.schedule(key, outcome.due_ms)
                    continue
                if self.learner is not None:
                    self.learn_ended(key, state, outcome)
                self._keep(key, state, outcome)

    def learn_event(
        self, click: ClickEvent, before: CustomerState | None, outcome: Outcome, offset: int
    ) -> None:
        """What the learner takes from a folded event (a subclass may time it)."""
        learner = self.learner
        assert learner is not None
        learner.learn_event(click.customer_id, before, outcome.state, click, outcome.late)
        learner.annotate(outcome.interventions, outcome.state, before)
        learner.models.include(offset)

    def learn_ended(self, key: str, before: CustomerState, outcome: Outcome) -> None:
        """What the learner takes from a timer that changed a state."""
        learner = self.learner
        assert learner is not None
        learner.learn_ended(key, before, outcome.state)
        learner.annotate(outcome.interventions, outcome.state, before)

    def _keep(self, key: str, before: CustomerState | None, outcome: Outcome) -> None:
        state = outcome.state
        if state is None:
            self.states.pop(key, None)
        else:
            self.states[key] = state
            self.timers.schedule(key, outcome.due_ms)
        if self.on_outcome is not None:
            self.on_outcome(key, before, outcome)
