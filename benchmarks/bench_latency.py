"""Latency: event produced → intervention received, under a steady load, and idle CPU.

One worker; a producer sends a steady stream (1 000 and then 5 000 events/s) of
browsing events in which some customers rage-click: three clicks on one button,
200 ms apart in event time but sent at the stream's rate. The send time of each
burst's third click (the one that triggers the intervention) is remembered; a
consumer of ``interventions``, started before the producer, timestamps each
intervention as it arrives. Both clients share this process's event loop, so their
own scheduling delay is part of the figures (as it would be for a chatbot).
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from app.testing import Services
from app.topics import CLICKS, INTERVENTIONS
from benchmarks._common import (
    PARTITIONS,
    CpuMeter,
    EventFactory,
    MetricsSnapshot,
    bench_worker_env,
    bucket_delta,
    embedded_stack,
    encode,
    histogram_quantile,
    percentiles,
    running_workers,
    scaled,
    scrape,
    web_url,
)
from benchmarks._report import Row, num, verdict

__all__ = ["RATES", "TARGET_P99_MS", "details", "run", "summary"]

RATES = (1_000, 5_000)
TARGET_P99_MS = 10.0
# A tenth of the events belong to rage-click bursts: ~33 interventions/s at 1 000 events/s.
_BURST_SHARE = 0.1
_WARMUP_S = 2.0
# Event-time offsets of a burst's clicks: the third one, the trigger, happens "now".
_BURST_OFFSETS_MS = (-400, -200, 0)
_PROCESSING = "nudgeflow_processing_seconds"
# What the worker counted during a phase: were missing interventions ever emitted?
_WORKER_COUNTS: dict[str, tuple[str, dict[str, str]]] = {
    "rage_click_emitted": ("nudgeflow_interventions_total", {"reason": "rage_click"}),
    "suppressed": ("nudgeflow_interventions_suppressed_total", {}),
    "duplicates": ("nudgeflow_events_duplicate_total", {}),
    "rejected": ("nudgeflow_events_rejected_total", {}),
    "redis_errors": ("nudgeflow_delivery_errors_total", {}),
}


def run(scale: float, workdir: Path) -> dict[str, Any]:
    """Idle CPU for ~10 s x ``scale``, then ~20 s x ``scale`` at each rate of ``RATES``."""
    return asyncio.run(_run(scale, workdir))


async def _run(scale: float, workdir: Path) -> dict[str, Any]:
    duration_s = scaled(20.0, scale, 1.0)
    factory = EventFactory(seed=3, customers=10_000)
    async with embedded_stack(workdir) as stack:
        services = stack.services
        env = bench_worker_env(services, workdir)
        async with running_workers([env]) as [worker]:
            cpu = CpuMeter(
                {"worker": worker.process.pid, "broker": stack.broker_pid, "clients": os.getpid()}
            )
            idle_s = scaled(10.0, scale, 1.0)
            await asyncio.sleep(1.0)  # let start-up work (first commits, metadata) settle
            cpu.reset()
            await asyncio.sleep(idle_s)
            idle_cpu = cpu.read()
            phases = {
                str(rate): await _phase(services, web_url(env), factory, rate, duration_s, cpu)
                for rate in RATES
            }
    first = phases[str(RATES[0])]
    return {
        "duration_s": duration_s,
        "idle_s": idle_s,
        "idle_cpu_percent": idle_cpu["worker"],
        "idle_broker_cpu_percent": idle_cpu["broker"],
        "burst_share": _BURST_SHARE,
        "rates": phases,
        "target_p99_ms": TARGET_P99_MS,
        "passed": first["missing"] == 0 and first["latency_ms"]["p99"] <= TARGET_P99_MS,
    }


def _schedule(
    factory: EventFactory, rate: int, duration_s: float, prefix: str = "rage"
) -> list[tuple[dict[str, Any], int, bool]]:
    """The events of one phase in send order: (event, ts offset ms, triggers an intervention)."""
    n = int(rate * duration_s)
    bursts = max(1, int(n * _BURST_SHARE / 3))
    units: list[list[tuple[dict[str, Any], int, bool]]] = [
        [(event, 0, False)] for event in factory.mixed(n - 3 * bursts, 0, 0)
    ]
    for b in range(bursts):
        customer = f"{prefix}-{rate}-{b:05d}"
        clicks = factory.rage_burst(customer, f"{customer}-s")
        units.append([(c, offset, i == 2) for i, (c, offset)
                      in enumerate(zip(clicks, _BURST_OFFSETS_MS, strict=True))])  # fmt: skip
    order = factory.rng.permutation(len(units))
    return [item for u in order for item in units[u]]


async def _phase(
    services: Services,
    url: str,
    factory: EventFactory,
    rate: int,
    duration_s: float,
    cpu: CpuMeter,
) -> dict[str, Any]:
    schedule = _schedule(factory, rate, duration_s)
    triggers = sum(1 for *_, trigger in schedule if trigger)
    sent_ns: dict[str, int] = {}
    arrivals: dict[str, _Arrival] = {}
    consumer = await _interventions_consumer(services.bootstrap)
    # linger 5 ms: what a Kafka client does by default since Kafka 4.0 (KIP-1030); sending
    # each event in a request of its own made the broker, not the worker, the bottleneck.
    producer = AIOKafkaProducer(bootstrap_servers=services.bootstrap, linger_ms=5)
    try:
        await producer.start()
        # The first second of a stream (metadata, connections, first commits) is not the
        # steady state the target speaks of: send it unmeasured.
        warmup = _schedule(factory, rate, _WARMUP_S, prefix="warmup")
        await _send_steadily(producer, warmup, rate, {})
        receiving = asyncio.create_task(_receive(consumer, sent_ns, arrivals))
        try:
            before = await _scrape(url)
            cpu.reset()
            elapsed_s = await _send_steadily(producer, schedule, rate, sent_ns)
            busy = cpu.read()
            deadline = time.perf_counter() + max(10.0, duration_s)
            while len(arrivals) < triggers and time.perf_counter() < deadline:
                await asyncio.sleep(0.05)
            after = await _scrape(url)
        finally:
            receiving.cancel()
    finally:
        await producer.stop()
        await consumer.stop()
    processing = bucket_delta(before.buckets(_PROCESSING), after.buckets(_PROCESSING))
    latencies_ms = sorted(a.latency_ns / 1e6 for a in arrivals.values())
    return {
        "rate": rate,
        "sent": len(schedule),
        "achieved_rate": len(schedule) / elapsed_s,
        "triggers": triggers,
        "received": len(latencies_ms),
        "missing": triggers - len(latencies_ms),
        "latency_ms": {
            **percentiles(latencies_ms, (50, 99, 99.9)),
            "max": max(latencies_ms, default=float("nan")),
        },
        "worker_ms": percentiles([a.worker_ms for a in arrivals.values()], (50, 99)),
        "delivery_ms": percentiles([a.delivery_ms for a in arrivals.values()], (50, 99)),
        "processing_us": {
            q: histogram_quantile(float(q[1:]) / 100, processing) * 1e6 for q in ("p50", "p99")
        },
        "worker_counts": {
            name: after.total(metric, **labels) - before.total(metric, **labels)
            for name, (metric, labels) in _WORKER_COUNTS.items()
        },
        "cpu_percent": busy,
        "latencies_ms": latencies_ms,
    }


async def _scrape(url: str) -> MetricsSnapshot:
    async with aiohttp.ClientSession() as session:
        return await scrape(session, url)


async def _interventions_consumer(bootstrap: str) -> AIOKafkaConsumer:
    """A consumer positioned at the end of ``interventions``, polling every 5 ms."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=5
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(INTERVENTIONS, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for partition in partitions:  # resolve the end offsets now, not on the first fetch
            await consumer.position(partition)
    except BaseException:
        await consumer.stop()
        raise
    return consumer


@dataclass(frozen=True, slots=True)
class _Arrival:
    """One awaited intervention: send → arrival, and its wall-clock (ms) halves."""

    latency_ns: int
    worker_ms: int  # trigger's event time (its send time) → the worker's emitted_ts
    delivery_ms: float  # emitted_ts → arrival here


async def _receive(
    consumer: AIOKafkaConsumer, sent_ns: dict[str, int], arrivals: dict[str, _Arrival]
) -> None:
    while True:
        batches = await consumer.getmany(timeout_ms=100)
        arrived_ns, arrived_ms = time.perf_counter_ns(), time.time() * 1000
        for records in batches.values():
            for record in records:
                value = orjson.loads(record.value)  # type: ignore[arg-type]
                event_id = value["event_id"]
                if event_id in sent_ns and event_id not in arrivals:
                    arrivals[event_id] = _Arrival(
                        arrived_ns - sent_ns[event_id],
                        value["emitted_ts"] - value["event_ts"],
                        arrived_ms - value["emitted_ts"],
                    )


async def _send_steadily(
    producer: AIOKafkaProducer,
    schedule: list[tuple[dict[str, Any], int, bool]],
    rate: int,
    sent_ns: dict[str, int],
) -> float:
    """Send ``schedule`` at ``rate`` events/s: each tick sends what is due, then yields."""
    pending = []
    started = time.perf_counter()
    i = 0
    while i < len(schedule):
        due = min(len(schedule), int((time.perf_counter() - started) * rate) + 1)
        now_ms = int(time.time() * 1000)
        for event, offset_ms, trigger in schedule[i:due]:
            event["ts"] = now_ms + offset_ms
            key, value = encode(event)
            if trigger:
                sent_ns[event["event_id"]] = time.perf_counter_ns()
            pending.append(await producer.send(CLICKS, value, key=key))
        i = due
        await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
    elapsed_s = time.perf_counter() - started
    await asyncio.gather(*pending)
    return elapsed_s


def summary(result: dict[str, Any]) -> list[Row]:
    rows = []
    for i, phase in enumerate(result["rates"].values()):
        value = f"{phase['latency_ms']['p99']:.1f} ms"
        if phase["missing"]:
            value += f" ({phase['missing']} of {phase['triggers']} missing)"
        figure = f"event → intervention p99 at {num(phase['rate'])} events/s"
        target = (f"≤ {TARGET_P99_MS:g} ms", verdict(result["passed"])) if i == 0 else ()
        rows.append(Row("latency", figure, value, *target))
    rows.append(Row("latency", "idle worker CPU", f"{result['idle_cpu_percent']:.1f} % of a core"))
    return rows


def details(result: dict[str, Any]) -> str:
    end_to_end = [
        "| rate | sent (achieved/s) | interventions (missing) | p50 | p99 | p99.9 | max |",
        "|---|---|---|---|---|---|---|",
    ]
    breakdown = [
        "| rate | send → emitted p50 / p99 | emitted → received p50 / p99 "
        "| one event in the worker p50 / p99 | CPU: worker / broker / clients |",
        "|---|---|---|---|---|",
    ]
    counted = [
        "| rate | triggers sent | rage_click interventions emitted | suppressed | duplicates "
        "| rejected | Redis errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for phase in result["rates"].values():
        counts = phase["worker_counts"]
        counted.append(
            f"| {num(phase['rate'])}/s | {num(phase['triggers'])} "
            f"| {num(counts['rage_click_emitted'])} | {num(counts['suppressed'])} "
            f"| {num(counts['duplicates'])} | {num(counts['rejected'])} "
            f"| {num(counts['redis_errors'])} |"
        )
    for phase in result["rates"].values():
        latency, worker, delivery = phase["latency_ms"], phase["worker_ms"], phase["delivery_ms"]
        processing = phase["processing_us"]
        rate = f"{num(phase['rate'])}/s"
        end_to_end.append(
            f"| {rate} | {num(phase['sent'])} ({num(phase['achieved_rate'])}) "
            f"| {num(phase['received'])} ({phase['missing']}) | {latency['p50']:.1f} ms "
            f"| {latency['p99']:.1f} ms | {latency['p99.9']:.1f} ms | {latency['max']:.1f} ms |"
        )
        breakdown.append(
            f"| {rate} | {worker['p50']:.0f} / {worker['p99']:.0f} ms "
            f"| {delivery['p50']:.1f} / {delivery['p99']:.1f} ms "
            f"| {processing['p50']:.0f} / {processing['p99']:.0f} µs "
            f"| {' / '.join(f'{v:.0f} %' for v in phase['cpu_percent'].values())} |"
        )
    return f"""\
One worker; each rate runs for {result["duration_s"]:.0f} s, after {_WARMUP_S:.0f} s of the same
traffic, not measured (producer metadata, connections, first commits).
{result["burst_share"]:.0%} of the events belong to rage-click bursts of fresh customers
(three clicks on `#pay`, 200 ms apart in event time, sent at the stream's rate); the rest is
the browsing mix of the throughput benchmark. The producer lingers 5 ms, a Kafka client's
default since Kafka 4.0. Latency runs from the producer's `send()` of a burst's third click
to the arrival of its intervention at a consumer of `interventions` (`fetch_max_wait_ms=5`);
producer and consumer share this process, and broker, worker and clients share the machine's
cores.

{chr(10).join(end_to_end)}

Where the time goes (wall clock, 1 ms resolution): *send → emitted* is the trigger's event
time (set when it is sent) to the intervention's `emitted_ts`, i.e. broker in + worker;
*emitted → received* is delivery back through the broker to the consumer. The last column is
`nudgeflow_processing_seconds` over the same phase, quantiles interpolated inside the
histogram's buckets as Prometheus does. CPU is each process's use while the phase sends, in %
of one core (`psutil`; "clients" is this process: producer and consumer); the machine has
two cores for all three, and for anything else running on it.

{chr(10).join(breakdown)}

What the worker counted during each phase (`/metrics` before and after), so a missing
intervention can be told apart: never emitted, or emitted and not delivered.

{chr(10).join(counted)}

Target: p99 ≤ {TARGET_P99_MS:g} ms at {num(RATES[0])} events/s: **{verdict(result["passed"])}**.

An idle worker (ready, no traffic, {result["idle_s"]:.0f} s) uses
**{result["idle_cpu_percent"]:.1f} %** of one core (`psutil`); the idle broker beside it
{result["idle_broker_cpu_percent"]:.1f} %.
"""
