# cython: annotation_typing=True
"""Rage clicks: the same element clicked again and again in a short time."""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from app.detect.clicks import FORM_CONTROL, REPEAT_OK, SELECTION
from app.detect.signals.signal import DetectionContext, InterventionKind, Signal, times
from tables.customer_state import by_ts_ms

__all__ = ["KIND", "REASON", "TRIGGERS", "detect_rage_click"]

REASON = "rage_click"
KIND: InterventionKind = "assist"
#: Event types the rule looks at (None: every type).
TRIGGERS: frozenset[str] | None = frozenset({"click"})

# Clicks that are not frustration however fast they come (app.detect.clicks).
_EXCLUDED = REPEAT_OK | SELECTION | FORM_CONTROL


def detect_rage_click(ctx: DetectionContext) -> Signal | None:
    """Fire when the event completes a burst of clicks on one element.

    A burst is at least ``rage_click_min_clicks`` clicks on the same element
    within ``rage_click_window_ms`` of event time and within
    ``rage_click_radius_px`` of the event (PostHog's rule), with no other event
    between them (a page change or a scroll ends the chain, as in Datadog's rule).
    Text selection, form controls and elements clicked repeatedly by design do
    not count. Late events count where their event time puts them.

    Examples
    --------
    >>> from tests.factories import T0_MS, click, context
    >>> burst = [click(element="#buy", x=10, y=10, ts_ms=T0_MS + dt) for dt in (0, 300, 600)]
    >>> detect_rage_click(context(burst)).evidence["clicks"]
    3.0
    """
    event = ctx.event
    if event is None or event.type != "click" or event.element is None:
        return None
    t = ctx.thresholds
    window_ms = t.rage_click_window_ms
    radius_sq = t.rage_click_radius_px**2
    recent = ctx.session.recent  # sorted by event time: look only within the window
    first = bisect_left(recent, event.ts_ms - window_ms, key=by_ts_ms)
    last = bisect_right(recent, event.ts_ms + window_ms, key=by_ts_ms)
    # Runs of consecutive qualifying clicks on the element; anything else breaks a run.
    # Each run is measured once it is whole (a window of part of it is one of all of it).
    best = 0
    run: list[int] = []
    for past in recent[first:last]:
        if (
            past.type == "click"
            and past.element == event.element
            and not past.flags & _EXCLUDED
            and _near(past.x, past.y, event.x, event.y, radius_sq)
        ):
            run.append(past.ts_ms)
        elif run:
            best = max(best, _densest_with(run, event.ts_ms, window_ms))
            run = []
    if run:
        best = max(best, _densest_with(run, event.ts_ms, window_ms))
    if best < t.rage_click_min_clicks:
        return None
    extra = best - t.rage_click_min_clicks
    return Signal(
        reason=REASON,
        kind=KIND,
        score=min(1.0, 0.7 + 0.1 * extra),
        evidence={"clicks": float(best), "window_ms": float(window_ms)},
        explanation=(
            f"The customer clicked {event.element} {times(best)} within "
            f"{window_ms / 1000:g} s, which usually means it is not responding as expected."
        ),
        subject=event.element,
    )


def _densest_with(times: list[int], ts_ms: int, window_ms: int) -> int:
    """The most clicks of a sorted run that fit in one window and include ``ts_ms``."""
    best, lo = 0, 0
    for hi, ts in enumerate(times):
        while ts - times[lo] > window_ms:
            lo += 1
        if times[lo] <= ts_ms <= ts:
            best = max(best, hi - lo + 1)
    return best


def _near(
    x1: float | None, y1: float | None, x2: float | None, y2: float | None, r2: float
) -> bool:
    # Without coordinates on both sides the element match alone decides.
    if x1 is None or y1 is None or x2 is None or y2 is None:
        return True
    return (x1 - x2) ** 2 + (y1 - y2) ** 2 <= r2
