"""Online models, learned per ``clicks`` partition (never per customer) and checkpointed.

Pure: no Faust, no I/O, no clock, no metrics.
"""

from __future__ import annotations

from app.detect.models.anomaly import SessionAnomaly, SessionFeatures
from app.detect.models.baselines import BASELINE_METRICS, ShopBaselines
from app.detect.models.rhythm import (
    RHYTHM_ALPHA,
    EwStats,
    churn_risk,
    excess_z,
    rhythm_slowed,
    update_ew,
)

__all__ = [
    "BASELINE_METRICS",
    "RHYTHM_ALPHA",
    "EwStats",
    "SessionAnomaly",
    "SessionFeatures",
    "ShopBaselines",
    "churn_risk",
    "excess_z",
    "rhythm_slowed",
    "update_ew",
]
