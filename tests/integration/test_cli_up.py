"""``nudgeflow up`` and ``demo`` as a new user runs them: the real command, on free ports.

What the terminal shows (banner, ready line, a line per intervention, warnings in one
line, Faust's log in a file), what the other commands find of it, refused ports, and
a clean stop on SIGTERM, Ctrl-C and ``kill -9``.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import orjson
import pytest

from app import speedups
from app.decide.policy import in_holdout
from app.runtime.embedded import free_port
from config import Settings
from tests.integration.clients import post, produce, rage_clicks, unique

pytestmark = pytest.mark.integration

_READY_TIMEOUT_S = 60.0


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUDGEFLOW_")}
    env["NUDGEFLOW_DATA_DIR"] = str(data_dir)
    return env


def _nudgeflow(
    data_dir: Path, *argv: str, timeout_s: float = 60, **settings: str
) -> subprocess.CompletedProcess[str]:
    env = _env(data_dir) | {f"NUDGEFLOW_{k.upper()}": v for k, v in settings.items()}
    return subprocess.run(
        [sys.executable, "-m", "app", *argv],
        env=env, capture_output=True, text=True, timeout=timeout_s,
    )  # fmt: skip


class _Running:
    """``nudgeflow up`` or ``demo`` as a child process, its output read as it comes."""

    def __init__(self, command: str, data_dir: Path, *extra: str) -> None:
        self.ports = {"web": free_port(), "broker": free_port(), "redis": free_port()}
        self.data_dir = data_dir
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app", command, "--web-port", str(self.ports["web"]),
             "--broker-port", str(self.ports["broker"]),
             "--redis-port", str(self.ports["redis"]), *extra],
            env=_env(data_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self._readers = [
            threading.Thread(target=self._read, args=(stream, lines), daemon=True)
            for stream, lines in ((self.process.stdout, self.stdout),
                                  (self.process.stderr, self.stderr))
        ]  # fmt: skip
        for reader in self._readers:
            reader.start()

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['web']}"

    @staticmethod
    def _read(stream: object, lines: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, lines: list[str] | None = None, timeout_s: float = 30) -> str:
        """The first line matching ``pattern`` (on stdout unless told), waiting for it."""
        lines = self.stdout if lines is None else lines
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in list(lines):
                if re.search(pattern, line):
                    return line
            if self.process.poll() is not None:
                time.sleep(0.2)  # let the readers drain
                for line in list(lines):
                    if re.search(pattern, line):
                        return line
                break
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r}:\n{self.output()}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        for reader in self._readers:
            reader.join(5)
        return self.process.returncode

    def output(self) -> str:
        return "\n".join(["--- stdout", *self.stdout, "--- stderr", *self.stderr])


@pytest.fixture
def running(tmp_path):
    started: list[_Running] = []

    def _start(command: str, *extra: str) -> _Running:
        process = _Running(command, tmp_path / "data", *extra)
        started.append(process)
        return process

    try:
        yield _start
    finally:
        for process in started:
            process.stop(signal.SIGKILL)


async def test_up_shows_a_banner_ready_line_and_nudges_and_stops_on_sigterm(running, tmp_path):
    up = running("up")
    ports, data_dir = up.ports, tmp_path / "data"
    ready = up.wait_for(r"^ready in \d+\.\d s", timeout_s=_READY_TIMEOUT_S)
    print(up.output())
    assert "partitions assigned" in ready
    assert up.stdout[: up.stdout.index(ready)] == [
        "nudgeflow up",
        f"  collector  http://127.0.0.1:{ports['web']}/v1/events",
        f"  broker     kafka://127.0.0.1:{ports['broker']}",
        f"  redis      redis://127.0.0.1:{ports['redis']}/0",
        f"  log        {data_dir / 'worker.log'} (--verbose shows it here)",
        "  stop with Ctrl-C",
    ]
    # The URLs are recorded for the other commands.
    record = orjson.loads((data_dir / "up.json").read_bytes())
    assert record["redis_url"] == f"redis://127.0.0.1:{ports['redis']}/0"
    assert record["pid"] == up.process.pid

    customer = unique("up")
    status, _ = await post(f"{up.web_url}/v1/events", {"events": rage_clicks(customer)})
    assert status == 202
    line = up.wait_for(re.escape(customer))
    assert re.match(rf"^\d\d:\d\d:\d\d  assist +rage_click +{customer} +The customer", line)
    assert len(line) <= 120

    # `interventions` finds up's Redis (not the default port) without being told.
    shown = _nudgeflow(data_dir, "interventions", "--count", "5")
    assert shown.returncode == 0, shown.stderr
    assert customer in shown.stdout and orjson.loads(shown.stdout.splitlines()[-1])
    assert f"reading redis://127.0.0.1:{ports['redis']}/0 (nudgeflow up" in shown.stderr
    # So does `replay`, for the collector.
    events = tmp_path / "events.jsonl"
    events.write_bytes(orjson.dumps(rage_clicks(unique("replayed"), n=1)[0]) + b"\n")
    replayed = _nudgeflow(data_dir, "replay", str(events))
    assert replayed.returncode == 0, replayed.stderr
    assert f"replay to {up.web_url}/v1/events: sent 1 events" in replayed.stdout
    assert "accepted 1, rejected 0" in replayed.stdout

    # A warning of the worker reaches the terminal as one line; its detail stays in the log.
    bootstrap = f"127.0.0.1:{ports['broker']}"
    await produce(bootstrap, "clicks", [(b"k", b"not json"), (b"k", b"still not json")])
    warning = up.wait_for(r"^nudgeflow: warning: rejected clicks\[", up.stderr)
    assert warning.count("\n") == 0

    status = up.stop(signal.SIGTERM)
    assert status == 0, up.output()
    assert up.stdout[-1] == "stopped: worker, broker and Redis"
    # Faust's chatter is in the log file, not on the terminal.
    assert not any("[INFO]" in line for line in up.stdout + up.stderr)
    assert len(up.stdout) < 15, up.output()
    assert [line for line in up.stderr if line.startswith("nudgeflow: warning: rejected")] == [
        warning
    ], up.output()
    assert not any("Traceback" in line for line in up.stderr)
    log = (data_dir / "worker.log").read_text()
    assert "[INFO]" in log and "rejected clicks[" in log
    # The command runs the hot path's build, which make builds before the tests.
    if (speedups.BUILD_DIR / speedups.MANIFEST).is_file():
        assert f"hot path: {len(speedups.HOT_MODULES)} modules compiled" in log
    assert "changed since the build" not in log
    assert not (data_dir / "up.json").exists()
    assert not any(_listening(port) for port in ports.values())


def test_demo_serves_the_shop_with_no_holdout_and_stops_on_ctrl_c(running, tmp_path):
    demo = running("demo")
    ready = demo.wait_for(r"^ready in", timeout_s=_READY_TIMEOUT_S)
    assert f"open {demo.web_url}/demo/ in a browser" in ready
    banner = demo.stdout[: demo.stdout.index(ready)]
    assert banner[:2] == ["nudgeflow demo", f"  shop       {demo.web_url}/demo/"]
    assert "  holdout    none: every shopper the policy picks is nudged" in banner
    with urllib.request.urlopen(f"{demo.web_url}/demo/", timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/html")
    record = orjson.loads((tmp_path / "data" / "up.json").read_bytes())
    assert record["demo"] is True

    status = demo.stop(signal.SIGINT)
    assert status == 0, demo.output()
    assert demo.stdout[-1] == "stopped: worker, broker and Redis"
    assert not any(_listening(port) for port in demo.ports.values())


async def test_demo_nudges_customers_the_default_holdout_would_hold_out(running):
    demo = running("demo")
    demo.wait_for(r"^ready in", timeout_s=_READY_TIMEOUT_S)
    held_by_default = []
    while len(held_by_default) < 3:
        customer = unique("demo")
        if in_holdout(customer, Settings.model_validate({}).holdout_share):
            held_by_default.append(customer)
    events = [click for customer in held_by_default for click in rage_clicks(customer)]
    status, _ = await post(f"{demo.web_url}/v1/events", {"events": events})
    assert status == 202
    for customer in held_by_default:
        demo.wait_for(re.escape(customer))


def test_verbose_shows_the_worker_log_on_the_terminal(running, tmp_path):
    up = running("up", "--verbose")
    up.wait_for(r"^ready in", timeout_s=_READY_TIMEOUT_S)
    assert "  log        here (--verbose)" in up.stdout
    assert up.stop() == 0, up.output()
    assert any("[INFO]" in line for line in up.stdout + up.stderr)
    assert not (tmp_path / "data" / "worker.log").exists()


def test_up_killed_hard_leaves_no_servers_behind(running, tmp_path):
    up = running("up")
    up.wait_for(r"^ready in", timeout_s=_READY_TIMEOUT_S)
    up.stop(signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_listening(p) for p in up.ports.values()):
        time.sleep(0.1)
    assert not any(_listening(port) for port in up.ports.values())
    # Its record names a process that is gone: the other commands ignore it.
    assert (tmp_path / "data" / "up.json").exists()
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    shown = _nudgeflow(tmp_path / "data", "interventions", redis_url=nowhere)
    assert shown.returncode == 1 and "reading" not in shown.stderr
    assert shown.stderr.startswith(f"nudgeflow interventions: cannot read Redis at {nowhere}: ")


@pytest.mark.parametrize("busy", ["web", "broker", "redis"])
def test_a_busy_port_is_refused_in_one_line_before_anything_starts(busy, tmp_path):
    ports = {"web": free_port(), "broker": free_port(), "redis": free_port()}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports[busy] = taken.getsockname()[1]
        result = _nudgeflow(
            tmp_path, "up", "--web-port", str(ports["web"]), "--broker-port",
            str(ports["broker"]), "--redis-port", str(ports["redis"]), timeout_s=30,
        )  # fmt: skip
    name = {"web": "web server", "broker": "broker", "redis": "redis"}[busy]
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"nudgeflow: cannot start {name}: port {ports[busy]} is already in use "
        f"(choose another with --{busy}-port)\n"
    )
    assert not (tmp_path / "embedded").exists()  # nothing was started


def test_interventions_against_no_redis_says_so_in_one_line(tmp_path):
    port = free_port()
    result = _nudgeflow(tmp_path, "interventions", "--redis-url", f"redis://127.0.0.1:{port}/0")
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"nudgeflow interventions: cannot read Redis at redis://127.0.0.1:{port}/0: "
    )
    assert result.stderr.count("\n") == 1 and result.stdout == ""
