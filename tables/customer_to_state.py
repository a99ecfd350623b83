"""The ``customer_to_state`` table: customer id → ``CustomerState``, changelogged in Kafka."""

from __future__ import annotations

from typing import Any

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


def declare_customer_table(app: faust.App, name: str, partitions: int) -> faust.Table:
    """Declare the per-customer state table, co-partitioned with ``clicks``."""
    table = app.Table(
        name,
        default=None,
        partitions=partitions,
        key_type=str,
        help="Per-customer session, profile and recent signals.",
    )
    # Faust derives serializers from key/value types; set ours before the
    # changelog topic (created lazily) picks them up.
    table.key_serializer = "raw"
    table.value_serializer = CustomerStateCodec()
    return table
