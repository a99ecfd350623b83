"""``nudgeflow replay`` against a running worker on the real broker: HTTP, Kafka, pacing."""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from app.runtime.embedded import free_port
from app.tools.replay import add_parser, replay, run
from app.tools.replay_pacing import Pacing
from tests.integration.clients import event, read_topic, unique, wait_for_customer

pytestmark = pytest.mark.integration

T0_MS = 1_700_000_000_000  # a recording from 2023-11-14
EVENTS_PER_CUSTOMER = 10
BAD_LINES = {3: "{not json", 20: "[1, 2, 3]"}
UNKNOWN_TYPE_LINE = 30


def recording(prefix: str, start_ms: int) -> tuple[list[str], list[str], dict[str, Any]]:
    """53 lines: 50 valid events of 5 customers, 1 s apart (every 4th with an ISO ``ts``),
    2 bad lines and 1 event of an unknown type. Returns lines, customers, the unknown one."""
    customers = [unique(prefix) for _ in range(5)]
    valid = []
    for i in range(len(customers) * EVENTS_PER_CUSTOMER):
        ts_ms = start_ms + 1000 * i
        ts: int | str = ts_ms if i % 4 else _iso(ts_ms)
        valid.append(event(customers[i % len(customers)], "page_view", ts=ts, page=f"/p{i}"))
    unknown = event(customers[0], "teleport", ts=start_ms)
    lines: list[str] = []
    for line_no in range(1, len(valid) + 4):
        if line_no in BAD_LINES:
            lines.append(BAD_LINES[line_no])
        elif line_no == UNKNOWN_TYPE_LINE:
            lines.append(orjson.dumps(unknown).decode())
        else:
            lines.append(orjson.dumps(valid.pop(0)).decode())
    return lines, customers, unknown


def _iso(ts_ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts_ms / 1000)) + ".000Z"


def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def cli_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="nudgeflow")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["replay", *argv])


def _mentions(marker: str):
    """Matches a clicks-failed record whose kept payload, decoded or as text, has ``marker``."""
    return lambda r: marker in str(r.get("payload_text", "")) + str(r.get("payload", ""))


def _all_events_in(state: dict[str, Any]) -> bool:
    return bool(state["profile"]["events"] == EVENTS_PER_CUSTOMER)


async def test_replay_to_the_collector_counts_and_delivers(worker, tmp_path):
    lines, customers, unknown = recording("replay-http", T0_MS)
    path = write_jsonl(tmp_path / "events.jsonl", lines)
    before_ms = int(time.time() * 1000)

    with path.open("rb") as source:
        summary = await replay(source, worker.web_url, Pacing(), shift_to_now=True, batch_size=7)

    assert (summary.sent, summary.accepted, summary.rejected, summary.failed) == (51, 50, 1, 0)
    assert summary.bad_lines == 2 and summary.stopped is None
    assert [e.split(":")[0] for e in summary.bad_line_examples] == ["line 3", "line 20"]
    assert summary.rejection_examples == [
        f"line {UNKNOWN_TYPE_LINE}: type: unknown event type 'teleport'"
    ]
    for customer in customers:
        state = await wait_for_customer(worker.web_url, customer, _all_events_in)
        # Shifted to now: the 2023 recording looks live, its gaps kept (5 s per customer).
        assert before_ms <= state["profile"]["first_seen_ts_ms"] <= before_ms + 60_000
        assert state["profile"]["last_seen_ts_ms"] - state["profile"]["first_seen_ts_ms"] == (
            (EVENTS_PER_CUSTOMER - 1) * 5 * 1000
        )
    assert unknown["customer_id"] == customers[0]


async def test_replay_to_kafka_is_processed_and_the_server_rejects_bad_events(
    worker, services, tmp_path
):
    lines, customers, unknown = recording("replay-kafka", int(time.time() * 1000) - 60_000)
    path = write_jsonl(tmp_path / "events.jsonl", lines)

    with path.open("rb") as source:
        summary = await replay(source, services.broker_url, Pacing())

    # Kafka takes every object; the worker validates and keeps rejects on clicks-failed.
    assert (summary.sent, summary.accepted, summary.rejected, summary.failed) == (51, 51, 0, 0)
    assert summary.bad_lines == 2 and summary.stopped is None
    for customer in customers:
        await wait_for_customer(worker.web_url, customer, _all_events_in, timeout_s=20)
    failed = await read_topic(services.bootstrap, "clicks-failed", _mentions(unknown["event_id"]))
    assert failed and failed[0]["reason"] == "unknown_type" and failed[0]["source"] == "kafka"


async def test_rate_is_honoured(worker, tmp_path):
    customer = unique("replay-rate")
    path = write_jsonl(
        tmp_path / "events.jsonl",
        [orjson.dumps(event(customer, "page_view", page=f"/{i}")).decode() for i in range(40)],
    )
    with path.open("rb") as source:
        summary = await replay(source, worker.web_url, Pacing(rate_per_s=200))
    # The 40th event is due at 39/200 = 0.195 s.
    assert 0.15 <= summary.elapsed_s < 5.0
    assert summary.accepted == 40
    await wait_for_customer(worker.web_url, customer, lambda s: s["profile"]["events"] == 40)


async def test_speed_follows_the_recorded_gaps(worker, tmp_path):
    customer = unique("replay-speed")
    start_ms = int(time.time() * 1000)
    path = write_jsonl(
        tmp_path / "events.jsonl",
        [orjson.dumps(event(customer, ts=start_ms + 100 * i)).decode() for i in range(6)],
    )
    with path.open("rb") as source:
        summary = await replay(source, worker.web_url, Pacing(speed=2))
    # 500 ms recorded at twice the speed: the last event is due at 0.25 s.
    assert 0.2 <= summary.elapsed_s < 5.0
    assert summary.accepted == 6


async def test_cli_reports_bad_lines_and_the_summary(worker, tmp_path, capsys):
    lines, customers, _ = recording("replay-cli", T0_MS)
    path = write_jsonl(tmp_path / "events.jsonl", lines)
    args = cli_args(str(path), "--to", worker.web_url, "--shift-to-now", "--batch", "20")

    assert await asyncio.to_thread(run, args) == 0

    out, err = capsys.readouterr()
    assert "accepted 50, rejected 1, failed 0, bad lines 2" in out
    assert "line 3: not valid JSON" in err and "line 20: must be a JSON object" in err
    await wait_for_customer(worker.web_url, customers[-1], _all_events_in)


async def test_cli_stops_on_a_refused_api_key(private_stack, worker_factory, tmp_path, capsys):
    secured = worker_factory(private_stack, api_keys="key-one")
    customer = unique("replay-key")
    path = write_jsonl(
        tmp_path / "events.jsonl",
        [orjson.dumps(event(customer)).decode() for _ in range(30)],
    )

    wrong = cli_args(str(path), "--to", secured.web_url, "--api-key", "nope", "--batch", "10")
    assert await asyncio.to_thread(run, wrong) == 1
    assert "stopped early: " in capsys.readouterr().out

    with path.open("rb") as source:
        summary = await replay(source, secured.web_url, Pacing(), api_key="key-one")
    assert (summary.accepted, summary.stopped) == (30, None)


async def test_unreachable_broker_stops_the_replay(tmp_path):
    path = write_jsonl(tmp_path / "events.jsonl", [orjson.dumps(event("c")).decode()])
    with path.open("rb") as source:
        summary = await replay(source, f"kafka://127.0.0.1:{free_port()}", Pacing())
    assert summary.stopped is not None and summary.stopped.startswith("no broker at")
    assert summary.sent == 0


def test_cli_refuses_a_missing_file(tmp_path, capsys):
    assert run(cli_args(str(tmp_path / "nope.jsonl"))) == 2
    assert "cannot read" in capsys.readouterr().err
