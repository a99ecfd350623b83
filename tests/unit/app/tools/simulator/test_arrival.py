"""arrival_order: what the network does to events, on small hand-made sessions."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest

from app.tools.simulator import Faults
from app.tools.simulator.arrival import arrival_order

Event = dict[str, Any]


def session(name: str, start_ms: int, n: int, gap_ms: int = 1_000) -> list[Event]:
    return [{"event_id": f"{name}-{i}", "ts": start_ms + i * gap_ms} for i in range(n)]


def arrive(sessions: list[tuple[list[Event], int]], faults: Faults, seed: int = 0) -> Any:
    return arrival_order(sessions, faults, np.random.default_rng(seed))


def test_a_perfect_network_keeps_event_time_order() -> None:
    a, b = session("a", 0, 50, 700), session("b", 300, 50, 900)
    events, arrived = arrive([(a, 0), (b, 0)], Faults())
    assert [e["ts"] for e in events] == sorted(e["ts"] for e in a + b)
    assert arrived == [e["ts"] for e in events]


def test_the_same_generator_state_gives_the_same_order() -> None:
    sessions = [(session("a", 0, 200, 50), 0), (session("b", 10, 200, 70), 0)]
    faults = Faults(network_delay_ms=80, network_delay_sigma=0.5, retry_share=0.1,
                    out_of_order_share=0.1, very_late_share=0.05)  # fmt: skip
    assert arrive(sessions, faults, 3) == arrive(sessions, faults, 3)
    assert arrive(sessions, faults, 3) != arrive(sessions, faults, 4)


def test_a_skewed_clock_does_not_change_when_events_arrive() -> None:
    # The second device's clock is 90 s behind: its ts say earlier, it arrives in turn.
    a, b = session("a", 10_000, 3, 10_000), session("b", 15_000 - 90_000, 3, 10_000)
    events, arrived = arrive([(a, 0), (b, -90_000)], Faults())
    assert [e["event_id"] for e in events] == ["a-0", "b-0", "a-1", "b-1", "a-2", "b-2"]
    assert arrived == [10_000, 15_000, 20_000, 25_000, 30_000, 35_000]


@pytest.mark.parametrize(
    ("faults", "low_ms", "high_ms", "share"),
    [
        (Faults(out_of_order_share=0.2), 500, 4_000, 0.2),
        (Faults(out_of_order_share=0.2, out_of_order_ms=(1_000, 2_000)), 1_000, 2_000, 0.2),
        (Faults(very_late_share=0.1), 10_000, 120_000, 0.1),
        (Faults(very_late_share=0.1, very_late_ms=(30_000, 31_000)), 30_000, 31_000, 0.1),
    ],
)
def test_held_back_events_take_the_configured_delay(
    faults: Faults, low_ms: int, high_ms: int, share: float
) -> None:
    events = session("a", 0, 20_000, 10_000)
    order, arrived = arrive([(events, 0)], faults)
    delays = [a - e["ts"] for e, a in zip(order, arrived, strict=True)]
    held = [d for d in delays if d > 0]
    assert all(low_ms <= d <= high_ms for d in held)
    assert len(held) / len(events) == pytest.approx(share, rel=0.1)


def test_network_delay_is_lognormal_around_its_median() -> None:
    events = session("a", 0, 20_000, 10_000)
    order, arrived = arrive([(events, 0)], Faults(network_delay_ms=80, network_delay_sigma=0.5))
    delays = np.array([a - e["ts"] for e, a in zip(order, arrived, strict=True)])
    assert np.median(delays) == pytest.approx(80, abs=3)
    assert delays.min() >= 0 and np.percentile(delays, 99) < 400


def test_retries_are_equal_copies_sent_later() -> None:
    events = session("a", 0, 10_000, 10_000)
    order, arrived = arrive([(events, 0)], Faults(retry_share=0.05, retry_ms=(200, 5_000)))
    copies = Counter(e["event_id"] for e in order)
    retried = [event_id for event_id, n in copies.items() if n == 2]
    assert set(copies.values()) <= {1, 2}
    assert len(retried) / len(events) == pytest.approx(0.05, rel=0.15)
    when: dict[str, list[int]] = {}
    for event, at in zip(order, arrived, strict=True):
        when.setdefault(event["event_id"], []).append(at)
    for event_id in retried:
        first, second = when[event_id]
        assert 200 <= second - first <= 5_000
    by_id = {}
    for event in order:
        assert by_id.setdefault(event["event_id"], event) == event


def test_no_events() -> None:
    assert arrive([], Faults(retry_share=0.5)) == ([], [])
