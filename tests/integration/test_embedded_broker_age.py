"""The embedded broker's health probe and monitor against a real embedded broker."""

from __future__ import annotations

import asyncio
import io
import time

import pytest

from app.runtime.embedded_health import BrokerMonitor, HealthLimits, probe_hop_ms
from app.runtime.testing import Services
from app.runtime.topics import CLICKS, declare_topics, topic_specs
from tests.integration.clients import produce

pytestmark = pytest.mark.integration


async def test_the_probe_times_a_fetch_once_clicks_holds_a_record(private_stack: Services) -> None:
    await declare_topics(private_stack.broker_url, topic_specs("nudgeflow", 8), 1)
    assert await probe_hop_ms(private_stack.broker_url, 8) is None  # nothing to fetch yet
    await produce(private_stack.bootstrap, CLICKS, [(b"c1", b"{}")] * 3)
    hop_ms = await probe_hop_ms(private_stack.broker_url, 8)
    assert hop_ms is not None and 0 < hop_ms < 1000, hop_ms


async def test_the_monitor_warns_once_on_the_terminal(private_stack: Services) -> None:
    await declare_topics(private_stack.broker_url, topic_specs("nudgeflow", 8), 1)
    await produce(private_stack.bootstrap, CLICKS, [(b"c1", b"{}")])
    pid = _broker_pid(private_stack)
    err = io.StringIO()
    # A limit any broker is past: the memory warning is due at the first probe.
    monitor = BrokerMonitor(private_stack.broker_url, pid, 8, err,
                            HealthLimits(rss_limit_bytes=1), interval_s=0.2)  # fmt: skip
    monitor.start()
    try:
        deadline = time.monotonic() + 20
        while "holds" not in err.getvalue() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # more probes: still one line
    finally:
        monitor.stop()
    lines = err.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("nudgeflow: warning: the embedded broker holds ")
    assert "Apache Kafka" in lines[0]


def _broker_pid(services: Services) -> int:
    import psutil

    port = int(services.bootstrap.rsplit(":", 1)[1])
    for process in psutil.Process().children():
        if "broker" in process.cmdline() and any(
            c.laddr.port == port for c in process.net_connections("tcp")
        ):
            return int(process.pid)
    raise AssertionError(f"no broker child listens on {port}")
