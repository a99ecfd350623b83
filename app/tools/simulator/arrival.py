"""How events reach the collector: network delay, out-of-order and late arrivals, retries.

Pure: the order a collector would see events in, drawn from a seeded generator.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from app.tools.simulator.session import Event
from app.tools.simulator.variants import Faults

__all__ = ["arrival_order"]


def arrival_order(
    sessions: Sequence[tuple[Sequence[Event], int]], faults: Faults, rng: np.random.Generator
) -> tuple[list[Event], list[int]]:
    """The events of ``sessions`` in the order they reach the collector, and when.

    Each event leaves its device at its true time (``ts`` minus the device's clock
    skew) and takes a lognormal network delay; ``faults.out_of_order_share`` of
    them are held back within the allowed lateness, ``faults.very_late_share``
    far beyond it, and ``faults.retry_share`` are sent a second time (an equal
    copy, same ``event_id``), ``faults.retry_ms`` after the first. Ties keep the order
    of ``sessions``, with a first copy before its retry.

    Parameters
    ----------
    sessions
        Each session's events in the order they were written, and the skew (ms)
        of the clock of the device that wrote them.
    faults
        The rates and delays.
    rng
        The generator of the faults.

    Returns
    -------
    tuple[list[Event], list[int]]
        The events (retried ones twice) in arrival order, and each one's arrival
        time in ms on the collector's clock.

    Examples
    --------
    >>> events = [{"event_id": str(n), "ts": 1_000 * n} for n in range(4)]
    >>> order, arrived = arrival_order([(events, 0)], Faults(), np.random.default_rng(0))
    >>> [e["event_id"] for e in order], all(a >= e["ts"] for e, a in zip(order, arrived))
    (['0', '1', '2', '3'], True)
    >>> late = Faults(very_late_share=1.0, very_late_ms=(10_000, 10_000))
    >>> arrival_order([(events, 0)], late, np.random.default_rng(0))[1][:2]
    [10000, 11000]
    """
    events = [event for written, _ in sessions for event in written]
    true_ms = np.array(
        [event["ts"] - skew_ms for written, skew_ms in sessions for event in written],
        dtype=np.float64,
    )
    n = len(events)
    kind = rng.random(n)
    delay_ms = faults.network_delay_ms * np.exp(faults.network_delay_sigma * rng.standard_normal(n))
    held_back_ms = rng.uniform(*faults.out_of_order_ms, size=n)
    very_late_ms = rng.uniform(*faults.very_late_ms, size=n)
    very_late = kind < faults.very_late_share
    held_back = ~very_late & (kind < faults.very_late_share + faults.out_of_order_share)
    delay_ms = np.where(very_late, very_late_ms, np.where(held_back, held_back_ms, delay_ms))
    retried = rng.random(n) < faults.retry_share
    retry_after_ms = rng.uniform(*faults.retry_ms, size=n)

    arrived = np.floor(true_ms + delay_ms).astype(np.int64)
    again = np.flatnonzero(retried)
    all_arrived = np.concatenate([arrived, arrived[again] + retry_after_ms[again].astype(np.int64)])
    copies = [*events, *(dict(events[int(i)]) for i in again)]
    order = np.argsort(all_arrived, kind="stable")
    return [copies[int(i)] for i in order], [int(all_arrived[i]) for i in order]
