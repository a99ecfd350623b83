"""feedback: what chatbot services report on interventions (contract §3)."""

from __future__ import annotations

from app.feedback.feedback import (
    FUNNEL,
    MAX_FEEDBACK_BYTES,
    OUTCOMES,
    Feedback,
    check_indexed,
    feedback_to_wire,
    latest_outcome,
    parse_feedback,
)
from app.feedback.store import FeedbackStore, LatestOutcome

__all__ = [
    "FUNNEL",
    "MAX_FEEDBACK_BYTES",
    "OUTCOMES",
    "Feedback",
    "FeedbackStore",
    "LatestOutcome",
    "check_indexed",
    "feedback_to_wire",
    "latest_outcome",
    "parse_feedback",
]
