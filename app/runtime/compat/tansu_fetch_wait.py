"""A fetch wait that widens while Tansu runs out of it listing record batches.

Tansu's memory storage answers a fetch by listing every record batch a partition
holds, and stops listing when the fetch's wait runs out: it then answers with no
records although there are some (``fetch`` in ``tansu-storage/src/dynostore.rs``).
The consumer asks again at once, so once a partition holds enough batches that
listing it outlasts the wait, that partition stalls for good.

The sign: a partition comes back without records while the high watermark it
reports is past the offset we asked for, twice in a row at the same offset, or once
with more records past it than can have come in while the broker answered. Apache
Kafka always returns data in that case. Once and a few records behind is not a sign:
Tansu reads a partition's high watermark after listing it, so a record produced in
between shows the same in an answer of any partition being written to. The next
fetch of such a partition returns the record; a truncated one comes back empty
again. (Taken as the sign, one such answer widened a worker's 20 ms wait to 68 ms
within 20 s of a steady 1 000 events/s, and each fetch that found nothing slept half
of it.) A worker behind, though, is answered short with thousands of records waiting:
waiting for the second answer there kept the wait at 80 ms where it had grown to
200-1 000 ms, and a drain of 200 000 events ran ~5 % slower in more, smaller fetches.

On the sign the worker doubles its fetch wait (up to a ceiling); every answer
without it gives back a tenth of the extra wait, so the wait settles just above
what listing needs and returns to the configured one when the broker is restarted.
A wider wait costs latency whenever a fetch finds nothing new: Tansu then sleeps
half the remaining wait before it looks again.

The hook wraps one private method of aiokafka's ``Fetcher`` on one consumer
instance; ``tests/integration/test_embedded_broker.py`` shows it working (a partition
that stalls a worker without it).
"""

from __future__ import annotations

import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

__all__ = ["FETCH_WAIT_CEILING_MS", "next_fetch_wait_ms", "widen_fetch_wait_while_truncated"]

log = logging.getLogger(__name__)

#: The widest the wait gets: an idle worker's first event may wait half of it.
FETCH_WAIT_CEILING_MS = 1000
# More records past an empty answer's offset than arrive while the broker answers (a
# few milliseconds; at 10 000 events/s on 8 partitions, ~1 250 a second a partition):
# the answer was truncated, not raced.
_RACED_RECORDS_MAX = 100


def next_fetch_wait_ms(current: int, truncated: bool, floor: int, ceiling: int) -> int:
    """The next fetch's wait: doubled after a truncated answer, else a tenth closer to ``floor``.

    Examples
    --------
    >>> next_fetch_wait_ms(20, True, 20, 1000), next_fetch_wait_ms(640, True, 20, 1000)
    (40, 1000)
    >>> next_fetch_wait_ms(120, False, 20, 1000), next_fetch_wait_ms(25, False, 20, 1000)
    (110, 24)
    >>> next_fetch_wait_ms(20, False, 20, 1000)
    20
    """
    if truncated:
        return min(ceiling, max(current, 1) * 2)
    return max(floor, current - max(1, (current - floor) // 10))


def widen_fetch_wait_while_truncated(
    consumer: AIOKafkaConsumer, floor_ms: int, ceiling_ms: int = FETCH_WAIT_CEILING_MS
) -> None:
    """Adapt ``consumer``'s fetch wait after each answer (call once it has started)."""
    fetcher: Any = consumer._fetcher
    process_answer = fetcher._proc_fetch_request
    widest_ms = floor_ms
    # Partition → the offset its last answer came back short at.
    short_at: dict[TopicPartition, int] = {}

    async def _proc_fetch_request(assignment: Any, node_id: int, request: Any) -> bool:
        nonlocal widest_ms, short_at
        needs_wakeup = bool(await process_answer(assignment, node_id, request))
        if assignment.active:
            before = fetcher._fetch_max_wait_ms
            short = _short_partitions(fetcher._records, assignment, request)
            truncated = any(
                behind > _RACED_RECORDS_MAX or short_at.get(tp) == offset
                for tp, (offset, behind) in short.items()
            )
            short_at = {tp: offset for tp, (offset, _behind) in short.items()}
            wait = fetcher._fetch_max_wait_ms = next_fetch_wait_ms(
                before, truncated, floor_ms, ceiling_ms
            )
            if wait > widest_ms:  # once per new width, not at every swing
                widest_ms = wait
                log.warning(
                    "the broker ran out of the %d ms fetch wait listing record batches; "
                    "waiting up to %d ms (an embedded broker slows as its topics fill: "
                    "restart it to empty it)", before, wait,
                )  # fmt: skip
        return needs_wakeup

    fetcher._proc_fetch_request = _proc_fetch_request


def _short_partitions(
    records: dict[TopicPartition, Any], assignment: Any, request: Any
) -> dict[TopicPartition, tuple[int, int]]:
    """The partitions of ``request`` that came back empty although data lay past the
    offset asked for, with that offset and how many records lay past it."""
    short: dict[TopicPartition, tuple[int, int]] = {}
    for topic, partitions in request.topics:
        for partition, offset, _max_bytes in partitions:
            tp = TopicPartition(topic, partition)
            if tp in records:
                continue
            state = assignment.state_value(tp)
            if (
                state is not None
                and state.has_valid_position
                and state.position == offset
                and state.highwater is not None
                and state.highwater > offset
            ):
                short[tp] = (offset, state.highwater - offset)
    return short
