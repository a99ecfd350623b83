"""The ``nudgeflow`` command's entry: the compiled hot path first, then the command.

Installed before anything imports the hot path, so the command (and every worker it
runs) uses the build of ``app.speedups`` where it matches the source. Imported as a
library (the tests, a notebook), the package runs its Python source.
"""

from __future__ import annotations

__all__ = ["main"]


def main() -> None:
    """Entry point of the ``nudgeflow`` console script and of ``python -m app``."""
    from app import speedups

    speedups.install()
    from app.cli import main as run_command

    run_command()
