"""Token buckets with bounded memory (app/access/rate_limit.py)."""

from __future__ import annotations

import pickle

import pytest

from app.access import TokenBuckets


def test_a_new_client_gets_its_burst_then_the_rate():
    buckets = TokenBuckets(rate_per_s=2.0, burst=5)
    assert [buckets.take("a", 0.0) for _ in range(5)] == [0.0] * 5
    assert buckets.take("a", 0.0) == pytest.approx(0.5)  # one token in half a second
    assert buckets.take("a", 0.5) == 0.0
    assert buckets.take("a", 0.5) == pytest.approx(0.5)


def test_a_refused_request_takes_nothing():
    buckets = TokenBuckets(rate_per_s=1.0, burst=1)
    assert buckets.take("a", 0.0) == 0.0
    for _ in range(100):  # hammering while empty does not push the next token further away
        assert buckets.take("a", 0.5) == pytest.approx(0.5)
    assert buckets.take("a", 1.0) == 0.0


def test_clients_are_independent():
    buckets = TokenBuckets(rate_per_s=1.0, burst=1)
    assert buckets.take("a", 0.0) == 0.0
    assert buckets.take("b", 0.0) == 0.0
    assert buckets.take("a", 0.0) > 0


def test_a_bucket_never_holds_more_than_its_burst():
    buckets = TokenBuckets(rate_per_s=100.0, burst=3)
    buckets.take("a", 0.0)
    buckets.take("b", 0.0)  # keeps "a" from being forgotten... until it is full again
    results = [buckets.take("a", 1_000.0) for _ in range(4)]
    assert results[:3] == [0.0, 0.0, 0.0] and results[3] > 0


def test_a_clock_that_steps_back_takes_no_tokens():
    buckets = TokenBuckets(rate_per_s=1.0, burst=2)
    buckets.take("a", 10.0)
    assert buckets.take("a", 5.0) == 0.0
    assert buckets.take("a", 5.0) > 0


def test_idle_buckets_are_forgotten():
    buckets = TokenBuckets(rate_per_s=1.0, burst=2)
    for client in ("a", "b", "c"):
        buckets.take(client, 0.0)
    assert len(buckets) == 3
    buckets.take("d", 0.5)  # not full again yet
    assert len(buckets) == 4
    buckets.take("d", 1.0)  # a, b, c full again at t=1
    assert len(buckets) == 1


def test_memory_is_bounded_by_max_buckets():
    buckets = TokenBuckets(rate_per_s=0.001, burst=10, max_buckets=100)
    for n in range(10_000):
        buckets.take(f"client-{n}", 0.0)
    assert len(buckets) == 100
    # the least recently used went first: the newest are still limited
    assert all(buckets.take(f"client-{n}", 0.0) == 0.0 for n in range(9_900, 9_910))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate_per_s": 0.0, "burst": 1}, "rate_per_s"),
        ({"rate_per_s": 1.0, "burst": 0}, "burst"),
        ({"rate_per_s": 1.0, "burst": 1, "max_buckets": 0}, "max_buckets"),
    ],
)
def test_arguments_are_checked_at_once(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TokenBuckets(**kwargs)


def test_buckets_survive_a_pickle_round_trip():
    buckets = TokenBuckets(rate_per_s=1.0, burst=1)
    buckets.take("a", 0.0)
    copy = pickle.loads(pickle.dumps(buckets))
    assert copy.take("a", 0.0) > 0
