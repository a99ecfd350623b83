"""Latency: event produced → intervention received, under a steady load, and idle CPU.

One worker; a producer sends a steady stream (1 000 and then 5 000 events/s) of
browsing events in which some customers rage-click: three clicks on one button,
200 ms apart in event time but sent at the stream's rate. The send time of each
burst's third click (the one that triggers the intervention) is remembered; a
consumer of ``interventions`` and a reader of the Redis stream, started before the
producer, timestamp each intervention as it arrives. The clients share this
process's event loop, so their own scheduling delay is part of the figures (as it
would be for a chatbot).

The same traffic then runs, on a fresh broker, through a bare relay instead of the
worker: a process with the worker's consumer settings that forwards each third
``#pay`` click of a customer to ``interventions`` and does nothing else. It is the
broker's own floor for a consume → produce hop, so the two can be compared.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
import statistics
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from multiprocessing.synchronize import Event as ProcessEvent
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from app.runtime.garbage_collection import freeze_survivors
from app.runtime.testing import Services
from app.runtime.topics import CLICKS, INTERVENTIONS, REDIS_INTERVENTIONS_STREAM
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
from config.settings import Settings

__all__ = ["RATES", "TARGET_P99_MS", "details", "run", "summary"]

RATES = (1_000, 5_000)
TARGET_P99_MS = 10.0
# A tenth of the events belong to rage-click bursts: ~33 interventions/s at 1 000 events/s.
_BURST_SHARE = 0.1
_WARMUP_S = 2.0
# p99 per window of this many seconds of send time: does latency drift as the topic fills?
_WINDOW_S = 5.0
# Event-time offsets of a burst's clicks: the third one, the trigger, happens "now".
_BURST_OFFSETS_MS = (-400, -200, 0)
# Worker and relay pairs at the first rate, each on fresh brokers (the first pair is the
# main run's).
_PAIRS = 3
_PROCESSING = "nudgeflow_processing_seconds"
# What the worker counted during a phase: were missing interventions ever emitted?
_WORKER_COUNTS: dict[str, tuple[str, dict[str, str]]] = {
    "rage_click_emitted": ("nudgeflow_interventions_total", {"reason": "rage_click"}),
    "suppressed": ("nudgeflow_interventions_suppressed_total", {}),
    "duplicates": ("nudgeflow_events_duplicate_total", {}),
    "rejected": ("nudgeflow_events_rejected_total", {}),
    "redis_errors": ("nudgeflow_delivery_errors_total", {}),
    "full_gcs": ("nudgeflow_gc_pause_seconds_count", {"generation": "2"}),
    "full_gc_seconds": ("nudgeflow_gc_pause_seconds_sum", {"generation": "2"}),
}


def run(scale: float, workdir: Path) -> dict[str, Any]:
    """Idle CPU for ~10 s x ``scale``, then ~20 s x ``scale`` at each rate of ``RATES``,
    through the worker and then through the bare relay; then two more pairs at the first
    rate."""
    return asyncio.run(_run(scale, workdir))


async def _run(scale: float, workdir: Path) -> dict[str, Any]:
    duration_s = scaled(20.0, scale, 1.0)
    idle_s = scaled(10.0, scale, 1.0)
    phases, idle_cpu = await _through_worker(workdir / "nudgeflow", RATES, duration_s, idle_s)
    # The same traffic (same seed) through a bare relay on a broker of its own.
    fetch_max_wait_ms = Settings(broker_flavour="tansu").fetch_max_wait_ms
    relay = await _through_relay(workdir / "relay", RATES, duration_s, fetch_max_wait_ms)
    # Then more pairs at the first rate alone, each on fresh brokers: a p99 of a few hundred
    # triggers moves by a third from run to run, so the ratio is the median of the pairs.
    first = str(RATES[0])
    pairs = [(phases[first], relay[first])]
    for number in range(1, _PAIRS if scale >= 0.5 else 1):
        more, _idle = await _through_worker(workdir / f"pair-{number}", RATES[:1], duration_s)
        more_relay = await _through_relay(workdir / f"relay-{number}", RATES[:1], duration_s,
                                          fetch_max_wait_ms)  # fmt: skip
        pairs.append((more[first], more_relay[first]))
    pair_ratios = [w["latency_ms"]["p99"] / r["latency_ms"]["p99"] for w, r in pairs]
    return {
        "duration_s": duration_s,
        "idle_s": idle_s,
        "idle_cpu_percent": idle_cpu["worker"],
        "idle_broker_cpu_percent": idle_cpu["broker"],
        "burst_share": _BURST_SHARE,
        "rates": phases,
        "relay": relay,
        "relay_fetch_max_wait_ms": fetch_max_wait_ms,
        "pairs_p99_ms": [(w["latency_ms"]["p99"], r["latency_ms"]["p99"]) for w, r in pairs],
        "pair_ratios": pair_ratios,
        "p99_to_relay": statistics.median(pair_ratios),
        "target_p99_ms": TARGET_P99_MS,
        "passed": phases[first]["missing"] == 0
        and phases[first]["latency_ms"]["p99"] <= TARGET_P99_MS,
    }


async def _through_worker(
    workdir: Path, rates: tuple[int, ...], duration_s: float, idle_s: float = 0.0
) -> tuple[dict[str, dict[str, Any]], dict[str, float]]:
    """One worker on a fresh broker: its idle CPU over ``idle_s``, then a phase per rate."""
    async with embedded_stack(workdir) as stack:
        services = stack.services
        env = bench_worker_env(services, workdir)
        async with running_workers([env]) as [worker]:
            cpu = CpuMeter(
                {"worker": worker.process.pid, "broker": stack.broker_pid, "clients": os.getpid()}
            )
            await asyncio.sleep(1.0)  # let start-up work (first commits, metadata) settle
            cpu.reset()
            await asyncio.sleep(idle_s)
            idle_cpu = cpu.read()
            factory = EventFactory(seed=3, customers=10_000)
            phases = {
                str(rate): await _phase(services, factory, rate, duration_s, cpu, web_url(env))
                for rate in rates
            }
    return phases, idle_cpu


async def _through_relay(
    workdir: Path, rates: tuple[int, ...], duration_s: float, fetch_max_wait_ms: int
) -> dict[str, dict[str, Any]]:
    """The bare relay on a fresh broker: a phase per rate."""
    async with (
        embedded_stack(workdir) as stack,
        _running_relay(stack.services.bootstrap, fetch_max_wait_ms) as relay_pid,
    ):
        cpu = CpuMeter({"relay": relay_pid, "broker": stack.broker_pid, "clients": os.getpid()})
        factory = EventFactory(seed=3, customers=10_000)
        return {
            str(rate): await _phase(stack.services, factory, rate, duration_s, cpu)
            for rate in rates
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
    factory: EventFactory,
    rate: int,
    duration_s: float,
    cpu: CpuMeter,
    worker_url: str | None = None,
) -> dict[str, Any]:
    """One rate: warm up, send steadily, wait for the interventions, summarise.

    With ``worker_url`` (a nudgeflow worker) the worker's metrics are read before and
    after, and the Redis stream is read too; without it the reader is the bare relay.
    """
    schedule = _schedule(factory, rate, duration_s)
    warmup = _schedule(factory, rate, _WARMUP_S, prefix="warmup")
    # The schedules are ~10^5 long-lived dicts: out of the collector's scans, so that a
    # full collection in this process does not stall the clocks the figures rest on.
    freeze_survivors()
    triggers = sum(1 for *_, trigger in schedule if trigger)
    sent_ns: dict[str, int] = {}
    arrivals: dict[str, _Arrival] = {}
    redis_ns: dict[str, int] = {}
    consumer = await _consumer_at_end(services.bootstrap, INTERVENTIONS, fetch_max_wait_ms=5)
    redis = aioredis.from_url(services.redis_url)
    # linger 5 ms: what a Kafka client does by default since Kafka 4.0 (KIP-1030); sending
    # each event in a request of its own made the broker, not the worker, the bottleneck.
    producer = AIOKafkaProducer(bootstrap_servers=services.bootstrap, linger_ms=5)
    try:
        await producer.start()
        # The first second of a stream (metadata, connections, first commits) is not the
        # steady state the target speaks of: send it unmeasured.
        await _send_steadily(producer, warmup, rate, {})
        receiving = [asyncio.create_task(_receive(consumer, sent_ns, arrivals))]
        if worker_url:
            last = await redis.xrevrange(REDIS_INTERVENTIONS_STREAM, count=1)
            after_id = last[0][0] if last else b"0-0"
            receiving.append(asyncio.create_task(
                _receive_redis(redis, after_id, sent_ns, redis_ns)
            ))  # fmt: skip
        try:
            before = await _scrape(worker_url) if worker_url else None
            cpu.reset()
            started_ns = time.perf_counter_ns()
            elapsed_s = await _send_steadily(producer, schedule, rate, sent_ns)
            busy = cpu.read()
            deadline = time.perf_counter() + max(10.0, duration_s)
            while time.perf_counter() < deadline and (
                len(arrivals) < triggers or (worker_url and len(redis_ns) < triggers)
            ):
                await asyncio.sleep(0.05)
            after = await _scrape(worker_url) if worker_url else None
        finally:
            for task in receiving:
                task.cancel()
    finally:
        await producer.stop()
        await consumer.stop()
        await redis.aclose()
        gc.unfreeze()
    phase: dict[str, Any] = {
        "rate": rate,
        "sent": len(schedule),
        "achieved_rate": len(schedule) / elapsed_s,
        "triggers": triggers,
        **_path_figures(
            {e: a.latency_ns for e, a in arrivals.items()}, sent_ns, started_ns, triggers
        ),
        "worker_ms": percentiles([a.worker_ms for a in arrivals.values()], (50, 99)),
        "delivery_ms": percentiles([a.delivery_ms for a in arrivals.values()], (50, 99)),
        "cpu_percent": busy,
    }
    if before is not None and after is not None:
        processing = bucket_delta(before.buckets(_PROCESSING), after.buckets(_PROCESSING))
        phase |= {
            "redis": _path_figures(
                {e: arrived - sent_ns[e] for e, arrived in redis_ns.items()},
                sent_ns,
                started_ns,
                triggers,
            ),
            "processing_us": {
                q: histogram_quantile(float(q[1:]) / 100, processing) * 1e6 for q in ("p50", "p99")
            },
            "worker_counts": {
                name: after.total(metric, **labels) - before.total(metric, **labels)
                for name, (metric, labels) in _WORKER_COUNTS.items()
            },
        }
    return phase


def _path_figures(
    latency_ns: dict[str, int], sent_ns: dict[str, int], started_ns: int, triggers: int
) -> dict[str, Any]:
    """Counts, percentiles, p99 per window and every latency (ms, sorted) of one path."""
    latencies_ms = sorted(ns / 1e6 for ns in latency_ns.values())
    return {
        "received": len(latencies_ms),
        "missing": triggers - len(latencies_ms),
        "latency_ms": {
            **percentiles(latencies_ms, (50, 99, 99.9)),
            "max": max(latencies_ms, default=float("nan")),
        },
        "window_p99_ms": _window_p99_ms(
            [(sent_ns[event_id] - started_ns, ns) for event_id, ns in latency_ns.items()]
        ),
        "latencies_ms": latencies_ms,
    }


def _window_p99_ms(sent_and_latency_ns: list[tuple[int, int]]) -> list[float]:
    """p99 latency (ms) of the triggers sent in each ``_WINDOW_S`` of the phase, in order.

    Examples
    --------
    >>> _window_p99_ms([(0, 1_000_000), (6_000_000_000, 3_000_000)])
    [1.0, 3.0]
    """
    windows: dict[int, list[float]] = {}
    for sent, latency in sent_and_latency_ns:
        windows.setdefault(int(sent / 1e9 // _WINDOW_S), []).append(latency / 1e6)
    return [percentiles(windows[w], (99,))["p99"] for w in sorted(windows)]


async def _scrape(url: str) -> MetricsSnapshot:
    async with aiohttp.ClientSession() as session:
        return await scrape(session, url)


async def _consumer_at_end(bootstrap: str, topic: str, fetch_max_wait_ms: int) -> AIOKafkaConsumer:
    """A started consumer, no group, positioned at the end of every partition of ``topic``."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=fetch_max_wait_ms
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
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
                value = orjson.loads(record.value)
                event_id = value["event_id"]
                if event_id in sent_ns and event_id not in arrivals:
                    arrivals[event_id] = _Arrival(
                        arrived_ns - sent_ns[event_id],
                        value["emitted_ts"] - value["event_ts"],
                        arrived_ms - value["emitted_ts"],
                    )


async def _receive_redis(
    redis: aioredis.Redis, after_id: Any, sent_ns: dict[str, int], arrivals_ns: dict[str, int]
) -> None:
    """Read the Redis stream of interventions as a chatbot would (XREAD, blocking)."""
    while True:
        answer: Any = await redis.xread(
            {REDIS_INTERVENTIONS_STREAM: after_id}, count=1000, block=1000
        )
        arrived_ns = time.perf_counter_ns()
        for _stream, entries in answer:
            for entry_id, fields in entries:
                after_id = entry_id
                event_id = orjson.loads(fields[b"data"])["event_id"]
                if event_id in sent_ns and event_id not in arrivals_ns:
                    arrivals_ns[event_id] = arrived_ns


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


@asynccontextmanager
async def _running_relay(bootstrap: str, fetch_max_wait_ms: int) -> AsyncIterator[int]:
    """Run the bare relay in a process of its own (as the worker is); yield its pid."""
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Event(), context.Event()
    process = context.Process(
        target=_relay_main, args=(bootstrap, fetch_max_wait_ms, ready, stop), daemon=True
    )
    process.start()
    try:
        if not await asyncio.to_thread(ready.wait, 30.0):
            raise RuntimeError("the relay did not get ready in 30 s")
        assert process.pid is not None
        yield process.pid
    finally:
        stop.set()
        await asyncio.to_thread(process.join, 10.0)
        if process.is_alive():
            process.kill()
            await asyncio.to_thread(process.join, 5.0)


def _relay_main(
    bootstrap: str, fetch_max_wait_ms: int, ready: ProcessEvent, stop: ProcessEvent
) -> None:
    asyncio.run(_relay(bootstrap, fetch_max_wait_ms, ready, stop))


async def _relay(
    bootstrap: str, fetch_max_wait_ms: int, ready: ProcessEvent, stop: ProcessEvent
) -> None:
    """Forward each customer's third ``#pay`` click to ``interventions``; nothing else.

    It reads ``clicks`` with the worker's fetch wait and produces like the worker's
    producer (no linger, sends not awaited one by one): the broker's own cost of the
    two hops an intervention takes, with no state, changelog, Redis or Faust.
    """
    consumer = await _consumer_at_end(bootstrap, CLICKS, fetch_max_wait_ms)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    try:
        await producer.start()
        freeze_survivors()  # as the worker does: its imports are not scanned again
        ready.set()
        pay_clicks: Counter[str] = Counter()
        parent = os.getppid()
        while not stop.is_set() and os.getppid() == parent:  # gone with a killed benchmark
            batches = await consumer.getmany(timeout_ms=100)
            for records in batches.values():
                for record in records:
                    event = orjson.loads(record.value)
                    if event.get("element") != "#pay":
                        continue
                    pay_clicks[event["customer_id"]] += 1
                    if pay_clicks[event["customer_id"]] == 3:
                        forwarded = {"event_id": event["event_id"], "event_ts": event["ts"],
                                     "emitted_ts": int(time.time() * 1000)}  # fmt: skip
                        await producer.send(INTERVENTIONS, orjson.dumps(forwarded), key=record.key)
    finally:
        await producer.stop()
        await consumer.stop()


def summary(result: dict[str, Any]) -> list[Row]:
    rows = []
    for i, phase in enumerate(result["rates"].values()):
        value = f"{phase['latency_ms']['p99']:.1f} ms"
        if phase["missing"]:
            value += f" ({phase['missing']} of {phase['triggers']} missing)"
        figure = f"event → intervention p99 at {num(phase['rate'])} events/s"
        target = (f"≤ {TARGET_P99_MS:g} ms", verdict(result["passed"])) if i == 0 else ()
        rows.append(Row("latency", figure, value, *target))
    first = str(RATES[0])
    worker, relay = result["rates"][first], result["relay"][first]
    rows += [
        Row("latency", f"bare relay on the same broker, p99 at {num(RATES[0])} events/s",
            f"{relay['latency_ms']['p99']:.1f} ms"),
        Row("latency", f"nudgeflow ÷ bare relay, p99 at {num(RATES[0])} events/s "
            f"(median of {_count_pairs(result)})",
            f"{result['p99_to_relay']:.2f}", "≤ 1.2", verdict(result["p99_to_relay"] <= 1.2)),
        Row("latency", f"event → Redis stream p99 at {num(RATES[0])} events/s",
            f"{worker['redis']['latency_ms']['p99']:.1f} ms"),
        Row("latency", "idle worker CPU", f"{result['idle_cpu_percent']:.1f} % of a core"),
    ]  # fmt: skip
    return rows


def _ms(values: dict[str, float], *keys: str) -> str:
    return " / ".join(f"{values[k]:.1f}" for k in keys) + " ms"


def _windows(phase: dict[str, Any]) -> str:
    return " → ".join(f"{v:.0f}" for v in phase["window_p99_ms"]) + " ms"


def _count_pairs(result: dict[str, Any]) -> str:
    count = len(result["pair_ratios"])
    return "1 pair" if count == 1 else f"{count} pairs"


def _pairs(result: dict[str, Any]) -> str:
    pairs = zip(result["pairs_p99_ms"], result["pair_ratios"], strict=True)
    return "; ".join(
        f"{worker:.1f} ms ÷ {relay:.1f} ms = {ratio:.2f}" for (worker, relay), ratio in pairs
    )


def details(result: dict[str, Any]) -> str:
    end_to_end = [
        "| rate | path | sent (achieved/s) | interventions (missing) | p50 / p99 / p99.9 / max "
        f"| p99 per {_WINDOW_S:g} s of the phase |",
        "|---|---|---|---|---|---|",
    ]
    breakdown = [
        "| rate | path | send → emitted p50 / p99 | emitted → received p50 / p99 "
        "| one event in the worker p50 / p99 | CPU: worker or relay / broker / clients |",
        "|---|---|---|---|---|---|",
    ]
    counted = [
        "| rate | triggers sent | rage_click interventions emitted | suppressed | duplicates "
        "| rejected | Redis errors | full garbage collections (their time) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, phase in result["rates"].items():
        relay = result["relay"][key]
        rate = f"{num(phase['rate'])}/s"
        paths = (("nudgeflow → `interventions`", phase), ("nudgeflow → Redis stream",
                 phase["redis"] | {"sent": phase["sent"], "achieved_rate": phase["achieved_rate"]}),
                 ("bare relay → `interventions`", relay))  # fmt: skip
        for path, p in paths:
            end_to_end.append(
                f"| {rate} | {path} | {num(p['sent'])} ({num(p['achieved_rate'])}) "
                f"| {num(p['received'])} ({p['missing']}) "
                f"| {_ms(p['latency_ms'], 'p50', 'p99', 'p99.9', 'max')} | {_windows(p)} |"
            )
        processing = phase["processing_us"]
        in_worker = f"{processing['p50']:.0f} / {processing['p99']:.0f} µs"
        for path, p, inside in (("nudgeflow", phase, in_worker), ("bare relay", relay, "none")):
            breakdown.append(
                f"| {rate} | {path} | {p['worker_ms']['p50']:.0f} / {p['worker_ms']['p99']:.0f} ms "
                f"| {p['delivery_ms']['p50']:.1f} / {p['delivery_ms']['p99']:.1f} ms | {inside} "
                f"| {' / '.join(f'{v:.0f} %' for v in p['cpu_percent'].values())} |"
            )
        counts = phase["worker_counts"]
        counted.append(
            f"| {rate} | {num(phase['triggers'])} "
            f"| {num(counts['rage_click_emitted'])} | {num(counts['suppressed'])} "
            f"| {num(counts['duplicates'])} | {num(counts['rejected'])} "
            f"| {num(counts['redis_errors'])} "
            f"| {num(counts['full_gcs'])} ({counts['full_gc_seconds'] * 1000:.0f} ms) |"
        )
    return f"""\
One worker; each rate runs for {result["duration_s"]:.0f} s, after {_WARMUP_S:.0f} s of the same
traffic, not measured (producer metadata, connections, first commits), and the
{num(RATES[1])}/s phase follows the {num(RATES[0])}/s one on the same broker.
{result["burst_share"]:.0%} of the events belong to rage-click bursts of fresh customers
(three clicks on `#pay`, 200 ms apart in event time, sent at the stream's rate); the rest is
the browsing mix of the throughput benchmark. The producer lingers 5 ms, a Kafka client's
default since Kafka 4.0. Latency runs from the producer's `send()` of a burst's third click
to the arrival of its intervention at a consumer of `interventions` (`fetch_max_wait_ms=5`)
and, for nudgeflow, at a reader of the Redis stream (`XREAD BLOCK`); producer and readers
share this process, and broker, worker and clients share the machine's cores.

The **bare relay** gets the same traffic on a fresh broker of its own: a process that reads
`clicks` with the worker's fetch wait ({result["relay_fetch_max_wait_ms"]} ms) and forwards
each customer's third `#pay` click to `interventions`, with no state, changelog, Redis or
Faust. It is what the broker alone costs an event that goes in and comes back out.
A p99 of a few hundred triggers moves by a third from run to run, so worker and relay run
again at {num(RATES[0])} events/s, each pair on fresh brokers: nudgeflow's p99 is
**{result["p99_to_relay"]:.2f}x** the relay's, the median of {_count_pairs(result)}
({_pairs(result)}).

{chr(10).join(end_to_end)}

The last column is the p99 of the triggers sent in each {_WINDOW_S:g} s of a phase, in order.
On the embedded broker it climbs for nudgeflow and the bare relay alike: every fetch lists
all the record batches a partition holds, so each one costs more as the topic fills (see
the broker benchmark below).

Where the time goes (wall clock, 1 ms resolution): *send → emitted* is the trigger's event
time (set when it is sent) to the intervention's `emitted_ts` (the relay's forwarding time),
i.e. broker in + worker; *emitted → received* is delivery back through the broker to the
consumer. The fifth column is `nudgeflow_processing_seconds` over the same phase, quantiles
interpolated inside the histogram's buckets as Prometheus does. CPU is each process's use
while the phase sends, in % of one core (`psutil`; "clients" is this process: producer and
readers); the machine has two cores for all three, and for anything else running on it.

{chr(10).join(breakdown)}

What the worker counted during each phase (`/metrics` before and after), so a missing
intervention can be told apart: never emitted, or emitted and not delivered. The last column
is the full (generation 2) garbage collections the worker ran, and their pauses added up
(`nudgeflow_gc_pause_seconds`): every event that arrives during one waits for it. The
worker freezes its survivors out of the collector's scans every \
{Settings().gc_freeze_interval_s:g} s (`NUDGEFLOW_GC_FREEZE_INTERVAL_S`); this process freezes
its schedules of events, and the relay its start-up objects, so that their own collections do
not skew the figures.

{chr(10).join(counted)}

Target: p99 ≤ {TARGET_P99_MS:g} ms at {num(RATES[0])} events/s: **{verdict(result["passed"])}**.

An idle worker (ready, no traffic, {result["idle_s"]:.0f} s) uses
**{result["idle_cpu_percent"]:.1f} %** of one core (`psutil`); the idle broker beside it
{result["idle_broker_cpu_percent"]:.1f} %.
"""
