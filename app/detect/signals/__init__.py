# cython: annotation_typing=True
"""Friction detectors: pure functions of one ``DetectionContext``.

``EVENT_DETECTORS`` run on every event folded into a session; ``SILENCE_DETECTORS``
are asked by timers, when nothing has happened for a while, and each has a
function that says when its silence would be due (``due_ms``).
"""

from __future__ import annotations

from collections.abc import Callable

from app.detect.signals import (
    cart_abandonment,
    checkout_stall,
    dead_click,
    error_burst,
    form_struggle,
    micro_action,
    payment_failure,
    product_hesitation,
    rage_click,
    rhythm_change,
    search_frustration,
    step_loop,
)
from app.detect.signals.signal import DetectionContext, InterventionKind, Signal
from app.detect.signals.thresholds import SignalThresholds
from app.ingest.events import EVENT_TYPES
from tables.customer_state import SessionState

__all__ = [
    "CATALOGUE",
    "EVENT_DETECTORS",
    "PRIORITY",
    "SILENCE_DETECTORS",
    "DetectionContext",
    "InterventionKind",
    "Signal",
    "SignalThresholds",
    "detect_all",
    "detect_silence",
    "due_ms",
]

Detector = Callable[[DetectionContext], "Signal | None"]

EVENT_DETECTORS: tuple[Detector, ...] = (
    payment_failure.detect_payment_failure,
    rage_click.detect_rage_click,
    dead_click.detect_dead_click,
    step_loop.detect_step_loop,
    form_struggle.detect_form_struggle,
    error_burst.detect_error_burst,
    search_frustration.detect_search_frustration,
    product_hesitation.detect_product_hesitation,
    cart_abandonment.detect_cart_abandonment_risk,
    rhythm_change.detect_rhythm_change,
    micro_action.detect_micro_action,
)
SILENCE_DETECTORS: tuple[Detector, ...] = (
    checkout_stall.detect_checkout_stall,
    dead_click.detect_dead_click,
    cart_abandonment.detect_cart_abandonment_risk,
)
_DUE: tuple[Callable[[SessionState, SignalThresholds], int | None], ...] = (
    checkout_stall.checkout_stall_due_ms,
    dead_click.dead_click_due_ms,
    cart_abandonment.cart_idle_due_ms,
)

_MODULES = (
    payment_failure, checkout_stall, form_struggle, rage_click, error_burst, step_loop,
    dead_click, search_frustration, product_hesitation, cart_abandonment, rhythm_change,
    micro_action,
)  # fmt: skip
#: Which reason speaks when several fire at once: trouble paying first, recognition last.
PRIORITY: dict[str, int] = {module.REASON: rank for rank, module in enumerate(_MODULES)}
#: Every (kind, reason) the detectors can emit.
CATALOGUE: tuple[tuple[InterventionKind, str], ...] = (
    *((module.KIND, module.REASON) for module in _MODULES),
    (product_hesitation.DWELL_KIND, product_hesitation.REASON),
)


_EVENT_MODULES = (
    payment_failure, rage_click, dead_click, step_loop, form_struggle, error_burst,
    search_frustration, product_hesitation, cart_abandonment, rhythm_change, micro_action,
)  # fmt: skip
# Per event type, the detectors that look at it, in EVENT_DETECTORS order: most events
# concern two or three of eleven, and a call that returns at once still costs.
_BY_TYPE: dict[str, tuple[Detector, ...]] = {
    event_type: tuple(
        detect
        for detect, module in zip(EVENT_DETECTORS, _EVENT_MODULES, strict=True)
        if module.TRIGGERS is None or event_type in module.TRIGGERS
    )
    for event_type in EVENT_TYPES
}


def detect_all(ctx: DetectionContext) -> list[Signal]:
    """Every signal the context's event fires (the session already holds the event).

    Examples
    --------
    >>> from tests.factories import click, context
    >>> [s.reason for s in detect_all(context([click(type="payment_failed")]))]
    ['payment_failure']
    """
    detectors = _BY_TYPE[ctx.event.type] if ctx.event is not None else EVENT_DETECTORS
    return [s for detect in detectors if (s := detect(ctx)) is not None]


def detect_silence(ctx: DetectionContext) -> list[Signal]:
    """Every silence rule that holds at ``ctx.now_ms`` (a timer's question, no event)."""
    return [s for detect in SILENCE_DETECTORS if (s := detect(ctx)) is not None]


def due_ms(session: SessionState, thresholds: SignalThresholds) -> int | None:
    """The earliest event time at which a silence rule could fire for the session.

    Examples
    --------
    >>> s = SessionState("s", 0, 1_000, step="payment", cart_value=30.0)
    >>> due_ms(s, SignalThresholds())
    61000
    """
    earliest: int | None = None
    for due in _DUE:
        at = due(session, thresholds)
        if at is not None and (earliest is None or at < earliest):
            earliest = at
    return earliest
