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

__all__ = ["Checkpoint", "ModelStore", "declare_models_table"]

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
class Checkpoint:
    """What one checkpoint cost: its size and the time to serialise it."""

    partition: int
    bytes: int
    seconds: float


class ModelStore:
    """The learners of the partitions this worker owns, restored from and checkpointed to
    the table.

    A learner is made on first use: from the partition's checkpoint when the table
    holds one this worker can read, else cold. ``checkpoint`` writes at most one
    partition per call (the one waiting longest), and only a partition whose
    models learned something since its last checkpoint (events of later offsets, or
    variant lessons from feedback, which have no offset) and whose last checkpoint
    is at least ``interval_s`` old. Checkpoints are spread: two of them are at
    least ``interval_s`` / (partitions held) apart, so the worker pauses for one
    serialisation (a few ms) at a time, never for all partitions in a row.
    """

    def __init__(
        self, table: faust.Table[str, bytes], maps: StoreMaps, rules: Rules, interval_s: float
    ) -> None:
        self.table = table
        self._checkpoints = maps.values
        self._partitions = maps.partitions
        self.rules = rules
        self.interval_s = interval_s
        self.learners: dict[int, PartitionLearner] = {}
        # Partition → (what its models included, monotonic time) at its last checkpoint.
        self._written: dict[int, tuple[tuple[int, int], float]] = {}
        self._last_written_at = 0.0

    def learner(self, partition: int) -> PartitionLearner:
        """The partition's learner (restored or cold on first use)."""
        learner = self.learners.get(partition)
        if learner is None:
            learner = self.learners[partition] = PartitionLearner(
                self._restore(partition), self.rules
            )
            self._written[partition] = (_included(learner.models), time.monotonic())
        return learner

    def keep_only(self, partitions: set[int]) -> None:
        """Forget the learners of partitions this worker no longer owns."""
        for partition in [p for p in self.learners if p not in partitions]:
            del self.learners[partition]
            self._written.pop(partition, None)

    async def checkpoint(
        self, producer: AIOKafkaProducer
    ) -> tuple[Checkpoint | None, list[asyncio.Future[Any]]]:
        """Write the checkpoint of the due partition that waited longest, if any.

        Returns what it cost and the record's delivery future (to await before the
        offsets are committed).
        """
        now = time.monotonic()
        if now - self._last_written_at < self.interval_s / max(1, len(self.learners)):
            return None, []
        due = [
            (written_at, partition)
            for partition, learner in self.learners.items()
            for included, written_at in (self._written.get(partition, ((-1, 0), 0.0)),)
            if _included(learner.models) != included and now - written_at >= self.interval_s
        ]
        if not due:
            return None, []
        _written_at, partition = min(due)
        models = self.learners[partition].models
        started = time.perf_counter()
        data = models.to_bytes()
        cost = Checkpoint(partition, len(data), time.perf_counter() - started)
        key = str(partition)
        self._checkpoints[key] = data
        self._partitions[key] = partition
        topic = self.table.changelog_topic.get_topic_name()
        sent = await producer.send(topic, value=data, key=key.encode(), partition=partition)
        self._written[partition] = (_included(models), now)
        self._last_written_at = now
        return cost, [sent]

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


def _included(models: PartitionModels) -> tuple[int, int]:
    """What a checkpoint of ``models`` holds: the events up to an offset, and the variant
    lessons (feedback, outside the offset order)."""
    return models.offset, models.learned["variants"]
