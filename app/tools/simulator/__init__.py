"""Shopper simulator: seeded, reproducible shop sessions as contract events, with labels.

Pure: seeded ``numpy`` generators, no wall clock. Events come in the order a
collector would receive them (late, out of order, retried), labels in event
time. ``variants`` holds the parameter profiles (``holdout`` is never tuned on);
``command`` the ``nudgeflow simulate`` subcommand.
"""

from __future__ import annotations

from app.tools.simulator.config import DEFAULT_MIX, SimulationConfig
from app.tools.simulator.generate import SessionLabel, SimulationResult, simulate
from app.tools.simulator.stories import EXPECTED, STORIES
from app.tools.simulator.variants import LOOKALIKES, VARIANTS, Faults

__all__ = [
    "DEFAULT_MIX",
    "EXPECTED",
    "LOOKALIKES",
    "STORIES",
    "VARIANTS",
    "Faults",
    "SessionLabel",
    "SimulationConfig",
    "SimulationResult",
    "simulate",
]
