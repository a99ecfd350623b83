"""What the worker relies on in Faust's memory store, by behaviour (no broker needed):
the maps it writes are the ones the store reads at recovery and when partitions go."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import faust
import pytest
from faust.types import TP

from app.runtime.compat import UnsupportedLibrary, memory_store_maps
from tables.changelogged import declare_changelogged_table

CHANGELOG = "compat-test-things-changelog"


@pytest.fixture
def table() -> Any:
    app = faust.App("compat-test", broker="kafka://localhost:1", store="memory://")
    return declare_changelogged_table(app, "things", 4, "raw", help="test table")


def _changelog_record(key: str, value: bytes | None, partition: int) -> Any:
    message = SimpleNamespace(value=value, partition=partition)
    return SimpleNamespace(key=key, value=value, message=message)


async def test_keys_of_partitions_no_longer_owned_are_dropped_after_recovery(table):
    maps = memory_store_maps(table)
    for key, partition in (("a", 0), ("b", 1), ("c", 2)):
        maps.values[key] = key.encode()
        maps.partitions[key] = partition
    await table.data.on_recovery_completed({TP(CHANGELOG, 0), TP(CHANGELOG, 2)}, set())
    assert dict(maps.values) == {"a": b"a", "c": b"c"}
    assert dict(maps.partitions) == {"a": 0, "c": 2}


def test_recovered_changelog_records_land_in_the_same_maps(table):
    maps = memory_store_maps(table)
    maps.values["gone"], maps.partitions["gone"] = b"old", 3
    batch = [_changelog_record("new", b"state", 1), _changelog_record("gone", None, 3)]
    table.data.apply_changelog_batch(batch, to_key=lambda k: k, to_value=lambda v: v)
    assert dict(maps.values) == {"new": b"state"}  # a tombstone deletes
    assert dict(maps.partitions) == {"new": 1}


def test_the_maps_are_what_the_table_reads(table):
    maps = memory_store_maps(table)
    maps.values["k"] = b"v"
    assert table["k"] == b"v"


def test_a_store_other_than_memory_refuses_to_start():
    on_disk = SimpleNamespace(name="things", data=SimpleNamespace(data={}, _key_partition={}))
    with pytest.raises(UnsupportedLibrary, match="memory store"):
        memory_store_maps(on_disk)
