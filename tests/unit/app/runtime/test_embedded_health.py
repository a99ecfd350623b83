"""When ``nudgeflow up`` warns that its embedded broker has aged: ``assess``, table-driven."""

from __future__ import annotations

import os

import pytest

from app.runtime.embedded_health import BrokerHealth, HealthLimits, assess, rss_bytes

_MIB = 1 << 20
_LIMITS = HealthLimits(latency_factor=2.0, min_growth_ms=5.0, rss_limit_bytes=1024 * _MIB)


def _run(hops_ms: list[float | None], rss: list[int | None] | None = None) -> list[list[str]]:
    """The warnings after each probe, from a fresh monitor."""
    health, said = BrokerHealth(), []
    for i, hop_ms in enumerate(hops_ms):
        health, new = assess(health, hop_ms, (rss or [_MIB] * len(hops_ms))[i], 60.0 * i, _LIMITS)
        said.append(new)
    return said


@pytest.mark.parametrize(
    ("hops_ms", "warned_at"),
    [
        # Steady: never.
        ([3.0] * 10, None),
        # Doubled and 5 ms slower: at the first probe whose recent median says so.
        ([5.0, 5.0, 5.0, 8.0, 11.0, 12.0, 12.0], 5),
        # Doubled but only 3 ms slower: noise on a fast hop.
        ([3.0, 3.0, 3.0, 6.0, 6.5, 7.0, 7.0], None),
        # One slow probe among fast ones moves no median.
        ([4.0, 4.0, 4.0, 4.0, 80.0, 4.0, 4.0, 4.0], None),
        # A slow first probe (a cold connection) does not set the fresh value: the least does.
        ([40.0, 4.0, 4.0, 4.0, 12.0, 13.0], 5),
        # Probes with nothing to fetch yet do not count towards the fresh value.
        ([None, None, 4.0, 4.0, 4.0, 20.0, 20.0], 6),
        # Slow from the start (not grown): its own fresh value, no warning.
        ([50.0, 50.0, 50.0, 60.0, 60.0], None),
    ],
)
def test_latency_warns_once_when_the_hop_has_doubled(
    hops_ms: list[float | None], warned_at: int | None
) -> None:
    said = _run(hops_ms)
    at = [i for i, lines in enumerate(said) if lines]
    assert at == ([] if warned_at is None else [warned_at]), said
    if warned_at is not None:
        [line] = said[warned_at]
        assert line.startswith("nudgeflow: warning: the embedded broker has slowed")
        assert "Apache Kafka" in line and "restart nudgeflow up" in line


@pytest.mark.parametrize(
    ("rss", "warned_at"),
    [
        ([100 * _MIB, 500 * _MIB, 1000 * _MIB, 1200 * _MIB, 1500 * _MIB], 3),
        ([100 * _MIB, 200 * _MIB, 300 * _MIB], None),
        # A broker whose memory cannot be read (not Linux): never.
        ([None, None, None], None),
    ],
)
def test_memory_warns_once_past_the_limit(rss: list[int | None], warned_at: int | None) -> None:
    said = _run([3.0] * len(rss), rss)
    at = [i for i, lines in enumerate(said) if lines]
    assert at == ([] if warned_at is None else [warned_at]), said
    if warned_at is not None:
        assert "holds 1.2 GiB after 3 min" in said[warned_at][0]


def test_both_warnings_can_come_from_one_probe() -> None:
    health = BrokerHealth(fresh_hop_ms=2.0, probes=5, recent_hops_ms=(20.0, 20.0))
    _, said = assess(health, 20.0, 2048 * _MIB, 600.0, _LIMITS)
    slowed, holds = said
    assert "has slowed: a fetch takes 20 ms, 10.0x its 2 ms when fresh, after 10 min" in slowed
    assert "holds 2.0 GiB after 10 min" in holds


def test_assess_does_not_change_the_health_it_is_given() -> None:
    health = BrokerHealth(fresh_hop_ms=2.0, probes=5, recent_hops_ms=(20.0, 20.0))
    assess(health, 20.0, 2048 * _MIB, 600.0, _LIMITS)
    assert health == BrokerHealth(fresh_hop_ms=2.0, probes=5, recent_hops_ms=(20.0, 20.0))


@pytest.mark.parametrize(
    "limits",
    [
        {"latency_factor": 1.0},
        {"min_growth_ms": -1.0},
        {"rss_limit_bytes": 0},
    ],
)
def test_limits_out_of_range_are_refused(limits: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="out of range"):
        HealthLimits(**limits)  # type: ignore[arg-type]


def test_rss_of_this_process_is_read() -> None:
    assert (rss_bytes(os.getpid()) or 0) > 10 * _MIB
    assert rss_bytes(2**22 + 12345) is None
