"""The ``partition_models`` table: ``clicks`` partition → checkpoint of its models.

One record per partition, on the same-numbered partition of a compacted changelog,
so Faust recovers it with the partition's customers, on whichever worker owns the
partition after a restart or a rebalance. The value is ``PartitionModels.to_bytes``
(with the offset the models include).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import faust
from aiokafka import AIOKafkaProducer

from app.detect.learning import PartitionLearner
from app.detect.models.partition import PartitionModels
from app.detect.pipeline import Rules
from tables.changelogged import StoreMaps, declare_changelogged_table

__all__ = ["Checkpoint", "ModelStore", "Snapshot", "declare_models_table"]

log = logging.getLogger(__name__)

# Sessions scored at a checkout event and waiting for their outcome, per partition. Each
# holds up to 8 scored snapshots: ~120 B in a checkpoint with one, ~770 B with 8, so a full
# map keeps a checkpoint under ~850 KB, within Kafka's default 1 MiB record. Sessions end by
# timers, so this holds only live checkouts (at most 74 in bench_models' partition).
_PENDING_MAX = 1_000


def declare_models_table(app: faust.App, name: str, partitions: int) -> faust.Table[str, bytes]:
    """Declare the checkpoint table, co-partitioned with ``clicks`` (raw bytes values)."""
    return declare_changelogged_table(
        app, name, partitions, "raw",
        help="Per-partition checkpoints of the online models.", value_type=bytes,
    )  # fmt: skip


@dataclass(slots=True, frozen=True)
class Snapshot:
    """One partition's models as of a commit, pickled, and the time that took."""

    partition: int
    pickled: bytes
    seconds: float


@dataclass(slots=True, frozen=True)
class Checkpoint:
    """One partition's models as of a commit: the record, and the time to serialise it."""

    partition: int
    data: bytes
    seconds: float


class ModelStore:
    """The learners of the partitions this worker owns, restored from and checkpointed to
    the table.

    A learner is made on first use: from the partition's checkpoint when the table
    holds one this worker can read, else cold. At every commit, ``take_snapshots``
    pickles each partition whose models changed since its last checkpoint (from
    events, timers, picks or feedback), between two batches, when the customer states
    the commit writes are taken; ``seal`` compresses them while the agent goes on, and
    ``write`` queues them right behind those states, before the offsets are committed.
    So the models on the changelog belong with the states there: a replay after a
    crash learns exactly the events those states do not hold yet
    (``NudgeflowApp.before_commit`` says when a crash can part them).
    """

    def __init__(self, table: faust.Table[str, bytes], maps: StoreMaps, rules: Rules) -> None:
        self.table = table
        self._checkpoints = maps.values
        self._partitions = maps.partitions
        self.rules = rules
        self.learners: dict[int, PartitionLearner] = {}
        # Partition → the revision of its models at its last checkpoint (or restore).
        self._written: dict[int, _Revision] = {}

    def learner(self, partition: int) -> PartitionLearner:
        """The partition's learner (restored or cold on first use)."""
        learner = self.learners.get(partition)
        if learner is None:
            learner = self.learners[partition] = PartitionLearner(
                self._restore(partition), self.rules
            )
            self._written[partition] = _revision(learner.models)
        return learner

    def keep_only(self, partitions: set[int]) -> None:
        """Forget the learners of partitions this worker no longer owns."""
        for partition in [p for p in self.learners if p not in partitions]:
            del self.learners[partition]
            self._written.pop(partition, None)

    def take_snapshots(self) -> list[Snapshot]:
        """Pickle the models of every partition that changed since its last checkpoint.

        Call it between two batches, with the states the same commit writes: the
        snapshots are the models as those states leave them. ``seal`` makes them the
        checkpoints afterwards, while the agent goes on.
        """
        snapshots = []
        for partition, learner in self.learners.items():
            models = learner.models
            revision = _revision(models)
            if revision == self._written.get(partition):
                continue
            started = time.perf_counter()
            pickled = models.snapshot()
            snapshots.append(Snapshot(partition, pickled, time.perf_counter() - started))
            self._written[partition] = revision
        return snapshots

    async def seal(self, snapshots: list[Snapshot]) -> list[Checkpoint]:
        """The checkpoints of ``snapshots`` (compressed one at a time, the loop free in
        between), kept in the table's local store."""
        checkpoints = []
        for snapshot in snapshots:
            await asyncio.sleep(0)
            started = time.perf_counter()
            data = PartitionModels.sealed(snapshot.pickled)
            seconds = snapshot.seconds + time.perf_counter() - started
            checkpoints.append(Checkpoint(snapshot.partition, data, seconds))
            key = str(snapshot.partition)
            self._checkpoints[key] = data
            self._partitions[key] = snapshot.partition
        return checkpoints

    async def write(
        self, producer: AIOKafkaProducer, checkpoints: list[Checkpoint]
    ) -> list[asyncio.Future[Any]]:
        """Send ``checkpoints`` to the table's changelog; returns their delivery futures.

        The records are queued back to back (the producer does not pause while its
        batches have room), so they leave in one request. Call ``take_again`` with
        their snapshots when they fail to go out.
        """
        topic = self.table.changelog_topic.get_topic_name()
        return [
            await producer.send(topic, value=checkpoint.data,
                                key=str(checkpoint.partition).encode(),
                                partition=checkpoint.partition)
            for checkpoint in checkpoints
        ]  # fmt: skip

    def take_again(self, snapshots: list[Snapshot]) -> None:
        """Checkpoint these partitions again at the next commit (this one failed)."""
        for snapshot in snapshots:
            if snapshot.partition in self._written:
                self._written[snapshot.partition] = _NEVER

    def _restore(self, partition: int) -> PartitionModels:
        data = self._checkpoints.get(str(partition))
        if data is None:
            return PartitionModels(pending_max=_PENDING_MAX)
        try:
            models = PartitionModels.from_bytes(data)
        except ValueError as exc:
            log.warning("models of clicks[%s] start cold: %s", partition, exc)
            return PartitionModels(pending_max=_PENDING_MAX)
        log.info("models of clicks[%s] restored at offset %s (%d bytes)", partition,
                 models.offset, len(data))  # fmt: skip
        return models


# What a checkpoint of a partition's models holds, as far as it can change: the offset
# they include and their counts of calls that change them (learned from events, timers
# and feedback; scores that keep state, such as a bandit's pick or a session kept for
# its label).
_Revision = tuple[int, tuple[int, ...], tuple[int, ...]]
_NEVER: _Revision = (-2, (), ())


def _revision(models: PartitionModels) -> _Revision:
    return models.offset, tuple(models.learned.values()), tuple(models.scored.values())
