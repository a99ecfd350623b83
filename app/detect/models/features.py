# cython: annotation_typing=True
"""The models' features, read from a session's state: pure, and cheap enough per call.

Only what the state already keeps is read: counts from the session's summaries, and
back navigations from its bounded window of recent events.
"""

from __future__ import annotations

from itertools import pairwise

from app.detect.models.abandonment import AbandonmentFeatures
from app.detect.models.anomaly import SessionFeatures
from app.detect.signals.step_loop import count_loop_regressions, step_ranks
from tables.customer_state import SessionState

__all__ = ["abandonment_features", "session_features"]


def abandonment_features(session: SessionState, now_ms: int) -> AbandonmentFeatures:
    """What the abandonment model is shown of ``session`` at event time ``now_ms``.

    Examples
    --------
    >>> from tests.factories import T0_MS, click, fold
    >>> state = fold([
    ...     click(type="add_to_cart", product_id="p1", value=40.0, ts_ms=T0_MS),
    ...     click(type="checkout_step", step="cart", ts_ms=T0_MS + 10_000),
    ...     click(type="checkout_step", step="payment", ts_ms=T0_MS + 40_000),
    ...     click(type="payment_failed", error="declined", ts_ms=T0_MS + 70_000),
    ... ])
    >>> abandonment_features(state.session, T0_MS + 70_000)
    AbandonmentFeatures(cart_value=40.0, step_index=3.0, failed_payments=1.0, checkout_s=60.0,
                        events=4.0, step_regressions=0.0, back_navigations=0.0, errors=0.0,
                        cart_items=1.0, cart_changes=1.0, session_s=70.0)
    """
    steps = session.steps
    step_index = -1.0
    if steps and session.step is not None:
        ranks = step_ranks([step for _, step in steps])
        step_index = float(ranks.get(session.step, -1))
    return AbandonmentFeatures(
        cart_value=session.cart_value,
        step_index=step_index,
        failed_payments=float(session.failed_payment_attempts),
        checkout_s=max(0.0, (now_ms - steps[0][0]) / 1000) if steps else 0.0,
        events=float(session.event_count),
        step_regressions=float(count_loop_regressions(steps, ())),
        back_navigations=float(_backs(session)),
        errors=float(len(session.error_ts)),
        cart_items=float(session.cart_items),
        cart_changes=float(len(session.cart_changes)),
        session_s=max(0.0, (now_ms - session.started_ts_ms) / 1000),
    )


def session_features(session: SessionState) -> SessionFeatures:
    """What the anomaly model is shown of ``session`` (usually once it has ended).

    The event rate is over at least a minute, so a session of a few quick events
    is not taken for a burst.

    Examples
    --------
    >>> from tests.factories import T0_MS, click, fold
    >>> state = fold([
    ...     click(type="search", query="boots", results=0, ts_ms=T0_MS),
    ...     click(type="search", query="bots", results=3, ts_ms=T0_MS + 20_000),
    ...     click(type="back", ts_ms=T0_MS + 90_000),
    ...     click(type="form_focus", field="email", page="/signup", ts_ms=T0_MS + 100_000),
    ...     click(type="form_error", field="email", page="/signup", ts_ms=T0_MS + 160_000),
    ... ])
    >>> session_features(state.session)
    SessionFeatures(events_per_min=1.875, back_navigations=1.0, errors=1.0, form_s=60.0,
                    step_regressions=0.0, search_reformulations=1.0)
    """
    minutes = max(1.0, (session.last_ts_ms - session.started_ts_ms) / 60_000)
    return SessionFeatures(
        events_per_min=session.event_count / minutes,
        back_navigations=float(_backs(session)),
        errors=float(len(session.error_ts)),
        form_s=sum(last - first for _, first, last in session.form_spans) / 1000,
        step_regressions=float(count_loop_regressions(session.steps, ())),
        search_reformulations=float(sum(1 for a, b in pairwise(session.searches) if a[2] != b[2])),
    )


def _backs(session: SessionState) -> int:
    return sum(1 for event in session.recent if event.type == "back")
