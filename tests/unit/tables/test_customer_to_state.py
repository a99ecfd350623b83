"""``CustomerStore``: the most recently written states decoded, the others encoded."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from app.deliver.delivery import Outbox
from app.detect.pipeline import Rules, process_event
from app.ingest.events import decode_event
from app.runtime.event_time import EventTime
from app.runtime.metrics import Metrics
from app.tools.simulator import SimulationConfig, simulate
from tables.changelogged import StoreMaps
from tables.customer_state import CustomerState, encode_state
from tables.customer_to_state import CustomerStateCodec, CustomerStore
from tests.factories import T0_MS, click, fold

PARTITION = 0


def store(decoded_max: int, values: dict[str, Any] | None = None) -> CustomerStore:
    """A store over the two maps a Faust memory store keeps (no broker: the changelog is
    not what these tests are about)."""
    table: Any = SimpleNamespace(name="customer_to_state")
    values = values if values is not None else {}
    return CustomerStore(table, StoreMaps(values, dict.fromkeys(values, PARTITION)), decoded_max)


def state_of(customer_id: str, events: int = 2) -> CustomerState:
    state = fold([click(customer_id=customer_id, ts_ms=T0_MS + i * 1_000) for i in range(events)])
    assert state is not None
    return state


def test_beyond_decoded_max_the_least_recently_written_state_is_kept_encoded() -> None:
    customers = store(decoded_max=2)
    states = {key: state_of(key) for key in ("a", "b", "c")}
    for key, state in states.items():
        customers.put(key, state, PARTITION)
    assert [customers.is_decoded(key) for key in "abc"] == [False, True, True]
    assert customers._states["a"] == encode_state(states["a"])
    assert {key: customers.get(key) for key in "abc"} == states
    assert len(customers) == 3


def test_a_state_written_again_counts_as_the_most_recent() -> None:
    customers = store(decoded_max=2)
    for key in ("a", "b"):
        customers.put(key, state_of(key), PARTITION)
    customers.put("a", state_of("a", events=3), PARTITION)
    customers.put("c", state_of("c"), PARTITION)
    assert [customers.is_decoded(key) for key in "abc"] == [True, False, True]


def test_reading_an_encoded_state_leaves_it_encoded_until_it_is_written() -> None:
    customers = store(decoded_max=1)
    state = state_of("a")
    customers.put("a", state, PARTITION)
    customers.put("b", state_of("b"), PARTITION)
    assert customers.get("a") == state
    assert not customers.is_decoded("a"), "a read alone does not make room for it"
    customers.put("a", state_of("a", events=3), PARTITION)
    assert customers.is_decoded("a") and not customers.is_decoded("b")


def test_a_deleted_customer_leaves_no_trace_and_may_come_back() -> None:
    customers = store(decoded_max=1)
    customers.put("a", state_of("a"), PARTITION)
    customers.delete("a", PARTITION)
    assert customers.get("a") is None and not customers.is_decoded("a")
    assert customers.take_changed() == {"a": (PARTITION, None)}
    customers.put("b", state_of("b"), PARTITION)
    assert customers.is_decoded("b"), "the deleted customer no longer takes a decoded place"
    state = state_of("a")
    customers.put("a", state, PARTITION)
    assert customers.get("a") is state


class _Batch:
    def __init__(self) -> None:
        self.records: list[tuple[bytes, bytes | None]] = []

    def append(self, key: bytes, value: bytes | None, timestamp: None) -> object:
        self.records.append((key, value))
        return object()


class _Producer:
    """What ``write_changelog`` asks of the raw producer, keeping what it is handed."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, list[tuple[bytes, bytes | None]]]] = []

    def create_batch(self) -> _Batch:
        return _Batch()

    async def send_batch(self, batch: _Batch, topic: str, partition: int) -> None:
        self.sent.append((partition, batch.records))


def test_a_changed_state_encoded_before_its_commit_waits_encoded() -> None:
    # Its objects would otherwise stay alive until the commit, beyond ``decoded_max``.
    customers = store(decoded_max=1)
    a, b = state_of("a"), state_of("b")
    customers.put("a", a, PARTITION)
    customers.put("b", b, PARTITION)
    assert customers.take_changed() == {"a": (PARTITION, encode_state(a)), "b": (PARTITION, b)}


async def test_a_commit_writes_each_changed_customer_once_and_lets_go_of_the_states() -> None:
    table: Any = SimpleNamespace(
        changelog_topic=SimpleNamespace(get_topic_name=lambda: "customer_to_state-changelog")
    )
    customers = CustomerStore(table, StoreMaps({}, {}), decoded_max=1)
    a, b = state_of("a"), state_of("b")
    customers.put("a", a, PARTITION)  # encoded while it waits (decoded_max)
    customers.put("b", b, PARTITION)
    customers.put("c", state_of("c"), PARTITION + 1)
    customers.delete("c", PARTITION + 1)
    changed = customers.take_changed()
    producer = _Producer()
    await customers.write_changelog(producer, changed)  # type: ignore[arg-type]
    assert changed == {}, "each state is let go of once encoded"
    assert producer.sent == [
        (PARTITION, [(b"a", encode_state(a)), (b"b", encode_state(b))]),
        (PARTITION + 1, [(b"c", None)]),
    ]


def test_a_failed_commit_writes_its_customers_again_as_they_are_then() -> None:
    customers = store(decoded_max=10)
    for key in "abcd":
        customers.put(key, state_of(key), PARTITION)
    customers.delete("e", PARTITION)
    customers.take_changed()  # the commit whose write fails
    newer = state_of("a", events=3)
    customers.put("a", newer, PARTITION)
    customers.delete("c", PARTITION)
    customers.take_changed()  # a later one that went out: what the store holds now
    customers._states.pop("d")  # its partition was revoked: Faust dropped it
    customers.keep_changed({key: (PARTITION, key == "e") for key in "abcde"})
    # "c" was deleted since, and its tombstone went out; "d" left this worker: no write.
    assert customers.take_changed() == {
        "a": (PARTITION, newer),
        "b": (PARTITION, customers.get("b")),
        "e": (PARTITION, None),
    }


def test_recovery_keeps_the_changelog_records_encoded_and_reads_decode_them() -> None:
    state = state_of("a")
    recovered = CustomerStateCodec().loads(encode_state(state))
    assert isinstance(recovered, bytes), "recovery does not decode every customer it reads"
    customers = store(decoded_max=10, values={"a": recovered})
    assert customers.get("a") == state
    assert [(p, key, s) for p, key, s in customers.by_partition({PARTITION})] == [
        (PARTITION, "a", state)
    ]
    assert not customers.is_decoded("a"), "listing the customers decodes them one at a time"
    assert list(customers.by_partition({PARTITION + 1})) == []


def test_customers_dropped_or_recovered_since_leave_the_decoded_count_when_forgotten() -> None:
    customers = store(decoded_max=10)
    for key in "abc":
        customers.put(key, state_of(key), PARTITION)
    assert customers.decoded_count() == 3
    # A rebalance: Faust drops "a" (its partition was revoked) and recovers "b" encoded.
    customers._states.pop("a")
    customers._states["b"] = encode_state(state_of("b"))
    customers.forget_dropped()
    assert sorted(key for _, key, _ in customers.by_partition({PARTITION})) == ["b", "c"]
    assert customers.decoded_count() == 1


def test_the_codec_writes_either_form_the_same() -> None:
    state = state_of("a")
    codec = CustomerStateCodec()
    assert codec.dumps(state) == codec.dumps(encode_state(state)) == encode_state(state)


@pytest.mark.parametrize("decoded_max", [1, 7])
def test_which_states_are_encoded_never_changes_what_is_decided(decoded_max: int) -> None:
    """The same simulated traffic through the worker's event time and store decides the
    same interventions, and leaves the same states, however few states stay decoded."""
    result = simulate(SimulationConfig(customers=40, days=1, seed=5, start_ms=T0_MS))
    events = [orjson.dumps(event) for event in result.events]

    def run(decoded_max: int) -> tuple[list[dict[str, Any]], dict[str, CustomerState | None], int]:
        customers = store(decoded_max)
        metrics = Metrics.create(CollectorRegistry())
        event_time = EventTime(customers, Rules(), None, metrics, 300_000, lambda: {PARTITION})
        event_time.stale = False
        sent = Outbox()
        lateness_ms = Rules().time.allowed_lateness_ms
        for offset, (value, arrival_ms) in enumerate(zip(events, result.arrival_ms, strict=True)):
            event = decode_event(value, arrival_ms, 300_000)
            clock = event_time.clock(PARTITION)
            clock.observe(min(event.ts_ms, arrival_ms + lateness_ms), arrival_ms)
            watermark_ms = clock.watermark_ms(lateness_ms)
            event_time.fire_due(PARTITION, watermark_ms, arrival_ms, sent)
            state = customers.get(event.customer_id)
            outcome = process_event(state, event, Rules(), watermark_ms, arrival_ms, 0, offset)
            if not outcome.duplicate:
                event_time.apply(event.customer_id, PARTITION, outcome, state, sent)
        held = customers.keys()
        states = {key: customers.get(key) for key in held}
        return sent.interventions, states, sum(not customers.is_decoded(k) for k in states)

    interventions, states, encoded = run(decoded_max)
    assert len(interventions) > 10 and encoded >= len(states) - decoded_max > 0
    assert (interventions, states) == run(100_000)[:2]
