# cython: annotation_typing=True
"""Error bursts: several errors within seconds."""

from __future__ import annotations

from bisect import bisect_left

from app.detect.signals.signal import DetectionContext, InterventionKind, Signal

__all__ = ["KIND", "REASON", "TRIGGERS", "detect_error_burst"]

REASON = "error_burst"
KIND: InterventionKind = "assist"
#: Event types the rule looks at (None: every type).
TRIGGERS: frozenset[str] | None = frozenset({"error", "form_error"})


def detect_error_burst(ctx: DetectionContext) -> Signal | None:
    """Fire when ``error_burst_min_errors`` error or form_error events fall within
    ``error_burst_window_ms`` of one another, the event among them.

    Examples
    --------
    >>> from tests.factories import T0_MS, click, context
    >>> errors = [click(type="error", error="HTTP 503", ts_ms=T0_MS + 2000 * i) for i in range(3)]
    >>> detect_error_burst(context(errors)).evidence["errors"]
    3.0
    """
    event, t = ctx.event, ctx.thresholds
    if event is None or event.type not in ("error", "form_error"):
        return None
    times = ctx.session.error_ts
    window = t.error_burst_window_ms
    best = 0
    for i, start in enumerate(times):
        if start > event.ts_ms:
            break
        end = bisect_left(times, start + window + 1)
        if times[end - 1] >= event.ts_ms:
            best = max(best, end - i)
    if best < t.error_burst_min_errors:
        return None
    detail = f" ({event.error})" if event.error else ""
    return Signal(
        reason=REASON,
        kind=KIND,
        score=min(1.0, 0.6 + 0.1 * (best - t.error_burst_min_errors)),
        evidence={"errors": float(best), "window_ms": float(window)},
        explanation=(
            f"The page showed the customer {best} errors within {window / 1000:g} s{detail}; "
            "something is broken for them."
        ),
    )
