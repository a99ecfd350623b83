"""The checkpoint store: a partition is written when its models learned something new, from
events (a later offset) or from feedback (variant lessons, which have no offset)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from app.detect.models.partition import PartitionModels
from app.detect.pipeline import Rules
from tables.changelogged import StoreMaps
from tables.partition_models import ModelStore


class _Topic:
    def get_topic_name(self) -> str:
        return "nudgeflow-partition_models-changelog"


@dataclass
class _Table:
    """What ``ModelStore`` uses of a Faust table: its changelog's name."""

    changelog_topic: _Topic = field(default_factory=_Topic)


class _Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, int]] = []

    async def send(self, topic: str, *, value: bytes, key: bytes, partition: int) -> Any:
        self.sent.append((topic, key, partition))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


async def test_a_partition_is_checkpointed_after_it_learned_events_or_variant_lessons() -> None:
    table, producer, maps = _Table(), _Producer(), StoreMaps({}, {})
    store = ModelStore(table, maps, Rules(), interval_s=0.0)  # type: ignore[arg-type]
    models = store.learner(3).models
    assert (await store.checkpoint(producer))[0] is None  # nothing new since it was made

    models.include(41)
    cost, _ = await store.checkpoint(producer)
    assert cost is not None and cost.partition == 3
    assert (await store.checkpoint(producer))[0] is None

    models.learn_variant("product_hesitation", "discount", 1.0)  # feedback: no offset moved
    cost, _ = await store.checkpoint(producer)
    assert cost is not None and cost.partition == 3
    assert (await store.checkpoint(producer))[0] is None

    restored = PartitionModels.from_bytes(maps.values["3"])
    assert (restored.offset, restored.learned["variants"]) == (41, 1)
    assert maps.partitions["3"] == 3  # the store drops it when partition 3 goes
    assert [partition for _, _, partition in producer.sent] == [3, 3]
