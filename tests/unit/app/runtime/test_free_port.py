"""Ports for embedded servers come from outside the kernel's ephemeral range."""

from __future__ import annotations

import socket
from pathlib import Path

from app.runtime import embedded
from app.runtime.embedded import free_port


def test_free_ports_are_bindable_and_below_the_ephemeral_range() -> None:
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(50):
        port = free_port()
        assert port < low
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_someone_listens_on_is_skipped(monkeypatch) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", free_port()))
        listener.listen()
        taken = listener.getsockname()[1]
        draws = iter([taken, taken, taken + 1])
        monkeypatch.setattr(embedded.random, "randrange", lambda *_: next(draws))
        assert free_port() == taken + 1
