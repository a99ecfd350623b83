"""nudgeflow's benchmarks: ``python -m benchmarks`` (``make bench``) writes ``RESULTS.md``.

Each ``bench_<name>`` module has ``run(scale, workdir) -> dict``, which starts and stops
everything it needs, and ``summary(result)`` / ``details(result)`` for the report.
pytest does not collect this package; ``tests/integration/test_benchmarks_smoke.py``
runs every benchmark at a tiny scale so none of them rots.
"""

from __future__ import annotations

from types import ModuleType

from app import speedups

# Measured as the worker runs it: the hot path's build, where built, installed before the
# benchmarks import it (the tests import their Python source first: conftest.py).
speedups.install()

from benchmarks import (  # noqa: E402
    bench_broker,
    bench_collector,
    bench_latency,
    bench_memory,
    bench_models,
    bench_scaleout,
    bench_soak,
    bench_throughput,
)
from benchmarks._report import Outcome, write_report  # noqa: E402

__all__ = ["BENCHMARKS", "Outcome", "write_report"]

#: In running order: scale-out compares itself with the throughput benchmark's worker; the
#: soak, 20 minutes at full scale, runs last.
BENCHMARKS: dict[str, ModuleType] = {
    "throughput": bench_throughput,
    "collector": bench_collector,
    "latency": bench_latency,
    "broker": bench_broker,
    "memory": bench_memory,
    "models": bench_models,
    "scaleout": bench_scaleout,
    "soak": bench_soak,
}
