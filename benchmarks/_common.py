"""Shared benchmark helpers: events, the embedded stack, workers, metrics and statistics.

Every benchmark starts its own embedded broker and Redis on free ports and stops
them (and its workers) in a ``finally``, so nothing outlives a run.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import orjson
import psutil
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from app.runtime.embedded import EmbeddedStack, free_port
from app.runtime.testing import Services, WorkerProcess, start_worker, worker_env
from app.runtime.topics import CLICKS, declare_topics, topic_specs

__all__ = [
    "APP_ID",
    "HANDLED_COUNTERS",
    "PARTITIONS",
    "BenchStack",
    "CpuMeter",
    "EventFactory",
    "MetricsSnapshot",
    "Progress",
    "bench_worker_env",
    "bucket_delta",
    "embedded_stack",
    "encode",
    "histogram_quantile",
    "percentiles",
    "produce_events",
    "running_workers",
    "scaled",
    "scrape",
    "watch_progress",
    "web_url",
]

#: The app id ``worker_env`` leaves at its default: topic names and the consumer group.
APP_ID = "nudgeflow"
PARTITIONS = 8

#: How often a benchmark reads a worker's handled counters for its progress. A whole
#: ``/metrics`` page costs the worker a few ms of its event loop (Prometheus, every 15 s,
#: does not notice): at 100 ms that was 5-8 % of a draining worker's time, measured by a
#: sampling profiler; so the progress probe asks for those counters only (``name[]``).
PROGRESS_POLL_S = 0.25

#: A worker has handled an event once one of these counts it (duplicates and rejects too).
HANDLED_COUNTERS = (
    "nudgeflow_events_processed_total",
    "nudgeflow_events_duplicate_total",
    "nudgeflow_events_rejected_total",
)

# Event mix of a shop front: mostly browsing, some interaction, few checkout steps.
# No payment events: they would turn the load into an intervention benchmark.
_TYPES = (
    "page_view", "product_view", "click", "scroll", "search", "add_to_cart",
    "form_focus", "form_input", "checkout_step",
)  # fmt: skip
_TYPE_WEIGHTS = (0.28, 0.22, 0.22, 0.15, 0.04, 0.03, 0.03, 0.02, 0.01)
_CATEGORIES = ("shoes", "jackets", "bags", "shirts", "watches", "hats", "socks", "belts")
_ELEMENTS = ("#add-to-cart", "#buy-now", ".size-picker", "#search-btn", ".nav-link", "#menu")
_FIELDS = ("email", "street", "zip", "city", "card_number")
_STEPS = ("cart", "shipping", "payment", "review")
_QUERIES = ("running shoes", "rain jacket", "leather bag", "gift for him", "sale")
_PROPS = (
    {"ua": "Mozilla/5.0 (Windows NT 10.0) Chrome/124.0", "locale": "de-DE", "vw": 1440,
     "ref": "google"},
    {"ua": "Mozilla/5.0 (iPhone; CPU OS 17_4) Safari/604.1", "locale": "en-GB", "vw": 390,
     "ref": "instagram"},
    {"ua": "Mozilla/5.0 (Macintosh) Firefox/125.0", "locale": "fr-FR", "vw": 1728,
     "ref": "newsletter"},
)  # fmt: skip
# A visit ends after 30 minutes of event time, the usual web-analytics session rule.
_SESSION_MS = 30 * 60 * 1000


class EventFactory:
    """Valid contract events (about 300 bytes of JSON each) for a numbered customer base.

    Everything random comes from one seeded numpy generator, so a run is repeatable.

    Examples
    --------
    >>> events = EventFactory(seed=1, customers=10).mixed(3, start_ts_ms=0, step_ms=10)
    >>> [sorted(e)[:3] for e in events][0]
    ['customer_id', 'event_id', 'props']
    """

    def __init__(self, seed: int, customers: int, prefix: str = "cust") -> None:
        if customers < 1:
            raise ValueError(f"customers must be >= 1, got {customers}")
        self.rng = np.random.default_rng(seed)
        self.customers = customers
        self.prefix = prefix

    def customer_id(self, index: int) -> str:
        return f"{self.prefix}-{index:07d}"

    def mixed(self, n: int, start_ts_ms: int, step_ms: float) -> list[dict[str, Any]]:
        """``n`` events of random customers, ``step_ms`` apart in event time."""
        customers = self.rng.integers(0, self.customers, n)
        kinds = self.rng.choice(len(_TYPES), size=n, p=_TYPE_WEIGHTS)
        draws, ids = self._draws(n)
        return [
            self._event(int(customers[i]), _TYPES[kinds[i]], start_ts_ms + int(i * step_ms),
                        draws[i], ids[32 * i : 32 * i + 32])
            for i in range(n)
        ]  # fmt: skip

    def visits(self, customers: int, ts_ms: int) -> list[dict[str, Any]]:
        """One short visit per customer ``0 … customers-1``: a page view, a product view
        and, half the time, a scroll, 1.5 s apart."""
        draws, ids = self._draws(3 * customers)
        events = []
        for customer in range(customers):
            row = 3 * customer
            kinds = ("page_view", "product_view", "scroll")[: 3 if draws[row, 0] % 2 else 2]
            events.extend(
                self._event(customer, kind, ts_ms + 1500 * i, draws[row + i],
                            ids[32 * (row + i) : 32 * (row + i) + 32])
                for i, kind in enumerate(kinds)
            )  # fmt: skip
        return events

    def rage_burst(self, customer_id: str, session_id: str) -> list[dict[str, Any]]:
        """Three clicks on one button a few pixels apart; the caller sets their ``ts``."""
        draws, ids = self._draws(3)
        x, y = int(draws[0, 1]), int(draws[0, 2])
        return [
            {"event_id": ids[32 * i : 32 * i + 32], "customer_id": customer_id,
             "session_id": session_id, "type": "click", "ts": 0, "page": "/checkout/payment",
             "element": "#pay", "x": x + i, "y": y - i, "props": _PROPS[0]}
            for i in range(3)
        ]  # fmt: skip

    def _draws(self, n: int) -> tuple[np.ndarray[Any, Any], str]:
        """Per event: product, x, y, scroll permille; and 32 hex characters of event id."""
        draws = self.rng.integers(0, (5000, 1400, 1400, 1001), size=(n, 4))
        return draws, self.rng.bytes(16 * n).hex()

    def _event(
        self, customer: int, kind: str, ts_ms: int, draw: np.ndarray[Any, Any], event_id: str
    ) -> dict[str, Any]:
        customer_id = self.customer_id(customer)
        product = int(draw[0])
        category = _CATEGORIES[product % len(_CATEGORIES)]
        event: dict[str, Any] = {
            "event_id": event_id,
            "customer_id": customer_id,
            "session_id": f"{customer_id}-v{ts_ms // _SESSION_MS}",
            "type": kind,
            "ts": ts_ms,
            "page": f"/{category}/p-{product:05d}",
            "props": _PROPS[product % len(_PROPS)],
        }
        if kind in ("product_view", "add_to_cart"):
            event["product_id"] = f"p-{product:05d}"
            event["value"] = round(9.9 + product % 200, 2)
        elif kind == "click":
            event["element"] = _ELEMENTS[product % len(_ELEMENTS)]
            event["x"], event["y"] = int(draw[1]), int(draw[2])
        elif kind == "scroll":
            event["scroll_pct"] = int(draw[3]) / 10
        elif kind == "search":
            event["query"] = _QUERIES[product % len(_QUERIES)]
            event["results"] = product % 120
        elif kind in ("form_focus", "form_input"):
            event["field"] = _FIELDS[product % len(_FIELDS)]
        elif kind == "checkout_step":
            event["step"] = _STEPS[product % len(_STEPS)]
        return event


def encode(event: dict[str, Any]) -> tuple[bytes, bytes]:
    """An event as the contract puts it on ``clicks``: key = customer id, value = JSON."""
    return event["customer_id"].encode(), orjson.dumps(event)


def scaled(full: float, scale: float, minimum: float) -> float:
    """``full x scale``, but never below ``minimum`` (tiny scales still measure something).

    Examples
    --------
    >>> scaled(200_000, 0.5, 2_000), scaled(200_000, 0.001, 2_000)
    (100000.0, 2000.0)
    """
    return max(float(minimum), full * scale)


async def produce_events(
    bootstrap: str, events: Iterable[dict[str, Any]], topic: str = CLICKS
) -> int:
    """Write ``events`` to ``topic`` in large batches, as fast as the broker takes them."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    sent = 0
    try:
        pending: list[asyncio.Future[Any]] = []
        for event in events:
            key, value = encode(event)
            pending.append(await producer.send(topic, value, key=key))
            sent += 1
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent


@dataclass(frozen=True, slots=True)
class BenchStack:
    """A running embedded broker and Redis, and the broker's pid (to measure its CPU)."""

    services: Services
    broker_pid: int


@contextlib.asynccontextmanager
async def embedded_stack(workdir: Path) -> AsyncIterator[BenchStack]:
    """A fresh broker and Redis on free ports, with nudgeflow's topics declared."""
    # Started from the loop's own thread: the servers die with the thread that spawned them.
    stack = EmbeddedStack.start(free_port(), free_port(), workdir / "stack")
    try:
        services = Services(stack.broker_url, stack.redis_url, embedded=True)
        await declare_topics(services.broker_url, topic_specs(APP_ID, PARTITIONS), 1)
        yield BenchStack(services, stack.broker.process.pid)
    finally:
        stack.stop()


class CpuMeter:
    """CPU use of named processes since the last ``reset``, in % of one core."""

    def __init__(self, pids: dict[str, int]) -> None:
        self._processes = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.reset()

    def reset(self) -> None:
        for process in self._processes.values():
            process.cpu_percent(None)

    def read(self) -> dict[str, float]:
        return {name: float(p.cpu_percent(None)) for name, p in self._processes.items()}


def bench_worker_env(services: Services, workdir: Path, name: str = "worker") -> dict[str, str]:
    """A worker's environment on ``services``, its data and log under ``workdir/name``."""
    return worker_env(services, workdir / name)


def web_url(env: dict[str, str]) -> str:
    return f"http://127.0.0.1:{env['NUDGEFLOW_WEB_PORT']}"


@contextlib.asynccontextmanager
async def running_workers(envs: Sequence[dict[str, str]]) -> AsyncIterator[list[WorkerProcess]]:
    """Start one worker per env at the same moment, wait until all hold partitions with their
    tables recovered (a backlog waiting for them is what a benchmark times), stop all."""
    started = await asyncio.gather(
        *(
            asyncio.to_thread(
                start_worker, env, Path(env["NUDGEFLOW_DATA_DIR"]) / "worker.log", caught_up=False
            )
            for env in envs
        ),
        return_exceptions=True,
    )
    workers = [w for w in started if isinstance(w, WorkerProcess)]
    try:
        for outcome in started:
            if isinstance(outcome, BaseException):
                raise outcome
        yield workers
    finally:
        await asyncio.gather(*(asyncio.to_thread(w.stop) for w in workers))


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """One scrape of ``GET /metrics``: sample name → [(labels, value)]."""

    samples: dict[str, list[tuple[dict[str, str], float]]]

    @classmethod
    def parse(cls, text: str) -> MetricsSnapshot:
        samples: dict[str, list[tuple[dict[str, str], float]]] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
        return cls(samples)

    def total(self, *names: str, **labels: str) -> float:
        """The sum of the samples of ``names`` whose labels include ``labels``."""
        wanted = labels.items()
        return sum(
            value
            for name in names
            for found, value in self.samples.get(name, ())
            if wanted <= found.items()
        )

    def buckets(self, histogram: str) -> list[tuple[float, float]]:
        """Cumulative ``(le, count)`` pairs of a histogram, ``+Inf`` last."""
        found = [(float(labels["le"]), value) for labels, value in
                 self.samples.get(f"{histogram}_bucket", ())]  # fmt: skip
        return sorted(found)


async def scrape(
    session: aiohttp.ClientSession, url: str, names: Sequence[str] = ()
) -> MetricsSnapshot:
    """A worker's ``/metrics``; only the series ``names`` when given (``name[]``)."""
    params = [("name[]", name) for name in names]
    async with session.get(f"{url}/metrics", params=params,
                           timeout=aiohttp.ClientTimeout(total=5)) as response:  # fmt: skip
        response.raise_for_status()
        return MetricsSnapshot.parse(await response.text())


@dataclass(slots=True)
class Progress:
    """Handled-event counts of some workers, sampled over time (``perf_counter`` seconds)."""

    times: list[float]
    per_worker: list[list[float]]
    target: int

    @property
    def totals(self) -> list[float]:
        return [sum(counts) for counts in zip(*self.per_worker, strict=True)]

    @property
    def complete(self) -> bool:
        return bool(self.times) and self.totals[-1] >= self.target

    @property
    def handled(self) -> float:
        """Events handled when watching stopped: the target, or less after a time-out."""
        return min(float(self.target), self.totals[-1]) if self.times else 0.0

    def rate(self) -> float:
        """``handled / (t_last - t_first_nonzero)`` over all workers."""
        if not self.handled:
            return 0.0
        return self.handled / self._span_s(self.totals, self.handled)

    def worker_rate(self, index: int) -> float:
        """One worker's handled events over its own first-to-last span."""
        counts = self.per_worker[index]
        return counts[-1] / self._span_s(counts, counts[-1]) if counts[-1] else 0.0

    def steady_rate(self, low: float = 0.1, high: float = 0.9) -> float:
        """The rate between ``low`` and ``high`` of the handled events (the middle 80 %)."""
        if not self.handled:
            return 0.0
        t_low = self._crossing(low * self.handled)
        t_high = self._crossing(high * self.handled)
        return (high - low) * self.handled / (t_high - t_low)

    def _crossing(self, count: float) -> float:
        """When the total reached ``count``, interpolated linearly between two samples."""
        totals = self.totals
        if totals[0] >= count:
            return self.times[0]
        for i in range(1, len(totals)):
            if totals[i] >= count:
                c0, c1 = totals[i - 1], totals[i]
                t0, t1 = self.times[i - 1], self.times[i]
                return t0 + (t1 - t0) * (count - c0) / (c1 - c0)
        raise ValueError(f"the count never reached {count}")

    def _span_s(self, counts: Sequence[float], end: float) -> float:
        """First sample above zero → first sample at ``end``.

        When one sampling interval holds everything, the last zero sample starts the span.
        """
        first = next(i for i, c in enumerate(counts) if c > 0)
        last = next(i for i, c in enumerate(counts) if c >= end)
        if last == first:
            first = max(first - 1, 0)
        return self.times[last] - self.times[first]


async def watch_progress(
    urls: Sequence[str], target: int, timeout_s: float, interval_s: float = PROGRESS_POLL_S
) -> Progress:
    """Poll each worker's handled counters every ``interval_s`` until they sum to ``target``.

    Polling starts before the workers listen (their first batch is handled as soon as
    they join): a worker not answering yet counts as zero.
    """
    progress = Progress([], [[] for _ in urls], target)
    async with aiohttp.ClientSession() as session:
        deadline = time.perf_counter() + timeout_s
        while time.perf_counter() < deadline:
            tick = time.perf_counter()
            snapshots = await asyncio.gather(
                *(scrape(session, url, HANDLED_COUNTERS) for url in urls), return_exceptions=True
            )
            progress.times.append(time.perf_counter())
            for counts, snapshot in zip(progress.per_worker, snapshots, strict=True):
                counts.append(
                    snapshot.total(*HANDLED_COUNTERS)
                    if isinstance(snapshot, MetricsSnapshot)
                    else (counts[-1] if counts else 0.0)
                )
            if progress.complete:
                break
            await asyncio.sleep(max(0.0, interval_s - (time.perf_counter() - tick)))
    return progress


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """Prometheus' ``histogram_quantile``: linear inside the bucket that holds rank ``q``.

    Examples
    --------
    >>> histogram_quantile(0.5, [(0.001, 0), (0.002, 10), (float("inf"), 10)])
    0.0015
    """
    if not buckets or buckets[-1][1] == 0:
        return float("nan")
    rank = q * buckets[-1][1]
    lower_le, lower_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if le == float("inf"):
                return lower_le  # beyond the last finite bucket: its bound is all we know
            return lower_le + (le - lower_le) * (rank - lower_count) / (count - lower_count)
        lower_le, lower_count = le, count
    return lower_le


def bucket_delta(
    before: Sequence[tuple[float, float]], after: Sequence[tuple[float, float]]
) -> list[tuple[float, float]]:
    """The observations a histogram gained between two scrapes, as cumulative buckets."""
    earlier = dict(before)
    return [(le, count - earlier.get(le, 0.0)) for le, count in after]


def percentiles(values: Sequence[float], qs: Sequence[float]) -> dict[str, float]:
    """``{"p50": …, "p99": …}`` of ``values`` (``q`` in percent); NaN when there are none.

    Examples
    --------
    >>> percentiles([1.0, 3.0], [50, 99.9])
    {'p50': 2.0, 'p99.9': 2.998}
    """
    if not values:
        return {f"p{q:g}": float("nan") for q in qs}
    found = np.percentile(np.asarray(values, dtype=float), qs)
    return {f"p{q:g}": round(float(v), 6) for q, v in zip(qs, found, strict=True)}
