"""One event through nudgeflow's logic: state update, detection, decision.

Pure: the agent reads the state from its table, calls ``process_event`` and
writes back what it returns; all branching lives here so it is tested alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.decide.interventions import build_intervention
from app.detect.signals import Signal, SignalThresholds, detect_all
from app.detect.state import StateLimits, advance, close_session, is_duplicate, record_signal
from app.ingest.events import ClickEvent
from tables.customer_state import CustomerState

__all__ = ["Outcome", "process_event"]


@dataclass(slots=True)
class Outcome:
    """What one event changed and what it asks the agent to send."""

    state: CustomerState | None
    duplicate: bool = False
    interventions: list[dict[str, Any]] = field(default_factory=list)
    # (signal, cause) pairs for interventions decided but not sent.
    suppressed: list[tuple[Signal, str]] = field(default_factory=list)


def process_event(
    state: CustomerState | None,
    event: ClickEvent,
    thresholds: SignalThresholds,
    limits: StateLimits,
    now_ms: int,
) -> Outcome:
    """Fold ``event`` into ``state`` and decide which interventions it triggers.

    An exact repeat of an event id changes nothing (``duplicate=True``). A
    reason already acted on in this session is suppressed with cause
    ``cooldown``: one intervention per reason per session.

    Examples
    --------
    >>> e = ClickEvent("e1", "c1", "s1", "payment_failed", 1000, error="declined")
    >>> out = process_event(None, e, SignalThresholds(), StateLimits(), now_ms=1004)
    >>> [i["reason"] for i in out.interventions], out.duplicate
    (['payment_failure'], False)
    >>> process_event(out.state, e, SignalThresholds(), StateLimits(), now_ms=1010).duplicate
    True
    """
    if is_duplicate(state, event):
        return Outcome(state=state, duplicate=True)
    state = advance(state, event, limits)
    outcome = Outcome(state=state)
    session = state.session
    if session is not None and session.session_id == event.session_id:
        for signal in detect_all(session, event, thresholds):
            if signal.reason in session.fired_reasons:
                outcome.suppressed.append((signal, "cooldown"))
                continue
            record_signal(state, signal.reason, signal.score, event, limits)
            intervention = build_intervention(state, event, signal, now_ms)
            state.interventions = (intervention, *state.interventions)[: limits.interventions_max]
            outcome.interventions.append(intervention)
    close_session(state, event, limits)
    return outcome
