"""Online models, learned per ``clicks`` partition (never per customer) and checkpointed.

Pure: no Faust, no I/O, no clock, no metrics.
"""

from __future__ import annotations

from app.detect.models.rhythm import (
    RHYTHM_ALPHA,
    EwStats,
    churn_risk,
    excess_z,
    rhythm_slowed,
    update_ew,
)

__all__ = [
    "RHYTHM_ALPHA",
    "EwStats",
    "churn_risk",
    "excess_z",
    "rhythm_slowed",
    "update_ew",
]
