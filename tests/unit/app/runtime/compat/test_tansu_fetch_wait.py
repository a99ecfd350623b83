"""The fetch wait that widens while Tansu runs out of it, and the sign it reads."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition

from app.runtime.compat.tansu_fetch_wait import (
    _short_partitions,
    next_fetch_wait_ms,
    widen_fetch_wait_while_truncated,
)


@pytest.mark.parametrize(
    ("current", "truncated", "expected"),
    [
        (20, True, 40),  # doubled
        (600, True, 1000),  # up to the ceiling
        (0, True, 2),  # a zero wait still grows
        (120, False, 110),  # a tenth of the extra wait back
        (21, False, 20),  # at least 1 ms back
        (20, False, 20),  # never below the floor
    ],
)
def test_next_fetch_wait(current: int, truncated: bool, expected: int) -> None:
    assert next_fetch_wait_ms(current, truncated, floor=20, ceiling=1000) == expected


def test_the_wait_settles_back_to_the_floor_once_answers_are_whole() -> None:
    wait = 1000
    for _ in range(60):
        wait = next_fetch_wait_ms(wait, False, 20, 1000)
    assert wait == 20


@dataclass
class _State:
    position: int
    highwater: int | None
    has_valid_position: bool = True


class _Assignment:
    def __init__(self, states: dict[TopicPartition, _State]) -> None:
        self.states = states
        self.active = True

    def state_value(self, tp: TopicPartition) -> _State | None:
        return self.states.get(tp)


@dataclass
class _Request:
    topics: list[tuple[str, list[tuple[int, int, int]]]]


TP0, TP1 = TopicPartition("clicks", 0), TopicPartition("clicks", 1)
REQUEST = _Request([("clicks", [(0, 100, 1 << 20), (1, 50, 1 << 20)])])


def _short(records: dict[TopicPartition, Any], states: dict[TopicPartition, _State]) -> bool:
    return bool(_short_partitions(records, _Assignment(states), REQUEST))


def test_an_empty_answer_below_the_high_watermark_is_short() -> None:
    states = {TP0: _State(100, 100), TP1: _State(50, 90)}
    assert _short_partitions({}, _Assignment(states), REQUEST) == {TP1: (50, 40)}


def test_records_or_nothing_new_is_a_whole_answer() -> None:
    assert not _short({TP1: object()}, {TP0: _State(100, 100), TP1: _State(50, 90)})
    assert not _short({}, {TP0: _State(100, 100), TP1: _State(50, 50)})
    assert not _short({}, {TP0: _State(100, None), TP1: _State(50, None)})


def test_partitions_that_moved_or_lost_their_position_do_not_count() -> None:
    moved = {TP0: _State(101, 200), TP1: _State(50, 50)}
    invalid = {TP0: _State(100, 200, has_valid_position=False), TP1: _State(50, 50)}
    revoked = {TP1: _State(50, 50)}
    assert not _short({}, moved) and not _short({}, invalid) and not _short({}, revoked)


def _waits_after(answers: list[dict[TopicPartition, _State]]) -> list[int]:
    """The fetch wait after each answer (states as the answer left them), none with records."""
    answered = iter(answers)
    assignment = _Assignment({})

    async def process_answer(_assignment: Any, _node_id: int, _request: Any) -> bool:
        assignment.states = next(answered)
        return False

    fetcher = SimpleNamespace(_proc_fetch_request=process_answer, _records={},
                              _fetch_max_wait_ms=20)  # fmt: skip
    widen_fetch_wait_while_truncated(SimpleNamespace(_fetcher=fetcher), 20)  # type: ignore[arg-type]

    async def fetch_all() -> list[int]:
        waits = []
        for _ in answers:
            await fetcher._proc_fetch_request(assignment, 0, REQUEST)
            waits.append(fetcher._fetch_max_wait_ms)
        return waits

    return asyncio.run(fetch_all())


def test_the_wait_widens_on_a_partition_short_twice_at_one_offset() -> None:
    short = {TP0: _State(100, 100), TP1: _State(50, 90)}
    assert _waits_after([short, short, short]) == [20, 40, 80]


def test_a_record_produced_while_the_broker_answered_does_not_widen_it() -> None:
    # Short once, then the next answer has moved on (or another partition is short).
    raced = {TP0: _State(100, 100), TP1: _State(50, 51)}
    other = {TP0: _State(100, 101), TP1: _State(50, 50)}
    assert _waits_after([raced, other, raced, other]) == [20, 20, 20, 20]


def test_a_partition_far_behind_widens_it_at_once() -> None:
    # A backlog: thousands of records past the offset cannot have come in while the
    # broker answered; the wait widens at the first such answer, as it drains.
    behind = {TP0: _State(100, 100), TP1: _State(50, 5_050)}
    assert _waits_after([behind, behind, behind]) == [40, 80, 160]
