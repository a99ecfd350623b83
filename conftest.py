"""The tests run the package's Python source (``app.speedups``).

Its hot modules are imported here, before anything that installs the compiled build's
finder (the benchmarks package does, for its own figures), so that pytest's doctests and
its import by path find them as source files. ``python -m tests.compiled`` installs the
finder first: then these imports load the build, and the unit tests run on it.
"""

from __future__ import annotations

import importlib

from app import speedups

for _name in speedups.HOT_MODULES:
    importlib.import_module(_name)
