"""Say when the embedded broker has aged: its fetches slowed or its memory grew too far.

Tansu's memory storage keeps every record batch it is sent and lists all of a
partition's on each fetch, so ``nudgeflow up`` gets slower and bigger the longer it
runs (README, "Why these broker timings"). A thread probes it once a minute: one fetch
of the newest record of the fullest ``clicks`` partition, timed (the listing it costs
is the hop every event pays), and the broker's resident memory. ``assess``, pure,
decides from the readings; each warning is printed once, with the advice to restart
or to run on Apache Kafka for long runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from app.runtime.topics import CLICKS, bootstrap_servers

__all__ = ["BrokerHealth", "BrokerMonitor", "HealthLimits", "assess", "probe_hop_ms", "rss_bytes"]

_PROBE_INTERVAL_S = 60.0
# A fetch that finds data answers as soon as the broker has listed the partition; the
# wait only bounds a listing that takes longer, which the probe then reports as is.
_PROBE_FETCH_WAIT_MS = 1000
_PROBE_TIMEOUT_S = 10.0
# Probes whose least is the fresh value, and probes whose median is the current one:
# one slow probe (a busy machine, a garbage collection) neither sets the baseline nor warns.
_FRESH_PROBES = 3
_RECENT_PROBES = 3


@dataclass(frozen=True, slots=True)
class HealthLimits:
    """When to warn: the hop past ``latency_factor`` x its fresh value and at least
    ``min_growth_ms`` slower (a 1 ms hop that doubles is noise), or the broker's RSS past
    ``rss_limit_bytes``."""

    latency_factor: float = 2.0
    min_growth_ms: float = 5.0
    # The stack is for development and demos on a laptop: at 1 000 events/s Tansu grows
    # by ~2 MiB/s (benchmarks/RESULTS.md, soak), past 1 GiB within ten minutes.
    rss_limit_bytes: int = 1 << 30

    def __post_init__(self) -> None:
        if self.latency_factor <= 1 or self.min_growth_ms < 0 or self.rss_limit_bytes <= 0:
            raise ValueError(f"limits out of range: {self}")


@dataclass(frozen=True, slots=True)
class BrokerHealth:
    """What the probes have seen so far, and which warnings were given."""

    fresh_hop_ms: float | None = None
    probes: int = 0
    recent_hops_ms: tuple[float, ...] = ()
    warned_latency: bool = False
    warned_memory: bool = False


def assess(
    health: BrokerHealth,
    hop_ms: float | None,
    rss: int | None,
    uptime_s: float,
    limits: HealthLimits,
) -> tuple[BrokerHealth, list[str]]:
    """Fold one probe into ``health``; the warnings it calls for (each given once).

    ``hop_ms`` is None when there was nothing to fetch yet, ``rss`` when the broker's
    memory cannot be read.

    Examples
    --------
    >>> limits = HealthLimits(rss_limit_bytes=1 << 30)
    >>> health, said = BrokerHealth(), []
    >>> for hop_ms in (3.0, 2.0, 2.5, 4.0, 9.0, 30.0, 31.0):
    ...     health, new = assess(health, hop_ms, 1 << 20, 60.0 * health.probes, limits)
    ...     said += new
    >>> health.fresh_hop_ms, len(said)
    (2.0, 1)
    >>> print(said[0])  # doctest: +NORMALIZE_WHITESPACE
    nudgeflow: warning: the embedded broker has slowed: a fetch takes 9 ms, 4.5x its 2 ms
    when fresh, after 5 min, and keeps slowing while it runs; restart nudgeflow up to empty
    it, and run long or production workloads on Apache Kafka (NUDGEFLOW_BROKER;
    docker-compose.yml)
    >>> assess(health, 40.0, 2 << 30, 480.0, limits)[1][0][:51]
    'nudgeflow: warning: the embedded broker holds 2.0 G'
    """
    said: list[str] = []
    if hop_ms is not None:
        probes = health.probes + 1
        fresh = health.fresh_hop_ms
        if probes <= _FRESH_PROBES:
            fresh = hop_ms if fresh is None else min(fresh, hop_ms)
        recent = (*health.recent_hops_ms, hop_ms)[-_RECENT_PROBES:]
        health = replace(health, fresh_hop_ms=fresh, probes=probes, recent_hops_ms=recent)
        current = statistics.median(recent)
        if (
            fresh is not None
            and not health.warned_latency
            and probes >= _FRESH_PROBES + _RECENT_PROBES - 1
            and current > limits.latency_factor * fresh
            and current - fresh >= limits.min_growth_ms
        ):
            health = replace(health, warned_latency=True)
            said.append(
                f"nudgeflow: warning: the embedded broker has slowed: a fetch takes "
                f"{current:.0f} ms, {current / fresh:.1f}x its {fresh:.0f} ms when fresh, after "
                f"{_duration(uptime_s)}, and keeps slowing while it runs; {_ADVICE}"
            )
    if rss is not None and not health.warned_memory and rss > limits.rss_limit_bytes:
        health = replace(health, warned_memory=True)
        said.append(
            f"nudgeflow: warning: the embedded broker holds {rss / 2**30:.1f} GiB after "
            f"{_duration(uptime_s)} and never frees a record; {_ADVICE}"
        )
    return health, said


_ADVICE = (
    "restart nudgeflow up to empty it, and run long or production workloads on Apache "
    "Kafka (NUDGEFLOW_BROKER; docker-compose.yml)"
)


def _duration(seconds: float) -> str:
    """
    >>> _duration(59), _duration(3 * 3600 + 600)
    ('59 s', '3 h 10 min')
    """
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = int(seconds // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


async def probe_hop_ms(broker_url: str, partitions: int) -> float | None:
    """Milliseconds one fetch of the newest record of the fullest ``clicks`` partition
    takes (at most ``_PROBE_TIMEOUT_S``); None while ``clicks`` is empty."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers(broker_url),
        enable_auto_commit=False,
        fetch_max_wait_ms=_PROBE_FETCH_WAIT_MS,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(CLICKS, p) for p in range(partitions)]
        ends = await consumer.end_offsets(tps)
        fullest = max(tps, key=lambda tp: ends[tp])
        if ends[fullest] == 0:
            return None
        consumer.assign([fullest])
        consumer.seek(fullest, ends[fullest] - 1)
        started = time.perf_counter()
        with contextlib.suppress(TimeoutError):  # slower than that: say how slow, at least
            async with asyncio.timeout(_PROBE_TIMEOUT_S):
                while not await consumer.getmany(fullest, timeout_ms=100, max_records=1):
                    pass
        return (time.perf_counter() - started) * 1000
    finally:
        await consumer.stop()


def rss_bytes(pid: int) -> int | None:
    """A process's resident memory (Linux ``/proc``); None where it cannot be read."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return None


class BrokerMonitor:
    """A daemon thread: probe the embedded broker every minute, print what ``assess`` says."""

    def __init__(
        self,
        broker_url: str,
        broker_pid: int,
        partitions: int,
        err: TextIO,
        limits: HealthLimits | None = None,
        interval_s: float = _PROBE_INTERVAL_S,
    ) -> None:
        self._broker_url = broker_url
        self._broker_pid = broker_pid
        self._partitions = partitions
        self._err = err
        self._limits = limits or HealthLimits()
        self._interval_s = interval_s
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nudgeflow-broker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop probing."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)  # a daemon: one stuck in a probe dies with us

    def _run(self) -> None:
        started = time.monotonic()
        health = BrokerHealth()
        while not self._stopping.wait(self._interval_s):
            try:
                hop_ms = asyncio.run(probe_hop_ms(self._broker_url, self._partitions))
            except (KafkaError, OSError):
                hop_ms = None  # the broker is busy or stopping: the next probe will tell
            rss = rss_bytes(self._broker_pid)
            health, said = assess(health, hop_ms, rss, time.monotonic() - started, self._limits)
            for line in said:
                self._err.write(line + "\n")
                self._err.flush()
