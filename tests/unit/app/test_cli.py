"""The ``nudgeflow`` command line: every command's help shows its defaults, and the
commands that read what ``up`` runs find it."""

from __future__ import annotations

import argparse
import os

import pytest

from app.cli import _parser, _port_hint, _redis_url, _running_up_web_url, main
from app.local.record import UpRecord, write_record
from config import Settings

COMMANDS = ("up", "demo", "worker", "interventions", "simulate", "replay", "eval")


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = _parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_every_command_is_listed(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    listed = capsys.readouterr().out
    for command in COMMANDS:
        assert f"    {command}" in listed
    assert set(_commands()) == set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_every_default(command, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    parser = _commands()[command]
    text = " ".join(parser.format_help().split("\noptions:", 1)[1].split())  # unwrapped
    for action in parser._actions:
        if not action.option_strings or action.default in (None, False, argparse.SUPPRESS):
            continue
        shown = next(o for o in action.option_strings if o.startswith("--"))
        # The help of this option, up to the next option, names its default.
        after = text.split(f"{shown} ", 1)[1].split(" --", 1)[0]
        assert "default" in after.lower(), f"{command} {shown}: {after!r}"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["up"], {"web_port": None, "broker_port": 9092, "redis_port": 6379, "verbose": False}),
        (["demo", "--web-port", "8000", "-v"], {"web_port": 8000, "verbose": True}),
        (["interventions"], {"count": 20, "follow": False, "redis_url": None}),
        (["interventions", "-f", "--redis-url", "redis://h:1/0", "--count", "0"],
         {"count": 0, "follow": True, "redis_url": "redis://h:1/0"}),
    ],
)  # fmt: skip
def test_options(argv, expected):
    args = _parser().parse_args(argv)
    assert {name: getattr(args, name) for name in expected} == expected


def test_a_negative_count_is_refused(capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(["interventions", "--count", "-1"])
    assert "must be a whole number, 0 or more" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("message", "hint"),
    [
        ("cannot start broker: port 1 is already in use", " (choose another with --broker-port)"),
        ("cannot start web server: port 1 is already in use", " (choose another with --web-port)"),
        ("cannot start redis: port 1 is already in use", " (choose another with --redis-port)"),
        ("redis exited with 1 on start:\n…", ""),
    ],
)
def test_port_hint(message, hint):
    assert _port_hint(message) == hint


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    for name in [n for n in os.environ if n.startswith("NUDGEFLOW_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("NUDGEFLOW_DATA_DIR", str(tmp_path))
    return tmp_path


def _up_running(data_dir, demo=False):
    write_record(data_dir, UpRecord(os.getpid(), "http://127.0.0.1:7000", "kafka://127.0.0.1:7001",
                                    "redis://127.0.0.1:7002/0", "w.log", demo=demo))  # fmt: skip


def test_commands_find_a_running_up(data_dir, capsys):
    assert _running_up_web_url() is None
    assert _redis_url(Settings())[0] == "redis://localhost:6379/0"
    _up_running(data_dir, demo=True)
    assert _running_up_web_url() == "http://127.0.0.1:7000"
    assert _redis_url(Settings()) == ("redis://127.0.0.1:7002/0", "")
    assert f"(nudgeflow demo, pid {os.getpid()})" in capsys.readouterr().err


def test_without_up_the_settings_redis_is_read_with_a_hint(data_dir, monkeypatch):
    url, hint = _redis_url(Settings())
    assert url == "redis://localhost:6379/0" and "no nudgeflow up runs" in hint
    monkeypatch.setenv("NUDGEFLOW_REDIS_URL", "redis://cache:6379/1")
    # A Redis the environment names is the deployment's: no hint about `up`.
    assert _redis_url(Settings()) == ("redis://cache:6379/1", "")
