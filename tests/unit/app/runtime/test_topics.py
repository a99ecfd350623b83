"""The pure parts of ``app.runtime.topics``: the declared topics and the bootstrap server list."""

from __future__ import annotations

import pytest

from app.runtime.topics import (
    CLICKS,
    CLICKS_FAILED,
    FEEDBACK,
    INTERVENTIONS,
    REDIS_INTERVENTIONS_STREAM,
    TopicSpec,
    bootstrap_servers,
    topic_specs,
)


def test_contract_names() -> None:
    assert (CLICKS, CLICKS_FAILED, INTERVENTIONS, FEEDBACK) == (
        "clicks",
        "clicks-failed",
        "interventions",
        "intervention-feedback",
    )
    assert REDIS_INTERVENTIONS_STREAM == "nudgeflow:interventions"


@pytest.mark.parametrize(("app_id", "partitions"), [("nudgeflow", 8), ("shop-eu", 1), ("x", 32)])
def test_topic_specs(app_id: str, partitions: int) -> None:
    assert topic_specs(app_id, partitions) == [
        TopicSpec("clicks", partitions),
        TopicSpec("clicks-failed", partitions),
        TopicSpec("interventions", partitions),
        TopicSpec("intervention-feedback", partitions),
        TopicSpec("interventions-webhook-failed", partitions),
        TopicSpec(f"{app_id}-customer_to_state-changelog", partitions, compacted=True),
        TopicSpec(f"{app_id}-partition_models-changelog", partitions, compacted=True),
    ]


def test_table_changelogs_are_co_partitioned_with_clicks() -> None:
    specs = {s.name: s for s in topic_specs("nudgeflow", 12)}

    changelogs = ["nudgeflow-customer_to_state-changelog", "nudgeflow-partition_models-changelog"]
    assert [s.name for s in specs.values() if s.compacted] == changelogs
    assert {specs[name].partitions for name in changelogs} == {specs["clicks"].partitions}


def test_topic_names_are_unique() -> None:
    names = [s.name for s in topic_specs("nudgeflow", 8)]

    assert len(names) == len(set(names))


@pytest.mark.parametrize(
    ("broker_url", "servers"),
    [
        ("kafka://localhost:9092", ["localhost:9092"]),
        ("kafka://h1:9092;h2:9092", ["h1:9092", "h2:9092"]),
        ("kafka://h1:9092,h2:9093", ["h1:9092", "h2:9093"]),
        ("kafka://h1:9092; h2:9092 ;", ["h1:9092", "h2:9092"]),
        ("localhost:9092", ["localhost:9092"]),
        ("h1:9092,h2:9092", ["h1:9092", "h2:9092"]),
        ("kafka://[::1]:9092", ["[::1]:9092"]),
    ],
)
def test_bootstrap_servers(broker_url: str, servers: list[str]) -> None:
    assert bootstrap_servers(broker_url) == servers


def test_bootstrap_servers_with_a_scheme_on_every_url() -> None:
    assert bootstrap_servers("kafka://h1:9092;kafka://h2:9092") == ["h1:9092", "h2:9092"]
