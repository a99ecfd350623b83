"""Print the events kept on ``clicks-failed`` as JSONL, for ``nudgeflow replay`` to send again.

    python deploy/failed_events.py kafka://localhost:9092 --reason internal_error \
        --since 2026-12-03T08:00:00+00:00 > failed.jsonl
    nudgeflow replay failed.jsonl --to kafka://localhost:9092

Reads the topic from the beginning to its current end (whatever broker: it asks no
ListOffsets, which the embedded one answers wrongly), keeps the records of the given
reasons received since the given time, and prints each one's original event. Undecodable
payloads (kept as text that is not JSON, or as hex) cannot be replayed: they are counted
on stderr. Needs only what the nudgeflow package installs (aiokafka, orjson). See
deploy/RUNBOOK.md, "Replaying clicks-failed".
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

TOPIC = "clicks-failed"


def original_event(record: dict[str, Any]) -> Any | None:
    """The event a ``clicks-failed`` record keeps, or None when it is not JSON."""
    if "payload" in record:
        return record["payload"]
    try:
        return orjson.loads(record.get("payload_text", ""))
    except orjson.JSONDecodeError:
        return None


async def export(servers: list[str], reasons: set[str], since_ms: int) -> tuple[int, int]:
    """Print the matching events; return (printed, not replayable)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False)
    await consumer.start()
    printed = unusable = 0
    try:
        tps = [TopicPartition(TOPIC, p) for p in sorted(consumer.partitions_for_topic(TOPIC) or ())]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        pending = set(tps)
        while pending:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for message in records:
                    record = orjson.loads(message.value)
                    if record.get("received_ts", 0) < since_ms:
                        continue
                    if reasons and record.get("reason") not in reasons:
                        continue
                    event = original_event(record)
                    if event is None:
                        unusable += 1
                        continue
                    sys.stdout.buffer.write(orjson.dumps(event) + b"\n")
                    printed += 1
            for tp in list(pending):  # done once read up to the end a fetch reported
                end = consumer.highwater(tp)
                if end is not None and await consumer.position(tp) >= end:
                    pending.discard(tp)
    finally:
        await consumer.stop()
    return printed, unusable


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("broker", help="kafka://host:port[;host:port]")
    parser.add_argument(
        "--reason", action="append", default=[],
        help="keep only this reason (repeat for several; default: all)",
    )  # fmt: skip
    parser.add_argument(
        "--since", default=None, help="keep only records received at or after this ISO-8601 time"
    )
    args = parser.parse_args()
    servers = args.broker.split("://", 1)[-1].split(";")
    since_ms = int(datetime.fromisoformat(args.since).timestamp() * 1000) if args.since else 0
    printed, unusable = asyncio.run(export(servers, set(args.reason), since_ms))
    print(f"{printed} events printed, {unusable} not replayable (payload not JSON)",
          file=sys.stderr)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
