"""``nudgeflow up``: the embedded stack in the foreground, and a clean stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from app.runtime.embedded import free_port
from tests.integration.clients import post, rage_clicks, read_redis_stream, unique

pytestmark = pytest.mark.integration


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _start_up(tmp_path: Path) -> tuple[subprocess.Popen[bytes], dict[str, int], float]:
    ports = {"web": free_port(), "broker": free_port(), "redis": free_port()}
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUDGEFLOW_")}
    env["NUDGEFLOW_DATA_DIR"] = str(tmp_path / "data")
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "up", "--web-port", str(ports["web"]),
         "--broker-port", str(ports["broker"]), "--redis-port", str(ports["redis"])],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = started + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ports['web']}/readyz", timeout=1) as r:
                if r.status == 200:
                    return process, ports, time.monotonic() - started
        except OSError:
            pass
        assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
        time.sleep(0.05)
    process.kill()
    raise AssertionError("nudgeflow up did not get ready in 60 s")


async def test_up_serves_the_contract_and_stops_cleanly_on_sigterm(tmp_path):
    process, ports, ready_after_s = _start_up(tmp_path)
    try:
        print(f"nudgeflow up ready after {ready_after_s:.2f} s")
        customer = unique("up")
        status, _ = await post(f"http://127.0.0.1:{ports['web']}/v1/events",
                               {"events": rage_clicks(customer)})  # fmt: skip
        assert status == 202
        redis_url = f"redis://127.0.0.1:{ports['redis']}/0"
        found = await read_redis_stream(redis_url, lambda v: v["customer_id"] == customer)
        assert found[0]["reason"] == "rage_click"
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode()
    assert process.returncode == 0, output
    for name in ("collector", "broker", "redis"):
        assert name in output
    assert f"http://127.0.0.1:{ports['web']}/v1/events" in output
    assert not any(_listening(port) for port in ports.values())


def test_up_killed_hard_leaves_no_servers_behind(tmp_path):
    process, ports, _ = _start_up(tmp_path)
    process.kill()
    process.wait(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_listening(p) for p in ports.values()):
        time.sleep(0.1)
    assert not any(_listening(port) for port in ports.values())


def test_up_refuses_a_port_in_use(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "app.cli", "up", "--broker-port", str(port),
             "--redis-port", str(free_port()), "--web-port", str(free_port())],
            capture_output=True, timeout=30,
            env={**os.environ, "NUDGEFLOW_DATA_DIR": str(tmp_path)},
        )  # fmt: skip
    assert result.returncode != 0
    assert f"port {port} is already in use" in result.stderr.decode()
