"""The quality table on a tiny hand-made case, where every number is known."""

from __future__ import annotations

import pytest

from app.tools.evaluation import evaluate, render_markdown


def label(session_id, story, friction_ts=None, reason=None, events=10, ended_ts=10_000):
    return {"session_id": session_id, "story": story, "friction": friction_ts is not None,
            "friction_ts": friction_ts, "expected_reason": reason, "events": events,
            "ended_ts": ended_ts}  # fmt: skip


def intervention(session_id, reason, event_ts):
    return {"session_id": session_id, "reason": reason, "event_ts": event_ts}


LABELS = [
    label("r1", "rage_clicker", 1_000, "rage_click"),
    label("r2", "rage_clicker", 2_000, "rage_click"),
    label("r3", "rage_clicker", 3_000, "rage_click"),  # missed
    label("r4", "rage_clicker", 4_000, "rage_click", ended_ts=4_500),  # caught too late
    label("p1", "payment_failure", 1_000, "payment_failure"),
    label("c1", "clean_buyer", events=20),
    label("c2", "clean_buyer", events=30),
]
FOUND = [
    intervention("r1", "rage_click", 1_400),
    intervention("r2", "step_loop", 2_100),  # caught, wrong reason
    intervention("r2", "rage_click", 2_900),
    intervention("r1", "rage_click", 900),  # before the friction: not a catch
    intervention("r4", "rage_click", 5_000),  # after the session ended
    intervention("p1", "payment_failure", 1_000),
    intervention("c2", "rage_click", 500),  # false alarm
]


@pytest.fixture(scope="module")
def rows():
    return {row.story: row for row in evaluate(LABELS, FOUND)}


def test_caught_counts_only_interventions_between_friction_and_session_end(rows):
    rage = rows["rage_clicker"]
    assert (rage.sessions, rage.friction_sessions, rage.caught) == (4, 4, 2)
    assert rage.caught_rate == 0.5


def test_latency_is_event_time_from_friction_to_the_first_catch(rows):
    rage = rows["rage_clicker"]  # latencies 400 and 100
    assert rage.latency_p50_ms == pytest.approx(250.0)
    assert rage.latency_p90_ms == pytest.approx(370.0)
    assert rows["payment_failure"].latency_p50_ms == 0.0


def test_right_reason_looks_at_the_first_catch(rows):
    assert rows["rage_clicker"].right_reason == 1
    assert rows["rage_clicker"].right_reason_rate == 0.5


def test_false_alarms_are_clean_sessions_with_any_intervention(rows):
    clean = rows["clean_buyer"]
    assert (clean.clean_sessions, clean.false_alarm_sessions, clean.false_alarm_rate) == (2, 1, 0.5)
    assert clean.caught_rate is None


def test_interventions_per_1k_events(rows):
    assert rows["clean_buyer"].interventions_per_1k_events == pytest.approx(1000 * 1 / 50)
    assert rows["rage_clicker"].interventions_per_1k_events == pytest.approx(1000 * 5 / 40)


def test_all_row_adds_up(rows):
    total = rows["all"]
    assert (total.sessions, total.friction_sessions, total.caught, total.interventions) == (
        7,
        5,
        3,
        7,
    )
    assert list(rows)[-1] == "all"


def test_markdown_has_a_line_per_row():
    text = render_markdown(evaluate(LABELS, FOUND))
    assert text.count("\n") == 2 + 4
    assert "| rage_clicker | 4 | 4 | 2 | 50 | 250 | 370 | 50 | - | 125.0 |" in text


def test_no_interventions_at_all():
    rows = evaluate(LABELS, [])
    assert all(row.caught == 0 and row.latency_p50_ms is None for row in rows)
