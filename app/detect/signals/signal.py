"""What a detector reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["InterventionKind", "Signal"]

InterventionKind = Literal["assist", "offer", "reminder", "reward"]


@dataclass(slots=True, frozen=True)
class Signal:
    """A friction a detector recognised, with its evidence and the help it calls for."""

    reason: str
    kind: InterventionKind
    score: float
    evidence: dict[str, float] = field(default_factory=dict)
    explanation: str = ""
