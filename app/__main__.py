"""``python -m app`` runs the ``nudgeflow`` command."""

from __future__ import annotations

from app.command import main

main()
