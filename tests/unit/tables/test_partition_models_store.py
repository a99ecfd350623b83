"""The checkpoint store: at every commit, each partition whose models changed since its last
checkpoint is serialised (from events, timers, picks or feedback), and nothing else."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from app.detect.models.anomaly import SessionFeatures
from app.detect.models.partition import PartitionModels
from app.detect.pipeline import Rules
from tables.changelogged import StoreMaps
from tables.partition_models import Checkpoint, ModelStore

HESITATION = "product_hesitation"
OFFER_VARIANTS = ("discount", "price_comparison", "free_shipping")


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


def store_of(maps: StoreMaps | None = None) -> ModelStore:
    return ModelStore(_Table(), maps or StoreMaps({}, {}), Rules())  # type: ignore[arg-type]


def taken(store: ModelStore) -> list[int]:
    return [snapshot.partition for snapshot in store.take_snapshots()]


def checkpoints_of(store: ModelStore) -> list[Checkpoint]:
    return asyncio.run(store.seal(store.take_snapshots()))


USUAL = SessionFeatures(6.0, 1.0, 0.0, 30.0, 0.0, 1.0)

CHANGES: list[Any] = [
    pytest.param(lambda m: m.include(41), id="an-event"),
    pytest.param(lambda m: m.learn_anomaly(USUAL), id="a-session-ended-by-a-timer"),
    pytest.param(lambda m: m.pick_variant(HESITATION, OFFER_VARIANTS), id="a-variant-pick"),
    pytest.param(lambda m: m.learn_variant(HESITATION, "discount", 1.0), id="a-lesson"),
]


@pytest.mark.parametrize("change", CHANGES)
def test_a_partition_is_checkpointed_once_after_its_models_changed(
    change: Callable[[PartitionModels], object],
) -> None:
    store = store_of()
    models = store.learner(3).models
    assert taken(store) == []  # nothing new since it was made
    change(models)
    assert taken(store) == [3]
    assert taken(store) == []


def test_every_changed_partition_is_taken_at_once_and_sent_to_its_own_partition() -> None:
    maps = StoreMaps({}, {})
    store = store_of(maps)
    for partition in range(4):
        store.learner(partition)
    for partition in (0, 2, 3):
        store.learners[partition].models.include(10 + partition)
    checkpoints = checkpoints_of(store)
    assert [c.partition for c in checkpoints] == [0, 2, 3]

    producer = _Producer()
    asyncio.run(_write(store, producer, checkpoints))
    assert producer.sent == [
        ("nudgeflow-partition_models-changelog", str(p).encode(), p) for p in (0, 2, 3)
    ]
    for checkpoint in checkpoints:  # the local table store holds what was sent
        assert maps.values[str(checkpoint.partition)] == checkpoint.data
        assert maps.partitions[str(checkpoint.partition)] == checkpoint.partition
        restored = PartitionModels.from_bytes(checkpoint.data)
        assert restored.offset == 10 + checkpoint.partition


async def _write(store: ModelStore, producer: _Producer, checkpoints: list[Any]) -> None:
    await asyncio.gather(*await store.write(producer, checkpoints))  # type: ignore[arg-type]


def test_the_checkpoints_of_a_failed_commit_are_taken_again_at_the_next() -> None:
    store = store_of()
    store.learner(1).models.include(5)
    store.learner(2)
    failed = store.take_snapshots()
    store.take_again(failed)
    assert taken(store) == [1]
    assert taken(store) == []


def test_a_restored_partition_continues_from_its_checkpoint_and_is_due_once_it_changes() -> None:
    maps = StoreMaps({}, {})
    first = store_of(maps)
    models = first.learner(5).models
    rng = random.Random(1)
    for offset in range(50):
        models.observe_baseline("form_ms", rng.uniform(1_000, 9_000))
        models.include(offset)
    models.learn_variant(HESITATION, "discount", 1.0)
    assert [checkpoint.partition for checkpoint in checkpoints_of(first)] == [5]

    second = store_of(maps)  # another worker, after a rebalance
    restored = second.learner(5).models
    assert (restored.offset, restored.learned) == (models.offset, models.learned)
    assert taken(second) == []
    restored.include(50)
    assert taken(second) == [5]


def test_a_partition_no_longer_owned_is_forgotten() -> None:
    store = store_of()
    for partition in (1, 2):
        store.learner(partition).models.include(7)
    failed = store.take_snapshots()  # its commit fails while partition 1 moves away
    store.keep_only({2})
    store.take_again(failed)
    assert sorted(store.learners) == [2]
    assert taken(store) == [2]


def test_a_checkpoint_holds_the_models_as_they_were_when_taken_not_when_sealed() -> None:
    # The commit takes the snapshots with the states, then lets the agent go on (and
    # the models learn) while it seals them: what is sealed is the taken copy.
    maps = StoreMaps({}, {})
    store = store_of(maps)
    models = store.learner(2).models
    models.include(10)
    snapshots = store.take_snapshots()
    models.include(11)
    models.learn_variant(HESITATION, "discount", 1.0)
    [checkpoint] = asyncio.run(store.seal(snapshots))
    restored = PartitionModels.from_bytes(checkpoint.data)
    assert restored.offset == 10 and not restored.learned["variants"]
    assert maps.values["2"] == checkpoint.data
    assert checkpoint.data == PartitionModels.sealed(snapshots[0].pickled)
    assert taken(store) == [2]  # what it learned since is due at the next commit
