# cython: annotation_typing=True
"""One event (or one timer) through nudgeflow's logic: state, detection, decision.

Pure: the agent reads the state from its table, calls ``process_event`` or
``fire_timers`` and writes back what they return; all branching lives here so it
is tested alone. Neither changes the state it is given, so an exception leaves
the table as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.decide.interventions import Trigger, build_intervention
from app.decide.policy import PolicyRules, decide
from app.decide.uplift import UpliftMark, conversions, decided_mark
from app.detect.signals import Signal, detect_all
from app.detect.signals import detect_silence as detect_silent_signals
from app.detect.signals import due_ms as session_due_ms
from app.detect.signals.signal import DetectionContext
from app.detect.signals.thresholds import SignalThresholds
from app.detect.state import (
    StateLimits,
    TimeRules,
    copy_session,
    copy_state,
    end_session,
    event_digest,
    expire_state,
    fold_event,
    is_duplicate,
    record_signal,
    update_rhythm,
)
from app.ingest.events import ClickEvent
from tables.customer_state import CustomerState, SessionState

__all__ = ["Outcome", "Rules", "fire_timers", "next_due_ms", "process_event", "settled"]


@dataclass(slots=True, frozen=True)
class Rules:
    """Everything the pure pipeline is configured with."""

    thresholds: SignalThresholds = field(default_factory=SignalThresholds)
    limits: StateLimits = field(default_factory=StateLimits)
    time: TimeRules = field(default_factory=TimeRules)
    policy: PolicyRules = field(default_factory=PolicyRules)


@dataclass(slots=True)
class Outcome:
    """What one event or timer changed and what it asks the agent to send."""

    # The new state; None when the customer expired (delete it). For a duplicate,
    # the state given.
    state: CustomerState | None
    duplicate: bool = False
    late: bool = False
    interventions: list[dict[str, Any]] = field(default_factory=list)
    # (reason, cause) of signals decided but not sent.
    suppressed: list[tuple[str, str]] = field(default_factory=list)
    # Decisions and conversions, for the treated-vs-holdout counts.
    uplift: list[UpliftMark] = field(default_factory=list)
    # Every signal that fired (sent or not), for the model-score metrics.
    signals: list[Signal] = field(default_factory=list)
    # When a timer should look at the customer again (``next_due_ms`` of the new state).
    due_ms: int | None = None


def process_event(
    state: CustomerState | None,
    event: ClickEvent,
    rules: Rules,
    watermark_ms: int,
    emitted_ts_ms: int,
    live_ms: int = 0,
    offset: int = -1,
) -> Outcome:
    """Fold ``event`` into a copy of ``state`` and decide which interventions it triggers.

    ``watermark_ms`` is the partition's event-time watermark; ``live_ms`` where a partition
    that follows the wall clock is now (0 when it does not: a replay of old events);
    ``offset`` the event's ``clicks`` offset (-1: not from Kafka).

    An exact repeat of an event id, or an offset the state already includes (a replay
    after a crash), changes nothing (``duplicate=True``); a late
    event updates the profile only (``late=True``). What fires goes through the
    policy (``app.decide.policy``); a purchase converts the decisions before it
    (``app.decide.uplift``).

    Examples
    --------
    >>> e = ClickEvent("e1", "c1", "s1", "payment_failed", 1000, error="declined")
    >>> out = process_event(None, e, Rules(), watermark_ms=0, emitted_ts_ms=1004)
    >>> [i["reason"] for i in out.interventions], out.duplicate
    (['payment_failure'], False)
    >>> process_event(out.state, e, Rules(), watermark_ms=0, emitted_ts_ms=1010).duplicate
    True
    """
    if state is not None and 0 <= offset <= state.clicks_offset:
        return Outcome(state=state, duplicate=True)
    digest = event_digest(event.event_id)
    if is_duplicate(state, event, digest):
        return Outcome(state=state, duplicate=True)
    t = rules.thresholds
    folded = fold_event(state, event, rules.limits, rules.time, t, watermark_ms, digest, live_ms)
    new_state, session = folded.state, folded.session
    if offset >= 0:
        new_state.clicks_offset = offset
    if session is None:
        return Outcome(state=new_state, late=True, due_ms=next_due_ms(new_state, rules))
    ctx = DetectionContext(new_state, session, event, event.ts_ms, t, folded.visit_gap_ms)
    signals = detect_all(ctx)
    update_rhythm(new_state.profile, folded.visit_gap_ms)
    outcome = Outcome(state=new_state, signals=signals)
    if event.type == "purchase" and new_state.interventions:
        window_ms = rules.policy.conversion_window_ms
        outcome.uplift = conversions(new_state, session.session_id, event.ts_ms, window_ms)
    if signals:
        trigger = Trigger(event.event_id, event.ts_ms, event.type)
        _act(outcome, new_state, session, signals, trigger, rules, emitted_ts_ms)
    if event.type == "session_end":
        end_session(new_state, event.session_id, rules.limits)
        outcome.due_ms = next_due_ms(new_state, rules)
        return outcome
    silence_ms = session_due_ms(session, t)
    if silence_ms is None:
        session.last_event_id = ""  # no silence can name it: do not keep the string
    timeout_ms = rules.time.session_timeout_ms
    due = _timeout_ms(session, timeout_ms)
    if silence_ms is not None and silence_ms < due:
        due = silence_ms
    for other in new_state.sessions:
        if other is not session:
            due = min(due, _session_next_ms(other, t, timeout_ms))
    outcome.due_ms = due
    return outcome


def fire_timers(
    state: CustomerState, watermark_ms: int, rules: Rules, emitted_ts_ms: int
) -> Outcome:
    """Ask the silence rules of every live session whether they hold at ``watermark_ms``.

    Also ends sessions idle past the timeout and expires the customer past the TTL
    (``state=None``). Returns ``state`` itself when nothing changed.

    Examples
    --------
    >>> e = ClickEvent("e1", "c1", "s1", "checkout_step", 1000, step="payment", value=30.0)
    >>> state = process_event(None, e, Rules(), 0, 1000).state
    >>> out = fire_timers(state, 1000 + 61_000, Rules(), 62_000)
    >>> [(i["reason"], i["event_id"], i["fired_ts"]) for i in out.interventions]
    [('checkout_stall', 'e1', 61000)]
    """
    t = rules.thresholds
    fired = [
        (s, due)
        for s in state.sessions
        if (due := session_due_ms(s, t)) is not None and due <= watermark_ms
    ]
    if not fired:
        return settled(expire_state(state, watermark_ms, rules.limits, rules.time), rules)
    new_state = _copy_with_sessions(state, {s.session_id for s, _ in fired})
    outcome = Outcome(state=new_state)
    for original, due_at in fired:
        session = next(s for s in new_state.sessions if s.session_id == original.session_id)
        signals = detect_silent_signals(DetectionContext(new_state, session, None, due_at, t))
        outcome.signals.extend(signals)
        if signals:
            trigger = Trigger(session.last_event_id, session.last_ts_ms, "silence", due_at)
            _act(outcome, new_state, session, signals, trigger, rules, emitted_ts_ms)
    if not outcome.signals:
        # Nothing held after all (a due time is only when a rule *could* fire).
        return settled(expire_state(state, watermark_ms, rules.limits, rules.time), rules)
    # Silence first, then the timeout: a stall still speaks even when the watermark
    # jumped past the session's end in one step.
    outcome.state = expire_state(new_state, watermark_ms, rules.limits, rules.time)
    if outcome.state is None:
        outcome.interventions.clear()  # idle past the TTL: nothing left to say
    else:
        outcome.due_ms = next_due_ms(outcome.state, rules)
    return outcome


def next_due_ms(state: CustomerState, rules: Rules) -> int | None:
    """The earliest event time at which a timer should look at this customer again: a
    silence rule that may hold, or a live session's timeout (so sessions end, and the
    models learn how they ended, in offset order rather than when a sweep comes by)."""
    timeout_ms = rules.time.session_timeout_ms
    t = rules.thresholds
    return min((_session_next_ms(s, t, timeout_ms) for s in state.sessions), default=None)


def _session_next_ms(session: SessionState, t: SignalThresholds, timeout_ms: int) -> int:
    timeout = _timeout_ms(session, timeout_ms)
    silence = session_due_ms(session, t)
    return timeout if silence is None or silence > timeout else silence


def _timeout_ms(session: SessionState, timeout_ms: int) -> int:
    # ``close_sessions`` ends a session once it is idle for longer than the timeout.
    return session.last_ts_ms + timeout_ms + 1


def settled(state: CustomerState | None, rules: Rules) -> Outcome:
    """The outcome of ``state`` as only time changed it: nothing to send, its next due time."""
    return Outcome(state=state, due_ms=None if state is None else next_due_ms(state, rules))


def _act(
    outcome: Outcome,
    state: CustomerState,
    session: SessionState,
    signals: list[Signal],
    trigger: Trigger,
    rules: Rules,
    emitted_ts_ms: int,
) -> None:
    limits = rules.limits
    fired_at = trigger.fired_ts_ms or trigger.event_ts_ms
    decision = decide(signals, session, state, rules.policy, fired_at)
    outcome.suppressed.extend(decision.suppressed)
    for reason, _cause in decision.suppressed:
        if reason not in session.fired_reasons:
            # Held back is dealt with too: a silence must not be asked again and again.
            session.fired_reasons += (reason,)
    for shadow in decision.shadowed:
        record_signal(state, session, shadow.reason, shadow.score, fired_at, trigger.event_id,
                      limits)  # fmt: skip
        _record(state, build_intervention(state, session, shadow, [], trigger, emitted_ts_ms),
                "shadow", limits.interventions_max)  # fmt: skip
    main = decision.main
    if main is None:
        return
    for signal in (main, *decision.others):
        record_signal(state, session, signal.reason, signal.score, fired_at, trigger.event_id,
                      limits)  # fmt: skip
        if signal.reason == "micro_action" and signal.subject is not None:
            state.rewarded = (*state.rewarded, signal.subject)
    intervention = build_intervention(state, session, main, decision.others, trigger,
                                      emitted_ts_ms)  # fmt: skip
    intervention = _record(state, intervention, decision.delivery, limits.interventions_max)
    outcome.uplift.append(decided_mark(intervention))
    if decision.delivery == "sent":
        outcome.interventions.append(intervention)


def _record(
    state: CustomerState, intervention: dict[str, Any], delivery: str, keep: int
) -> dict[str, Any]:
    """Keep a decision in the customer's state, marked when it is not delivered."""
    if delivery != "sent":
        intervention = {**intervention, "delivery": delivery}
    state.interventions = (intervention, *state.interventions)[:keep]
    return intervention


def _copy_with_sessions(state: CustomerState, session_ids: set[str]) -> CustomerState:
    """A copy of ``state`` whose named sessions are copies too (they are about to change)."""
    copied = copy_state(state)
    copied.sessions = tuple(
        copy_session(s) if s.session_id in session_ids else s for s in copied.sessions
    )
    return copied
