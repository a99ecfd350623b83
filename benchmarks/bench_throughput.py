"""Throughput: one nudgeflow worker draining a pre-filled ``clicks``, against a raw consumer.

The topic is filled before anything reads it, so both readers see the same backlog.
The raw consumer (aiokafka + ``orjson.loads``, nothing else) is the ceiling a Python
consumer on this broker can reach; the worker's rate is timed from its first handled
event to its last, from ``/metrics`` polled every 100 ms (it starts consuming as soon
as it joins the group, before ``/readyz`` says so).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from app.runtime.topics import CLICKS
from benchmarks._common import (
    PARTITIONS,
    CpuMeter,
    EventFactory,
    bench_worker_env,
    embedded_stack,
    encode,
    produce_events,
    running_workers,
    scaled,
    watch_progress,
    web_url,
)
from benchmarks._report import Row, num, verdict

__all__ = ["TARGET_EVENTS_PER_S", "details", "run", "summary"]

TARGET_EVENTS_PER_S = 20_000
_CUSTOMERS = 10_000
# The events span the last hour of event time: two or three visits per customer.
_HISTORY_MS = 3_600_000


def run(scale: float, workdir: Path) -> dict[str, Any]:
    """Fill ``clicks`` with ~200 000 x ``scale`` events, then time a raw consumer and a worker."""
    return asyncio.run(_run(scale, workdir))


async def _run(scale: float, workdir: Path) -> dict[str, Any]:
    n = int(scaled(200_000, scale, 2_000))
    start_ts_ms = int(time.time() * 1000) - _HISTORY_MS
    events = EventFactory(seed=1, customers=_CUSTOMERS).mixed(n, start_ts_ms, _HISTORY_MS / n)
    event_bytes = sum(len(encode(e)[1]) for e in events) / n
    async with embedded_stack(workdir) as stack:
        services = stack.services
        await produce_events(services.bootstrap, events)
        del events
        raw_rate = await _raw_consumer_rate(services.bootstrap, n)
        env = bench_worker_env(services, workdir)
        watching = asyncio.create_task(
            watch_progress([web_url(env)], n, timeout_s=max(60.0, n / 1_000))
        )
        try:
            async with running_workers([env]) as [worker]:
                cpu = CpuMeter({"worker": worker.process.pid, "broker": stack.broker_pid})
                progress = await watching
                draining_cpu = cpu.read()
        finally:
            watching.cancel()
    worker_rate = progress.rate()
    return {
        "events": n,
        "customers": _CUSTOMERS,
        "partitions": PARTITIONS,
        "event_bytes_mean": event_bytes,
        "raw_events_per_s": raw_rate,
        "worker_events_per_s": worker_rate,
        "worker_steady_events_per_s": progress.steady_rate(),
        "worker_handled": progress.handled,
        "worker_complete": progress.complete,
        "worker_to_raw": worker_rate / raw_rate,
        "draining_cpu_percent": draining_cpu,
        "target_events_per_s": TARGET_EVENTS_PER_S,
        "passed": progress.complete and worker_rate >= TARGET_EVENTS_PER_S,
    }


async def _raw_consumer_rate(bootstrap: str, n: int, timeout_s: float = 300.0) -> float:
    """Events/s of a bare consumer decoding every value, from seeking to the last record."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(CLICKS, p) for p in range(PARTITIONS)]
        started = time.perf_counter()
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        count = 0
        while count < n:
            if time.perf_counter() - started > timeout_s:
                raise TimeoutError(f"raw consumer read {count} of {n} events in {timeout_s} s")
            batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for records in batches.values():
                for record in records:
                    orjson.loads(record.value)  # type: ignore[arg-type]
                count += len(records)
        return n / (time.perf_counter() - started)
    finally:
        await consumer.stop()


def summary(result: dict[str, Any]) -> list[Row]:
    return [
        Row("throughput", "worker events/s (1 worker, pre-filled topic)",
            num(result["worker_events_per_s"]), f"≥ {num(TARGET_EVENTS_PER_S)}",
            verdict(result["passed"])),
        Row("throughput", "worker ÷ raw aiokafka consumer", f"{result['worker_to_raw']:.2f}"),
    ]  # fmt: skip


def details(result: dict[str, Any]) -> str:
    complete = (
        "" if result["worker_complete"]
        else f"\n**The worker handled only {num(result['worker_handled'])} events before the "
        "time-out; the rates are over those.**\n"
    )  # fmt: skip
    return f"""\
`clicks` ({result["partitions"]} partitions) is filled with {num(result["events"])} valid
events ({result["event_bytes_mean"]:.0f} bytes of JSON on average; page views, product views,
clicks, scrolls, searches, carts, forms and checkout steps) of {num(result["customers"])}
customers, produced in large batches before any reader starts.
{complete}
| reader | events/s |
|---|---|
| raw aiokafka consumer, `orjson.loads` only | {num(result["raw_events_per_s"])} |
| nudgeflow worker, first to last event | {num(result["worker_events_per_s"])} |
| nudgeflow worker, middle 80 % (steady state) | {num(result["worker_steady_events_per_s"])} |

The worker runs at **{result["worker_to_raw"]:.2f}x** the raw consumer's rate; the target is
{num(TARGET_EVENTS_PER_S)} events/s per worker: **{verdict(result["passed"])}**. The raw
consumer is timed from its seek to the beginning to its last record. The worker is timed from
the first `/metrics` poll (every 100 ms) that shows a handled event to the first that shows
all of them (processed + duplicate + rejected); the steady state is the time between 10 % and
90 % of them, interpolated between polls.

While it drained (from `/readyz` to the last event) the worker used
{result["draining_cpu_percent"]["worker"]:.0f} % of one core and the broker
{result["draining_cpu_percent"]["broker"]:.0f} % (`psutil`; 2 cores in all).
"""
