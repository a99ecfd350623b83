"""The ``customer_to_state`` table: customer id → ``CustomerState``, changelogged in Kafka."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import faust
from aiokafka import AIOKafkaProducer
from faust.serializers import codecs

from tables.changelogged import StoreMaps, declare_changelogged_table
from tables.customer_state import CustomerState, decode_state, encode_state

__all__ = ["Changed", "CustomerStateCodec", "CustomerStore", "declare_customer_table"]

#: Customer id → (changelog partition, state as objects or already encoded, or None for a
#: deletion).
Changed = dict[str, tuple[int, "CustomerState | bytes | None"]]
# Changelog records encoded between two returns of the loop to the agent (~1 ms).
_YIELD_EVERY = 100


class CustomerStateCodec(codecs.Codec):
    """Faust codec for ``CustomerState`` values (orjson, versioned).

    Reading leaves the record encoded: recovery fills the table's store with the
    changelog's bytes, and ``CustomerStore`` decodes a customer's state when it is
    needed, so a restart does not decode (and hold as objects) every customer it
    recovers.
    """

    def _dumps(self, obj: Any) -> bytes:
        return obj if isinstance(obj, bytes) else encode_state(obj)

    def _loads(self, s: bytes) -> bytes:
        return s


def declare_customer_table(
    app: faust.App, name: str, partitions: int
) -> faust.Table[str, CustomerState | bytes | None]:
    """Declare the per-customer state table, co-partitioned with ``clicks`` (orjson codec;
    a state is held as objects or encoded, see ``CustomerStore``)."""
    return declare_changelogged_table(
        app, name, partitions, CustomerStateCodec(),
        help="Per-customer session, profile and recent signals.",
    )  # fmt: skip


class CustomerStore:
    """Reads and writes of ``customer_to_state`` on the hot path.

    Writes go straight into the table's in-memory store, and the changed states
    are sent to the changelog in bulk (``take_changed`` then ``write_changelog``:
    one record per changed customer, at most once per commit interval) instead of
    one produce per event (~200 µs each through Faust's table API). The changelog
    stays the source of truth: the consumer writes it before every offset commit,
    so no offset is committed before the state that folded it in is on the broker.

    The store holds the ``decoded_max`` most recently written states as objects and
    every other one encoded, as on the changelog (``encode_state``: about a third of
    the memory), the way Kafka Streams keeps a cache of objects in front of a store
    of bytes. A state is decoded when its customer's next event or timer reads it;
    ``decode_state(encode_state(s)) == s``, so which form a state is in never
    changes what is decided.
    """

    def __init__(
        self,
        table: faust.Table[str, CustomerState | bytes | None],
        maps: StoreMaps,
        decoded_max: int,
    ) -> None:
        self.table = table
        self._states = maps.values
        self._partitions = maps.partitions
        # Changed since the last flush; None is a deletion (a tombstone on the changelog).
        self._dirty: Changed = {}
        # The customers whose state the store holds decoded, least recently written first.
        self._decoded: OrderedDict[str, None] = OrderedDict()
        self.decoded_max = decoded_max
        # Reads that decoded a state held encoded, since the start.
        self.decodes = 0

    def get(self, customer_id: str) -> CustomerState | None:
        """The customer's state on this worker, or None."""
        state = self._states.get(customer_id)
        if state.__class__ is bytes:
            self.decodes += 1
            return decode_state(state)
        return state

    def put(self, customer_id: str, state: CustomerState, partition: int) -> None:
        """Keep ``state``; its changelog record goes to ``partition`` (the event's)."""
        self._states[customer_id] = state
        self._partitions[customer_id] = partition
        self._dirty[customer_id] = (partition, state)
        decoded = self._decoded
        if customer_id in decoded:
            decoded.move_to_end(customer_id)
            return
        decoded[customer_id] = None
        if len(decoded) > self.decoded_max:
            self._encode_least_recent()

    def delete(self, customer_id: str, partition: int) -> None:
        """Forget the customer; a tombstone on the changelog deletes it on recovery too."""
        self._states.pop(customer_id, None)
        self._partitions.pop(customer_id, None)
        self._decoded.pop(customer_id, None)
        self._dirty[customer_id] = (partition, None)

    def is_decoded(self, customer_id: str) -> bool:
        """Whether the customer's state is held as objects (False: encoded, or none)."""
        state = self._states.get(customer_id)
        return state is not None and state.__class__ is not bytes

    def decoded_count(self) -> int:
        """States held decoded (at most ``decoded_max``)."""
        return len(self._decoded)

    def forget_dropped(self) -> None:
        """After a rebalance: the customers Faust dropped (revoked partitions) or recovered
        encoded leave the decoded count."""
        decoded = self._decoded
        for key in [key for key in decoded if not self.is_decoded(key)]:
            del decoded[key]

    def by_partition(self, partitions: set[int]) -> Iterator[tuple[int, str, CustomerState]]:
        """(partition, customer id, state) of the customers held on ``partitions``; encoded
        states are decoded one at a time and stay encoded in the store."""
        for key, partition in list(self._partitions.items()):
            if partition in partitions:
                state = self.get(key)
                if state is not None:
                    yield partition, key, state

    def partition_of(self, customer_id: str) -> int | None:
        """The partition the customer's state belongs to, if held here."""
        return self._partitions.get(customer_id)

    def keys(self) -> list[str]:
        """A snapshot of the customer ids held here."""
        return list(self._states)

    def __len__(self) -> int:
        return len(self._states)

    def changed_count(self) -> int:
        """Customers changed (or deleted) since the last ``take_changed``."""
        return len(self._dirty)

    def take_changed(self) -> Changed:
        """The states changed (None: deleted) since the last call, to write; forgotten here."""
        dirty, self._dirty = self._dirty, {}
        return dirty

    def _encode_least_recent(self) -> None:
        """Keep the least recently written decoded state encoded instead."""
        key, _ = self._decoded.popitem(last=False)
        if self.is_decoded(key):
            # A copy of its exact size: orjson's output keeps the page it was written in.
            encoded = self._states[key] = memoryview(encode_state(self._states[key])).tobytes()
            dirty = self._dirty.get(key)
            if dirty is not None:  # a held customer's change: never a deletion
                # Its objects would otherwise live on until the next commit writes them.
                self._dirty[key] = (dirty[0], encoded)

    def keep_changed(self, failed: dict[str, tuple[int, bool]]) -> None:
        """Write these customers again at the next commit, as they are then (their last
        write failed). ``failed``: customer id → (changelog partition, whether that write
        was a deletion). One no longer held whose write was not a deletion has left this
        worker since (a rebalance): its new owner writes it, not a tombstone from here."""
        for key, (partition, deleted) in failed.items():
            state = self._states.get(key)
            if state is not None or deleted:
                self._dirty.setdefault(key, (partition, state))

    async def write_changelog(
        self, producer: AIOKafkaProducer, changed: Changed
    ) -> list[asyncio.Future[Any]]:
        """Send ``changed`` (emptied as its states are encoded), one record batch per
        changelog partition.

        Returns the batches' delivery futures. ``producer`` is the raw aiokafka
        producer: building record batches directly costs a few µs a record, where
        one ``send`` per record costs tens. States are never changed in place (each
        event replaces its customer's), so they are encoded while the agent goes
        on: it gets the loop back every ``_YIELD_EVERY`` records. The batches are
        handed to the producer only once all are built, one after another with
        nothing in between, so it sends them together (in one request while they
        fit), with whatever the caller queues right after (the models' checkpoints):
        a crash does not leave the broker with part of a commit's states.
        """
        if not changed:
            return []
        topic = self.table.changelog_topic.get_topic_name()
        by_partition: dict[int, list[str]] = {}
        for key, (partition, _state) in changed.items():
            by_partition.setdefault(partition, []).append(key)
        batches = []
        encoded = 0
        for partition, keys in by_partition.items():
            batch = producer.create_batch()
            for key in keys:
                encoded += 1
                if encoded % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)
                # Taken out as it is encoded: a state the agent has replaced since does
                # not live on until the whole commit is written.
                state = changed.pop(key)[1]
                if isinstance(state, CustomerState):
                    state = encode_state(state)
                record = (key.encode(), state)
                if batch.append(key=record[0], value=record[1], timestamp=None) is None:
                    batches.append((partition, batch))
                    batch = producer.create_batch()
                    if batch.append(key=record[0], value=record[1], timestamp=None) is None:
                        raise ValueError(f"state of {key!r} is larger than a producer batch")
            batches.append((partition, batch))
        return [await producer.send_batch(batch, topic, partition=partition)
                for partition, batch in batches]  # fmt: skip
