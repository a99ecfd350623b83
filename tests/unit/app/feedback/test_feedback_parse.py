"""Contract §3 rules for one feedback message: ``parse_feedback`` and its helpers."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import orjson
import pytest

from app.errors import InvalidEvent, PayloadTooLarge
from app.feedback.feedback import (
    FUNNEL,
    MAX_FEEDBACK_BYTES,
    OUTCOMES,
    Feedback,
    check_indexed,
    feedback_to_wire,
    latest_outcome,
    parse_feedback,
)
from app.ingest.events import MIN_TS_MS

MISSING: Any = object()  # pass as an override to leave the field out
TS_MS = 1_714_564_800_000  # 2024-05-01T12:00:00Z


def feedback_body(**overrides: Any) -> bytes:
    """A valid feedback body as bytes; ``MISSING`` leaves a field out."""
    fields: dict[str, Any] = {
        "intervention_id": "3f2a9c0d1e4b5a6978c0d1e2f3a4b5c6",
        "customer_id": "c-1",
        "outcome": "shown",
        "ts": TS_MS,
    }
    fields.update(overrides)
    return orjson.dumps({k: v for k, v in fields.items() if v is not MISSING})


def refusal(body: bytes, **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(InvalidEvent) as caught:
        parse_feedback(body, **kwargs)
    return caught.value.reason, str(caught.value)


def test_a_valid_body_gives_the_feedback() -> None:
    assert parse_feedback(feedback_body()) == Feedback(
        "3f2a9c0d1e4b5a6978c0d1e2f3a4b5c6", "c-1", "shown", TS_MS
    )


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_every_contract_outcome_is_accepted(outcome: str) -> None:
    assert parse_feedback(feedback_body(outcome=outcome)).outcome == outcome


def test_unknown_fields_are_ignored() -> None:
    assert parse_feedback(feedback_body(variant="discount")).outcome == "shown"


@pytest.mark.parametrize(
    ("body", "reason", "message"),
    [
        (b"", "invalid_json", "body: not valid JSON"),
        (b"{not json", "invalid_json", "body: not valid JSON"),
        (b"[1, 2]", "not_an_object", "body: must be a feedback object, got array"),
        (b'"shown"', "not_an_object", "body: must be a feedback object, got string"),
        (b"null", "not_an_object", "body: must be a feedback object, got null"),
    ],
)
def test_a_body_that_is_no_object_is_refused(body: bytes, reason: str, message: str) -> None:
    got_reason, got_message = refusal(body)
    assert got_reason == reason
    assert got_message.startswith(message)


@pytest.mark.parametrize("field", ["intervention_id", "customer_id", "outcome", "ts"])
@pytest.mark.parametrize("absent", [MISSING, None])
def test_a_missing_field_is_named(field: str, absent: object) -> None:
    assert refusal(feedback_body(**{field: absent})) == ("missing_field", f"{field}: missing")


@pytest.mark.parametrize(("field", "max_len"), [("intervention_id", 64), ("customer_id", 128)])
@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "must be 1–{max_len} characters"),  # noqa: RUF001
        ("x", None),
        ("x" * 64, None),
        (7, "must be a string, got integer"),
        (["c"], "must be a string, got array"),
        (True, "must be a string, got boolean"),
    ],
)
def test_ids_are_checked_like_the_collector_does(
    field: str, max_len: int, value: object, problem: str | None
) -> None:
    body = feedback_body(**{field: value})
    if problem is None:
        assert getattr(parse_feedback(body), field) == value
    else:
        expected = f"{field}: {problem.format(max_len=max_len)}"
        assert refusal(body) == ("invalid_field", expected)


@pytest.mark.parametrize(("field", "max_len"), [("intervention_id", 64), ("customer_id", 128)])
def test_ids_longer_than_the_limit_are_refused(field: str, max_len: int) -> None:
    assert getattr(parse_feedback(feedback_body(**{field: "x" * max_len})), field) == "x" * max_len
    reason, message = refusal(feedback_body(**{field: "x" * (max_len + 1)}))
    assert reason == "invalid_field"
    assert message == f"{field}: must be 1–{max_len} characters"  # noqa: RUF001


@pytest.mark.parametrize("outcome", ["liked", "Shown", "SHOWN", " shown", "purchase"])
def test_an_unknown_outcome_lists_the_allowed_ones(outcome: str) -> None:
    reason, message = refusal(feedback_body(outcome=outcome))
    assert reason == "unknown_outcome"
    assert message == (
        f"outcome: unknown outcome '{outcome}'; "
        "one of delivered, shown, accepted, dismissed, converted"
    )


def test_a_long_unknown_outcome_is_cut_in_the_message() -> None:
    _, message = refusal(feedback_body(outcome="x" * 1000))
    assert "x" * 64 + "..." in message and "x" * 65 not in message


@pytest.mark.parametrize(
    ("outcome", "message"),
    [(3, "outcome: must be a string, got integer"), ({}, "outcome: must be a string, got object")],
)
def test_an_outcome_that_is_no_string_is_refused(outcome: object, message: str) -> None:
    assert refusal(feedback_body(outcome=outcome)) == ("invalid_field", message)


@pytest.mark.parametrize(
    ("ts", "reason", "message"),
    [
        (1.5e12, "invalid_field", "ts: must be integer ms since the epoch, got a float"),
        ("2024-05-01 noon", "invalid_field", "ts: not an ISO-8601 timestamp"),
        (True, "invalid_field", "ts: must be integer ms since the epoch"),
        (253_402_300_800_000, "invalid_field", "ts: out of range"),
        (TS_MS // 1000, "ts_too_old", "ts: before 2000-01-01; ts must be milliseconds"),
        (MIN_TS_MS - 1, "ts_too_old", "ts: before 2000-01-01; ts must be milliseconds"),
        (-1, "invalid_field", "ts: out of range"),
    ],
)  # fmt: skip
def test_ts_must_be_plausible_integer_ms(ts: object, reason: str, message: str) -> None:
    got_reason, got_message = refusal(feedback_body(ts=ts))
    assert got_reason == reason
    assert got_message.startswith(message)


def test_ts_follows_the_time_rules_of_click_events() -> None:
    # ISO-8601 with an offset, as an event's ts may be.
    assert parse_feedback(feedback_body(ts="2024-05-01T12:00:00Z")).ts_ms == 1_714_564_800_000


def test_the_first_plausible_ms_is_accepted() -> None:
    assert parse_feedback(feedback_body(ts=MIN_TS_MS)).ts_ms == MIN_TS_MS


@pytest.mark.parametrize(
    ("ahead_ms", "refused"), [(-86_400_000, False), (0, False), (300_000, False), (300_001, True)]
)
def test_ts_ahead_of_the_receiver_by_more_than_the_skew_is_refused(
    ahead_ms: int, refused: bool
) -> None:
    body = feedback_body(ts=TS_MS + ahead_ms)
    if refused:
        reason, message = refusal(body, received_ms=TS_MS, max_future_skew_ms=300_000)
        assert reason == "ts_in_future"
        assert message == "ts: 300 s ahead of the receiver's clock (at most 300 s allowed)"
    else:
        assert parse_feedback(body, TS_MS, 300_000).ts_ms == TS_MS + ahead_ms


def test_without_a_receiver_clock_the_future_is_not_checked() -> None:
    assert parse_feedback(feedback_body(ts=TS_MS + 10**10)).ts_ms == TS_MS + 10**10


def test_fields_are_checked_in_contract_order() -> None:
    body = orjson.dumps({"customer_id": "", "outcome": "liked", "ts": 1.0})
    assert refusal(body) == ("missing_field", "intervention_id: missing")


def test_a_body_over_the_limit_is_too_large() -> None:
    body = feedback_body(padding="x" * MAX_FEEDBACK_BYTES)
    with pytest.raises(PayloadTooLarge) as caught:
        parse_feedback(body)
    assert caught.value.reason == "too_large"
    assert str(caught.value) == f"body: larger than {MAX_FEEDBACK_BYTES} bytes"


def test_the_wire_form_parses_back_to_the_same_feedback() -> None:
    feedback = parse_feedback(feedback_body(outcome="converted"))
    assert parse_feedback(orjson.dumps(feedback_to_wire(feedback))) == feedback
    assert set(feedback_to_wire(feedback)) == {"intervention_id", "customer_id", "outcome", "ts"}


# --- check_indexed ---------------------------------------------------------------------------

FEEDBACK = Feedback("i-1", "c-1", "accepted", TS_MS)


def test_feedback_on_a_known_intervention_of_its_customer_passes() -> None:
    indexed = {"customer_id": "c-1", "reason": "payment_failure"}
    assert check_indexed(FEEDBACK, indexed) is indexed


def test_feedback_on_an_unknown_intervention_is_refused() -> None:
    with pytest.raises(InvalidEvent) as caught:
        check_indexed(FEEDBACK, None)
    assert (caught.value.reason, str(caught.value)) == (
        "unknown_intervention",
        "intervention not found",
    )


@pytest.mark.parametrize("indexed", [{"customer_id": "c-2"}, {"reason": "rage_click"}])
def test_feedback_for_another_customer_is_refused_without_naming_them(
    indexed: dict[str, str],
) -> None:
    with pytest.raises(InvalidEvent) as caught:
        check_indexed(FEEDBACK, indexed)
    assert caught.value.reason == "customer_mismatch"
    assert str(caught.value).startswith("customer_id: ")
    assert "c-2" not in str(caught.value)


# --- latest_outcome --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcomes", "latest"),
    [
        ({}, None),
        ({"shown": 5}, ("shown", 5)),
        ({"delivered": 1, "shown": 2, "accepted": 3}, ("accepted", 3)),
        ({"converted": 3, "shown": 9}, ("shown", 9)),  # newest ts wins over the funnel
        ({"dismissed": 4, "shown": 4}, ("dismissed", 4)),
        ({"accepted": 4, "dismissed": 4}, ("accepted", 4)),
        ({"converted": 4, "accepted": 4, "delivered": 4}, ("converted", 4)),
        ({"liked": 99, "shown": 1}, ("shown", 1)),  # not an outcome of the contract
        ({"liked": 99}, None),
    ],
)
def test_latest_outcome_is_the_newest_then_the_furthest_in_the_funnel(
    outcomes: dict[str, int], latest: tuple[str, int] | None
) -> None:
    assert latest_outcome(outcomes) == latest


def test_every_tie_goes_to_the_later_funnel_step() -> None:
    for earlier, later in pairwise(FUNNEL):
        assert latest_outcome({later: 1, earlier: 1}) == (later, 1)


def test_latest_outcome_leaves_its_input_alone() -> None:
    outcomes = {"shown": 2, "accepted": 1}
    latest_outcome(outcomes)
    assert outcomes == {"shown": 2, "accepted": 1}
