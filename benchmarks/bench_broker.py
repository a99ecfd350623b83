"""The embedded broker: one hop's latency as a partition accumulates record batches.

A producer pings a consumer through a single-partition topic at a low rate, first on
an empty partition, then after filling it with more and more single-record batches.
Tansu's in-memory engine lists every batch a partition holds on each fetch that
returns data, and never deletes one, so a hop gets slower the longer a topic is written.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from app.runtime.topics import TopicSpec, declare_topics
from benchmarks._common import CpuMeter, embedded_stack, percentiles, scaled
from benchmarks._report import Row, num

__all__ = ["BATCH_STEPS", "details", "run", "summary"]

#: Record batches the measured partition holds before each ping phase, at scale 1.
BATCH_STEPS = (0, 1_000, 2_000, 5_000, 10_000)
# Short, like the contract's topics: listing a partition also costs more the longer the
# names of its objects are, and those contain the topic's name.
_TOPIC = "pings"
_PARTITION = TopicPartition(_TOPIC, 0)
_PING_INTERVAL_S = 0.02
# As the latency benchmark's consumer of interventions: Tansu is not woken by new data, and
# a short wait keeps its polling from adding to the hop.
_FETCH_MAX_WAIT_MS = 5
# A fresh consumer's first fetches (connection, metadata) are not the hop we measure.
_SETTLE_S = 0.5
_DRAIN_S = 5.0


def run(scale: float, workdir: Path) -> dict[str, Any]:
    """~100 x ``scale`` pings, 20 ms apart, after each step of ``BATCH_STEPS`` x ``scale``."""
    return asyncio.run(_run(scale, workdir))


async def _run(scale: float, workdir: Path) -> dict[str, Any]:
    pings = int(scaled(100, scale, 10))
    steps = []
    async with embedded_stack(workdir) as stack:
        services = stack.services
        await declare_topics(services.broker_url, [TopicSpec(_TOPIC, 1)], 1)
        cpu = CpuMeter({"broker": stack.broker_pid})
        # linger 0, each send awaited before the next: every record is a batch of its own,
        # as an event sent alone is.
        producer = AIOKafkaProducer(bootstrap_servers=services.bootstrap, linger_ms=0)
        await producer.start()
        try:
            await producer.partitions_for(_TOPIC)  # metadata now, not in the first ping
            stored = 0
            for target in _batch_steps(scale):
                filled = max(0, target - stored)
                started = time.perf_counter()
                for _ in range(filled):
                    await (await producer.send(_TOPIC, b"fill"))
                fill_s = time.perf_counter() - started
                step = await _ping_phase(producer, services.bootstrap, pings, cpu)
                steps.append({"filled": filled, "fill_s": fill_s, **step})
                stored = step["stored_batches"] + step["sent"]
        finally:
            await producer.stop()
    filled = sum(s["filled"] for s in steps)
    fill_s = sum(s["fill_s"] for s in steps)
    return {
        "pings": pings,
        "ping_interval_ms": _PING_INTERVAL_S * 1000,
        "steps": steps,
        "filled": filled,
        "fill_s": fill_s,
        "fill_batches_per_s": filled / fill_s if fill_s else 0.0,
        **_fit(steps),
        "complete": all(s["missing"] == 0 for s in steps),
    }


def _fit(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """The p50 slope over the steps before the first whose median hop outlasts the ping
    interval: from there on fetches stall (see ``details``) and the growth is no longer linear.
    """
    interval_ms = _PING_INTERVAL_S * 1000
    linear = list(itertools.takewhile(lambda s: s["latency_ms"]["p50"] < interval_ms, steps))
    slope = (
        _slope_per_1000([s["stored_batches"] for s in linear],
                        [s["latency_ms"]["p50"] for s in linear])
        if len(linear) >= 2 else float("nan")
    )  # fmt: skip
    return {
        "p50_ms_per_1000_batches": slope,
        "fitted_up_to_batches": linear[-1]["stored_batches"] if linear else None,
        "stalled_from_batches": (
            steps[len(linear)]["stored_batches"] if len(linear) < len(steps) else None
        ),
    }


def _batch_steps(scale: float) -> list[int]:
    """``BATCH_STEPS`` x ``scale``, never below a hundredth of each, so they stay distinct.

    Examples
    --------
    >>> _batch_steps(1.0), _batch_steps(0.005)
    ([0, 1000, 2000, 5000, 10000], [0, 10, 20, 50, 100])
    """
    return [int(scaled(batches, scale, batches / 100)) for batches in BATCH_STEPS]


def _slope_per_1000(batches: Sequence[float], latencies_ms: Sequence[float]) -> float:
    """Least-squares slope of latency over stored batches: extra ms per 1 000 batches.

    Examples
    --------
    >>> round(_slope_per_1000([0, 1000, 2000, 5000], [2.0, 3.0, 4.0, 7.0]), 6)
    1.0
    """
    slope, _ = np.polyfit(np.asarray(batches, dtype=float), np.asarray(latencies_ms), 1)
    return float(slope) * 1000


async def _ping_phase(
    producer: AIOKafkaProducer, bootstrap: str, pings: int, cpu: CpuMeter
) -> dict[str, Any]:
    """``pings`` records, each awaited before the next, to a consumer at the partition's end."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        fetch_max_wait_ms=_FETCH_MAX_WAIT_MS,
    )
    await consumer.start()
    try:
        consumer.assign([_PARTITION])
        await consumer.seek_to_end(_PARTITION)
        # Every batch holds one record, so the end offset counts the batches stored.
        stored = await consumer.position(_PARTITION)
        sent_ns: dict[bytes, int] = {}
        arrived_ns: dict[bytes, int] = {}
        receiving = asyncio.create_task(_receive(consumer, arrived_ns))
        try:
            await asyncio.sleep(_SETTLE_S)
            cpu.reset()
            started = time.perf_counter()
            for i in range(pings):
                await asyncio.sleep(max(0.0, started + i * _PING_INTERVAL_S - time.perf_counter()))
                ping = str(i).encode()
                sent_ns[ping] = time.perf_counter_ns()
                await (await producer.send(_TOPIC, ping))
            deadline = time.perf_counter() + _DRAIN_S
            while len(arrived_ns) < pings and time.perf_counter() < deadline:
                await asyncio.sleep(0.01)
            broker_cpu = cpu.read()["broker"]
        finally:
            receiving.cancel()
    finally:
        await consumer.stop()
    latencies_ms = sorted((arrived_ns[p] - sent_ns[p]) / 1e6 for p in arrived_ns if p in sent_ns)
    return {
        "stored_batches": stored,
        "sent": pings,
        "received": len(latencies_ms),
        "missing": pings - len(latencies_ms),
        "latency_ms": {
            **percentiles(latencies_ms, (50, 99)),
            "max": max(latencies_ms, default=float("nan")),
        },
        "broker_cpu_percent": broker_cpu,
    }


async def _receive(consumer: AIOKafkaConsumer, arrived_ns: dict[bytes, int]) -> None:
    while True:
        batches = await consumer.getmany(timeout_ms=100)
        now_ns = time.perf_counter_ns()
        for records in batches.values():
            for record in records:
                arrived_ns.setdefault(record.value or b"", now_ns)


def summary(result: dict[str, Any]) -> list[Row]:
    first, last = result["steps"][0], result["steps"][-1]
    return [
        Row("broker", f"one hop p50 with {num(first['stored_batches'])} → "
            f"{num(last['stored_batches'])} stored batches in the partition",
            f"{first['latency_ms']['p50']:.1f} → {last['latency_ms']['p50']:.1f} ms"),
        Row("broker", "one hop p50 per 1 000 more stored batches "
            f"(least squares up to {num(result['fitted_up_to_batches'] or 0)})",
            f"{result['p50_ms_per_1000_batches']:+.2f} ms"),
    ]  # fmt: skip


def details(result: dict[str, Any]) -> str:
    rows = "\n".join(
        f"| {num(s['stored_batches'])} | {num(s['filled'])} in {s['fill_s']:.1f} s "
        f"| {s['received']} of {s['sent']} | {s['latency_ms']['p50']:.1f} ms "
        f"| {s['latency_ms']['p99']:.1f} ms | {s['latency_ms']['max']:.1f} ms "
        f"| {s['broker_cpu_percent']:.0f} % |"
        for s in result["steps"]
    )
    interval = f"{result['ping_interval_ms']:.0f} ms"
    if result["stalled_from_batches"] is None:
        this_run = (
            f"In this run no step's median hop outlasted the {interval} between pings, so the "
            "fit covers every step; single stalls show as a p99 far above the p50."
        )
    else:
        this_run = (
            f"In this run the median hop outlasted the {interval} between pings from "
            f"{num(result['stalled_from_batches'])} batches on, so the fit stops at "
            f"{num(result['fitted_up_to_batches'] or 0)}."
        )
    return f"""\
One single-partition topic on a fresh embedded broker. Before each ping phase, a producer
(`linger_ms=0`) fills the partition with one-record batches, awaiting each before it sends
the next, until the partition holds the batches of the first column; filling took
{result["fill_s"]:.0f} s for {num(result["filled"])} batches
({num(result["fill_batches_per_s"])} batches/s). Then a new consumer
(`fetch_max_wait_ms={_FETCH_MAX_WAIT_MS}`, no group) starts at the end of the partition, and
the producer sends {result["pings"]} pings, {interval} apart, each a batch of its own.
Latency runs from the producer's `send()` to the ping's arrival at the consumer; both share
this process. Broker CPU is the broker's use during the ping phase, in % of one core
(`psutil`).

| batches stored | filled before the pings | pings received | p50 | p99 | max | broker CPU |
|---|---|---|---|---|---|---|
{rows}

Fitted by least squares, one hop's p50 grows by
**{result["p50_ms_per_1000_batches"]:.2f} ms per 1 000 batches** the partition holds.
{this_run}

**Why.** With `memory://` storage, Tansu keeps each record batch as one object in an
in-memory object store. For every partition that has data past the fetch offset, its Fetch
handler lists all stored batch objects of that partition and then picks those at or after
the offset, so a fetch that returns even one new record costs time in proportion to every
batch the partition has ever received. Nothing shrinks that list: the engine applies no
retention and does not implement DeleteRecords (`fetch` and `delete_records` in
`tansu-storage/src/dynostore.rs` of tansu-io/tansu).

**Stalls.** The same handler stops listing once the fetch's maximum wait (the consumer's
`fetch_max_wait_ms`) has run out, and then answers with no records although there are some;
the consumer asks again at once. When listing a partition takes about as long as that wait,
most fetches come back empty and a record waits until one listing happens to finish in
time: hops of hundreds of milliseconds or seconds, while the broker spends most of a core on
fetches that return nothing. How many batches that takes depends on the wait, the machine,
its load and the length of the topic's name (part of every object's name).

**What it means.** On the embedded broker every fetch gets slower as a topic accumulates
batches, so latency figures measured on it depend on how long the stream has been running.
A producer that batches more (`linger_ms`) writes fewer, larger batches and slows this
growth down. A consumer with a longer `fetch_max_wait_ms` stalls later, but Tansu is not
woken by new data (a fetch that finds none sleeps half its remaining wait before it looks
again), so a longer wait delays every record a little. Restarting the embedded stack resets
it all. Production runs on Apache Kafka (`docker-compose.yml`), which finds a fetch offset
through an index of its log segments and deletes old segments by retention, so its fetch
cost does not grow this way.
"""
