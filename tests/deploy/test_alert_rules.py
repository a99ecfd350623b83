"""The alert rules: valid, unit-tested with ``promtool test rules`` (each alert fires when it
should and stays quiet when it should not), on metrics a worker exports, with a runbook."""

from __future__ import annotations

import re
import subprocess

import yaml
from prometheus_client import CollectorRegistry, generate_latest

from app.runtime.metrics import Metrics
from tests.deploy.promql import (
    ALERTS,
    DEPLOY,
    RUNBOOK,
    SCRAPE_SERIES,
    alert_rules,
    exposed_names,
    metric_names,
    promtool,
    rule_test_files,
)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def test_promtool_checks_the_rules_and_the_compose_config() -> None:
    tool = promtool()
    checked = _run(tool, "check", "rules", str(ALERTS))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = _run(tool, "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))
    assert config.returncode == 0, config.stdout + config.stderr


def test_promtool_unit_tests_of_the_alerts_pass() -> None:
    tool = promtool()
    files = rule_test_files()
    assert files, "no rule tests under deploy/prometheus/tests"
    tested = _run(tool, "test", "rules", *map(str, files))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert tested.stdout.count("SUCCESS") == len(files), tested.stdout


def _alert_cases() -> dict[str, tuple[int, int]]:
    """Alert name → (evaluations expecting it to fire, evaluations expecting it quiet)."""
    cases: dict[str, tuple[int, int]] = {}
    for path in rule_test_files():
        spec = yaml.safe_load(path.read_text())
        assert [(path.parent / f).resolve() for f in spec["rule_files"]] == [ALERTS.resolve()]
        for test in spec["tests"]:
            for case in test.get("alert_rule_test", []):
                firing, quiet = cases.get(case["alertname"], (0, 0))
                if case.get("exp_alerts"):
                    firing += 1
                else:
                    quiet += 1
                cases[case["alertname"]] = (firing, quiet)
    return cases


def test_every_alert_is_tested_firing_and_quiet() -> None:
    cases = _alert_cases()
    names = [rule["alert"] for rule in alert_rules() if "alert" in rule]
    assert len(names) == len(set(names)), "duplicate alert names"
    for name in names:
        firing, quiet = cases.get(name, (0, 0))
        assert firing, f"{name}: no promtool test where it fires"
        assert quiet, f"{name}: no promtool test where it stays quiet"
    assert set(cases) <= set(names), f"tests of unknown alerts: {sorted(set(cases) - set(names))}"


def test_alerts_name_only_metrics_a_worker_exports() -> None:
    exported = exposed_names(generate_latest(_exercised_registry()).decode()) | SCRAPE_SERIES
    for rule in alert_rules():
        asked = metric_names(rule["expr"])
        assert asked, f"{rule.get('alert')}: no metric found in {rule['expr']!r}"
        assert asked <= exported, f"{rule.get('alert')}: {sorted(asked - exported)} not exported"


def test_every_alert_has_severity_summary_description_and_a_runbook_section() -> None:
    anchors = {_anchor(title) for title in re.findall(r"^#+\s+(.+)$", RUNBOOK.read_text(), re.M)}
    for rule in alert_rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], name
        url = annotations["runbook_url"]
        assert url == f"deploy/RUNBOOK.md#{name.lower()}", (name, url)
        assert url.split("#", 1)[1] in anchors, f"{name}: no section {name} in RUNBOOK.md"


def _anchor(title: str) -> str:
    """A Markdown heading's anchor as GitHub and most renderers make it."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def _exercised_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    metrics = Metrics.create(registry)
    metrics.announce_interventions([("assist", "rage_click")], models=["rules"])
    return registry
