"""Which of the signals that fired together becomes an intervention, and which are held back.

Pure. Today's policy: bots get nothing, a reason fires at most once per session,
and when several reasons fire at once one intervention carries the strongest
(``PRIORITY`` first, then score) and lists the others as evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.detect.signals import PRIORITY, Signal
from tables.customer_state import SessionState

__all__ = ["Decision", "decide"]


@dataclass(slots=True)
class Decision:
    """The signal to act on (if any), the ones it speaks for, and the ones held back."""

    main: Signal | None = None
    others: list[Signal] = field(default_factory=list)
    # (reason, cause) of each signal not acted on.
    suppressed: list[tuple[str, str]] = field(default_factory=list)


def decide(signals: list[Signal], session: SessionState) -> Decision:
    """Pick what to send for the signals one event (or one timer) fired in ``session``.

    Examples
    --------
    >>> from tables.customer_state import SessionState
    >>> s = SessionState("s", 0, 0, fired_reasons=("rage_click",))
    >>> d = decide([Signal("rage_click", "assist", 0.8), Signal("payment_failure", "assist", 0.9),
    ...             Signal("error_burst", "assist", 0.95)], s)
    >>> d.main.reason, [o.reason for o in d.others], d.suppressed
    ('payment_failure', ['error_burst'], [('rage_click', 'cooldown')])
    """
    decision = Decision()
    if not signals:
        return decision
    if session.bot:
        decision.suppressed = [(s.reason, "bot") for s in signals]
        return decision
    fresh: list[Signal] = []
    for signal in signals:
        if signal.reason in session.fired_reasons:
            decision.suppressed.append((signal.reason, "cooldown"))
        else:
            fresh.append(signal)
    if fresh:
        fresh.sort(key=lambda s: (PRIORITY.get(s.reason, len(PRIORITY)), -s.score))
        decision.main, decision.others = fresh[0], fresh[1:]
    return decision
