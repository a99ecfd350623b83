"""Models: what River candidates cost per event, and their size once pickled.

No model is wired into the worker yet: these are candidates, timed alone,
prequentially (score, then learn) on six numeric session features.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from river import anomaly, linear_model, preprocessing

from benchmarks._common import percentiles, scaled
from benchmarks._report import Row, cell, num

__all__ = ["details", "run", "summary"]

# Feature ranges of a shop session; HalfSpaceTrees needs them to split its space.
_LIMITS = {
    "dwell_ms": (0.0, 120_000.0),
    "clicks_10s": (0.0, 30.0),
    "scroll_pct": (0.0, 100.0),
    "cart_value": (0.0, 1_000.0),
    "session_events": (0.0, 300.0),
    "since_last_ms": (0.0, 60_000.0),
}

Features = dict[str, float]


def run(scale: float, workdir: Path) -> dict[str, Any]:
    """Time ``score_one`` + ``learn_one`` over ~10 000 x ``scale`` events per model."""
    n = int(scaled(10_000, scale, 200))
    features, labels = _session_features(np.random.default_rng(5), n)
    logistic = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    trees = anomaly.HalfSpaceTrees(n_trees=10, height=8, window_size=250, limits=_LIMITS, seed=42)

    def logistic_step(x: Features, y: bool) -> None:
        logistic.predict_proba_one(x).get(True, 0.0)
        logistic.learn_one(x, y)

    def trees_step(x: Features, y: bool) -> None:
        trees.score_one(x)
        trees.learn_one(x)

    return {
        "events": n,
        "features": len(_LIMITS),
        "models": {
            "StandardScaler | LogisticRegression": _time(logistic, logistic_step, features, labels),
            "HalfSpaceTrees(n_trees=10, height=8, window_size=250)": _time(
                trees, trees_step, features, labels
            ),
        },
    }


def _session_features(rng: np.random.Generator, n: int) -> tuple[list[Features], list[bool]]:
    """Skewed, positive features as sessions have them, and a noisy "friction" label."""
    columns = {
        "dwell_ms": rng.lognormal(9.5, 1.0, n),
        "clicks_10s": rng.poisson(2.0, n).astype(float),
        "scroll_pct": rng.uniform(0, 100, n),
        "cart_value": rng.exponential(80.0, n),
        "session_events": rng.poisson(25.0, n).astype(float),
        "since_last_ms": rng.exponential(4_000.0, n),
    }
    for name, (low, high) in _LIMITS.items():
        np.clip(columns[name], low, high, out=columns[name])
    friction = (columns["clicks_10s"] > 4) | (columns["since_last_ms"] > 15_000)
    labels = friction ^ (rng.random(n) < 0.05)
    features = [{name: float(values[i]) for name, values in columns.items()} for i in range(n)]
    return features, [bool(y) for y in labels]


def _time(
    model: object,
    step: Callable[[Features, bool], None],
    features: list[Features],
    labels: list[bool],
) -> dict[str, float]:
    """Per-event µs of ``step`` (score, then learn), and the model's pickled size after."""
    elapsed_ns = []
    for x, y in zip(features, labels, strict=True):
        started = time.perf_counter_ns()
        step(x, y)
        elapsed_ns.append(time.perf_counter_ns() - started)
    spread = percentiles([ns / 1e3 for ns in elapsed_ns], (50, 99))
    return {
        "us_per_event": sum(elapsed_ns) / len(elapsed_ns) / 1e3,
        "us_p50": spread["p50"],
        "us_p99": spread["p99"],
        "pickled_bytes": len(pickle.dumps(model)),
    }


def summary(result: dict[str, Any]) -> list[Row]:
    return [
        Row("models", f"{name}: score + learn per event, pickled size",
            f"{m['us_per_event']:.1f} µs, {num(m['pickled_bytes'] / 1024, 1)} KiB",
            "candidate, not yet in the worker")
        for name, m in result["models"].items()
    ]  # fmt: skip


def details(result: dict[str, Any]) -> str:
    rows = "\n".join(
        f"| `{cell(name)}` | {m['us_per_event']:.1f} | {m['us_p50']:.1f} / {m['us_p99']:.1f} "
        f"| {num(m['pickled_bytes'])} |"
        for name, m in result["models"].items()
    )
    return f"""\
**Candidates, not yet in the worker.** Each model scores, then learns (prequential), one
event at a time for {num(result["events"])} events of {result["features"]} numeric session
features (dwell, clicks in 10 s, scroll depth, cart value, session length, time since the
last event), in this process; the size is `len(pickle.dumps(model))` afterwards. The logistic
regression learns a noisy synthetic "friction" label; HalfSpaceTrees gets the features'
ranges as `limits`.

| model | µs/event (mean) | µs p50 / p99 | pickled bytes |
|---|---|---|---|
{rows}
"""
