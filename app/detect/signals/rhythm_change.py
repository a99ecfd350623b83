# cython: annotation_typing=True
"""Rhythm change: a returning customer whose visits come later, and end sooner or go slower."""

from __future__ import annotations

from app.detect.signals.signal import DetectionContext, InterventionKind, Signal

__all__ = ["KIND", "REASON", "TRIGGERS", "detect_rhythm_change"]

REASON = "rhythm_change"
KIND: InterventionKind = "reminder"
#: Event types the rule looks at (None: every type).
TRIGGERS: frozenset[str] | None = None  # the first event of a visit, whatever it is

# The weight app.detect.state gives the newest visit in the customer's means.
_ALPHA = 0.3


def detect_rhythm_change(ctx: DetectionContext) -> Signal | None:
    """Fire on the first event of a visit when the customer is slowing down.

    With at least ``rhythm_min_visits`` visits before, the gap since the last one
    must be ``rhythm_gap_factor`` times the usual gap, and the last visit must have
    had at most ``rhythm_visit_share`` of the usual number of events, or a pace
    (its mean gap between events) ``rhythm_pace_factor`` times the usual pace. The
    means are the customer's own (exponentially weighted), so the rule follows each
    person's habit, not a shop-wide number.

    Examples
    --------
    >>> from tables.customer_state import CustomerProfile
    >>> from tests.factories import click, context
    >>> profile = CustomerProfile(0, 0, visits=4, gap_mean_ms=86_400_000.0,
    ...                           visit_events_mean=30.0, last_visit_events=8)
    >>> ctx = context([click()], visit_gap_ms=3 * 86_400_000, profile=profile)
    >>> detect_rhythm_change(ctx).kind
    'reminder'
    """
    gap = ctx.visit_gap_ms
    profile, t = ctx.state.profile, ctx.thresholds
    if gap <= 0 or profile.visits - 1 < t.rhythm_min_visits or profile.gap_mean_ms <= 0:
        return None
    last = profile.last_visit_events
    # The mean before the last visit was folded in (app.detect.state's update, undone).
    usual = (profile.visit_events_mean - _ALPHA * last) / (1 - _ALPHA)
    if usual <= 0 or gap < t.rhythm_gap_factor * profile.gap_mean_ms:
        return None
    short = last <= t.rhythm_visit_share * usual
    pace = profile.last_pace_ratio
    if not short and pace < t.rhythm_pace_factor:
        return None
    slower = gap / profile.gap_mean_ms
    evidence = {"gap_ratio": round(slower, 2), "last_visit_share": round(last / usual, 2)}
    if pace:
        evidence["last_visit_pace_ratio"] = round(pace, 2)
    how = "short" if short else f"{pace:.1f} times slower than usual"
    return Signal(
        reason=REASON,
        kind=KIND,
        score=min(1.0, 0.4 + 0.1 * slower),
        evidence=evidence,
        explanation=(
            f"This returning customer came back after {_span(gap)}, "
            f"{slower:.1f} times their usual gap, and their last visit was {how}; "
            "their interest may be fading."
        ),
    )


def _span(ms: int) -> str:
    hours = ms / 3_600_000
    return f"{hours:.1f} hours" if hours < 48 else f"{hours / 24:.1f} days"
