# cython: annotation_typing=True
"""Cart abandonment risk: a cart, no purchase, and the customer drifting away."""

from __future__ import annotations

from app.detect.signals.signal import DetectionContext, InterventionKind, Signal, in_cart
from app.detect.signals.thresholds import SignalThresholds
from tables.customer_state import SessionState

__all__ = ["KIND", "REASON", "TRIGGERS", "cart_idle_due_ms", "detect_cart_abandonment_risk"]

REASON = "cart_abandonment_risk"
KIND: InterventionKind = "reminder"
#: Event types the rule looks at (None: every type).
TRIGGERS: frozenset[str] | None = frozenset({"session_end"})

# A stall at payment is the more specific trouble; it speaks for this session.
_SPECIFIC = "checkout_stall"


def cart_idle_due_ms(session: SessionState, t: SignalThresholds) -> int | None:
    """When an unbought cart's silence becomes a risk.

    Examples
    --------
    >>> cart_idle_due_ms(SessionState("s", 0, 5_000, cart_value=12.0), SignalThresholds())
    605000
    """
    if (
        not session.has_cart
        or session.purchased
        or REASON in session.fired_reasons
        or _SPECIFIC in session.fired_reasons
    ):
        return None
    return session.last_ts_ms + t.cart_idle_ms


def detect_cart_abandonment_risk(ctx: DetectionContext) -> Signal | None:
    """Fire when a cart is left idle for ``cart_idle_ms``, or the visit ends with it.

    Examples
    --------
    >>> from tests.factories import T0_MS, click, context
    >>> events = [click(type="add_to_cart", value=25.0, product_id="p1", ts_ms=T0_MS),
    ...           click(type="session_end", ts_ms=T0_MS + 9_000)]
    >>> detect_cart_abandonment_risk(context(events)).kind
    'reminder'
    """
    event, session, t = ctx.event, ctx.session, ctx.thresholds
    if event is not None:
        if event.type != "session_end" or not session.has_cart or session.purchased:
            return None
        if REASON in session.fired_reasons or _SPECIFIC in session.fired_reasons:
            return None
        how = "is leaving"
    else:
        due = cart_idle_due_ms(session, t)
        if due is None or ctx.now_ms < due:
            return None
        how = f"has been away for {(ctx.now_ms - session.last_ts_ms) / 60_000:.0f} minutes"
    return Signal(
        reason=REASON,
        kind=KIND,
        score=0.6,
        evidence={"cart_value": session.cart_value, "cart_items": float(session.cart_items)},
        explanation=(
            f"The customer {how} with {in_cart(session)} and has not bought it; a gentle "
            "reminder may bring them back."
        ),
    )
