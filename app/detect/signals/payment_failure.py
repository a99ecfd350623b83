# cython: annotation_typing=True
"""Payment failures: a declined payment, or repeated failed attempts."""

from __future__ import annotations

from app.detect.signals.signal import DetectionContext, InterventionKind, Signal

__all__ = ["KIND", "REASON", "TRIGGERS", "detect_payment_failure"]

REASON = "payment_failure"
KIND: InterventionKind = "assist"
#: Event types the rule looks at (None: every type).
TRIGGERS: frozenset[str] | None = frozenset({"payment_failed", "payment_attempt"})


def detect_payment_failure(ctx: DetectionContext) -> Signal | None:
    """Fire on a ``payment_failed`` event, or on the n-th ``payment_attempt`` with an error.

    Examples
    --------
    >>> from tests.factories import click, context
    >>> detect_payment_failure(context([click(type="payment_failed", error="declined")])).reason
    'payment_failure'
    """
    event, session = ctx.event, ctx.session
    if event is None:
        return None
    failures = session.failed_payment_attempts
    needed = ctx.thresholds.payment_failed_attempts
    if event.type == "payment_failed":
        score = 0.9
    elif event.type == "payment_attempt" and event.error is not None:
        if failures < needed:
            return None
        score = min(1.0, 0.8 + 0.05 * (failures - needed))
    else:
        return None
    error = f" ({event.error})" if event.error else ""
    return Signal(
        reason=REASON,
        kind=KIND,
        score=score,
        evidence={"failed_attempts": float(failures), "cart_value": session.cart_value},
        explanation=(
            f"The customer's payment failed{error} after {failures} attempt"
            f"{'s' if failures != 1 else ''}; they may need another way to pay."
        ),
    )
