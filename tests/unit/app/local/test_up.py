"""``nudgeflow up``'s pure parts: the ports it refuses and the settings it runs with."""

from __future__ import annotations

import socket

import pytest

from app.errors import ConfigError, EmbeddedStackError
from app.local.up import check_ports, local_settings
from app.runtime.embedded import free_port
from config import Settings

STACK = ("kafka://127.0.0.1:1", "redis://127.0.0.1:2/0")


def test_free_ports_pass():
    check_ports({"broker": free_port(), "redis": free_port(), "web server": free_port()},
                web_bind="0.0.0.0")  # fmt: skip


@pytest.mark.parametrize("busy", ["broker", "redis", "web server"])
def test_a_port_something_listens_on_is_refused(busy):
    ports = {"broker": free_port(), "redis": free_port(), "web server": free_port()}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports[busy] = taken.getsockname()[1]
        with pytest.raises(EmbeddedStackError) as refused:
            check_ports(ports, web_bind="0.0.0.0")
    assert str(refused.value) == f"cannot start {busy}: port {ports[busy]} is already in use"


def test_a_web_port_bound_elsewhere_but_not_listening_is_refused():
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))  # bound, not listening: connecting does not see it
        port = taken.getsockname()[1]
        with pytest.raises(EmbeddedStackError, match=f"port {port} is already in use"):
            check_ports({"web server": port}, web_bind="0.0.0.0")


def test_two_servers_on_one_port_are_refused():
    port = free_port()
    with pytest.raises(ConfigError, match=f"broker and redis cannot share port {port}"):
        check_ports({"broker": port, "redis": port, "web server": free_port()}, "0.0.0.0")


def test_a_web_bind_this_machine_does_not_have_is_refused():
    with pytest.raises(ConfigError, match=r"cannot listen on 192\.0\.2\.1:"):
        check_ports({"web server": free_port()}, web_bind="192.0.2.1")  # TEST-NET-1


@pytest.mark.parametrize(
    ("chosen", "demo", "expected"),
    [
        ({}, False, {"holdout_share": 0.05, "demo": False, "broker_flavour": "tansu",
                     "broker_session_timeout_s": 6.0, "broker_heartbeat_interval_s": 0.25}),
        ({}, True, {"holdout_share": 0.0, "demo": True}),
        ({"holdout_share": 0.3}, True, {"holdout_share": 0.3, "demo": True}),
        ({"holdout_share": 0.3}, False, {"holdout_share": 0.3, "demo": False}),
        # `up` with the demo setting on in the environment keeps it.
        ({"demo": True}, False, {"demo": True, "holdout_share": 0.05}),
        ({"broker_flavour": "kafka", "broker_session_timeout_s": 30}, False,
         {"broker_flavour": "kafka", "broker_session_timeout_s": 30.0}),
        # The stack's URLs and the web port always win over the environment's.
        ({"broker": "kafka://elsewhere:9092", "redis_url": "redis://elsewhere:6379/0",
          "web_port": 8000, "web_host": "worker-1"}, False,
         {"broker": STACK[0], "web_port": 3, "web_host": "127.0.0.1"}),
    ],
)  # fmt: skip
def test_local_settings(chosen, demo, expected):
    settings = local_settings(Settings.model_validate(chosen), *STACK, web_port=3, demo=demo)
    assert {name: getattr(settings, name) for name in expected} == expected
    assert settings.redis_url.get_secret_value() == STACK[1]
