"""What the files under deploy/ ask of the workers: alert rules, dashboard queries, and the
metric names in their PromQL; and the names a worker's ``/metrics`` offers.

The name scanner is small, not a PromQL parser: ``promtool check rules`` checks each
expression's syntax first (``as_rule_file``), so the scanner only meets valid PromQL.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
RULE_TESTS = DEPLOY / "prometheus" / "tests"
GRAFANA = DEPLOY / "grafana"
RUNBOOK = DEPLOY / "RUNBOOK.md"

#: Series Prometheus makes itself for every target it scrapes.
SCRAPE_SERIES = frozenset(
    {"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_series_added",
     "scrape_samples_post_metric_relabeling"}
)  # fmt: skip

# Grafana's variables, as a Prometheus data source replaces them.
_GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}
_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
                       "and", "or", "unless", "offset", "inf", "nan", "atan2"})  # fmt: skip


def promtool(tool: str = "promtool") -> str:
    """The path of ``promtool`` (or ``prometheus``); skip, saying how to get it, if absent."""
    path = shutil.which(tool)
    if path is None:
        pytest.skip(
            f"{tool} not found: install Debian's 'prometheus' package (make install does, as root)"
        )
    return path


def alert_rules() -> list[dict[str, Any]]:
    """Every rule of ``deploy/prometheus/alerts.yml``."""
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def rule_test_files() -> list[Path]:
    return sorted(RULE_TESTS.glob("*.test.yml"))


def dashboards() -> list[Path]:
    return sorted(GRAFANA.rglob("*.json"))


def dashboard_queries(dashboard: Path) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and query variable of a Grafana dashboard,
    with Grafana's variables replaced as the data source replaces them."""
    board = json.loads(dashboard.read_text())
    found = [(f"panel {title!r}", expr) for title, expr in _panel_exprs(board.get("panels", []))]
    for variable in board.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else str(query or "")
        match = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", text, re.S)
        found.append((f"variable {variable['name']!r}", match.group(1) if match else text))
    return [(where, grafana_to_promql(expr)) for where, expr in found]


def _panel_exprs(panels: Iterable[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    for panel in panels:
        for target in panel.get("targets", []):
            if target.get("expr"):
                yield panel.get("title", "?"), target["expr"]
        yield from _panel_exprs(panel.get("panels", []))


def grafana_to_promql(expr: str) -> str:
    """Replace Grafana's variables: built-in intervals by durations, ``$var`` (always in a
    ``=~`` matcher here) by ``.*``.

    >>> grafana_to_promql('rate(x{instance=~"$instance"}[$__rate_interval])')
    'rate(x{instance=~".*"}[1m])'
    """
    for name, value in _GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    return re.sub(r"\$\{?\w+\}?", ".*", expr)


def metric_names(expr: str) -> set[str]:
    """The metric names a valid PromQL expression selects.

    >>> sorted(metric_names('histogram_quantile(0.99, sum by (le) (rate('
    ...     'x_seconds_bucket{job="a", le!="1"}[5m]))) > 1 and on () (up == 0) '
    ...     'or {__name__="y_total"} offset 5m'))
    ['up', 'x_seconds_bucket', 'y_total']
    """
    names = set(re.findall(r'__name__\s*=\s*"([^"]+)"', expr))
    text = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\boffset\s+-?[\dsmhdwy]+", " ", text)
    text = re.sub(r"(?<![\w:])\d[\w.+-]*", " ", text)  # numbers, durations
    for match in re.finditer(r"[A-Za-z_:][\w:]*", text):
        name = match.group()
        is_function = text[match.end() :].lstrip().startswith("(")
        if not is_function and name.lower() not in _KEYWORDS:
            names.add(name)
    return names


def as_rule_file(exprs: Iterable[tuple[str, str]], path: Path) -> Path:
    """Write expressions as recording rules, for ``promtool check rules`` to parse."""
    rules = [{"record": f"check:expr_{n}", "expr": expr} for n, (_, expr) in enumerate(exprs)]
    path.write_text(yaml.safe_dump({"groups": [{"name": "check", "rules": rules}]}))
    return path


def exposed_names(exposition: str) -> set[str]:
    """Every series name a ``/metrics`` text may carry, from its families' types: a
    histogram family offers ``_bucket``, ``_sum`` and ``_count`` even before it has a
    labelled child, a counter ``_total`` (and ``_created``)."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
        "info": ("_info",),
    }
    return {
        family.name + suffix
        for family in text_string_to_metric_families(exposition)
        for suffix in suffixes.get(family.type, ("",))
    }
