"""The unit tests again, on the hot path's compiled build: ``python -m tests.compiled``.

pytest runs the package as a library, on its Python source (``app.speedups``); the
workers run the build. This run holds the build to the source's unit tests. Without a
build (no C compiler) there is nothing to hold, and it says so.
"""

from __future__ import annotations

import sys

import pytest

from app import speedups


def main() -> int:
    if speedups.install() is None:
        print("no build of the hot path: nothing to test compiled")
        return 0
    status = int(pytest.main(["tests/unit", "-q", "--durations=5"]))
    compiled, stale = speedups.loaded()
    print(f"on the build: {len(compiled)} modules compiled, {len(stale)} changed since")
    if stale or set(compiled) != set(speedups.HOT_MODULES):
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
