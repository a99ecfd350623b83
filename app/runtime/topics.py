"""Every topic nudgeflow uses, declared up front with its partition count.

Kafka-protocol brokers that auto-create topics (Tansu makes 4 partitions and
cannot add more later) would otherwise pick the partition count for us, and a
changelog that is not co-partitioned with ``clicks`` corrupts table recovery.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError

from app.errors import BrokerUnavailable, ConfigError

__all__ = [
    "CLICKS",
    "CLICKS_FAILED",
    "FEEDBACK",
    "INTERVENTIONS",
    "INTERVENTIONS_WEBHOOK_FAILED",
    "REDIS_FEEDBACK_KEY",
    "REDIS_INTERVENTIONS_STREAM",
    "REDIS_INTERVENTION_KEY",
    "REDIS_OUTCOMES_KEY",
    "REDIS_UPLIFT_KEY",
    "REDIS_VARIANT_LEARNED_KEY",
    "TopicSpec",
    "bootstrap_servers",
    "declare_topics",
    "topic_specs",
]

CLICKS = "clicks"
CLICKS_FAILED = "clicks-failed"
INTERVENTIONS = "interventions"
FEEDBACK = "intervention-feedback"
#: Webhook deliveries given up on (``app.deliver.webhooks``): the intervention, URL, tries, error.
INTERVENTIONS_WEBHOOK_FAILED = "interventions-webhook-failed"
REDIS_INTERVENTIONS_STREAM = "nudgeflow:interventions"
#: ``.format(intervention_id)``: JSON of who and why (customer_id, session_id, reason, kind,
#: emitted_ts, and the variant shown if any) for each delivered intervention, kept
#: ``intervention_retention_days``.
REDIS_INTERVENTION_KEY = "nudgeflow:intervention:{}"
#: ``.format(day, reason, group, mark)``: set of the intervention ids of one uplift count
#: (``app.decide.uplift``); the day is the decision's, UTC, ``YYYY-MM-DD``.
REDIS_UPLIFT_KEY = "nudgeflow:uplift:{}:{}:{}:{}"
#: ``.format(intervention_id)``: hash outcome → newest ``ts`` (ms) of the feedback on it.
REDIS_OUTCOMES_KEY = "nudgeflow:outcomes:{}"
#: ``.format(reason, outcome)``: set of the intervention ids of that reason with that outcome.
REDIS_FEEDBACK_KEY = "nudgeflow:feedback:{}:{}"
#: ``.format(intervention_id)``: set once the intervention's feedback has taught the variant
#: bandit, so that it teaches it at most once.
REDIS_VARIANT_LEARNED_KEY = "nudgeflow:variant-learned:{}"
CUSTOMER_TABLE = "customer_to_state"
MODELS_TABLE = "partition_models"

_TOPIC_ALREADY_EXISTS = 36


@dataclass(slots=True, frozen=True)
class TopicSpec:
    """A topic's name, partition count and cleanup policy."""

    name: str
    partitions: int
    compacted: bool = False


def topic_specs(app_id: str, partitions: int) -> list[TopicSpec]:
    """The topics of one deployment: contract topics and table changelogs.

    Examples
    --------
    >>> [t.name for t in topic_specs("nudgeflow", 8)][:2]
    ['clicks', 'clicks-failed']
    """
    return [
        TopicSpec(CLICKS, partitions),
        TopicSpec(CLICKS_FAILED, partitions),
        TopicSpec(INTERVENTIONS, partitions),
        TopicSpec(FEEDBACK, partitions),
        TopicSpec(INTERVENTIONS_WEBHOOK_FAILED, partitions),
        TopicSpec(f"{app_id}-{CUSTOMER_TABLE}-changelog", partitions, compacted=True),
        TopicSpec(f"{app_id}-{MODELS_TABLE}-changelog", partitions, compacted=True),
    ]


def bootstrap_servers(broker_url: str) -> list[str]:
    """``kafka://h1:9092;kafka://h2:9092`` → ``["h1:9092", "h2:9092"]``.

    Examples
    --------
    >>> bootstrap_servers("kafka://h1:9092;h2:9092")
    ['h1:9092', 'h2:9092']
    """
    hosts = (h.strip() for h in broker_url.replace(",", ";").split(";"))
    return [h.split("://", 1)[-1] for h in hosts if h]


async def declare_topics(
    broker_url: str, specs: list[TopicSpec], replication_factor: int, timeout_s: float = 30.0
) -> None:
    """Create missing topics and check that existing ones have the declared partitions."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers(broker_url), request_timeout_ms=10_000
    )
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            await admin.start()
            break
        except KafkaConnectionError as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise BrokerUnavailable(f"no broker at {broker_url}: {exc}") from exc
            await asyncio.sleep(0.5)
    try:
        response = await admin.create_topics(
            [
                NewTopic(
                    s.name,
                    s.partitions,
                    replication_factor,
                    topic_configs={"cleanup.policy": "compact"} if s.compacted else {},
                )
                for s in specs
            ]
        )
        existing, failed = [], []
        for name, code, *rest in response.topic_errors:
            if code == _TOPIC_ALREADY_EXISTS:
                existing.append(name)
            elif code:
                failed.append(f"{name}: error {code} {rest[0] if rest else ''}".strip())
        if failed:
            raise ConfigError("could not create topics: " + "; ".join(failed))
        if existing:
            await _check_partitions(admin, {s.name: s.partitions for s in specs}, existing)
    finally:
        await admin.close()


async def _check_partitions(
    admin: AIOKafkaAdminClient, wanted: dict[str, int], names: list[str]
) -> None:
    for topic in await admin.describe_topics(names):
        found = len(topic["partitions"])
        if found != wanted[topic["topic"]]:
            raise ConfigError(
                f"topic {topic['topic']!r} has {found} partitions but {wanted[topic['topic']]} "
                "are configured; tables must be co-partitioned with 'clicks' "
                "(set NUDGEFLOW_TOPIC_PARTITIONS to match, or recreate the topics)"
            )
