"""Declaring a table keyed by customer or partition id, with its changelog topic."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any, NamedTuple

import faust
from faust.types import CodecArg

__all__ = ["StoreMaps", "declare_changelogged_table"]


class StoreMaps(NamedTuple):
    """A table's in-memory store as two maps, written directly on the hot path: key →
    value, and key → changelog partition (which the store uses to drop the keys of
    partitions this worker no longer owns). The worker gets them from its compat layer."""

    values: MutableMapping[Any, Any]
    partitions: MutableMapping[Any, int]


def declare_changelogged_table(
    app: faust.App,
    name: str,
    partitions: int,
    value_serializer: CodecArg,
    help: str,
    value_type: type | None = None,
) -> faust.Table[str, Any]:
    """A table with raw string keys and ``value_serializer`` values, co-partitioned with
    ``clicks`` and changelogged in a compacted topic.

    Faust derives a table's serializers from its key and value types (JSON by
    default) and bakes them into the changelog topic when the table is created,
    so the changelog topic is declared here with the serializer, the way Faust's
    ``Table._new_changelog_topic`` would, and the table encodes writes with it.
    """
    changelog = app.topic(
        f"{app.conf.id}-{name}-changelog",
        key_type=str,
        key_serializer="raw",
        value_serializer=value_serializer,
        partitions=partitions,
        compacting=True,
        deleting=False,
        acks=False,
        internal=True,
        maxsize=131_072,  # Faust's own buffer size for changelog streams
        allow_empty=True,
    )
    # ``App.Table`` is annotated as returning ``TableT``; it builds a ``faust.Table``.
    table: faust.Table[str, Any] = app.Table(  # type: ignore[assignment]
        name,
        default=None,
        partitions=partitions,
        key_type=str,
        value_type=value_type,
        changelog_topic=changelog,
        help=help,
    )
    table.key_serializer = "raw"
    table.value_serializer = value_serializer
    return table
