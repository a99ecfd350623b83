"""Friction detectors: pure functions of (session state, event)."""

from __future__ import annotations

from collections.abc import Callable

from app.detect.signals import payment_failure, rage_click, step_loop
from app.detect.signals.payment_failure import detect_payment_failure
from app.detect.signals.rage_click import detect_rage_click
from app.detect.signals.signal import InterventionKind, Signal
from app.detect.signals.step_loop import detect_step_loop
from app.detect.signals.thresholds import SignalThresholds
from app.ingest.events import ClickEvent
from tables.customer_state import SessionState

__all__ = ["CATALOGUE", "DETECTORS", "InterventionKind", "Signal", "SignalThresholds", "detect_all"]

Detector = Callable[[SessionState, ClickEvent, SignalThresholds], "Signal | None"]

DETECTORS: tuple[Detector, ...] = (detect_payment_failure, detect_rage_click, detect_step_loop)

#: Every (kind, reason) the detectors above can emit.
CATALOGUE: tuple[tuple[InterventionKind, str], ...] = tuple(
    (module.KIND, module.REASON) for module in (payment_failure, rage_click, step_loop)
)


def detect_all(
    session: SessionState | None, event: ClickEvent, thresholds: SignalThresholds
) -> list[Signal]:
    """Every signal ``event`` fires in ``session`` (which already holds it).

    Examples
    --------
    >>> from app.detect.state import StateLimits, advance
    >>> e = ClickEvent("e1", "c", "s", "payment_failed", 1000)
    >>> session = advance(None, e, StateLimits()).session
    >>> [s.reason for s in detect_all(session, e, SignalThresholds())]
    ['payment_failure']
    """
    if session is None:
        return []
    return [s for detect in DETECTORS if (s := detect(session, event, thresholds)) is not None]
