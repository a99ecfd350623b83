"""Which settings a worker takes once it knows the broker's cluster id."""

from __future__ import annotations

import pytest

from app.runtime.compat.broker_flavour import TANSU_CLUSTER_ID, flavour_for_cluster
from config import Settings

KAFKA_CLUSTER_ID = "MkU3OEVBNTcwNTJENDM2Qk"  # Apache Kafka's: a base64 UUID


@pytest.mark.parametrize(
    ("given", "cluster_id", "flavour", "fetch_wait_ms"),
    [
        ({}, TANSU_CLUSTER_ID, "tansu", 20),  # the flavour's fetch wait comes with it
        ({"fetch_max_wait_ms": 7}, TANSU_CLUSTER_ID, "tansu", 7),  # a set one stays
        ({"broker_flavour": "kafka"}, TANSU_CLUSTER_ID, "tansu", 20),  # wrong for Tansu
        ({"broker_flavour": "tansu"}, TANSU_CLUSTER_ID, "tansu", 20),
        ({}, KAFKA_CLUSTER_ID, "kafka", 500),
        ({}, None, "kafka", 500),  # unknown: as configured
        ({"broker_flavour": "tansu"}, KAFKA_CLUSTER_ID, "tansu", 20),  # as configured
    ],
)
def test_the_tansu_flavour_follows_the_cluster_id(given, cluster_id, flavour, fetch_wait_ms):
    settings = flavour_for_cluster(Settings(broker="kafka://h:1", **given), cluster_id)
    assert (settings.broker_flavour, settings.fetch_max_wait_ms) == (flavour, fetch_wait_ms)
    assert settings.broker == "kafka://h:1"


def test_taking_the_flavour_says_so(caplog):
    flavour_for_cluster(Settings(), TANSU_CLUSTER_ID)
    [record] = caplog.records
    assert record.levelname == "WARNING" and "NUDGEFLOW_BROKER_FLAVOUR=tansu" in record.message
    caplog.clear()
    flavour_for_cluster(Settings(broker_flavour="tansu"), TANSU_CLUSTER_ID)
    assert not caplog.records
