"""``nudgeflow replay``'s pure parts: lines, ts shifting, pacing, batching, answers, summary."""

from __future__ import annotations

import argparse
import math
from typing import Any

import orjson
import pytest

from app.ingest.collector import MAX_BATCH_EVENTS, MAX_BODY_BYTES
from app.tools.replay import (
    DEFAULT_BATCH_EVENTS,
    DEFAULT_TARGET,
    BatchOutcome,
    ReplaySummary,
    Target,
    add_parser,
    parse_target,
    response_outcome,
)
from app.tools.replay_pacing import (
    OutgoingEvent,
    Pacing,
    batches,
    due_time,
    event_ts_ms,
    read_events,
    schedule,
    shift_ts,
)

TS_MS = 1_714_564_800_000  # 2024-05-01T12:00:00Z
NOW_MS = 1_800_000_000_000


def raw_event(**overrides: Any) -> dict[str, Any]:
    """A raw click event as a recording holds it; ``None`` leaves a field out."""
    event = {"event_id": "e-1", "customer_id": "c-1", "session_id": "s-1", "type": "click",
             "ts": TS_MS}  # fmt: skip
    event.update(overrides)
    return {k: v for k, v in event.items() if v is not None}


def jsonl(*events: dict[str, Any]) -> list[str]:
    return [orjson.dumps(e).decode() for e in events]


def outgoing(n: int, *, size: int = 2) -> list[OutgoingEvent]:
    """``n`` events with ``size``-byte payloads, line numbers from 1."""
    return [OutgoingEvent(i + 1, b"c", b"{" + b" " * (size - 2) + b"}", 0.0) for i in range(n)]


# --- read_events ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (['{"a": 1}'], [(1, {"a": 1}, None)]),
        ([b'{"a": 1}\r\n', b"\n", b"   \n", b'{"b": 2}\n'], [(1, {"a": 1}, None),
                                                           (4, {"b": 2}, None)]),
        ([b'\xef\xbb\xbf{"a": 1}\n'], [(1, {"a": 1}, None)]),
        (["{oops", '{"a": 1}'], [(1, None, "not valid JSON ("), (2, {"a": 1}, None)]),
        (["[1, 2]"], [(1, None, "must be a JSON object, got array")]),
        (['"click"'], [(1, None, "must be a JSON object, got string")]),
        (["42"], [(1, None, "must be a JSON object, got number")]),
        (["null"], [(1, None, "must be a JSON object, got null")]),
        (["true"], [(1, None, "must be a JSON object, got boolean")]),
        (['{"a": NaN}'], [(1, None, "not valid JSON (")]),
        ([b'{"a": "\xff"}'], [(1, None, "not valid JSON (")]),
        (['{"type": "teleport"}'], [(1, {"type": "teleport"}, None)]),
    ],
    ids=["one", "crlf-and-blank", "bom", "not-json", "array", "string", "number", "null",
         "boolean", "nan", "bad-utf8", "invalid-event-kept"],
)  # fmt: skip
def test_read_events_numbers_lines_and_reports_bad_ones(lines, expected):
    got = list(read_events(lines))
    assert [(p.line_no, p.event) for p in got] == [(n, e) for n, e, _ in expected]
    for parsed, (_, _, error) in zip(got, expected, strict=True):
        if error is None:
            assert parsed.error is None
        else:
            assert parsed.error is not None and parsed.error.startswith(error)


def test_read_events_is_lazy():
    def endless():
        n = 0
        while True:
            n += 1
            yield f'{{"n": {n}}}'

    parsed = read_events(endless())
    assert [next(parsed).event for _ in range(3)] == [{"n": 1}, {"n": 2}, {"n": 3}]


# --- event_ts_ms and shift_ts -----------------------------------------------------


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        (TS_MS, TS_MS),
        ("2024-05-01T12:00:00Z", TS_MS),
        ("2024-05-01T14:00:00+02:00", TS_MS),
        ("2024-05-01T12:00:00.250+00:00", TS_MS + 250),
        ("2024-05-01T12:00:00", None),  # no offset
        ("yesterday", None),
        (1.5, None),
        (True, None),
        (-1, None),
        (None, None),
    ],
)
def test_event_ts_ms_follows_the_contract_rules(ts, expected):
    assert event_ts_ms(raw_event(ts=ts)) == expected


def test_event_ts_ms_ignores_other_problems():
    assert event_ts_ms(raw_event(type="teleport", customer_id=None)) == TS_MS


@pytest.mark.parametrize(
    ("ts", "offset_ms", "expected"),
    [
        (TS_MS, 1000, TS_MS + 1000),
        (TS_MS, -1000, TS_MS - 1000),
        ("2024-05-01T14:00:00+02:00", 5, TS_MS + 5),
        ("not a time", 5, "not a time"),
        (2.5, 5, 2.5),
        (None, 5, None),
    ],
    ids=["int", "negative", "iso", "bad-string", "float", "missing"],
)
def test_shift_ts_moves_valid_times_and_leaves_invalid_ones(ts, offset_ms, expected):
    event = raw_event(ts=ts, type="teleport")
    before = dict(event)
    shifted = shift_ts(event, offset_ms)
    assert shifted.get("ts") == expected
    assert {k: v for k, v in shifted.items() if k != "ts"} == {
        k: v for k, v in before.items() if k != "ts"
    }
    assert event == before  # not mutated


# --- Pacing and due_time ----------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rate_per_s": 10, "speed": 2},
        {"rate_per_s": 0},
        {"rate_per_s": -5},
        {"speed": math.nan},
        {"speed": math.inf},
    ],
)
def test_pacing_refuses_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        Pacing(**kwargs)


@pytest.mark.parametrize(
    ("pacing", "index", "ts_ms", "first_ts_ms", "expected"),
    [
        (Pacing(), 0, None, None, 0.0),
        (Pacing(), 10_000, TS_MS + 60_000, TS_MS, 0.0),
        (Pacing(rate_per_s=200), 0, None, None, 0.0),
        (Pacing(rate_per_s=200), 39, None, None, 0.195),
        (Pacing(rate_per_s=50_000), 50_000, None, None, 1.0),
        (Pacing(speed=1), 5, TS_MS + 1500, TS_MS, 1.5),
        (Pacing(speed=10), 5, TS_MS + 60_000, TS_MS, 6.0),
        (Pacing(speed=0.5), 5, TS_MS + 1000, TS_MS, 2.0),
        (Pacing(speed=1), 5, None, TS_MS, 0.0),  # no valid ts: due at once
        (Pacing(speed=1), 5, TS_MS - 1000, TS_MS, 0.0),  # before the first: due at once
    ],
)
def test_due_time(pacing, index, ts_ms, first_ts_ms, expected):
    assert due_time(pacing, index, ts_ms, first_ts_ms) == pytest.approx(expected)


# --- schedule ---------------------------------------------------------------------


def _scheduled(events: list[dict[str, Any]], pacing: Pacing, shift_to_ms: int | None = None):
    return list(schedule(read_events(jsonl(*events)), pacing, shift_to_ms=shift_to_ms))


@pytest.mark.parametrize(
    ("pacing", "offsets_ms", "expected_due_s"),
    [
        (Pacing(), [0, 5000, 9000], [0.0, 0.0, 0.0]),
        (Pacing(rate_per_s=4), [0, 5000, 9000], [0.0, 0.25, 0.5]),
        (Pacing(speed=1), [0, 500, 2000], [0.0, 0.5, 2.0]),
        (Pacing(speed=4), [0, 500, 2000], [0.0, 0.125, 0.5]),
        (Pacing(speed=1), [0, 2000, 1000, 3000], [0.0, 2.0, 2.0, 3.0]),  # out of order
        (Pacing(speed=1), [1000, 0, 2000], [0.0, 0.0, 1.0]),  # earlier than the first
    ],
    ids=["asap", "rate", "speed-1", "speed-4", "out-of-order", "before-first"],
)
def test_schedule_due_times(pacing, offsets_ms, expected_due_s):
    events = [raw_event(event_id=f"e{i}", ts=TS_MS + o) for i, o in enumerate(offsets_ms)]
    assert [o.due_s for o in _scheduled(events, pacing)] == pytest.approx(expected_due_s)


def test_schedule_counts_rate_over_events_not_lines():
    lines = [*jsonl(raw_event()), "{bad", *jsonl(raw_event(), raw_event())]
    got = list(schedule(read_events(lines), Pacing(rate_per_s=10)))
    assert [(o.line_no, o.due_s) for o in got] == [(1, 0.0), (3, 0.1), (4, 0.2)]


def test_schedule_with_speed_starts_at_the_first_valid_ts():
    events = [raw_event(ts=None), raw_event(ts=TS_MS + 1000), raw_event(ts=TS_MS + 3000)]
    assert [o.due_s for o in _scheduled(events, Pacing(speed=1))] == [0.0, 0.0, 2.0]


def test_shift_to_now_moves_the_first_valid_ts_to_now_and_keeps_gaps():
    events = [
        raw_event(event_id="no-ts", ts=None),
        raw_event(event_id="a", ts=TS_MS),
        raw_event(event_id="b", ts="2024-05-01T12:00:02.500Z"),
        raw_event(event_id="bad-ts", ts="later"),
        raw_event(event_id="c", ts=TS_MS + 60_000, type="teleport"),
    ]
    got = [orjson.loads(o.payload) for o in _scheduled(events, Pacing(), shift_to_ms=NOW_MS)]
    assert [(e["event_id"], e.get("ts")) for e in got] == [
        ("no-ts", None),
        ("a", NOW_MS),
        ("b", NOW_MS + 2500),
        ("bad-ts", "later"),
        ("c", NOW_MS + 60_000),
    ]
    assert got[4]["type"] == "teleport"  # invalid events go out, for the server to reject


def test_schedule_without_shift_sends_each_object_as_it_was():
    events = [
        raw_event(ts="2024-05-01T12:00:00Z", props={"a": [1, 2.5, None]}),
        raw_event(customer_id=None, type="teleport", extra="kept"),
        {"not": "an event"},
    ]
    got = _scheduled(events, Pacing())
    assert [orjson.loads(o.payload) for o in got] == events
    assert [o.key for o in got] == [b"c-1", None, None]


def test_schedule_keys_by_customer_id_only_when_it_is_a_string():
    got = _scheduled([raw_event(customer_id="ü-1"), raw_event(customer_id=7)], Pacing())
    assert [o.key for o in got] == ["ü-1".encode(), None]


# --- batches ----------------------------------------------------------------------


def _check_batches(events: list[OutgoingEvent], **kwargs: Any):
    got = list(batches(events, **kwargs))
    max_events = kwargs["max_events"]
    max_bytes = kwargs.get("max_bytes", MAX_BODY_BYTES)
    # Every event exactly once, and in file order within each lane.
    assert sorted(e.line_no for b in got for e in b.events) == [e.line_no for e in events]
    for lane in {b.lane for b in got}:
        in_lane = [e.line_no for b in got if b.lane == lane for e in b.events]
        assert in_lane == sorted(in_lane)
    for batch in got:
        assert 1 <= len(batch.events) <= max_events
        assert len(batch.events) == 1 or len(batch.http_body()) <= max_bytes
        assert batch.due_s == max(e.due_s for e in batch.events)  # never early
        assert orjson.loads(batch.http_body())["events"] == [
            orjson.loads(e.payload) for e in batch.events
        ]
    return got


@pytest.mark.parametrize(
    ("n", "max_events", "expected_sizes"),
    [
        (0, 100, []),
        (1, 100, [1]),
        (250, 100, [100, 100, 50]),
        (1000, MAX_BATCH_EVENTS, [500, 500]),
        (3, 1, [1, 1, 1]),
    ],
)
def test_batches_hold_at_most_max_events(n, max_events, expected_sizes):
    got = _check_batches(outgoing(n), max_events=max_events)
    assert [len(b.events) for b in got] == expected_sizes


def test_batches_stay_under_the_body_limit():
    # 3 KiB events: 500 of them would be ~1.5 MiB, over the collector's 1 MiB.
    got = _check_batches(outgoing(1000, size=3 * 1024), max_events=MAX_BATCH_EVENTS)
    assert all(len(b.http_body()) <= MAX_BODY_BYTES for b in got)
    assert max(len(b.events) for b in got) == MAX_BODY_BYTES // (3 * 1024 + 1)


def test_batches_fill_the_body_limit_exactly():
    # Two 40-byte events make a 13 + 40 + 1 + 40 = 94-byte body.
    assert [len(b.events) for b in batches(outgoing(4, size=40), max_events=9, max_bytes=94)] == [
        2,
        2,
    ]
    assert [len(b.events) for b in batches(outgoing(4, size=40), max_events=9, max_bytes=93)] == [
        1,
        1,
        1,
        1,
    ]


def test_an_event_larger_than_the_limit_goes_alone():
    events = [*outgoing(2), OutgoingEvent(3, b"c", b'"' + b"x" * 200 + b'"', 0.0), *outgoing(2)]
    events = [OutgoingEvent(i + 1, e.key, e.payload, e.due_s) for i, e in enumerate(events)]
    got = _check_batches(events, max_events=10, max_bytes=100)
    assert [[e.line_no for e in b.events] for b in got] == [[1, 2], [3], [4, 5]]


def test_lanes_keep_each_customer_in_one_lane_in_order():
    keys = [f"c{i % 7}".encode() for i in range(300)]
    events = [OutgoingEvent(i + 1, k, b"{}", 0.0) for i, k in enumerate(keys)]
    got = _check_batches(events, max_events=20, lanes=4)
    lane_of: dict[bytes | None, int] = {}
    for batch in got:
        for event in batch.events:
            assert lane_of.setdefault(event.key, batch.lane) == batch.lane
    assert len(set(lane_of.values())) > 1


@pytest.mark.parametrize(
    ("dues_s", "window_s", "expected"),
    [
        ([0.0] * 5, 0.01, [[1, 2, 3, 4, 5]]),
        ([0.0, 0.005, 0.0099, 0.01, 0.5], 0.01, [[1, 2, 3], [4], [5]]),
        ([0.0, 1.0, 2.0], 0.01, [[1], [2], [3]]),
        ([0.0, 1.0, 2.0], 5.0, [[1, 2, 3]]),
    ],
    ids=["all-due-at-once", "10ms-window", "one-a-second", "wide-window"],
)
def test_batches_group_events_due_within_the_window(dues_s, window_s, expected):
    events = [OutgoingEvent(i + 1, b"c", b"{}", d) for i, d in enumerate(dues_s)]
    got = _check_batches(events, max_events=100, window_s=window_s)
    assert [[e.line_no for e in b.events] for b in got] == expected


def test_fifty_thousand_a_second_needs_few_batches():
    events = list(schedule(read_events(jsonl(*[raw_event()] * 50_000)), Pacing(rate_per_s=50_000)))
    got = _check_batches(events, max_events=MAX_BATCH_EVENTS)
    assert len(got) <= 200  # ~500 events per 10 ms window, not one timer per event


@pytest.mark.parametrize("kwargs", [{"max_events": 0}, {"max_events": 1, "lanes": 0}])
def test_batches_refuse_bad_limits(kwargs):
    with pytest.raises(ValueError):
        list(batches(outgoing(1), **kwargs))


# --- response_outcome -------------------------------------------------------------


def _body(**fields: Any) -> bytes:
    return orjson.dumps(fields)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (202, _body(accepted=3, rejected=0, errors=[]), BatchOutcome(3, 0)),
        (
            202,
            _body(accepted=1, rejected=2, errors=[
                {"index": 0, "event_id": "e", "error": "ts: missing"},
                {"index": 2, "event_id": None, "error": "type: unknown event type 'x'"},
            ]),
            BatchOutcome(1, 2, ("line 10: ts: missing", "line 30: type: unknown event type 'x'")),
        ),
        (
            400,
            _body(accepted=0, rejected=3, errors=[{"index": 9, "error": "odd"}, "junk"]),
            BatchOutcome(0, 3, ("line ?: odd",)),
        ),
        (400, _body(error="body: not valid JSON"), BatchOutcome(0, 3, (
            "lines 10–30: body: not valid JSON",))),  # noqa: RUF001
        (413, _body(error="body: larger than 1048576 bytes (1 MiB)"), BatchOutcome(0, 3, (
            "lines 10–30: body: larger than 1048576 bytes (1 MiB)",))),  # noqa: RUF001
        (400, b"<html>bad</html>", BatchOutcome(0, 3, ("lines 10–30: <html>bad</html>",))),  # noqa: RUF001
        (401, _body(error="X-Api-Key missing or wrong"),
         BatchOutcome(fatal="HTTP 401: X-Api-Key missing or wrong")),
        (404, b"Not Found", BatchOutcome(fatal="HTTP 404: Not Found")),
        (200, b"", BatchOutcome(fatal="HTTP 200: (empty body)")),
    ],
    ids=["all-accepted", "some-rejected", "odd-errors", "not-json", "too-large", "html-400",
         "unauthorized", "wrong-url", "not-a-collector"],
)  # fmt: skip
def test_response_outcome(status, body, expected):
    assert response_outcome(status, body, [10, 20, 30]) == expected


def test_response_outcome_for_one_line_names_it():
    assert response_outcome(413, _body(error="too big"), [7]).examples == ("line 7: too big",)


def test_response_outcome_keeps_at_most_ten_examples():
    errors = [{"index": i, "error": "ts: missing"} for i in range(50)]
    outcome = response_outcome(400, _body(accepted=0, rejected=50, errors=errors), range(50))
    assert (outcome.rejected, len(outcome.examples)) == (50, 10)


# --- ReplaySummary ----------------------------------------------------------------


def test_summary_render_shows_counts_examples_and_why_it_stopped():
    summary = ReplaySummary(
        "http://h:1/v1/events", sent=100, accepted=90, rejected=2, failed=8, bad_lines=12,
        elapsed_s=2.0, stopped="http://h:1/v1/events: HTTP 401: X-Api-Key missing or wrong",
        bad_line_examples=[f"line {n}: not valid JSON" for n in range(10)],
        rejection_examples=["line 7: ts: missing"],
    )  # fmt: skip
    text = summary.render()
    assert text.splitlines()[:2] == [
        "replay to http://h:1/v1/events: sent 100 events in 2.00 s (50 events/s)",
        "  accepted 90, rejected 2, failed 8, bad lines 12",
    ]
    assert "  line 9: not valid JSON" in text
    assert "  … and 2 more bad lines" in text
    assert "  rejected line 7: ts: missing" in text
    assert text.endswith(
        "stopped early: http://h:1/v1/events: HTTP 401: X-Api-Key missing or wrong"
    )


@pytest.mark.parametrize(
    ("sent", "elapsed_s", "rate"), [(0, 0.0, 0.0), (10, 0.0, 0.0), (50_000, 0.5, 100_000.0)]
)
def test_summary_rate(sent, elapsed_s, rate):
    assert ReplaySummary("x", sent=sent, elapsed_s=elapsed_s).rate_per_s == rate


# --- targets and the command line -------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:6066", Target("http", "http://127.0.0.1:6066/v1/events")),
        ("http://127.0.0.1:6066/", Target("http", "http://127.0.0.1:6066/v1/events")),
        ("https://nf.example/v1/events", Target("http", "https://nf.example/v1/events")),
        ("kafka://localhost:9092", Target("kafka", "kafka://localhost:9092")),
        ("kafka://h1:9092;kafka://h2:9092", Target("kafka", "kafka://h1:9092;kafka://h2:9092")),
    ],
)  # fmt: skip
def test_parse_target(url, expected):
    assert parse_target(url) == expected


@pytest.mark.parametrize("url", ["localhost:6066", "ftp://x", "http://", "kafka://", "redis://x"])
def test_parse_target_refuses_other_urls(url):
    with pytest.raises(ValueError):
        parse_target(url)


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="nudgeflow")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["replay", *argv])


def test_cli_defaults():
    args = _parse("events.jsonl")
    # No --to: the command line fills in a running `nudgeflow up`'s collector, and run()
    # falls back to DEFAULT_TARGET.
    assert (str(args.file), args.to, args.rate, args.speed, args.shift_to_now, args.batch,
            args.api_key) == ("events.jsonl", None, None, None, False,
                              DEFAULT_BATCH_EVENTS, None)  # fmt: skip
    assert DEFAULT_TARGET == "http://127.0.0.1:6066"


def test_cli_options():
    args = _parse("f", "--to", "kafka://b:9092", "--speed", "2.5", "--shift-to-now",
                  "--batch", "500", "--api-key", "k")  # fmt: skip
    assert (args.to, args.speed, args.shift_to_now, args.batch, args.api_key) == (
        "kafka://b:9092", 2.5, True, 500, "k",
    )  # fmt: skip
    assert Pacing(args.rate, args.speed) == Pacing(speed=2.5)


@pytest.mark.parametrize(
    "argv",
    [
        ["--rate", "10", "--speed", "2"],
        ["--rate", "0"],
        ["--speed", "-1"],
        ["--rate", "fast"],
        ["--batch", "501"],
        ["--batch", "0"],
        ["--to", "localhost:6066"],
    ],
)
def test_cli_refuses_bad_options(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _parse("f", *argv)
    assert exit_info.value.code == 2


async def test_a_throttled_replay_waits_as_told_and_loses_nothing() -> None:
    # A collector that answers 429 to the first 12 requests (more than the attempts a
    # failing request gets), asking for a 20 ms wait each time, then accepts.
    from aiohttp import web

    from app.tools.replay import _HTTP_ATTEMPTS, replay

    answered: list[int] = []

    async def collect(request: web.Request) -> web.Response:
        body = await request.json()
        if len(answered) < 12:
            answered.append(429)
            return web.json_response({"error": "slow down"}, status=429,
                                     headers={"Retry-After": "0.02"})  # fmt: skip
        answered.append(202)
        accepted = len(body["events"]) if "events" in body else 1
        return web.json_response({"accepted": accepted, "rejected": 0, "errors": []}, status=202)

    app = web.Application()
    app.router.add_post("/v1/events", collect)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    lines = jsonl(*(raw_event(event_id=f"e-{i}") for i in range(3)))
    try:
        summary = await replay(lines, f"http://127.0.0.1:{port}", Pacing(), batch_size=1)
    finally:
        await runner.cleanup()
    assert _HTTP_ATTEMPTS < 12
    assert (summary.accepted, summary.failed, summary.stopped) == (3, 0, None)
    assert answered.count(429) == 12
