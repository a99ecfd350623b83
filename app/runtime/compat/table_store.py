"""Direct access to a Faust table's in-memory store.

The hot path writes customer states and model checkpoints straight into the
store's dict and sends their changelog records in bulk (``tables/``), instead of
one produce per write through ``Table.__setitem__``. That relies on two attributes
of ``faust.stores.memory.Store``: ``data`` (key → value) and ``_key_partition``
(key → changelog partition, which the store reads when recovery completes to drop
the keys of partitions this worker no longer owns). This module is the one place
that reaches for them; ``tests/unit/app/runtime/compat/test_table_store.py`` pins
down the behaviour the worker depends on.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from faust.stores.memory import Store as MemoryStore

from app.runtime.compat.versions import UnsupportedLibrary
from tables.changelogged import StoreMaps

__all__ = ["memory_store_maps"]


def memory_store_maps(table: Any) -> StoreMaps:
    """The value and partition maps of ``table``'s in-memory store.

    Raises
    ------
    UnsupportedLibrary
        When the table is not on Faust's memory store, or the store no longer keeps
        both maps as mutable mappings.
    """
    store = table.data
    if not isinstance(store, MemoryStore):
        raise UnsupportedLibrary(
            f"table {table.name!r}: nudgeflow writes to Faust's memory store directly "
            f"(store='memory://'), got {type(store).__name__}"
        )
    values, partitions = getattr(store, "data", None), getattr(store, "_key_partition", None)
    if not isinstance(values, MutableMapping) or not isinstance(partitions, MutableMapping):
        raise UnsupportedLibrary(
            "faust.stores.memory.Store no longer keeps 'data' and '_key_partition' as "
            "mappings: re-check app/runtime/compat/table_store.py against this Faust"
        )
    return StoreMaps(values, partitions)
