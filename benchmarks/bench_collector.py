"""Collector: HTTP ``POST /v1/events`` batches against a running worker.

A few clients post batches of 100 events back to back for ~10 s. The worker's own
agent processes what the collector accepts, in the same process, as in production.
A request counts from sending to the last byte of its ``202`` (which means: the
events are on the broker).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from benchmarks._common import (
    EventFactory,
    bench_worker_env,
    embedded_stack,
    percentiles,
    running_workers,
    scaled,
    web_url,
)
from benchmarks._report import Row, num

__all__ = ["details", "run", "summary"]

_BATCH_EVENTS = 100
_CONCURRENCY = 6
# Enough distinct bodies for ~15 000 events/s over the full 10 s; beyond that they repeat
# (still accepted, then dropped by the worker as duplicates) and the report says so.
_BODIES_FULL = 1_500


def run(scale: float, workdir: Path) -> dict[str, Any]:
    """Post batches for ~10 s x ``scale``; accepted events/s and request latencies."""
    return asyncio.run(_run(scale, workdir))


async def _run(scale: float, workdir: Path) -> dict[str, Any]:
    duration_s = scaled(10.0, scale, 1.0)
    factory = EventFactory(seed=2, customers=10_000)
    now_ms = int(time.time() * 1000)
    bodies = [
        orjson.dumps({"events": factory.mixed(_BATCH_EVENTS, now_ms + 100 * i, 1)})
        for i in range(int(scaled(_BODIES_FULL, scale, 2 * _CONCURRENCY)))
    ]
    async with embedded_stack(workdir) as stack:
        services = stack.services
        env = bench_worker_env(services, workdir)
        async with running_workers([env]):
            load = await _post_load(f"{web_url(env)}/v1/events", bodies, duration_s)
    requests = len(load.latencies_ns)
    return {
        "duration_s": load.elapsed_s,
        "concurrency": _CONCURRENCY,
        "batch_events": _BATCH_EVENTS,
        "requests": requests,
        "failed_requests": load.failed,
        "accepted_events": load.accepted,
        "accepted_events_per_s": load.accepted / load.elapsed_s,
        "bodies_reused": requests > len(bodies) - _CONCURRENCY,
        "latency_ms": percentiles([ns / 1e6 for ns in load.latencies_ns], (50, 99)),
    }


class _Load:
    """What the clients saw: accepted events, failures, and each request's latency."""

    def __init__(self) -> None:
        self.accepted = 0
        self.failed = 0
        self.latencies_ns: list[int] = []
        self.elapsed_s = 0.0


async def _post_load(url: str, bodies: list[bytes], duration_s: float) -> _Load:
    load = _Load()
    next_body: Iterator[bytes] = itertools.cycle(bodies)
    headers = {"Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=_CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def post(record: bool) -> None:
            started = time.perf_counter_ns()
            async with session.post(url, data=next(next_body), headers=headers) as response:
                body = await response.read()
            if not record:
                return
            load.latencies_ns.append(time.perf_counter_ns() - started)
            if response.status == 202:
                load.accepted += orjson.loads(body)["accepted"]
            else:
                load.failed += 1

        async def client(stop_at: float) -> None:
            while time.perf_counter() < stop_at:
                await post(record=True)

        # One unrecorded request per connection: connection set-up is not the collector.
        await asyncio.gather(*(post(record=False) for _ in range(_CONCURRENCY)))
        started = time.perf_counter()
        await asyncio.gather(*(client(started + duration_s) for _ in range(_CONCURRENCY)))
        load.elapsed_s = time.perf_counter() - started
    return load


def summary(result: dict[str, Any]) -> list[Row]:
    latency = result["latency_ms"]
    return [
        Row("collector", f"accepted events/s ({result['concurrency']} clients x "
            f"{result['batch_events']}-event batches)", num(result["accepted_events_per_s"])),
        Row("collector", "request latency p50 / p99",
            f"{latency['p50']:.1f} / {latency['p99']:.1f} ms"),
    ]  # fmt: skip


def details(result: dict[str, Any]) -> str:
    latency = result["latency_ms"]
    reused = (
        "\nThe distinct bodies ran out, so some were sent again: the collector accepts them, "
        "the worker drops their events as duplicates.\n"
        if result["bodies_reused"]
        else ""
    )
    return f"""\
{result["concurrency"]} aiohttp clients post `{{"events": [...]}}` bodies of
{result["batch_events"]} valid events each, back to back, for {result["duration_s"]:.1f} s to
one worker (which also processes everything it accepts).
{reused}
| figure | value |
|---|---|
| requests (non-202) | {num(result["requests"])} ({result["failed_requests"]}) |
| accepted events | {num(result["accepted_events"])} |
| accepted events/s | {num(result["accepted_events_per_s"])} |
| request latency p50 | {latency["p50"]:.1f} ms |
| request latency p99 | {latency["p99"]:.1f} ms |
"""
