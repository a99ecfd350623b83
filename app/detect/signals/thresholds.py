"""Detector thresholds, passed to the pure detectors as one value.

Each default names where it comes from; the README's catalogue table repeats them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.detect.clicks import ClickRules

__all__ = ["SignalThresholds"]


@dataclass(slots=True, frozen=True)
class SignalThresholds:
    """Thresholds of the built-in detectors."""

    # PostHog's rage-click rule: 3 clicks in 1 s within 30 px (Datadog allows 100 px).
    rage_click_min_clicks: int = 3
    rage_click_window_ms: int = 1000
    rage_click_radius_px: float = 30.0
    # PostHog flags a click with no response after 2.5 s (Sentry 7 s, Amplitude 3 s); two
    # such clicks within a minute, not one stray click, make the signal.
    dead_click_wait_ms: int = 2500
    dead_click_min_clicks: int = 2
    dead_click_window_ms: int = 60_000
    payment_failed_attempts: int = 2
    # Two regressions to an earlier checkout step with no cart change: one step back is
    # a buyer fixing an address, the second is a loop.
    step_loop_min_regressions: int = 2
    form_field_min_focus: int = 3
    form_min_errors: int = 2
    form_slow_ms: int = 180_000
    checkout_stall_ms: int = 60_000
    product_min_views: int = 3
    product_dwell_ms: int = 120_000
    # A page left open with no event for this long is not being read (a tab in the background).
    product_idle_ms: int = 60_000
    search_min_zero_results: int = 2
    search_min_reformulations: int = 3
    search_window_ms: int = 60_000
    error_burst_min_errors: int = 3
    error_burst_window_ms: int = 30_000
    # Half of Google Analytics' 30-minute session rule: still in the visit, time to remind.
    cart_idle_ms: int = 600_000
    # A returning customer slows down: the gap since the last visit grew by this factor
    # while the last visit shrank to this share of the usual one, or its pace (mean gap
    # between events) grew by the pace factor.
    rhythm_min_visits: int = 3
    rhythm_gap_factor: float = 1.5
    rhythm_visit_share: float = 0.6
    rhythm_pace_factor: float = 2.0
    # Automated traffic: half the gaps between a session's events shorter than a
    # person's fastest deliberate action (~150 ms) and following another such gap, over
    # enough events to tell. Runs, not single short gaps: a browser tracker sends what
    # one action causes together (a person's checkout in the demo shop is ~60 % short
    # gaps, nearly all of them alone or in pairs).
    bot_min_events: int = 20
    # A customer with an automated visit before: their next visits are judged after fewer
    # events, so a crawler that comes back is not nudged over its first twenty.
    bot_min_events_again: int = 5
    bot_gap_ms: int = 150
    bot_fast_share: float = 0.5
    click_rules: ClickRules = field(default_factory=ClickRules)
