"""The worker's warnings on the terminal: one short line each, repeats held back."""

from __future__ import annotations

import io
import logging

import pytest

from app.local.logs import TerminalHandler


@pytest.fixture
def terminal():
    out, now = io.StringIO(), [0.0]
    handler = TerminalHandler(out, "data/worker.log", repeat_s=60, clock=lambda: now[0])
    log = logging.getLogger("tests.terminal")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    log.addHandler(handler)
    try:
        yield log, out, now
    finally:
        log.removeHandler(handler)


def test_info_stays_off_the_terminal(terminal):
    log, out, _ = terminal
    log.debug("d")
    log.info("Starting...")
    assert out.getvalue() == ""


def test_one_line_per_warning_and_error(terminal):
    log, out, _ = terminal
    log.warning("rejected %s[%s]@%s: %s", "clicks", 3, 12, "not valid JSON")
    log.error("feedback %s not recorded, Redis unavailable: %r", "f-1", OSError("down"))
    log.critical("We experienced a crash!")
    assert out.getvalue().splitlines() == [
        "nudgeflow: warning: rejected clicks[3]@12: not valid JSON",
        "nudgeflow: error: feedback f-1 not recorded, Redis unavailable: OSError('down')",
        "nudgeflow: critical: We experienced a crash!",
    ]


def test_a_traceback_or_a_long_message_stays_in_the_log(terminal):
    log, out, _ = terminal
    try:
        raise ValueError("bad")
    except ValueError:
        log.exception("internal error on %s", "clicks[0]@5")
    log.warning("first line\nsecond line")
    log.warning("x" * 500)
    lines = out.getvalue().splitlines()
    assert lines[0] == (
        "nudgeflow: error: internal error on clicks[0]@5 (traceback in data/worker.log)"
    )
    assert lines[1] == "nudgeflow: warning: first line (more in data/worker.log)"
    assert len(lines) == 3 and len(lines[2]) < 200 and lines[2].endswith("…")


def test_a_repeated_message_shows_once_a_minute(terminal):
    log, out, now = terminal
    for n in range(5):
        log.warning("Redis unavailable: %s", n)
    log.warning("another message")
    now[0] = 59.0
    log.warning("Redis unavailable: %s", "again")
    now[0] = 60.0
    log.warning("Redis unavailable: %s", "later")
    assert out.getvalue().splitlines() == [
        "nudgeflow: warning: Redis unavailable: 0",
        "nudgeflow: warning: another message",
        "nudgeflow: warning: Redis unavailable: later",
    ]


def test_a_control_character_in_a_message_is_replaced(terminal):
    log, out, _ = terminal
    log.warning("customer %s", "\x1b[2J")
    assert out.getvalue() == "nudgeflow: warning: customer ?[2J\n"
