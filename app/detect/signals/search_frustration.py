# cython: annotation_typing=True
"""Search frustration: searches that find nothing, or query after query with no result opened."""

from __future__ import annotations

from app.detect.signals.signal import DetectionContext, InterventionKind, Signal, times

__all__ = ["KIND", "REASON", "TRIGGERS", "detect_search_frustration"]

REASON = "search_frustration"
KIND: InterventionKind = "assist"
#: Event types the rule looks at (None: every type).
TRIGGERS: frozenset[str] | None = frozenset({"search"})


def detect_search_frustration(ctx: DetectionContext) -> Signal | None:
    """Fire on ``search_min_zero_results`` searches with no results, or on
    ``search_min_reformulations`` changed queries within ``search_window_ms``, with no
    search result opened since.

    Examples
    --------
    >>> from tests.factories import T0_MS, click, context
    >>> searches = [click(type="search", query=q, results=0, ts_ms=T0_MS + 5000 * i)
    ...             for i, q in enumerate(["gift card", "giftcard"])]
    >>> detect_search_frustration(context(searches)).evidence["zero_results"]
    2.0
    """
    event, session, t = ctx.event, ctx.session, ctx.thresholds
    if event is None or event.type != "search":
        return None
    since = session.search_result_ts_ms
    pending = [s for s in session.searches if s[0] > since]
    zero = sum(1 for _, results, _ in pending if results == 0)
    in_window = [s for s in pending if s[0] >= event.ts_ms - t.search_window_ms]
    reformulations = sum(
        1 for i in range(1, len(in_window)) if in_window[i][2] != in_window[i - 1][2]
    )
    if zero >= t.search_min_zero_results:
        what = f"{zero} searches found nothing"
        score = min(1.0, 0.65 + 0.1 * (zero - t.search_min_zero_results))
    elif reformulations >= t.search_min_reformulations:
        what = f"they rephrased their search {times(reformulations)} within a minute"
        score = 0.6
    else:
        return None
    query = f" (last: '{event.query}')" if event.query else ""
    return Signal(
        reason=REASON,
        kind=KIND,
        score=score,
        evidence={"zero_results": float(zero), "reformulations": float(reformulations)},
        explanation=f"The customer cannot find what they are looking for: {what}{query}.",
    )
