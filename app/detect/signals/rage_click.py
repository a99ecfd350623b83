"""Rage clicks: the same element clicked again and again in a short time."""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from app.detect.signals.signal import InterventionKind, Signal
from app.detect.signals.thresholds import SignalThresholds
from app.ingest.events import ClickEvent
from tables.customer_state import RecentEvent, SessionState

__all__ = ["KIND", "REASON", "detect_rage_click"]

REASON = "rage_click"
KIND: InterventionKind = "assist"


def detect_rage_click(
    session: SessionState, event: ClickEvent, thresholds: SignalThresholds
) -> Signal | None:
    """Fire when ``event`` completes a burst of clicks on one element.

    A burst is at least ``rage_click_min_clicks`` clicks on the same element
    within ``rage_click_window_ms`` of event time and within
    ``rage_click_radius_px`` of ``event`` (PostHog's rule). ``session`` already
    holds ``event``; late events count where their event time puts them.

    Examples
    --------
    >>> from app.detect.state import StateLimits, advance
    >>> state, t = None, SignalThresholds()
    >>> for i, ts in enumerate([1000, 1300, 1600]):
    ...     e = ClickEvent(f"e{i}", "c", "s", "click", ts, element="#buy", x=10, y=10)
    ...     state = advance(state, e, StateLimits())
    >>> detect_rage_click(state.session, e, t).evidence["clicks"]
    3.0
    """
    if event.type != "click" or event.element is None:
        return None
    window_ms = thresholds.rage_click_window_ms
    radius_sq = thresholds.rage_click_radius_px**2
    recent = session.recent  # sorted by event time: look only within the window
    first = bisect_left(recent, event.ts_ms - window_ms, key=_ts)
    last = bisect_right(recent, event.ts_ms + window_ms, key=_ts)
    times = [
        past.ts_ms
        for past in recent[first:last]
        if past.type == "click"
        and past.element == event.element
        and _near(past.x, past.y, event.x, event.y, radius_sq)
    ]
    # ``times`` is sorted (the window is); find the densest run that includes the event.
    best, lo = 0, 0
    for hi, ts in enumerate(times):
        while ts - times[lo] > window_ms:
            lo += 1
        if times[lo] <= event.ts_ms <= ts:
            best = max(best, hi - lo + 1)
    if best < thresholds.rage_click_min_clicks:
        return None
    extra = best - thresholds.rage_click_min_clicks
    return Signal(
        reason=REASON,
        kind=KIND,
        score=min(1.0, 0.7 + 0.1 * extra),
        evidence={"clicks": float(best), "window_ms": float(window_ms)},
        explanation=(
            f"The customer clicked {event.element} {best} times within "
            f"{window_ms / 1000:g} s, which usually means it is not responding as expected."
        ),
    )


def _ts(event: RecentEvent) -> int:
    return event.ts_ms


def _near(
    x1: float | None, y1: float | None, x2: float | None, y2: float | None, r2: float
) -> bool:
    # Without coordinates on both sides the element match alone decides.
    if x1 is None or y1 is None or x2 is None or y2 is None:
        return True
    return (x1 - x2) ** 2 + (y1 - y2) ** 2 <= r2
