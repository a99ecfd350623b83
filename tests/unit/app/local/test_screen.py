"""What ``up`` and ``demo`` print: banner, ready line, one line per intervention."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from app.local.screen import Banner, intervention_line, printable, ready_line

T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def intervention(**fields: Any) -> dict[str, Any]:
    nudge = {"intervention_id": "i-1", "customer_id": "c-1", "session_id": "s-1",
             "kind": "assist", "reason": "rage_click", "score": 0.7, "emitted_ts": T0_MS,
             "explanation": "The customer clicked #pay 3 times within 1 s."}  # fmt: skip
    nudge.update(fields)
    return nudge


_EXPLAINED = "The customer clicked #pay 3 times within 1 s."


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, f"00:00:00  assist   rage_click            c-1          {_EXPLAINED}"),
        ({"kind": "reminder", "reason": "cart_abandonment_risk", "emitted_ts": T0_MS + 3_723_000},
         f"01:02:03  reminder cart_abandonment_risk c-1          {_EXPLAINED}"),
        # Ids and text come from the web: no control character reaches the terminal.
        ({"customer_id": "\x1b]0;pwned\x07", "explanation": "line\nbreak"},
         "00:00:00  assist   rage_click            ?]0;pwned?   line?break"),
        ({"customer_id": "c" * 40},
         f"00:00:00  assist   rage_click            {'c' * 19}… {_EXPLAINED}"),
        ({"emitted_ts": None, "kind": None, "explanation": None},
         "--:--:--  ?        rage_click            c-1          ?"),
        ({"emitted_ts": True},
         f"--:--:--  assist   rage_click            c-1          {_EXPLAINED}"),
    ],
)  # fmt: skip
def test_intervention_line(fields, expected):
    assert intervention_line(intervention(**fields), dt.UTC) == expected


def test_intervention_line_fits_120_columns_however_long_its_fields():
    longest = intervention(kind="reminder", reason="r" * 200, customer_id="c" * 128,
                           explanation="word " * 200)  # fmt: skip
    assert len(intervention_line(longest, dt.UTC)) <= 120


def test_intervention_line_is_in_local_time_when_no_zone_is_given():
    assert intervention_line(intervention(), None)[:8] == (
        dt.datetime.fromtimestamp(T0_MS / 1000).strftime("%H:%M:%S")
    )


@pytest.mark.parametrize(
    ("value", "limit", "expected"),
    [("abc", 3, "abc"), ("abcd", 3, "ab…"), ("a\tb", 5, "a?b"), (12, 5, "12"), (None, 5, "?")],
)
def test_printable(value, limit, expected):
    assert printable(value, limit) == expected


def test_demo_banner_says_when_the_environment_chose_a_holdout():
    text = Banner("http://127.0.0.1:1", "kafka://127.0.0.1:2", "redis://127.0.0.1:3/0",
                  "data/worker.log", demo=True, holdout_share=0.05).render()  # fmt: skip
    assert "  holdout    5% of shoppers see no nudge (NUDGEFLOW_HOLDOUT_SHARE)" in text
    assert "  shop       http://127.0.0.1:1/demo/" in text
    assert "  log        data/worker.log (--verbose shows it here)" in text


def test_up_banner_has_no_shop_and_no_holdout_line():
    text = Banner("http://127.0.0.1:1", "kafka://127.0.0.1:2", "redis://127.0.0.1:3/0",
                  None).render()  # fmt: skip
    assert text.splitlines()[0] == "nudgeflow up"
    assert "shop" not in text and "holdout" not in text


@pytest.mark.parametrize(("demo", "says"), [(False, "partitions assigned"), (True, "/demo/")])
def test_ready_line(demo, says):
    line = ready_line(12.345, "http://127.0.0.1:6066", demo)
    assert line.startswith("ready in 12.3 s: ") and says in line
