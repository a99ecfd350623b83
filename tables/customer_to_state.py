"""The ``customer_to_state`` table: customer id → ``CustomerState``, changelogged in Kafka."""

from __future__ import annotations

from typing import Any, cast

import faust
from faust.serializers import codecs

from tables.customer_state import CustomerState, decode_state, encode_state

__all__ = ["CustomerStateCodec", "declare_customer_table"]


class CustomerStateCodec(codecs.Codec):
    """Faust codec for ``CustomerState`` values (orjson, versioned)."""

    def _dumps(self, obj: Any) -> bytes:
        return encode_state(obj)

    def _loads(self, s: bytes) -> CustomerState:
        return decode_state(s)


def declare_customer_table(
    app: faust.App, name: str, partitions: int
) -> faust.Table[str, CustomerState | None]:
    """Declare the per-customer state table, co-partitioned with ``clicks``.

    Faust derives a table's serializers from its key and value types (JSON
    here) and bakes them into the changelog topic when the table is created,
    so the changelog topic is declared here with our codec, the way Faust's
    ``Table._new_changelog_topic`` would, and the table encodes writes with it.
    """
    codec = CustomerStateCodec()
    changelog = app.topic(
        f"{app.conf.id}-{name}-changelog",
        key_type=str,
        key_serializer="raw",
        value_serializer=codec,
        partitions=partitions,
        compacting=True,
        deleting=False,
        acks=False,
        internal=True,
        maxsize=131_072,  # Faust's own buffer size for changelog streams
        allow_empty=True,
    )
    # ``App.Table`` is annotated as returning ``TableT``; it builds a ``faust.Table``.
    table = cast(
        "faust.Table[str, CustomerState | None]",
        app.Table(
            name,
            default=None,
            partitions=partitions,
            key_type=str,
            changelog_topic=changelog,
            help="Per-customer session, profile and recent signals.",
        ),
    )
    table.key_serializer = "raw"
    table.value_serializer = codec
    return table
