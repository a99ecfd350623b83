"""Version-checked adjustments to Faust internals (one place, tested)."""

from __future__ import annotations

from app.runtime.compat.faust_transport import (
    FAUST_VERSIONS_SUPPORTED,
    NudgeflowTransport,
    fetch_position,
    fetch_true_highwaters,
    raw_producer,
)
from app.runtime.compat.streams import DirectQueue

__all__ = [
    "FAUST_VERSIONS_SUPPORTED",
    "DirectQueue",
    "NudgeflowTransport",
    "fetch_position",
    "fetch_true_highwaters",
    "raw_producer",
]
