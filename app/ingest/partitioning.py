"""Which ``clicks`` partition a customer's events belong on.

Kafka's default partitioner: murmur2 of the key bytes, sign bit cleared, modulo the
partition count. The Java client, aiokafka (nudgeflow's collector) and librdkafka with
``partitioner=murmur2_random`` agree on it; librdkafka's own default (``consistent_random``,
CRC32) does not, so producers in C, Go, .NET or confluent-kafka-python must set it.
"""

from __future__ import annotations

from aiokafka.partitioner import murmur2

__all__ = ["customer_partition"]


def customer_partition(customer_id: str, partitions: int) -> int:
    """The partition of ``customer_id`` (the key is its UTF-8 bytes).

    Examples
    --------
    >>> customer_partition("c42", 8), customer_partition("c42", 8) == customer_partition("c42", 8)
    (4, True)
    """
    digest: int = murmur2(customer_id.encode())
    return (digest & 0x7FFFFFFF) % partitions
