"""Running nudgeflow on one machine in the foreground: ``nudgeflow up`` and ``nudgeflow demo``.

``up`` starts the embedded stack and a worker, prints a banner, a ready line and one
line per intervention, and keeps Faust's log in a file; ``record`` tells the other
commands where a running ``up`` listens.
"""

from __future__ import annotations

from app.local.record import UpRecord, read_running
from app.local.up import UpOptions, run_up

__all__ = ["UpOptions", "UpRecord", "read_running", "run_up"]
