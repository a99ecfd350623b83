"""``nudgeflow simulate``: its options, and the JSONL it writes."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import orjson
import pytest

from app.ingest.events import validate_event
from app.tools.simulator import DEFAULT_MIX
from app.tools.simulator.command import add_parser, run
from app.tools.simulator.config import DEFAULT_START_MS

LABEL_FIELDS = [
    "customer_id", "session_id", "story", "friction", "friction_event_id", "friction_ts",
    "expected_kind", "expected_reason", "events", "ended_ts", "lookalikes",
]  # fmt: skip


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="nudgeflow")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["simulate", *argv])


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_defaults() -> None:
    args = parse()
    assert (args.customers, args.days, args.sessions_per_customer, args.seed) == (1000, 7.0, 3.0, 0)
    assert (args.mix, args.start, args.out, args.labels) == (None, DEFAULT_START_MS, None, None)
    assert args.variant == "tuning"


@pytest.mark.parametrize(
    ("argv", "name", "value"),
    [
        (["--customers", "12"], "customers", 12),
        (["--days", "0.5"], "days", 0.5),
        (["--sessions-per-customer", "4.5"], "sessions_per_customer", 4.5),
        (["--seed", "42"], "seed", 42),
        (["--variant", "holdout"], "variant", "holdout"),
        (
            ["--mix", "clean_buyer=3,rage_clicker=1"],
            "mix",
            {"clean_buyer": 3.0, "rage_clicker": 1.0},
        ),
        (["--start", "2026-01-01T00:00:00Z"], "start", DEFAULT_START_MS),
        (["--start", "2026-01-01T01:00:00+01:00"], "start", DEFAULT_START_MS),
        (["--start", "2026-01-01T00:00:00.250+00:00"], "start", DEFAULT_START_MS + 250),
        (["--out", "events.jsonl"], "out", Path("events.jsonl")),
        (["--labels", "labels.jsonl"], "labels", Path("labels.jsonl")),
    ],
)
def test_options(argv: list[str], name: str, value: object) -> None:
    assert getattr(parse(*argv), name) == value


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--mix", "clean_buyer"], "mix: expected story=weight"),
        (["--start", "yesterday"], "not an ISO-8601 time"),
        (["--start", "2026-01-01T00:00:00"], "needs a UTC offset"),
        (["--customers", "many"], "invalid int value"),
        (["--variant", "validation"], "invalid choice: 'validation'"),
    ],
)
def test_bad_options_are_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse(*argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--customers", "0"], "customers: must be a whole number >= 1"),
        (["--days", "-1"], "days: must be a positive number"),
        (["--mix", "window_shopper=1"], "mix: unknown stories ['window_shopper']"),
    ],
)
def test_bad_values_exit_2_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(parse(*argv)) == 2
    assert f"nudgeflow simulate: {message}" in capsys.readouterr().err


def test_writes_events_and_labels(tmp_path: Path) -> None:
    out, labels = tmp_path / "events.jsonl", tmp_path / "labels.jsonl"
    argv = ["--customers", "25", "--seed", "8", "--out", str(out), "--labels", str(labels)]
    assert run(parse(*argv)) == 0
    events, rows = read_jsonl(out), read_jsonl(labels)
    for event in events:
        validate_event(event)
    assert [list(row) for row in rows] == [LABEL_FIELDS] * len(rows)
    # Retried events come twice; labels count each event once.
    assert sum(row["events"] for row in rows) == len({e["event_id"] for e in events}) < len(events)
    assert {row["session_id"] for row in rows} == {e["session_id"] for e in events}
    assert min(e["ts"] for e in events) >= DEFAULT_START_MS


def test_same_options_same_bytes(tmp_path: Path) -> None:
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert run(parse("--customers", "20", "--out", str(first))) == 0
    assert run(parse("--customers", "20", "--out", str(second))) == 0
    assert first.read_bytes() == second.read_bytes()


def test_the_holdout_variant_writes_other_sessions(tmp_path: Path) -> None:
    tuning, holdout = tmp_path / "t.jsonl", tmp_path / "h.jsonl"
    assert run(parse("--customers", "20", "--out", str(tuning))) == 0
    assert run(parse("--customers", "20", "--variant", "holdout", "--out", str(holdout))) == 0
    assert tuning.read_bytes() != holdout.read_bytes()


def test_events_go_to_stdout_and_a_summary_to_stderr(
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    assert run(parse("--customers", "5", "--mix", "rage_clicker=1")) == 0
    captured = capsysbinary.readouterr()
    events = [orjson.loads(line) for line in captured.out.splitlines()]
    assert events and {e["type"] for e in events} >= {"page_view", "click"}
    assert b"rage_clicker" in captured.err and b"5 customers" in captured.err
    assert b"retries" in captured.err


def test_an_unwritable_file_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(parse("--customers", "1", "--out", str(tmp_path / "no" / "such" / "dir"))) == 1
    assert "nudgeflow simulate:" in capsys.readouterr().err


def test_help_lists_the_default_mix(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("--help")
    help_text = " ".join(capsys.readouterr().out.split())
    assert all(f"{story}={weight:g}" in help_text for story, weight in DEFAULT_MIX.items())
