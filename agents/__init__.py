"""Faust agents, one per module: thin plumbing around the pure logic in ``app``."""

from __future__ import annotations

from agents.process_clicks import attach_process_clicks
from agents.process_feedback import attach_process_feedback

__all__ = ["attach_process_clicks", "attach_process_feedback"]
