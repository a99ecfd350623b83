"""The models' counters count what this process learned: all of a fresh partition's
learning, none of what a restored checkpoint had already learned."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from app.detect.learning import PartitionLearner
from app.detect.models.partition import PartitionModels
from app.detect.pipeline import Rules
from app.runtime.learning import ModelMetricsExport
from app.runtime.metrics import Metrics


def _export() -> tuple[ModelMetricsExport, CollectorRegistry]:
    registry = CollectorRegistry()
    return ModelMetricsExport(Metrics.create(registry)), registry


def _learned(registry: CollectorRegistry) -> float | None:
    return registry.get_sample_value("nudgeflow_model_learned_total", {"model": "baselines"})


def _examples(registry: CollectorRegistry) -> float | None:
    return registry.get_sample_value("nudgeflow_model_examples", {"model": "baselines"})


def test_what_a_fresh_partition_learned_before_the_first_export_is_counted() -> None:
    export, registry = _export()
    learner = PartitionLearner(PartitionModels(), Rules())
    for dwell in (1.0, 2.0, 3.0):
        learner.models.observe_baseline("dwell_product_ms", dwell)
    export.export({0: learner})
    assert _learned(registry) == 3
    learner.models.observe_baseline("dwell_product_ms", 4.0)
    export.export({0: learner})
    assert _learned(registry) == 4


def test_a_restored_partitions_counts_are_held_not_learned_again() -> None:
    models = PartitionModels()
    for dwell in (1.0, 2.0, 3.0):
        models.observe_baseline("dwell_product_ms", dwell)
    restored = PartitionModels.from_bytes(models.to_bytes())
    export, registry = _export()
    learner = PartitionLearner(restored, Rules())
    learner.models.observe_baseline("dwell_product_ms", 4.0)
    export.export({0: learner})
    assert (_learned(registry), _examples(registry)) == (1, 4)
