"""Online models, learned per ``clicks`` partition (never per customer) and checkpointed.

Pure: no Faust, no I/O, no clock, no metrics. ``PartitionModels`` bundles a
partition's models and counts what they learned and scored; the runtime exports
the counts and checkpoints the bytes.
"""

from __future__ import annotations

from app.detect.models.abandonment import TRIGGERS as ABANDONMENT_TRIGGERS
from app.detect.models.abandonment import AbandonmentFeatures, AbandonmentModel
from app.detect.models.anomaly import SessionAnomaly, SessionFeatures
from app.detect.models.baselines import BASELINE_METRICS, ShopBaselines
from app.detect.models.features import abandonment_features, session_features
from app.detect.models.partition import CHECKPOINT_VERSION, MODEL_NAMES, PartitionModels
from app.detect.models.rhythm import (
    RHYTHM_ALPHA,
    EwStats,
    churn_risk,
    excess_z,
    rhythm_slowed,
    update_ew,
)
from app.detect.models.validation import ProgressiveValidation

__all__ = [
    "ABANDONMENT_TRIGGERS",
    "BASELINE_METRICS",
    "CHECKPOINT_VERSION",
    "MODEL_NAMES",
    "RHYTHM_ALPHA",
    "AbandonmentFeatures",
    "AbandonmentModel",
    "EwStats",
    "PartitionModels",
    "ProgressiveValidation",
    "SessionAnomaly",
    "SessionFeatures",
    "ShopBaselines",
    "abandonment_features",
    "churn_risk",
    "excess_z",
    "rhythm_slowed",
    "session_features",
    "update_ew",
]
