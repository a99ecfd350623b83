"""The time a fetch was sent, kept per partition for the silence timers."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition

from app.runtime.compat.faust_transport import _ASKED_MS, _remember_when_fetches_were_asked

CLICKS_0, CLICKS_1 = TopicPartition("clicks", 0), TopicPartition("clicks", 1)


@dataclass
class _State:
    timestamp: int | None = None


@dataclass
class _Assignment:
    states: dict[TopicPartition, _State] = field(default_factory=dict)
    active: bool = True

    def state_value(self, tp: TopicPartition) -> _State | None:
        return self.states.get(tp)


class _Fetcher:
    """Answers late (as after a pause) and, like aiokafka, stamps the partitions it accepts."""

    def __init__(self, accepted: set[TopicPartition]) -> None:
        self.accepted = accepted

    async def _proc_fetch_request(self, assignment: Any, node_id: int, request: Any) -> bool:
        await asyncio.sleep(0.2)
        for tp in self.accepted:
            assignment.states[tp].timestamp = int(time.time() * 1000)
        return True


def _request() -> Any:
    return SimpleNamespace(topics=[("clicks", [(0, 10, 1024), (1, 7, 1024)])])


async def test_a_late_answer_counts_from_when_its_fetch_was_sent() -> None:
    consumer: Any = SimpleNamespace(_fetcher=_Fetcher(accepted={CLICKS_0}))
    _remember_when_fetches_were_asked(consumer)
    assignment = _Assignment({CLICKS_0: _State(), CLICKS_1: _State(timestamp=1)})

    sent_ms = int(time.time() * 1000)
    assert await consumer._fetcher._proc_fetch_request(assignment, 0, _request()) is True

    asked = getattr(consumer, _ASKED_MS)
    assert sent_ms <= asked[CLICKS_0] <= sent_ms + 50  # not when the answer was read
    assert assignment.states[CLICKS_0].timestamp >= sent_ms + 200
    assert CLICKS_1 not in asked  # its part of the answer was discarded


async def test_an_answer_for_an_old_assignment_is_not_kept() -> None:
    consumer: Any = SimpleNamespace(_fetcher=_Fetcher(accepted={CLICKS_0}))
    _remember_when_fetches_were_asked(consumer)
    assignment = _Assignment({CLICKS_0: _State(), CLICKS_1: _State()}, active=False)

    await consumer._fetcher._proc_fetch_request(assignment, 0, _request())

    assert getattr(consumer, _ASKED_MS) == {}
