"""Every benchmark at a tiny scale, through its module API, so none of them rots.

The figures at this scale mean nothing; the test only checks that each benchmark
runs end to end on the real embedded stack and returns sane numbers, and that the
report and its plots can be written from them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import reduce
from operator import getitem
from pathlib import Path
from typing import Any

import pytest

from benchmarks import BENCHMARKS, Outcome, bench_scaleout, write_report

pytestmark = pytest.mark.integration

SCALE = 0.005

#: Figures that must be positive numbers, as key paths into each benchmark's result.
POSITIVE: dict[str, list[tuple[str | int, ...]]] = {
    "throughput": [("events",), ("raw_events_per_s",), ("worker_events_per_s",),
                   ("worker_steady_events_per_s",), ("worker_to_raw",),
                   ("learning_off_events_per_s",), ("few_decoded_events_per_s",)],
    "collector": [("requests",), ("accepted_events",), ("accepted_events_per_s",),
                  ("latency_ms", "p50"), ("latency_ms", "p99")],
    "latency": [(path, rate, *figure) for rate in ("1000", "5000")
                for path, figures in (
                    ("rates", (("received",), ("achieved_rate",), ("latency_ms", "p50"),
                               ("latency_ms", "p99"), ("latency_ms", "max"),
                               ("window_p99_ms", 0), ("processing_us", "p50"),
                               ("redis", "received"), ("redis", "latency_ms", "p99"))),
                    ("relay", (("received",), ("latency_ms", "p99"), ("window_p99_ms", 0))))
                for figure in figures] + [("p99_to_relay",)],
    "broker": [("steps", step, *figure) for step in range(5)
               for figure in (("received",), ("latency_ms", "p50"), ("latency_ms", "p99"),
                              ("latency_ms", "max"))]
              + [("steps", step, "stored_batches") for step in range(1, 5)]
              + [("filled",), ("fill_s",), ("fill_batches_per_s",)],
    "memory": [(*run, figure) for run in ((), ("all_decoded",))
               for figure in ("rss_before_bytes", "rss_after_bytes", "active_customers",
                              "bytes_per_customer", "decoded_max")],
    "models": [("per_event", "pipeline", "us_mean"), ("per_event", "learning", "us_p99"),
               ("learn_event_us", "p50"), ("checkpoint_bytes",), ("to_bytes_ms",),
               ("to_bytes_unchanged_trees_ms",),
               ("from_bytes_ms",)],
    "scaleout": [("combined_events_per_s",), ("combined_steady_events_per_s",),
                 ("workers", 0, "processed"), ("workers", 1, "processed")],
    "soak": [("accepted",), ("fresh_p50_ms",)]
            + [("windows", w, *figure) for w in range(3)
               for figure in (("achieved_rate",), ("latency_ms", "p99"),
                              ("kafka_latency_ms", "p99"), ("worker_rss_mb",),
                              ("broker_rss_mb",))],
}  # fmt: skip

#: Figures that must be true: complete runs, every worker used.
TRUE: dict[str, list[tuple[str | int, ...]]] = {
    "throughput": [("worker_complete",), ("learning_off_complete",), ("few_decoded_complete",)],
    "collector": [],
    "latency": [],
    "broker": [("complete",)],
    "memory": [("complete",), ("all_decoded", "complete")],
    "models": [],
    "scaleout": [("complete",), ("all_assigned",)],
    "soak": [],
}


def _figure(result: dict[str, Any], path: tuple[str | int, ...]) -> Any:
    return reduce(getitem, path, result)


@pytest.fixture(scope="module")
def run_benchmark(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[str], dict[str, Any]]:
    """Each benchmark runs once per module; the report test reuses the results."""
    results: dict[str, dict[str, Any]] = {}

    def _run(name: str) -> dict[str, Any]:
        if name not in results:
            results[name] = BENCHMARKS[name].run(SCALE, tmp_path_factory.mktemp(name))
        return results[name]

    return _run


def test_every_benchmark_is_checked() -> None:
    assert set(POSITIVE) == set(TRUE) == set(BENCHMARKS)


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_benchmark_returns_sane_figures(
    name: str, run_benchmark: Callable[[str], dict[str, Any]]
) -> None:
    result = run_benchmark(name)
    for path in POSITIVE[name]:
        value = _figure(result, path)
        assert isinstance(value, int | float) and math.isfinite(value) and value > 0, (path, value)
    for path in TRUE[name]:
        assert _figure(result, path) is True, path


def test_latency_receives_every_intervention(
    run_benchmark: Callable[[str], dict[str, Any]],
) -> None:
    result = run_benchmark("latency")
    for rate, phase in result["rates"].items():
        for path in (phase, phase["redis"], result["relay"][rate]):
            assert path["missing"] == 0 and path["received"] == phase["triggers"] > 0


def test_broker_fills_the_partition_step_by_step(
    run_benchmark: Callable[[str], dict[str, Any]],
) -> None:
    stored = [step["stored_batches"] for step in run_benchmark("broker")["steps"]]
    assert stored[0] == 0 and stored == sorted(set(stored)), stored


def test_soak_receives_every_intervention(
    run_benchmark: Callable[[str], dict[str, Any]],
) -> None:
    windows = run_benchmark("soak")["windows"]
    assert len(windows) == 3 and all(w["missing"] == 0 < w["triggers"] for w in windows)


def test_report_and_plots_are_written(
    run_benchmark: Callable[[str], dict[str, Any]], tmp_path: Path
) -> None:
    outcomes = {name: Outcome(run_benchmark(name), None, (1.0, 1.0, 1.0), 1.0)
                for name in BENCHMARKS}  # fmt: skip
    bench_scaleout.compare(run_benchmark("scaleout"), run_benchmark("throughput"))
    outcomes["models"] = Outcome(None, "RuntimeError: broke", (1.0, 1.0, 1.0), 1.0)
    out = tmp_path / "RESULTS.md"
    rows = write_report(outcomes, BENCHMARKS, out, "python -m benchmarks --scale 0.005")
    text = out.read_text()
    assert {row.benchmark for row in rows} == {"throughput", "collector", "latency", "broker",
                                               "memory", "models", "scale-out",
                                               "soak"}  # fmt: skip
    assert ("models", "ERROR") in {(row.benchmark, row.result) for row in rows}
    assert "## Summary" in text and "Tansu" in text and "RuntimeError: broke" in text
    assert "x one worker" in text
    for png in ("throughput.png", "latency_cdf.png", "soak.png"):
        assert f"]({png})" in text
        assert (tmp_path / png).read_bytes().startswith(b"\x89PNG")
