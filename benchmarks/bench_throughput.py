"""Throughput: one nudgeflow worker draining a pre-filled ``clicks``, against a raw consumer.

The topic is filled before anything reads it, so every reader sees the same backlog.
The raw consumer (aiokafka + ``orjson.loads``, nothing else) is the ceiling a Python
consumer on this broker can reach; the worker's rate is timed from its first handled
event to its last, from ``/metrics`` polled every 250 ms (it starts consuming as soon
as it joins the group, before ``/readyz`` says so). A second worker with learning off
(and its own consumer group) then drains the same topic, and a third that holds only a
fifth of the customers' states decoded. Three rounds of all four, each figure their median.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from app.runtime.topics import CLICKS
from benchmarks._common import (
    APP_ID,
    PARTITIONS,
    BenchStack,
    CpuMeter,
    EventFactory,
    Progress,
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
_LEARNING_OFF_APP_ID = f"{APP_ID}-learning-off"
_FEW_DECODED_APP_ID = f"{APP_ID}-few-decoded"
# States held decoded by the third worker: the others are decoded when read.
_FEW_DECODED = _CUSTOMERS // 5
# Rounds of raw consumer, worker and worker with learning off, one after the other: single
# runs move by ±15 % with the machine, so each figure is the median of the rounds.
_ROUNDS = 3
_RATES = (
    "raw_events_per_s",
    "worker_events_per_s",
    "worker_steady_events_per_s",
    "learning_off_events_per_s",
    "learning_off_steady_events_per_s",
    "few_decoded_events_per_s",
)


def run(scale: float, workdir: Path) -> dict[str, Any]:
    """Fill ``clicks`` with ~200 000 x ``scale`` events, then time a raw consumer and a worker."""
    return asyncio.run(_run(scale, workdir))


async def _run(scale: float, workdir: Path) -> dict[str, Any]:
    n = int(scaled(200_000, scale, 2_000))
    start_ts_ms = int(time.time() * 1000) - _HISTORY_MS
    events = EventFactory(seed=1, customers=_CUSTOMERS).mixed(n, start_ts_ms, _HISTORY_MS / n)
    event_bytes = sum(len(encode(e)[1]) for e in events) / n
    rounds = []
    async with embedded_stack(workdir) as stack:
        services = stack.services
        await produce_events(services.bootstrap, events)
        del events
        for number in range(_ROUNDS if scale >= 0.5 else 1):
            # Each drain its own app id: its own consumer group (from the first offset
            # again) and changelogs.
            raw_rate = await _raw_consumer_rate(services.bootstrap, n)
            on_env = bench_worker_env(services, workdir, f"worker-{number}")
            if number:
                on_env.update(NUDGEFLOW_APP_ID=f"{APP_ID}-round-{number}")
            on, on_cpu = await _drain(on_env, n, stack)
            off_env = bench_worker_env(services, workdir, f"worker-learning-off-{number}")
            off_env.update(NUDGEFLOW_APP_ID=f"{_LEARNING_OFF_APP_ID}-{number}",
                           NUDGEFLOW_LEARNING_ENABLED="false")  # fmt: skip
            off, off_cpu = await _drain(off_env, n, stack)
            few_env = bench_worker_env(services, workdir, f"worker-few-decoded-{number}")
            few_env.update(NUDGEFLOW_APP_ID=f"{_FEW_DECODED_APP_ID}-{number}",
                           NUDGEFLOW_DECODED_STATES_MAX=str(_FEW_DECODED))  # fmt: skip
            few, _ = await _drain(few_env, n, stack)
            rounds.append({
                "raw_events_per_s": raw_rate,
                "worker_events_per_s": on.rate(),
                "worker_steady_events_per_s": on.steady_rate(),
                "worker_handled": on.handled,
                "worker_complete": on.complete,
                "draining_cpu_percent": on_cpu,
                "learning_off_events_per_s": off.rate(),
                "learning_off_steady_events_per_s": off.steady_rate(),
                "learning_off_handled": off.handled,
                "learning_off_complete": off.complete,
                "learning_off_cpu_percent": off_cpu,
                "few_decoded_events_per_s": few.rate(),
                "few_decoded_handled": few.handled,
                "few_decoded_complete": few.complete,
            })  # fmt: skip
    # The round whose worker rate is the median speaks for the run (its CPU use too); the
    # rates are each the median over the rounds.
    middle = sorted(rounds, key=lambda r: r["worker_events_per_s"])[len(rounds) // 2]
    result: dict[str, Any] = {
        **middle,
        **{key: statistics.median(r[key] for r in rounds) for key in _RATES},
        "worker_complete": all(r["worker_complete"] for r in rounds),
        "learning_off_complete": all(r["learning_off_complete"] for r in rounds),
        "few_decoded_complete": all(r["few_decoded_complete"] for r in rounds),
        "few_decoded": _FEW_DECODED,
        "rounds": rounds,
        "events": n,
        "customers": _CUSTOMERS,
        "partitions": PARTITIONS,
        "event_bytes_mean": event_bytes,
        "target_events_per_s": TARGET_EVENTS_PER_S,
    }
    worker_rate, off_rate = result["worker_events_per_s"], result["learning_off_events_per_s"]
    result["worker_to_raw"] = worker_rate / result["raw_events_per_s"]
    result["learning_on_to_off"] = worker_rate / off_rate if off_rate else float("nan")
    result["passed"] = result["worker_complete"] and worker_rate >= TARGET_EVENTS_PER_S
    return result


async def _drain(
    env: dict[str, str], n: int, stack: BenchStack
) -> tuple[Progress, dict[str, float]]:
    """Start a worker on ``env``, watch it handle ``n`` events; its progress and the CPU used."""
    watching = asyncio.create_task(
        watch_progress([web_url(env)], n, timeout_s=max(60.0, n / 1_000))
    )
    try:
        async with running_workers([env]) as [worker]:
            cpu = CpuMeter({"worker": worker.process.pid, "broker": stack.broker_pid})
            progress = await watching
            return progress, cpu.read()
    finally:
        watching.cancel()


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
        Row("throughput", "worker events/s, learning off",
            num(result["learning_off_events_per_s"])),
        Row("throughput", "worker learning on ÷ off", f"{result['learning_on_to_off']:.2f}"),
        Row("throughput", f"worker events/s, {num(result['few_decoded'])} states decoded of "
            f"{num(result['customers'])} customers", num(result["few_decoded_events_per_s"])),
    ]  # fmt: skip


def details(result: dict[str, Any]) -> str:
    complete = "".join(
        f"\n**The {who} handled only {num(result[handled])} events before the time-out; its "
        "rates are over those.**\n"
        for who, done, handled in (
            ("worker", "worker_complete", "worker_handled"),
            ("worker with learning off", "learning_off_complete", "learning_off_handled"),
            ("worker with few states decoded", "few_decoded_complete", "few_decoded_handled"),
        )
        if not result[done]
    )
    rounds = result.get("rounds", [])
    times = "once" if len(rounds) == 1 else f"{len(rounds)} times over"
    per_round = "\n".join(
        f"| {i} | {num(r['raw_events_per_s'])} | {num(r['worker_events_per_s'])} | "
        f"{num(r['learning_off_events_per_s'])} | {num(r['few_decoded_events_per_s'])} |"
        for i, r in enumerate(rounds, 1)
    )
    return f"""\
`clicks` ({result["partitions"]} partitions) is filled with {num(result["events"])} valid
events ({result["event_bytes_mean"]:.0f} bytes of JSON on average; page views, product views,
clicks, scrolls, searches, carts, forms and checkout steps) of {num(result["customers"])}
customers, produced in large batches before any reader starts. Then, {times}: a raw
consumer reads them all, a worker drains them, a worker with
`NUDGEFLOW_LEARNING_ENABLED=false` drains them, and a worker with
`NUDGEFLOW_DECODED_STATES_MAX={result["few_decoded"]}` (so that most reads decode the
customer's state, and most writes encode another's) drains them, each worker with an app id
of its own (so its own consumer group, from the first offset again, and its own changelogs).
Single runs move by ±15 % with the machine; each figure below is the median of the rounds.
{complete}
| reader (median of the rounds) | events/s |
|---|---|
| raw aiokafka consumer, `orjson.loads` only | {num(result["raw_events_per_s"])} |
| nudgeflow worker, first to last event | {num(result["worker_events_per_s"])} |
| nudgeflow worker, middle 80 % (steady state) | {num(result["worker_steady_events_per_s"])} |
| nudgeflow worker, learning off, first to last event | \
{num(result["learning_off_events_per_s"])} |
| nudgeflow worker, learning off, middle 80 % | \
{num(result["learning_off_steady_events_per_s"])} |
| nudgeflow worker, {num(result["few_decoded"])} states decoded, first to last event | \
{num(result["few_decoded_events_per_s"])} |

| round | raw consumer | worker | worker, learning off | worker, few decoded |
|---|---|---|---|---|
{per_round}

The worker runs at **{result["worker_to_raw"]:.2f}x** the raw consumer's rate; the target is
{num(TARGET_EVENTS_PER_S)} events/s per worker: **{verdict(result["passed"])}**. The raw
consumer is timed from its seek to the beginning to its last record. The worker is timed from
the first `/metrics` poll (every 250 ms) that shows a handled event to the first that shows
all of them (processed + duplicate + rejected); the steady state is the time between 10 % and
90 % of them, interpolated between polls. With learning on, the worker runs at
**{result["learning_on_to_off"]:.2f}x** its rate with learning off; the models section times
the learner's share of an event in one process, without Kafka.

While they drained (from `/readyz` to the last event, in the round of the median worker) the
worker used {result["draining_cpu_percent"]["worker"]:.0f} % of one core and the broker
{result["draining_cpu_percent"]["broker"]:.0f} %; with learning off,
{result["learning_off_cpu_percent"]["worker"]:.0f} % and
{result["learning_off_cpu_percent"]["broker"]:.0f} % (`psutil`; 2 cores in all).
"""
