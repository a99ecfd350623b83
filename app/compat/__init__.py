"""Version-checked adjustments to Faust internals (one place, tested)."""

from __future__ import annotations

from app.compat.faust_transport import (
    FAUST_VERSIONS_SUPPORTED,
    NudgeflowTransport,
    fetch_true_highwaters,
    raw_producer,
)
from app.compat.streams import RawSchema, event_batches

__all__ = [
    "FAUST_VERSIONS_SUPPORTED",
    "NudgeflowTransport",
    "RawSchema",
    "event_batches",
    "fetch_true_highwaters",
    "raw_producer",
]
