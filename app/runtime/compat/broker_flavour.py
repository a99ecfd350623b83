"""Telling the embedded broker (Tansu) from Apache Kafka at start-up.

A worker with the ``kafka`` flavour on Tansu joins without complaint, but each event
waits for a 500 ms fetch Tansu is not woken from (median 109 ms per event instead of
7 ms), and table recovery may stop short of the changelog's end (Tansu's ListOffsets,
``faust_transport``). So a worker asks the cluster who it is and takes the ``tansu``
flavour when the answer is Tansu, saying so.

Tansu names its cluster ``tansu_cluster`` unless told otherwise (``--cluster-id``; the
embedded stack leaves it), and Apache Kafka's cluster ids are 22-character base64
UUIDs, so the id tells them apart; a Tansu given another id is not recognised.
"""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from config import Settings

__all__ = ["TANSU_CLUSTER_ID", "broker_cluster_id", "flavour_for_cluster", "settings_for_broker"]

log = logging.getLogger(__name__)

#: The cluster id Tansu reports unless started with ``--cluster-id``.
TANSU_CLUSTER_ID = "tansu_cluster"


async def broker_cluster_id(bootstrap_servers: list[str]) -> str | None:
    """The cluster id the broker reports (Metadata), or None when it cannot be had."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=10_000)
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
    except KafkaError as exc:
        log.info("could not read the broker's cluster id: %r", exc)
        return None
    finally:
        await admin.close()
    cluster_id = cluster.get("cluster_id")
    return cluster_id if isinstance(cluster_id, str) else None


def flavour_for_cluster(settings: Settings, cluster_id: str | None) -> Settings:
    """``settings``, with the ``tansu`` flavour when the cluster is Tansu and they lack it.

    The fetch wait becomes the flavour's default unless it was set. Logs a warning
    when it changes anything.
    """
    if cluster_id != TANSU_CLUSTER_ID or settings.broker_flavour == "tansu":
        return settings
    log.warning(
        "the broker is the embedded broker (Tansu, cluster id %r), but the broker flavour is "
        "%r: using the 'tansu' flavour, without which each event waits ~100 ms for a fetch "
        "and table recovery can stop short of a changelog's end. Set "
        "NUDGEFLOW_BROKER_FLAVOUR=tansu to say so.",
        cluster_id,
        settings.broker_flavour,
    )
    explicit = {name: getattr(settings, name) for name in settings.model_fields_set}
    # Validated again, so the flavour's defaults (the fetch wait) apply where nothing was set.
    return Settings(**{**explicit, "broker_flavour": "tansu"})


async def settings_for_broker(settings: Settings, bootstrap_servers: list[str]) -> Settings:
    """``settings`` adapted to the broker at ``bootstrap_servers`` (``flavour_for_cluster``)."""
    if settings.broker_flavour == "tansu":
        return settings
    return flavour_for_cluster(settings, await broker_cluster_id(bootstrap_servers))
