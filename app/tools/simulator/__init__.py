"""Shopper simulator: seeded, reproducible shop sessions as contract events, with labels.

Pure: one seeded ``numpy`` generator, no wall clock. ``command`` holds the
``nudgeflow simulate`` subcommand.
"""

from __future__ import annotations

from app.tools.simulator.config import DEFAULT_MIX, SimulationConfig
from app.tools.simulator.generate import SessionLabel, SimulationResult, simulate
from app.tools.simulator.stories import EXPECTED, STORIES

__all__ = [
    "DEFAULT_MIX",
    "EXPECTED",
    "STORIES",
    "SessionLabel",
    "SimulationConfig",
    "SimulationResult",
    "simulate",
]
