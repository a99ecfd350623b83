"""Deployment settings: the only code that reads the environment."""

from __future__ import annotations

from config.settings import Settings

__all__ = ["Settings"]
