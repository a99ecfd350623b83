"""Step loops: going back and forth between checkout steps."""

from __future__ import annotations

from app.detect.signals.signal import InterventionKind, Signal
from app.detect.signals.thresholds import SignalThresholds
from app.ingest.events import ClickEvent
from tables.customer_state import SessionState

__all__ = ["KIND", "REASON", "count_step_returns", "detect_step_loop"]

REASON = "step_loop"
KIND: InterventionKind = "assist"


def count_step_returns(steps: list[str]) -> int:
    """How often a path of checkout steps moves to a step it had already visited.

    Staying on a step (a reload) is not a move.

    Examples
    --------
    >>> count_step_returns(["shipping", "cart", "shipping", "cart"])
    2
    >>> count_step_returns(["cart", "cart", "shipping", "payment"])
    0
    """
    seen: set[str] = set()
    returns = 0
    previous: str | None = None
    for step in steps:
        if step == previous:
            continue
        if step in seen:
            returns += 1
        seen.add(step)
        previous = step
    return returns


def detect_step_loop(
    session: SessionState, event: ClickEvent, thresholds: SignalThresholds
) -> Signal | None:
    """Fire when the session's checkout path returns to earlier steps often enough.

    The path is read from ``checkout_step`` events in event time, so a late
    event is placed where it happened.

    Examples
    --------
    >>> from app.detect.state import StateLimits, advance
    >>> s = None
    >>> for i, step in enumerate(["shipping", "cart", "shipping", "cart"]):
    ...     e = ClickEvent(f"e{i}", "c", "s", "checkout_step", 1000 * i, step=step)
    ...     s = advance(s, e, StateLimits())
    >>> detect_step_loop(s.session, e, SignalThresholds()).evidence["returns"]
    2.0
    """
    if event.type != "checkout_step" or event.step is None:
        return None
    path = [e.step for e in session.recent if e.type == "checkout_step" and e.step is not None]
    returns = count_step_returns(path)
    if returns < thresholds.step_loop_min_returns:
        return None
    return Signal(
        reason=REASON,
        kind=KIND,
        score=min(1.0, 0.6 + 0.1 * (returns - thresholds.step_loop_min_returns + 1)),
        evidence={"returns": float(returns), "steps": float(len(path))},
        explanation=(
            f"The customer went back and forth between checkout steps {returns} times "
            f"(now at {event.step}); something in the checkout may be unclear."
        ),
    )
