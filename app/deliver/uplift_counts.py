"""Reading the treated-vs-holdout counts every worker adds to Redis (``Delivery.send``).

One set of intervention ids per day, reason, group and mark (``REDIS_UPLIFT_KEY``):
all workers add to the same sets, so a count is over every partition, and a replay
after a crash adds ids already there. Any worker answers ``GET /v1/stats/uplift``
by counting the sets of the days asked for.
"""

from __future__ import annotations

import time
from typing import Any

import redis.asyncio as aioredis

from app.decide.uplift import MARKS
from app.runtime.topics import REDIS_UPLIFT_KEY

__all__ = ["days_back", "uplift_counts"]

_DAY_S = 86_400


def days_back(days: int, now_s: float | None = None) -> list[str]:
    """The UTC dates of the last ``days`` days, today included, newest first.

    Examples
    --------
    >>> days_back(3, now_s=86_400 * 2.5)
    ['1970-01-03', '1970-01-02', '1970-01-01']
    """
    now_s = time.time() if now_s is None else now_s
    return [time.strftime("%Y-%m-%d", time.gmtime(now_s - i * _DAY_S)) for i in range(days)]


async def uplift_counts(redis: aioredis.Redis, days: list[str]) -> dict[tuple[str, str, str], int]:
    """(reason, group, mark) → ids counted over ``days``, from the sets that exist."""
    keys: list[str] = []
    for day in days:
        pattern = REDIS_UPLIFT_KEY.format(day, "*", "*", "*")
        keys.extend([_text(key) async for key in redis.scan_iter(match=pattern, count=1000)])
    if not keys:
        return {}
    async with redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.scard(key)
        sizes: list[Any] = await pipe.execute()
    counts: dict[tuple[str, str, str], int] = {}
    for key, size in zip(keys, sizes, strict=True):
        _prefix, _name, _day, reason, group, mark = key.split(":")
        if mark in MARKS:
            counts[reason, group, mark] = counts.get((reason, group, mark), 0) + int(size)
    return counts


def _text(key: bytes | str) -> str:
    return key.decode() if isinstance(key, bytes) else key
