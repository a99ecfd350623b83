"""``deliver_once`` against the session's real Redis: what a write leaves there, and that a
retry of the same batch adds nothing."""

from __future__ import annotations

import orjson
import pytest
import redis.asyncio as aioredis

from app.decide.uplift import UpliftMark
from app.deliver.redis_sink import deliver_once
from app.runtime.topics import REDIS_INTERVENTIONS_STREAM, REDIS_UPLIFT_KEY
from tests.integration.clients import unique

pytestmark = pytest.mark.integration

_RETENTION_S = 86_400


def _intervention(intervention_id: str) -> tuple[dict[str, object], bytes]:
    intervention = {"intervention_id": intervention_id, "customer_id": "c1", "session_id": "s1",
                    "reason": "checkout_stall", "kind": "assist", "emitted_ts": 1,
                    "context": {"page": "/checkout"}}  # fmt: skip
    return intervention, orjson.dumps(intervention)


async def test_a_batch_lands_once_with_each_mark_in_its_set(services):
    redis = aioredis.from_url(services.redis_url)
    try:
        reason = unique("reason")  # sets of their own in the shared Redis
        ids = [unique("i") for _ in range(5)]
        marks = [UpliftMark(i, reason, "treated", "2026-12-05", "decided") for i in ids]
        marks += [UpliftMark(ids[0], reason, "treated", "2026-12-05", "converted"),
                  UpliftMark(ids[1], reason, "holdout", "2026-12-06", "decided")]  # fmt: skip
        batch = [_intervention(i) for i in ids]
        stream_before = await redis.xlen(REDIS_INTERVENTIONS_STREAM)

        write = {"stream_maxlen": 100_000, "retention_s": _RETENTION_S, "marks": marks}
        # Twice: the retry after a timeout whose write did reach Redis.
        written = [await deliver_once(redis, batch, **write) for _ in range(2)]

        assert written == [5, 0]
        assert await redis.xlen(REDIS_INTERVENTIONS_STREAM) == stream_before + 5
        expected = {
            ("2026-12-05", "treated", "decided"): set(ids),
            ("2026-12-05", "treated", "converted"): {ids[0]},
            ("2026-12-06", "holdout", "decided"): {ids[1]},
        }
        for (day, group, mark), members in expected.items():
            key = REDIS_UPLIFT_KEY.format(day, reason, group, mark)
            assert {m.decode() for m in await redis.smembers(key)} == members
            # The sets outlive the retention by the conversion window's two days.
            assert _RETENTION_S < await redis.ttl(key) <= _RETENTION_S + 2 * 86_400
    finally:
        await redis.aclose()
