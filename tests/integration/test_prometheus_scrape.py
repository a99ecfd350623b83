"""A real Prometheus (Debian's) scrapes a running worker with the repository's alert rules:
events sent are counted, every rule evaluates and none fires on a healthy worker, every
dashboard query runs; and ``promtool check metrics`` accepts the worker's ``/metrics``."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
import yaml

from app.runtime.embedded import free_port
from app.runtime.testing import WorkerProcess
from tests.deploy.promql import (
    ALERTS,
    SCRAPE_SERIES,
    alert_rules,
    dashboard_queries,
    dashboards,
    exposed_names,
    metric_names,
    promtool,
)
from tests.integration.clients import event, get, post, unique

pytestmark = pytest.mark.integration

_SCRAPE_S = 1


@dataclass
class Prometheus:
    """A ``prometheus`` server of the test's own."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    async def api(self, path: str, **params: str) -> Any:
        query = f"?{urlencode(params)}" if params else ""
        status, body, _ = await get(f"{self.url}/api/v1/{path}{query}")
        answer = orjson.loads(body)
        assert status == 200 and answer["status"] == "success", (path, params, answer)
        return answer["data"]

    async def value(self, expr: str) -> float | None:
        """The single value of an instant query, None when it has no result."""
        result = (await self.api("query", query=expr))["result"]
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None


@pytest.fixture(scope="module")
def prometheus(
    worker: WorkerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prometheus]:
    """Prometheus scraping the session's worker every second, with deploy's alert rules."""
    binary = promtool("prometheus")
    home = tmp_path_factory.mktemp("prometheus")
    config = {
        "global": {"scrape_interval": f"{_SCRAPE_S}s", "evaluation_interval": f"{_SCRAPE_S}s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [{
            "job_name": "nudgeflow",
            "static_configs": [{"targets": [worker.web_url.removeprefix("http://")]}],
        }],
    }  # fmt: skip
    (home / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log_path = home / "prometheus.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [binary, f"--config.file={home / 'prometheus.yml'}",
             f"--storage.tsdb.path={home / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = Prometheus(f"http://127.0.0.1:{port}", process, log_path)
    try:
        _wait_ready(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(20)
        assert process.poll() is not None


def _wait_ready(server: Prometheus, timeout_s: float = 30.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"prometheus exited:\n{server.log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{server.url}/-/ready", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"prometheus not ready:\n{server.log_path.read_text()[-3000:]}")


async def _until(check: Any, timeout_s: float = 30.0, every_s: float = 0.25) -> Any:
    """Await ``check()`` until it returns something truthy; return that (or the last)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        result = await check()
        if result or asyncio.get_running_loop().time() > deadline:
            return result
        await asyncio.sleep(every_s)


async def test_prometheus_counts_the_events_sent(
    prometheus: Prometheus, worker: WorkerProcess
) -> None:
    async def scraped() -> bool:
        return await prometheus.value('up{job="nudgeflow"}') == 1

    assert await _until(scraped), prometheus.log_path.read_text()[-3000:]
    received = 'sum(nudgeflow_events_received_total{job="nudgeflow", source="http"})'
    processed = 'sum(nudgeflow_events_processed_total{job="nudgeflow"})'
    received_before, processed_before = (
        await prometheus.value(received),
        await prometheus.value(processed),
    )
    assert received_before is not None and processed_before is not None

    customer = unique("prom")
    events = [event(customer, "page_view", page=f"/p/{n}") for n in range(7)]
    status, answer = await post(f"{worker.web_url}/v1/events", {"events": events})
    assert (status, answer["accepted"]) == (202, 7), answer

    async def counted() -> bool:
        return (await prometheus.value(received) == received_before + 7
                and (await prometheus.value(processed) or 0) >= processed_before + 7)  # fmt: skip

    assert await _until(counted), (await prometheus.value(received), received_before)


async def test_the_alert_rules_load_evaluate_and_none_fires_on_a_healthy_worker(
    prometheus: Prometheus,
) -> None:
    expected = {rule["alert"] for rule in alert_rules()}

    async def scraped() -> bool:
        return await prometheus.value('up{job="nudgeflow"}') == 1

    assert await _until(scraped)
    await asyncio.sleep(3 * _SCRAPE_S)  # rules evaluated on the worker's series, and again
    groups = (await prometheus.api("rules", type="alert"))["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert {rule["name"] for rule in rules} == expected
    for rule in rules:
        assert rule["health"] == "ok", (rule["name"], rule.get("lastError"))
        assert rule["annotations"]["runbook_url"].startswith("deploy/RUNBOOK.md#"), rule["name"]
    firing = [a for a in (await prometheus.api("alerts"))["alerts"] if a["state"] == "firing"]
    assert firing == [], firing
    assert await prometheus.value("nudgeflow_ready") == 1


async def test_every_dashboard_query_runs_on_metrics_the_live_worker_exports(
    prometheus: Prometheus, worker: WorkerProcess
) -> None:
    status, body, _ = await get(f"{worker.web_url}/metrics")
    assert status == 200
    exported = exposed_names(body.decode()) | SCRAPE_SERIES
    for board in dashboards():
        for where, expr in dashboard_queries(board):
            assert metric_names(expr) <= exported, (board.name, where, expr)
            await prometheus.api("query", query=expr)  # asserts success


def test_promtool_accepts_the_live_metrics(worker: WorkerProcess) -> None:
    import urllib.request

    tool = promtool()
    with urllib.request.urlopen(f"{worker.web_url}/metrics", timeout=10) as response:
        exposition = response.read()
    checked = subprocess.run([tool, "check", "metrics"], input=exposition, capture_output=True,
                             timeout=60, check=False)  # fmt: skip
    assert checked.returncode == 0, (checked.stdout + checked.stderr).decode()
    assert b"nudgeflow_consumer_lag_records" in exposition
