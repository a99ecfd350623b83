"""The pure webhook policy: what an answer means, how long to wait, what may be committed,
which settings start, and the dead-letter record."""

from __future__ import annotations

import orjson
import pytest

from app.deliver.webhooks import (
    PendingOffsets,
    WebhookFailure,
    check_webhook_settings,
    parse_retry_after,
    retry_wait_s,
    verdict,
)
from app.errors import ConfigError

NOW = 1_700_000_000.0  # Tue, 14 Nov 2023 22:13:20 GMT


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, "delivered"),
        (201, "delivered"),
        (202, "delivered"),
        (204, "delivered"),
        (299, "delivered"),
        (400, "give_up"),
        (401, "give_up"),
        (403, "give_up"),
        (404, "give_up"),
        (410, "give_up"),
        (413, "give_up"),
        (422, "give_up"),
        (408, "retry"),
        (429, "retry"),
        (500, "retry"),
        (502, "retry"),
        (503, "retry"),
        (504, "retry"),
        (301, "retry"),
        (100, "retry"),
        (None, "retry"),
    ],
)
def test_verdict(status: int | None, expected: str) -> None:
    assert verdict(status) == expected


@pytest.mark.parametrize(
    ("tries", "backoff_s", "backoff_max_s", "draw", "expected"),
    [
        (1, 0.5, 60.0, 1.0, 0.5),
        (2, 0.5, 60.0, 1.0, 1.0),
        (3, 0.5, 60.0, 1.0, 2.0),
        (7, 0.5, 60.0, 1.0, 32.0),
        (8, 0.5, 60.0, 1.0, 60.0),  # 64 s capped
        (1_000, 0.5, 60.0, 1.0, 60.0),  # no overflow
        (3, 0.5, 60.0, 0.5, 1.0),
        (3, 0.5, 60.0, 0.0, 0.0),  # full jitter: anything from nothing to the ceiling
        (1, 2.0, 1.0, 1.0, 1.0),  # a first wait above the maximum is capped too
    ],
)
def test_retry_wait_is_full_jitter_below_a_doubling_ceiling(
    tries: int, backoff_s: float, backoff_max_s: float, draw: float, expected: float
) -> None:
    assert retry_wait_s(tries, backoff_s, backoff_max_s, draw) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("retry_after_s", "expected"),
    [(0.0, 0.0), (3.0, 3.0), (60.0, 60.0), (3_600.0, 60.0), (-5.0, 0.0)],
)
def test_retry_after_replaces_the_backoff_up_to_the_maximum(
    retry_after_s: float, expected: float
) -> None:
    assert retry_wait_s(5, 0.5, 60.0, draw=0.1, retry_after_s=retry_after_s) == expected


@pytest.mark.parametrize(("tries", "draw"), [(0, 0.5), (-1, 0.5), (1, -0.1), (1, 1.5)])
def test_retry_wait_refuses_bad_arguments(tries: int, draw: float) -> None:
    with pytest.raises(ValueError):
        retry_wait_s(tries, 0.5, 60.0, draw)


def test_retry_waits_stay_under_their_ceilings_for_every_draw() -> None:
    for tries in range(1, 12):
        ceiling = min(10.0, 0.25 * 2 ** (tries - 1))
        waits = [retry_wait_s(tries, 0.25, 10.0, draw / 100) for draw in range(101)]
        assert min(waits) == 0.0
        assert max(waits) == pytest.approx(ceiling)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("0", 0.0),
        ("120", 120.0),
        (" 7 ", 7.0),
        ("Tue, 14 Nov 2023 22:13:50 GMT", 30.0),
        ("Tue, 14 Nov 2023 22:13:00 GMT", 0.0),  # in the past: no wait
        ("Tuesday, 14-Nov-23 22:13:50 GMT", 30.0),  # the obsolete RFC 850 form too
        ("-1", None),
        ("1.5", None),
        ("soon", None),
        ("", None),
        ("\u0661\u0662", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_pending_offsets_commit_only_past_a_done_prefix() -> None:
    pending = PendingOffsets()
    assert pending.committable() is None
    for offset in (10, 11, 12, 15):  # gaps: compacted or transaction markers
        pending.add(offset)

    pending.done(12)
    pending.done(15)
    assert pending.committable() is None
    assert len(pending) == 4

    pending.done(11)
    assert pending.committable() is None

    pending.done(10)
    assert pending.committable() == 16
    assert len(pending) == 0


@pytest.mark.parametrize(
    ("done_order", "positions"),
    [
        ([0, 1, 2], [1, 2, 3]),
        ([2, 1, 0], [None, None, 3]),
        ([1, 0, 2], [None, 2, 3]),
        ([0, 2, 1], [1, 1, 3]),
    ],
)
def test_pending_offsets_in_any_finishing_order(
    done_order: list[int], positions: list[int | None]
) -> None:
    pending = PendingOffsets()
    for offset in range(3):
        pending.add(offset)

    seen = []
    for offset in done_order:
        pending.done(offset)
        seen.append(pending.committable())
    assert seen == positions


def test_pending_offsets_go_on_after_a_commit_position() -> None:
    pending = PendingOffsets()
    pending.add(0)
    pending.done(0)
    pending.add(1)

    assert pending.committable() == 1
    with pytest.raises(ValueError):
        pending.add(0)
    with pytest.raises(ValueError):
        pending.add(1)


def test_settings_with_urls_and_a_secret_start() -> None:
    check_webhook_settings(["https://bot.example/hooks/nudge", "http://10.0.0.7:8080/x"], "s3cret")


@pytest.mark.parametrize(
    ("urls", "secret", "message"),
    [
        (["https://bot.example/hook"], "", "NUDGEFLOW_WEBHOOK_SECRET is empty"),
        (["ftp://bot.example/hook"], "s", "'ftp://bot.example/hook' is not an http(s) URL"),
        (["bot.example/hook"], "s", "'<not a URL>' is not an http(s) URL"),
        (["https:///hook"], "s", "is not an http(s) URL"),
        (["https://a.example/x", "https://a.example/x"], "s", "'https://a.example/x' twice"),
    ],
)
def test_settings_that_cannot_work_are_refused(urls: list[str], secret: str, message: str) -> None:
    with pytest.raises(ConfigError, match="NUDGEFLOW_WEBHOOK_") as error:
        check_webhook_settings(urls, secret)
    assert message in str(error.value)


def test_refusals_do_not_show_credentials_in_urls() -> None:
    url = "ftp://user:pa55@bot.example/hook?token=t0ken#frag"
    with pytest.raises(ConfigError) as error:
        check_webhook_settings([url], "s3cret")
    assert "pa55" not in str(error.value)
    assert "t0ken" not in str(error.value)


def test_dead_letter_keeps_the_intervention_as_sent() -> None:
    body = orjson.dumps({"intervention_id": "i-1", "customer_id": "c-1", "score": 0.7})
    failure = WebhookFailure(body, "https://bot.example/hook", 3, None, "no answer within 1 s",
                             1_700_000_000_000)  # fmt: skip

    record = orjson.loads(failure.encode())

    assert record == {
        "intervention": orjson.loads(body),
        "url": "https://bot.example/hook",
        "attempts": 3,
        "status": None,
        "error": "no answer within 1 s",
        "failed_ts": 1_700_000_000_000,
    }
    assert body in failure.encode()  # the bytes themselves, not a re-encoding
