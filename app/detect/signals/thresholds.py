"""Detector thresholds, passed to the pure detectors as one value."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SignalThresholds"]


@dataclass(slots=True, frozen=True)
class SignalThresholds:
    """Thresholds of the built-in detectors (defaults follow the README)."""

    # PostHog's rage-click rule: 3 clicks in 1 s within 30 px (Datadog allows 100 px).
    rage_click_min_clicks: int = 3
    rage_click_window_ms: int = 1000
    rage_click_radius_px: float = 30.0
    payment_failed_attempts: int = 2
    step_loop_min_returns: int = 2
