"""The quality table on a tiny hand-made case, where every number is known."""

from __future__ import annotations

from typing import Any

import pytest

from app.tools.evaluation import (
    COLUMNS,
    TARGETS,
    StoryQuality,
    evaluate,
    evaluate_lookalikes,
    render_lookalikes,
    render_markdown,
    render_targets,
)


def label(session_id: str, story: str, friction_ts: int | None = None, reason: str | None = None,
          events: int = 10, ended_ts: int = 10_000, lookalikes: tuple[str, ...] = ()
          ) -> dict[str, Any]:  # fmt: skip
    return {"session_id": session_id, "story": story, "friction": friction_ts is not None,
            "friction_ts": friction_ts, "expected_reason": reason, "events": events,
            "ended_ts": ended_ts, "lookalikes": list(lookalikes)}  # fmt: skip


def intervention(session_id: str, reason: str, event_ts: int, kind: str = "assist",
                 fired_ts: int | None = None) -> dict[str, Any]:  # fmt: skip
    found = {"session_id": session_id, "kind": kind, "reason": reason, "event_ts": event_ts}
    if fired_ts is not None:
        found["fired_ts"] = fired_ts
    return found


LABELS = [
    label("r1", "rage_clicker", 1_000, "rage_click"),
    label("r2", "rage_clicker", 2_000, "rage_click"),
    label("r3", "rage_clicker", 3_000, "rage_click"),  # missed
    label("r4", "rage_clicker", 4_000, "rage_click", ended_ts=4_500),  # caught too late
    label("p1", "payment_failure", 1_000, "payment_failure"),
    # A silence: the trigger is the last event, the rule holds a minute later.
    label("k1", "checkout_staller", 9_000, "checkout_stall", ended_ts=9_000),
    label("a1", "cart_abandoner", 5_000, "cart_abandonment_risk", ended_ts=5_000),
    label("c1", "clean_buyer", events=20, lookalikes=("carousel",)),
    label("c2", "clean_buyer", events=30, lookalikes=("carousel", "cart_edit")),
    label("c3", "clean_buyer", events=10),
    label("c4", "clean_buyer", events=10, lookalikes=("cart_edit",)),
    label("b1", "bot", events=40),
]
FOUND = [
    intervention("r1", "rage_click", 1_400),
    intervention("r2", "step_loop", 2_100),  # caught, wrong reason
    intervention("r2", "rage_click", 2_900),
    intervention("r1", "rage_click", 900),  # before the friction: not a catch
    intervention("r4", "rage_click", 5_000),  # after the session ended
    intervention("p1", "payment_failure", 1_000),
    intervention("k1", "checkout_stall", 9_000, fired_ts=69_000),
    # The cart rule held at 605 s; the stall rule fired earlier on the same trigger.
    intervention("a1", "cart_abandonment_risk", 5_000, kind="reminder", fired_ts=605_000),
    intervention("a1", "checkout_stall", 5_000, fired_ts=65_000),
    intervention("c2", "rage_click", 500),  # a friction claim on a clean session
    intervention("c2", "product_hesitation", 700, kind="offer"),
    intervention("c4", "product_hesitation", 800, kind="offer"),  # a nudge, not a claim
    intervention("b1", "dead_click", 300),  # a crawler is clean too
]


@pytest.fixture(scope="module")
def rows() -> dict[str, StoryQuality]:
    return {row.story: row for row in evaluate(LABELS, FOUND)}


def test_caught_counts_only_interventions_between_friction_and_session_end(
    rows: dict[str, StoryQuality],
) -> None:
    rage = rows["rage_clicker"]
    assert (rage.sessions, rage.friction_sessions, rage.caught) == (4, 4, 2)
    assert rage.caught_rate == 0.5


def test_latency_is_event_time_from_friction_to_the_first_catch(
    rows: dict[str, StoryQuality],
) -> None:
    rage = rows["rage_clicker"]  # latencies 400 and 100
    assert rage.latency_p50_ms == pytest.approx(250.0)
    assert rage.latency_p90_ms == pytest.approx(370.0)
    assert rows["payment_failure"].latency_p50_ms == 0.0


@pytest.mark.parametrize(
    ("story", "latency_ms", "right"),
    [
        ("checkout_staller", 60_000, 1),  # fired_ts - friction_ts, not the trigger's time
        ("cart_abandoner", 60_000, 0),  # the stall rule held first, so it is the first catch
    ],
)
def test_silence_rules_count_from_when_they_fired(
    rows: dict[str, StoryQuality], story: str, latency_ms: int, right: int
) -> None:
    row = rows[story]
    assert (row.caught, row.latency_p50_ms, row.right_reason) == (1, latency_ms, right)


def test_right_reason_looks_at_the_first_catch(rows: dict[str, StoryQuality]) -> None:
    assert rows["rage_clicker"].right_reason == 1
    assert rows["rage_clicker"].right_reason_rate == 0.5


def test_clean_sessions_count_friction_claims_and_any_nudge(rows: dict[str, StoryQuality]) -> None:
    clean = rows["clean_buyer"]
    assert (clean.clean_sessions, clean.assisted_clean, clean.nudged_clean) == (4, 1, 2)
    assert (clean.assist_on_clean_rate, clean.nudge_on_clean_rate) == (0.25, 0.5)
    assert clean.caught_rate is None
    bot = rows["bot"]
    assert (bot.clean_sessions, bot.assisted_clean, bot.nudged_clean) == (1, 1, 1)


def test_interventions_per_1k_events(rows: dict[str, StoryQuality]) -> None:
    assert rows["clean_buyer"].interventions_per_1k_events == pytest.approx(1000 * 3 / 70)
    assert rows["rage_clicker"].interventions_per_1k_events == pytest.approx(1000 * 5 / 40)


def test_all_row_adds_up(rows: dict[str, StoryQuality]) -> None:
    total = rows["all"]
    assert (total.sessions, total.friction_sessions, total.caught, total.interventions) == (
        12, 7, 5, 13,
    )  # fmt: skip
    assert (total.clean_sessions, total.assisted_clean, total.nudged_clean) == (5, 2, 3)
    assert list(rows)[-1] == "all"


def test_markdown_has_a_line_per_row_and_the_new_columns() -> None:
    text = render_markdown(evaluate(LABELS, FOUND))
    assert text.splitlines()[0] == "| " + " | ".join(COLUMNS) + " |"
    assert "assist on clean %" in COLUMNS and "any nudge on clean %" in COLUMNS
    assert text.count("\n") == 2 + 7
    assert "| rage_clicker | 4 | 4 | 2 | 50 | 250 | 370 | 50 | - | - | 125.0 |" in text
    assert "| clean_buyer | 4 | 0 | 0 | - | - | - | - | 25.0 | 50.0 | 42.9 |" in text


def test_no_interventions_at_all() -> None:
    rows = evaluate(LABELS, [])
    assert all(row.caught == 0 and row.latency_p50_ms is None for row in rows)
    assert all(row.nudged_clean == 0 for row in rows)


@pytest.mark.parametrize(
    ("caught", "assisted", "nudged", "verdicts"),
    [
        (9, 0, 0, ["PASS", "PASS", "PASS"]),
        (8, 0, 0, ["FAIL", "PASS", "PASS"]),
        (10, 3, 3, ["PASS", "PASS", "PASS"]),  # 3 % exactly
        (10, 4, 4, ["PASS", "FAIL", "PASS"]),
        (10, 0, 11, ["PASS", "PASS", "FAIL"]),
    ],
)
def test_targets_pass_or_fail_on_the_all_row(
    caught: int, assisted: int, nudged: int, verdicts: list[str]
) -> None:
    total = StoryQuality("all", 110, 10, caught, caught, 100, assisted, nudged, 0, 1000, 1.0, 2.0)
    line = render_targets([total])
    assert [part.rsplit(" ", 1)[1] for part in line.split("; ")] == verdicts
    assert [t.name for t in TARGETS] == ["caught", "assist on clean", "any nudge on clean"]
    assert line.startswith(f"caught ≥ 90 %: {100 * caught / 10:.1f} %")


def test_targets_without_friction_or_clean_sessions_are_not_applicable() -> None:
    total = StoryQuality("all", 0, 0, 0, 0, 0, 0, 0, 0, 0, None, None)
    assert render_targets([total]).count("n/a") == 3


def test_false_alarms_per_look_alike() -> None:
    rows = evaluate_lookalikes(LABELS, FOUND)
    assert [r.cells() for r in rows] == [
        ["carousel", "2", "50.0", "50.0"],
        ["cart_edit", "2", "50.0", "100.0"],
    ]
    assert render_lookalikes(rows).splitlines()[2] == "| carousel | 2 | 50.0 | 50.0 |"
