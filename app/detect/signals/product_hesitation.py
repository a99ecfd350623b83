# cython: annotation_typing=True
"""Product hesitation: coming back to one product, adding and removing it, or lingering on it."""

from __future__ import annotations

from app.detect.signals.signal import DetectionContext, InterventionKind, Signal, times

__all__ = ["KIND", "REASON", "TRIGGERS", "detect_product_hesitation"]

REASON = "product_hesitation"
#: Repeated views and cart flips are price hesitation; a long read alone asks for information.
KIND: InterventionKind = "offer"
#: Event types the rule looks at (None: every type).
TRIGGERS: frozenset[str] | None = None  # a long dwell shows on whatever event comes next
DWELL_KIND: InterventionKind = "assist"


def detect_product_hesitation(ctx: DetectionContext) -> Signal | None:
    """Fire on ``product_min_views`` views of one product in a visit, on add → remove → add
    of it, or on ``product_dwell_ms`` on its page.

    Examples
    --------
    >>> from tests.factories import T0_MS, click, context
    >>> views = [click(type="product_view", product_id="p9", value=80.0, ts_ms=T0_MS + 60_000 * i)
    ...          for i in range(3)]
    >>> signal = detect_product_hesitation(context(views))
    >>> signal.kind, signal.evidence["views"]
    ('offer', 3.0)
    """
    event, session, t = ctx.event, ctx.session, ctx.thresholds
    if event is None:
        return None
    product_id = event.product_id or session.product_id
    if product_id is None:
        return None
    # Each part is looked at only where the event can change it: this runs on every event.
    dwell_ms = 0
    if session.product_view_ts_ms and session.product_id == product_id:
        dwell_ms = max(0, event.ts_ms - session.product_view_ts_ms)
        if dwell_ms >= t.product_dwell_ms and not _active(ctx):
            dwell_ms = 0
    views = session.product_views.count(product_id) if event.type == "product_view" else 0
    adds = removes = 0
    if event.type == "add_to_cart" and session.summary is not None:
        changes = [change for pid, change in session.summary.cart_flips if pid == product_id]
        adds, removes = changes.count(1), changes.count(-1)
    kind = KIND
    if event.type == "product_view" and views >= t.product_min_views:
        what = f"viewed it {times(views)} in this visit"
        score = min(1.0, 0.6 + 0.1 * (views - t.product_min_views))
    elif event.type == "add_to_cart" and adds >= 2 and removes >= 1:
        what = f"added it {times(adds)} and removed it {times(removes)}"
        score = 0.75
    elif dwell_ms >= t.product_dwell_ms:
        what = f"has been on its page for {dwell_ms / 60_000:.0f} minutes"
        score, kind = 0.55, DWELL_KIND
    else:
        return None
    if event.type != "product_view":
        views = session.product_views.count(product_id)  # for the evidence
    return Signal(
        reason=REASON,
        kind=kind,
        score=score,
        evidence={
            "views": float(views),
            "adds": float(adds),
            "removes": float(removes),
            "dwell_s": float(dwell_ms // 1000),
        },
        explanation=f"The customer keeps hesitating over product {product_id}: {what}.",
        subject=product_id,
    )


def _active(ctx: DetectionContext) -> bool:
    """No gap longer than ``product_idle_ms`` since the product page opened: it was being
    read, not left open in a background tab."""
    recent, session = ctx.session.recent, ctx.session
    idle_ms = ctx.thresholds.product_idle_ms
    later_ms = ctx.event.ts_ms if ctx.event is not None else session.last_ts_ms
    for past in reversed(recent):
        if later_ms - past.ts_ms > idle_ms:
            return False
        if past.ts_ms <= session.product_view_ts_ms:
            return True
        later_ms = past.ts_ms
    return True
