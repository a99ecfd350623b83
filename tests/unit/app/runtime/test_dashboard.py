"""The Grafana dashboard asks only for metrics a worker exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from app.runtime.learning import ModelMetricsExport
from app.runtime.metrics import Metrics

DASHBOARD = Path(__file__).resolve().parents[4] / "deploy/grafana/dashboards/nudgeflow.json"


def _exprs(panels: list[dict]) -> list[str]:
    found = []
    for panel in panels:
        found += [t["expr"] for t in panel.get("targets", []) if "expr" in t]
        found += _exprs(panel.get("panels", []))
    return found


def test_every_metric_in_the_dashboard_is_exported() -> None:
    registry = CollectorRegistry()
    metrics = Metrics.create(registry)
    ModelMetricsExport(metrics)  # the worker makes the models' series with it
    metrics.announce_interventions([("assist", "rage_click")], models=["rules"])
    exported = set(
        re.findall(r"^(nudgeflow_\w+?)(?:\{| )", generate_latest(registry).decode(), re.M)
    )

    asked = {
        name
        for expr in _exprs(json.loads(DASHBOARD.read_text())["panels"])
        for name in re.findall(r"\bnudgeflow_\w+", expr)
    }

    assert asked, "no query found"
    assert asked <= exported, sorted(asked - exported)
    assert {"nudgeflow_events_late_total", "nudgeflow_timers_pending"} <= asked
