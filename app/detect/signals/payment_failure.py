"""Payment failures: a declined payment, or repeated failed attempts."""

from __future__ import annotations

from app.detect.signals.signal import InterventionKind, Signal
from app.detect.signals.thresholds import SignalThresholds
from app.ingest.events import ClickEvent
from tables.customer_state import SessionState

__all__ = ["KIND", "REASON", "detect_payment_failure"]

REASON = "payment_failure"
KIND: InterventionKind = "assist"


def detect_payment_failure(
    session: SessionState, event: ClickEvent, thresholds: SignalThresholds
) -> Signal | None:
    """Fire on a ``payment_failed`` event, or on the n-th ``payment_attempt`` with an error.

    Examples
    --------
    >>> from app.detect.state import StateLimits, advance
    >>> e = ClickEvent("e1", "c", "s", "payment_failed", 1000, error="card_declined")
    >>> s = advance(None, e, StateLimits())
    >>> detect_payment_failure(s.session, e, SignalThresholds()).reason
    'payment_failure'
    """
    failures = session.failed_payment_attempts
    if event.type == "payment_failed":
        score = 0.9
    elif event.type == "payment_attempt" and event.error is not None:
        if failures < thresholds.payment_failed_attempts:
            return None
        score = min(1.0, 0.8 + 0.05 * (failures - thresholds.payment_failed_attempts))
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
