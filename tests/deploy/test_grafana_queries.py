"""Every Grafana dashboard under deploy/grafana asks only for metrics a worker exports, in
valid PromQL, and shows what an on-call needs."""

from __future__ import annotations

import subprocess
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from app.runtime.learning import ModelMetricsExport
from app.runtime.metrics import Metrics
from tests.deploy.promql import (
    SCRAPE_SERIES,
    as_rule_file,
    dashboard_queries,
    dashboards,
    exposed_names,
    metric_names,
    promtool,
)

#: Metrics an on-call reads during an incident: each must have a panel.
ON_CALL_METRICS = {
    "nudgeflow_consumer_lag_records", "nudgeflow_consumer_committed_offset",
    "nudgeflow_rebalances_total", "nudgeflow_assigned_partitions",
    "nudgeflow_table_recovery_remaining_records", "nudgeflow_catch_up_remaining_records",
    "nudgeflow_ready",
    "nudgeflow_changelog_writes_total", "nudgeflow_delivery_errors_total",
    "nudgeflow_events_late_total", "nudgeflow_timers_pending", "nudgeflow_redis_up",
}  # fmt: skip


def _exported() -> set[str]:
    registry = CollectorRegistry()
    metrics = Metrics.create(registry)
    ModelMetricsExport(metrics)  # the worker makes the models' series with it
    metrics.announce_interventions([("assist", "rage_click")], models=["rules"])
    return exposed_names(generate_latest(registry).decode()) | SCRAPE_SERIES


def test_there_are_dashboards_with_queries() -> None:
    boards = dashboards()
    assert boards
    for board in boards:
        assert dashboard_queries(board), board


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    tool = promtool()
    for board in dashboards():
        rules = as_rule_file(dashboard_queries(board), tmp_path / f"{board.stem}.rules.yml")
        checked = subprocess.run([tool, "check", "rules", str(rules)], capture_output=True,
                                 text=True, timeout=60, check=False)  # fmt: skip
        assert checked.returncode == 0, f"{board.name}: {checked.stdout}{checked.stderr}"


def test_every_query_names_only_exported_metrics() -> None:
    exported = _exported()
    for board in dashboards():
        for where, expr in dashboard_queries(board):
            asked = metric_names(expr)
            assert asked, f"{board.name} {where}: no metric in {expr!r}"
            assert asked <= exported, f"{board.name} {where}: {sorted(asked - exported)}"


def test_what_an_on_call_needs_has_a_panel() -> None:
    asked = {name for board in dashboards() for _, expr in dashboard_queries(board)
             for name in metric_names(expr)}  # fmt: skip
    assert asked >= ON_CALL_METRICS, sorted(ON_CALL_METRICS - asked)
