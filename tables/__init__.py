"""Table declarations and the values they hold."""

from __future__ import annotations

from tables.customer_state import (
    CustomerProfile,
    CustomerState,
    RecentEvent,
    SessionState,
    SignalRecord,
    decode_state,
    encode_state,
)

__all__ = [
    "CustomerProfile",
    "CustomerState",
    "RecentEvent",
    "SessionState",
    "SignalRecord",
    "decode_state",
    "encode_state",
]
