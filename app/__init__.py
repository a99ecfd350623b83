"""nudgeflow: notices when a shopper struggles and tells a chatbot to step in."""

from __future__ import annotations

__all__: list[str] = []
