# cython: annotation_typing=True
"""Checkout stalls: at payment or review, with a cart, and silent for too long."""

from __future__ import annotations

from app.detect.signals.signal import DetectionContext, InterventionKind, Signal, in_cart
from app.detect.signals.step_loop import PAYMENT_RANK, step_rank
from app.detect.signals.thresholds import SignalThresholds
from tables.customer_state import SessionState

__all__ = ["KIND", "REASON", "TRIGGERS", "checkout_stall_due_ms", "detect_checkout_stall"]

REASON = "checkout_stall"
KIND: InterventionKind = "assist"
#: Event types the rule looks at (None: every type).
TRIGGERS: frozenset[str] | None = frozenset()  # silence only


def checkout_stall_due_ms(session: SessionState, t: SignalThresholds) -> int | None:
    """When the session's silence would become a stall, if it is at payment or a later step
    (by the step's name, ``step_rank``) with a cart.

    Examples
    --------
    >>> s = SessionState("s", 0, 1_000, step="payment", cart_value=30.0)
    >>> checkout_stall_due_ms(s, SignalThresholds())
    61000
    """
    rank = None if session.step is None else step_rank(session.step)
    if (
        rank is None
        or rank < PAYMENT_RANK
        or not session.has_cart
        or session.purchased
        or REASON in session.fired_reasons
    ):
        return None
    return session.last_ts_ms + t.checkout_stall_ms


def detect_checkout_stall(ctx: DetectionContext) -> Signal | None:
    """Fire (from a timer, never on an event) once the stall's silence has passed.

    Examples
    --------
    >>> from tests.factories import T0_MS, click, context
    >>> pay = [click(type="checkout_step", step="payment", value=40.0, ts_ms=T0_MS)]
    >>> detect_checkout_stall(context(pay, now_ms=T0_MS + 61_000, timer=True)).reason
    'checkout_stall'
    """
    if ctx.event is not None:
        return None
    session = ctx.session
    due = checkout_stall_due_ms(session, ctx.thresholds)
    if due is None or ctx.now_ms < due:
        return None
    silent_s = (ctx.now_ms - session.last_ts_ms) / 1000
    return Signal(
        reason=REASON,
        kind=KIND,
        score=0.7,
        evidence={
            "silent_s": float(round(silent_s)),
            "cart_value": session.cart_value,
            "cart_items": float(session.cart_items),
        },
        explanation=(
            f"The customer has been at the {session.step} step with "
            f"{in_cart(session)} and no activity for {silent_s:.0f} s; "
            "they may be stuck or unsure."
        ),
    )
