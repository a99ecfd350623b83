"""Token buckets per client (an API key or an IP address), with bounded memory.

Pure: the time is an argument. A bucket holds at most ``burst`` tokens and gains
``rate_per_s`` a second; a request takes one. A bucket idle long enough to be full again is
the same as no bucket, so it is forgotten; past ``max_buckets`` the least recently used goes
first (a flood of new clients then resets the oldest ones, which costs those a fresh burst,
never memory).
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["TokenBuckets"]


class TokenBuckets:
    """Token buckets keyed by client.

    Parameters
    ----------
    rate_per_s
        Tokens each bucket gains per second (sustained requests per second).
    burst
        Tokens a bucket holds at most (requests in a burst); a new client starts full.
    max_buckets
        Buckets kept at most.

    Examples
    --------
    >>> buckets = TokenBuckets(rate_per_s=1.0, burst=2)
    >>> [buckets.take("k", now_s=0.0) for _ in range(3)]
    [0.0, 0.0, 1.0]
    >>> buckets.take("k", now_s=1.0), buckets.take("other", now_s=1.0)
    (0.0, 0.0)
    >>> buckets.forget_idle(now_s=10.0), len(buckets)
    (2, 0)
    """

    __slots__ = ("_buckets", "burst", "max_buckets", "rate_per_s")

    def __init__(self, rate_per_s: float, burst: int, max_buckets: int = 100_000) -> None:
        if not rate_per_s > 0:
            raise ValueError(f"rate_per_s must be positive, got {rate_per_s}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst}")
        if max_buckets < 1:
            raise ValueError(f"max_buckets must be at least 1, got {max_buckets}")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.max_buckets = max_buckets
        # client -> (tokens, time of the last update); least recently used first.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, client: str, now_s: float) -> float:
        """Take a token from ``client``'s bucket: ``0.0`` when there was one, else the
        seconds until there is one (the request is refused and takes nothing)."""
        buckets = self._buckets
        self.forget_idle(now_s)
        entry = buckets.get(client)
        if entry is None:
            tokens = float(self.burst)
            while len(buckets) >= self.max_buckets:
                buckets.popitem(last=False)
        else:
            tokens, last_s = entry
            # max(): a clock that stepped back never takes tokens away.
            tokens = min(float(self.burst), tokens + max(0.0, now_s - last_s) * self.rate_per_s)
            buckets.move_to_end(client)
        if tokens >= 1.0:
            buckets[client] = (tokens - 1.0, now_s)
            return 0.0
        buckets[client] = (tokens, now_s)
        return (1.0 - tokens) / self.rate_per_s

    def forget_idle(self, now_s: float) -> int:
        """Forget the buckets that are full again (idle long enough); returns how many.

        Called by every ``take``: it looks at the least recently used buckets and stops at
        the first still refilling (one used later may be full already, having had more
        tokens; a later call forgets it), so it costs O(1) amortised.
        """
        buckets = self._buckets
        forgotten = 0
        while buckets:
            tokens, last_s = next(iter(buckets.values()))
            if tokens + (now_s - last_s) * self.rate_per_s < self.burst:
                break
            buckets.popitem(last=False)
            forgotten += 1
        return forgotten
