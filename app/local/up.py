"""``nudgeflow up`` and ``nudgeflow demo``: the embedded stack and one worker, in the foreground.

Every port is checked before anything starts, so a busy one costs one line, not a
half-started stack. Then the broker and Redis start, the banner says where
everything is, the worker runs in this process (its log in the data directory
unless ``--verbose``) and a watcher thread prints the ready line and each
intervention. Ctrl-C or SIGTERM stops the worker, then the servers.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.errors import ConfigError, EmbeddedStackError
from app.local.logs import TerminalHandler
from app.local.record import UpRecord, remove_record, write_record
from app.local.screen import Banner
from app.local.watch import Watcher
from config import Settings

__all__ = ["LOG_NAME", "UpOptions", "check_ports", "local_settings", "reachable_host", "run_up"]

#: The worker's log, in the data directory.
LOG_NAME = "worker.log"

# Tansu holds every JoinGroup for half the session timeout (it never answers early),
# so the session timeout sets how long a worker takes to join: 6 s joins in ~3 s and
# still tolerates a 6 s stall of the event loop. Tansu notices a dead member only when
# another one heartbeats after the session timeout has run out since the dead one's last
# heartbeat, so a takeover starts within a heartbeat interval either side of the session
# timeout: 0.25 s took the failover test's takeovers from 8.7-10.1 s (1 s) to 9.1-9.5 s,
# for a few more small requests a second. See the README.
_EMBEDDED_SESSION_TIMEOUT_S = 6.0
_EMBEDDED_HEARTBEAT_S = 0.25


@dataclass(slots=True, frozen=True)
class UpOptions:
    """The command line of ``up`` and ``demo``; ``web_port=None`` takes the settings' port."""

    web_port: int | None
    broker_port: int
    redis_port: int
    demo: bool = False
    verbose: bool = False


def run_up(settings: Settings, options: UpOptions) -> int:
    """Run the embedded stack and a worker until Ctrl-C or SIGTERM; returns the exit status.

    Raises
    ------
    EmbeddedStackError
        A port is in use, or the broker or Redis did not start.
    """
    started_s = time.monotonic()
    web_port = options.web_port if options.web_port is not None else settings.web_port
    check_ports(
        {"broker": options.broker_port, "redis": options.redis_port, "web server": web_port},
        web_bind=settings.web_bind,
    )
    from app.runtime.embedded import EmbeddedStack
    from app.runtime.embedded_health import BrokerMonitor
    from app.runtime.worker import run_worker

    data_dir = Path(settings.data_dir)
    log_path = None if options.verbose else data_dir / LOG_NAME
    stack = EmbeddedStack.start(options.broker_port, options.redis_port, data_dir / "embedded")
    try:
        local = local_settings(settings, stack.broker_url, stack.redis_url, web_port, options.demo)
        web_url = f"http://{reachable_host(local.web_bind)}:{web_port}"
        banner = Banner(web_url, stack.broker_url, stack.redis_url,
                        None if log_path is None else str(log_path),
                        demo=options.demo, holdout_share=local.holdout_share)  # fmt: skip
        print(banner.render(), flush=True)
        record = UpRecord(os.getpid(), web_url, stack.broker_url, stack.redis_url,
                          str(log_path or ""), demo=options.demo)  # fmt: skip
        write_record(data_dir, record)
        watcher = Watcher(web_url, stack.redis_url, sys.stdout, sys.stderr, demo=options.demo,
                          log_path=None if log_path is None else str(log_path),
                          started_s=started_s)  # fmt: skip
        # Says once if the broker has slowed or grown too far, as it does the longer it runs.
        monitor = BrokerMonitor(stack.broker_url, stack.broker.process.pid,
                                local.topic_partitions, sys.stderr)  # fmt: skip
        try:
            watcher.start()
            monitor.start()
            handlers = [] if log_path is None else [TerminalHandler(sys.stderr, str(log_path))]
            status = run_worker(local, logfile=log_path, loghandlers=handlers)
        finally:
            monitor.stop()
            watcher.stop()
            remove_record(data_dir, record.pid)
    finally:
        stack.stop()
    if status != 0:
        where = f"; see {log_path}" if log_path is not None else ""
        print(f"nudgeflow: the worker stopped with an error (exit status {status}){where}",
              file=sys.stderr)  # fmt: skip
        return 1
    print("stopped: worker, broker and Redis", flush=True)
    return 0


def local_settings(
    settings: Settings, broker_url: str, redis_url: str, web_port: int, demo: bool
) -> Settings:
    """The worker's settings on the embedded stack.

    The stack's URLs and the web port replace the settings'. The embedded broker's
    timings and no per-address rate limit apply unless the environment chose others;
    so does, for the demo, no holdout group (every visitor who struggles is nudged)
    and the demo shop.

    Examples
    --------
    >>> stack = ("kafka://127.0.0.1:1", "redis://127.0.0.1:2/0")
    >>> up = local_settings(Settings.model_validate({}), *stack, web_port=3, demo=False)
    >>> up.broker, up.web_port, up.broker_flavour, up.holdout_share, up.demo
    ('kafka://127.0.0.1:1', 3, 'tansu', 0.05, False)
    >>> up.rate_limit_ip_per_s
    0.0
    >>> demo = local_settings(Settings.model_validate({}), *stack, web_port=3, demo=True)
    >>> demo.holdout_share, demo.demo
    (0.0, True)
    >>> chosen = Settings.model_validate({"holdout_share": 0.2, "broker_session_timeout_s": 9})
    >>> demo = local_settings(chosen, *stack, web_port=3, demo=True)
    >>> demo.holdout_share, demo.broker_session_timeout_s
    (0.2, 9.0)
    """
    defaults: dict[str, Any] = {
        "broker_flavour": "tansu",
        "broker_session_timeout_s": _EMBEDDED_SESSION_TIMEOUT_S,
        "broker_heartbeat_interval_s": _EMBEDDED_HEARTBEAT_S,
        # One person's machine: no per-address limit for the shop, replay or a script.
        "rate_limit_ip_per_s": 0.0,
    }
    if demo:
        defaults["holdout_share"] = 0.0
    chosen = settings.model_dump(include=settings.model_fields_set)
    forced: dict[str, Any] = {
        "broker": broker_url,
        "redis_url": redis_url,
        "web_host": "127.0.0.1",
        "web_port": web_port,
    }
    if demo:
        forced["demo"] = True
    return Settings.model_validate(
        {**{k: v for k, v in defaults.items() if k not in chosen}, **chosen, **forced}
    )


def check_ports(ports: Mapping[str, int], web_bind: str) -> None:
    """Refuse ports that repeat or that something already uses, before anything starts.

    Each is tried on loopback, as the embedded servers listen; the web server's also
    where it will listen (``web_bind``).

    Raises
    ------
    ConfigError
        Two servers were given one port, or the web server cannot listen on ``web_bind``.
    EmbeddedStackError
        A port is in use: ``cannot start <name>: port <N> is already in use``.
    """
    seen: dict[int, str] = {}
    for name, port in ports.items():
        if port in seen:
            raise ConfigError(f"{seen[port]} and {name} cannot share port {port}")
        seen[port] = name
    for name, port in ports.items():
        binds = ("127.0.0.1", web_bind) if name == "web server" else ("127.0.0.1",)
        if _listening(port) or any(_bind_refused(host, port) for host in binds):
            raise EmbeddedStackError(f"cannot start {name}: port {port} is already in use")


def reachable_host(bind: str) -> str:
    """The address a local client reaches a server listening on ``bind`` at.

    Examples
    --------
    >>> reachable_host("0.0.0.0"), reachable_host("::"), reachable_host("10.0.0.5")
    ('127.0.0.1', '127.0.0.1', '10.0.0.5')
    """
    return "127.0.0.1" if bind in ("", "0.0.0.0", "::") else bind


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _bind_refused(host: str, port: int) -> bool:
    """Whether ``host:port`` is taken; an address this machine does not have is an error."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # As the servers bind: a port in TIME_WAIT after a restart is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return False
