"""Soak: `nudgeflow up` under 1 000 events/s through HTTP for 20 minutes, minute by minute.

``nudgeflow up`` runs as a user starts it (its own embedded broker and Redis, the worker
in its process); a client posts a steady 1 000 events/s to its collector in batches of
50 (browsing, plus rage-click bursts of fresh customers that each end in an
intervention) and reads the interventions from the Redis stream (``XREAD BLOCK``, as
``nudgeflow up``'s own screen and a chatbot do) and from the ``interventions`` topic.
Each minute it records event → intervention p50 / p99 of the triggers sent in it, the
RSS of the worker (the ``up`` process) and of the broker, the ``clicks`` consumer lag
(``nudgeflow_consumer_lag_records``) and the CPU both used. Tansu's memory storage keeps
every record batch and lists all of a partition's on each fetch (see the broker
benchmark), so this is how the embedded stack ages.

Alone: ``python -m benchmarks soak --minutes 20`` (its section of ``RESULTS.md`` only).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import orjson
import psutil
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, TopicPartition

from app.runtime.embedded import free_port
from app.runtime.topics import CLICKS, INTERVENTIONS, REDIS_INTERVENTIONS_STREAM
from benchmarks._common import PARTITIONS, EventFactory, percentiles, scrape
from benchmarks._report import Row, num

__all__ = ["FULL_MINUTES", "PNG", "RATE", "details", "plot", "run", "run_minutes", "summary"]

RATE = 1_000
FULL_MINUTES = 20.0
PNG = "soak.png"
# A shop's tracker sends small batches (one a page's 150 ms, up to 20 events); many
# browsers at 1 000 events/s make requests of a few dozen on a collector behind a proxy.
_BATCH_EVENTS = 50
# Requests in flight at once; more than the worker answers in time means we fall behind.
_LANES = 8
# A tenth of the events belong to rage-click bursts: ~33 interventions/s.
_BURST_SHARE = 0.1
_BURST_OFFSETS_MS = (-400, -200, 0)
_TICK_S = 0.05
_READY_TIMEOUT_S = 120.0
_DRAIN_S = 10.0
_LAG = "nudgeflow_consumer_lag_records"


def run(scale: float, workdir: Path) -> dict[str, Any]:
    """``FULL_MINUTES`` x ``scale`` of soak (at least 6 s, as the smoke test runs it)."""
    return run_minutes(max(0.1, FULL_MINUTES * scale), workdir)


def run_minutes(minutes: float, workdir: Path) -> dict[str, Any]:
    """Soak a fresh ``nudgeflow up`` for ``minutes``; per-minute figures (shorter windows
    for a run under 3 minutes, three of them)."""
    return asyncio.run(_run(minutes * 60, workdir))


@dataclass
class _Window:
    """What one window of the soak saw."""

    sent: int = 0
    accepted: int = 0
    failed_requests: int = 0
    request_ms: list[float] = field(default_factory=list)
    # Trigger event id → perf_counter_ns of the POST that carried it.
    triggers: dict[str, int] = field(default_factory=dict)


@dataclass
class _Arrivals:
    """perf_counter_ns at which each trigger's intervention arrived, per channel."""

    redis: dict[str, int] = field(default_factory=dict)
    kafka: dict[str, int] = field(default_factory=dict)


async def _run(duration_s: float, workdir: Path) -> dict[str, Any]:
    window_s = min(60.0, duration_s / 3)
    windows = [_Window() for _ in range(max(1, round(duration_s / window_s)))]
    samples: list[dict[str, Any]] = []
    arrivals = _Arrivals()
    async with _running_up(workdir) as up:
        readers = [
            asyncio.create_task(_read_redis(up.redis_url, arrivals.redis)),
            asyncio.create_task(await _read_kafka(up.bootstrap, arrivals.kafka)),
        ]
        try:
            sampler = _Sampler(up)
            factory = EventFactory(seed=11, customers=50_000)
            async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=_LANES),
                timeout=aiohttp.ClientTimeout(total=30),
            ) as session:
                started = time.perf_counter()
                for index, window in enumerate(windows):
                    end = started + (index + 1) * window_s
                    await _send_window(session, up.web_url, factory, window, index, end)
                    samples.append(await sampler.sample(session, time.perf_counter() - started))
            await asyncio.sleep(_DRAIN_S)
        finally:
            for reader in readers:
                reader.cancel()
        warnings = up.warnings()
    return _figures(windows, samples, arrivals, window_s, duration_s, warnings)


@dataclass
class _Up:
    process: subprocess.Popen[bytes]
    web_url: str
    bootstrap: str
    redis_url: str
    log_path: Path
    broker: psutil.Process

    def warnings(self) -> list[str]:
        """What ``nudgeflow up`` warned about on the terminal (the monitor's advice)."""
        text = self.log_path.read_text(errors="replace")
        return [line for line in text.splitlines() if line.startswith("nudgeflow: warning")]


@contextlib.asynccontextmanager
async def _running_up(workdir: Path) -> AsyncIterator[_Up]:
    """``nudgeflow up`` on free ports and a data directory of its own, until the end."""
    web, broker, redis = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUDGEFLOW_")}
    # Every trigger's intervention is awaited: no holdout group; one client: no rate limit.
    env |= {"NUDGEFLOW_DATA_DIR": str(workdir / "up"), "NUDGEFLOW_HOLDOUT_SHARE": "0",
            "NUDGEFLOW_RATE_LIMIT_IP_PER_S": "0"}  # fmt: skip
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "up.out"
    argv = [sys.executable, "-m", "app", "up", "--web-port", str(web),
            "--broker-port", str(broker), "--redis-port", str(redis)]  # fmt: skip
    with open(log_path, "wb") as log:
        process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT)  # fmt: skip
    try:
        web_url = f"http://127.0.0.1:{web}"
        await _wait_ready(process, web_url, log_path)
        tansu = [c for c in psutil.Process(process.pid).children() if "broker" in c.cmdline()]
        yield _Up(process, web_url, f"127.0.0.1:{broker}", f"redis://127.0.0.1:{redis}/0",
                  log_path, tansu[0])  # fmt: skip
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(process.wait, 30)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait, 10)


async def _wait_ready(process: subprocess.Popen[bytes], web_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT_S
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"nudgeflow up exited: {log_path.read_text()[-2000:]}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(f"{web_url}/readyz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"nudgeflow up not ready in {_READY_TIMEOUT_S:.0f} s")


def _second_of_events(factory: EventFactory, second: int) -> list[tuple[dict[str, Any], int, bool]]:
    """One second of traffic in send order: (event, ts offset ms, triggers an intervention)."""
    bursts = int(RATE * _BURST_SHARE / 3)
    units: list[list[tuple[dict[str, Any], int, bool]]] = [
        [(event, 0, False)] for event in factory.mixed(RATE - 3 * bursts, 0, 0)
    ]
    for b in range(bursts):
        customer = f"soak-{second:06d}-{b:03d}"
        clicks = factory.rage_burst(customer, f"{customer}-s")
        units.append([(c, offset, i == 2) for i, (c, offset)
                      in enumerate(zip(clicks, _BURST_OFFSETS_MS, strict=True))])  # fmt: skip
    order = factory.rng.permutation(len(units))
    # Reversed: the sender pops from the end, so a burst's clicks go out in their order.
    return [item for u in order for item in units[u]][::-1]


async def _send_window(
    session: aiohttp.ClientSession,
    web_url: str,
    factory: EventFactory,
    window: _Window,
    index: int,
    end: float,
) -> None:
    """Post ``RATE`` events/s until ``end`` (perf_counter), ``_BATCH_EVENTS`` a request."""
    url = f"{web_url}/v1/events"
    in_flight: set[asyncio.Task[None]] = set()
    second = index * 10_000  # burst customers' ids stay unique across windows
    queue: list[tuple[dict[str, Any], int, bool]] = []
    started, taken = time.perf_counter(), 0
    while (now := time.perf_counter()) < end:
        owed = int(RATE * (now - started)) - taken
        batch: list[tuple[dict[str, Any], int, bool]] = []
        while len(batch) < owed:
            if not queue:
                queue, second = _second_of_events(factory, second), second + 1
            batch.append(queue.pop())
        taken += len(batch)
        now_ms = int(time.time() * 1000)
        for start in range(0, len(batch), _BATCH_EVENTS):
            chunk = batch[start : start + _BATCH_EVENTS]
            for event, offset_ms, _ in chunk:
                event["ts"] = now_ms + offset_ms
            while len(in_flight) >= _LANES:
                _, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            in_flight.add(asyncio.create_task(_post(session, url, chunk, window)))
        await asyncio.sleep(max(0.0, now + _TICK_S - time.perf_counter()))
    if in_flight:
        await asyncio.wait(in_flight)


async def _post(
    session: aiohttp.ClientSession,
    url: str,
    chunk: list[tuple[dict[str, Any], int, bool]],
    window: _Window,
) -> None:
    body = orjson.dumps({"events": [event for event, _, _ in chunk]})
    sent_ns = time.perf_counter_ns()
    for event, _, trigger in chunk:
        if trigger:
            window.triggers[event["event_id"]] = sent_ns
    window.sent += len(chunk)
    try:
        async with session.post(
            url, data=body, headers={"Content-Type": "application/json"}
        ) as response:
            answer = await response.read()
    except (aiohttp.ClientError, TimeoutError):
        window.failed_requests += 1
        return
    window.request_ms.append((time.perf_counter_ns() - sent_ns) / 1e6)
    if response.status == 202:
        window.accepted += int(orjson.loads(answer)["accepted"])
    else:
        window.failed_requests += 1


async def _read_redis(redis_url: str, arrived: dict[str, int]) -> None:
    client = aioredis.from_url(redis_url)
    last_id: Any = "$"
    try:
        while True:
            answer: Any = await client.xread(
                {REDIS_INTERVENTIONS_STREAM: last_id}, count=1000, block=1000
            )
            now_ns = time.perf_counter_ns()
            for _stream, entries in answer:
                for entry_id, fields in entries:
                    last_id = entry_id
                    arrived.setdefault(orjson.loads(fields[b"data"])["event_id"], now_ns)
    finally:
        await client.aclose()


async def _read_kafka(bootstrap: str, arrived: dict[str, int]) -> Coroutine[Any, Any, None]:
    """A consumer of ``interventions`` at its end now; the coroutine that reads it."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                fetch_max_wait_ms=5)  # fmt: skip
    await consumer.start()
    partitions = [TopicPartition(INTERVENTIONS, p) for p in range(PARTITIONS)]
    consumer.assign(partitions)
    await consumer.seek_to_end(*partitions)
    for partition in partitions:
        await consumer.position(partition)

    async def read() -> None:
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=100)
                now_ns = time.perf_counter_ns()
                for records in batches.values():
                    for record in records:
                        arrived.setdefault(orjson.loads(record.value)["event_id"], now_ns)
        finally:
            await consumer.stop()

    return read()


class _Sampler:
    """RSS, CPU and the consumer lag at the end of each window."""

    def __init__(self, up: _Up) -> None:
        self._up = up
        self._worker = psutil.Process(up.process.pid)
        for process in (self._worker, up.broker):
            process.cpu_percent(None)

    async def sample(self, session: aiohttp.ClientSession, at_s: float) -> dict[str, Any]:
        try:
            lag = (await scrape(session, self._up.web_url)).total(_LAG, topic=CLICKS)
        except (aiohttp.ClientError, TimeoutError):
            lag = float("nan")
        return {
            "at_s": at_s,
            "worker_rss_mb": self._worker.memory_info().rss / 2**20,
            "broker_rss_mb": self._up.broker.memory_info().rss / 2**20,
            "worker_cpu_percent": self._worker.cpu_percent(None),
            "broker_cpu_percent": self._up.broker.cpu_percent(None),
            "clicks_lag": lag,
        }


def _figures(
    windows: list[_Window],
    samples: list[dict[str, Any]],
    arrivals: _Arrivals,
    window_s: float,
    duration_s: float,
    warnings: list[str],
) -> dict[str, Any]:
    rows = []
    for window, sample in zip(windows, samples, strict=True):
        redis_ms = [(arrivals.redis[e] - t) / 1e6 for e, t in window.triggers.items()
                    if e in arrivals.redis]  # fmt: skip
        kafka_ms = [(arrivals.kafka[e] - t) / 1e6 for e, t in window.triggers.items()
                    if e in arrivals.kafka]  # fmt: skip
        rows.append({
            **sample,
            "sent": window.sent,
            "accepted": window.accepted,
            "failed_requests": window.failed_requests,
            "achieved_rate": window.sent / window_s,
            "request_ms": percentiles(window.request_ms, (50, 99)),
            "triggers": len(window.triggers),
            "missing": len(window.triggers) - len(redis_ms),
            "latency_ms": percentiles(redis_ms, (50, 99)),
            "kafka_latency_ms": percentiles(kafka_ms, (50, 99)),
        })  # fmt: skip
    fresh = rows[0]["latency_ms"]["p50"]
    over = [i for i, r in enumerate(rows) if r["latency_ms"]["p50"] > 2 * fresh]
    return {
        "rate": RATE,
        "batch_events": _BATCH_EVENTS,
        "duration_s": duration_s,
        "window_s": window_s,
        "windows": rows,
        "fresh_p50_ms": fresh,
        # Windows (from 1) at whose end p50 was still within 2x the first's; None: all were.
        "within_2x_windows": over[0] if over else None,
        "p50_growth": rows[-1]["latency_ms"]["p50"] / fresh if fresh else float("nan"),
        "missing": sum(r["missing"] for r in rows),
        "accepted": sum(r["accepted"] for r in rows),
        "monitor_warnings": warnings,
    }


def _when(result: dict[str, Any], windows: float) -> str:
    return f"{windows * result['window_s'] / 60:.1f} min"


def summary(result: dict[str, Any]) -> list[Row]:
    first, last = result["windows"][0], result["windows"][-1]
    length = _when(result, len(result["windows"]))
    within = result["within_2x_windows"]
    return [
        Row("soak", f"event → Redis p50 / p99, first → last window of {length} at "
            f"{num(RATE)} events/s (HTTP)",
            f"{first['latency_ms']['p50']:.0f} / {first['latency_ms']['p99']:.0f} → "
            f"{last['latency_ms']['p50']:.0f} / {last['latency_ms']['p99']:.0f} ms"),
        Row("soak", "time within 2x the first window's p50",
            f"all {length}" if within is None else _when(result, within)),
        Row("soak", "worker / broker RSS, first → last window",
            f"{first['worker_rss_mb']:.0f} → {last['worker_rss_mb']:.0f} / "
            f"{first['broker_rss_mb']:.0f} → {last['broker_rss_mb']:.0f} MiB"),
        Row("soak", "clicks consumer lag, last window", f"{num(last['clicks_lag'])} records"),
    ]  # fmt: skip


def details(result: dict[str, Any]) -> str:
    window = f"{result['window_s']:.0f} s"
    rows = "\n".join(
        f"| {r['at_s'] / 60:.1f} | {num(r['achieved_rate'])} ({r['failed_requests']}) "
        f"| {r['request_ms']['p50']:.0f} / {r['request_ms']['p99']:.0f} ms "
        f"| {num(r['triggers'])} ({r['missing']}) "
        f"| {r['latency_ms']['p50']:.0f} / {r['latency_ms']['p99']:.0f} ms "
        f"| {r['kafka_latency_ms']['p50']:.0f} / {r['kafka_latency_ms']['p99']:.0f} ms "
        f"| {r['worker_rss_mb']:.0f} / {r['broker_rss_mb']:.0f} MiB "
        f"| {r['worker_cpu_percent']:.0f} / {r['broker_cpu_percent']:.0f} % "
        f"| {num(r['clicks_lag'])} |"
        for r in result["windows"]
    )
    within = result["within_2x_windows"]
    verdict = (
        f"p50 stayed within 2x the first window's ({result['fresh_p50_ms']:.0f} ms) to the end"
        if within is None
        else f"p50 passed 2x the first window's ({result['fresh_p50_ms']:.0f} ms) in the window "
        f"ending at {_when(result, within + 1)}"
    )
    warnings = result["monitor_warnings"]
    monitor = (
        "`nudgeflow up` printed no warning about the broker."
        if not warnings
        else "`nudgeflow up` warned:\n\n" + "\n".join(f"    {w}" for w in warnings)
    )
    return f"""\
`nudgeflow up` on free ports, its embedded broker and Redis fresh; a client in this
process posts {num(result["rate"])} events/s to its collector, {result["batch_events"]} a
request and up to {_LANES} requests at once, for {result["duration_s"] / 60:.1f} minutes
({num(result["accepted"])} events accepted). {_BURST_SHARE:.0%} of the events belong to
rage-click bursts of fresh customers (three clicks on `#pay`); each burst's third click
triggers an intervention. Latency runs from the POST that carries a trigger to its
intervention's arrival on the Redis stream (`XREAD BLOCK`) and at a consumer of
`interventions` (`fetch_max_wait_ms=5`); the figures of a window are those of the triggers
sent in it. RSS, CPU (% of one core, over the window) and the `clicks` consumer lag
(`{_LAG}`) are read at each window's end. Windows of {window}.

| min | events/s sent (failed requests) | request p50 / p99 | triggers (missing) | → Redis p50 / p99 | → `interventions` p50 / p99 | RSS worker / broker | CPU worker / broker | `clicks` lag |
|---|---|---|---|---|---|---|---|---|
{rows}

{verdict}; {result["missing"]} interventions never arrived on Redis. {monitor}
"""  # noqa: E501


def plot(result: dict[str, Any], directory: Path) -> str:
    """Latency, RSS and lag per window, as ``PNG`` in ``directory``; the file's name."""
    import matplotlib.pyplot as plt

    rows = result["windows"]
    minutes = np.array([r["at_s"] / 60 for r in rows])
    figure, (latency, memory, lag) = plt.subplots(3, 1, figsize=(8, 9), sharex=True)
    for key, label in (("latency_ms", "→ Redis"), ("kafka_latency_ms", "→ interventions")):
        for q, style in (("p50", "-"), ("p99", "--")):
            latency.plot(minutes, [r[key][q] for r in rows], style, marker="o",
                         label=f"{label} {q}")  # fmt: skip
    latency.set_ylabel("event → intervention (ms)")
    latency.set_yscale("log")
    latency.legend(fontsize="small")
    for key, label in (("worker_rss_mb", "worker"), ("broker_rss_mb", "broker")):
        memory.plot(minutes, [r[key] for r in rows], marker="o", label=label)
    memory.set_ylabel("RSS (MiB)")
    memory.legend(fontsize="small")
    lag.plot(minutes, [r["clicks_lag"] for r in rows], marker="o")
    lag.set_ylabel("clicks consumer lag (records)")
    lag.set_xlabel("minutes since nudgeflow up was ready")
    figure.suptitle(f"nudgeflow up under {num(result['rate'])} events/s through HTTP")
    figure.tight_layout()
    figure.savefig(directory / PNG, dpi=100)
    plt.close(figure)
    return PNG
