"""Contract §5: the metric names, types and labels every worker exports."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from app.runtime.metrics import KNOWN_REJECT_REASONS, Metrics

# (exposed name, type, label names) from contract §5.
CONTRACT_METRICS = [
    ("nudgeflow_events_received_total", "counter", {"source"}),
    ("nudgeflow_events_rejected_total", "counter", {"reason"}),
    ("nudgeflow_events_processed_total", "counter", set()),
    ("nudgeflow_interventions_total", "counter", {"kind", "reason"}),
    ("nudgeflow_interventions_suppressed_total", "counter", {"cause"}),
    ("nudgeflow_event_to_intervention_seconds", "histogram", set()),
    ("nudgeflow_processing_seconds", "histogram", set()),
    ("nudgeflow_event_lag_seconds", "gauge", set()),
    ("nudgeflow_active_customers", "gauge", set()),
    ("nudgeflow_model_score", "histogram", {"model"}),
]

_SAMPLE_SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum")}


def exposition(metrics_used: bool) -> str:
    registry = CollectorRegistry()
    metrics = Metrics.create(registry)
    if metrics_used:
        metrics.announce_interventions([("assist", "rage_click")], ["hst"])
        metrics.model_score.labels(model="hst").observe(0.5)
    return generate_latest(registry).decode()


def samples_by_name(text: str) -> dict[str, list[dict[str, str]]]:
    found: dict[str, list[dict[str, str]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(sample.labels)
    return found


def family_types(text: str) -> dict[str, str]:
    return {f.name: f.type for f in text_string_to_metric_families(text)}


@pytest.mark.parametrize(("name", "kind", "labels"), CONTRACT_METRICS)
def test_fresh_registry_exposes_every_contract_metric(
    name: str, kind: str, labels: set[str]
) -> None:
    text = exposition(metrics_used=False)

    assert f"# HELP {name}" in text
    assert f"# TYPE {name}" in text
    family = name.removesuffix("_total")
    assert family_types(text)[family] == kind


@pytest.mark.parametrize(("name", "kind", "labels"), CONTRACT_METRICS)
def test_contract_metrics_have_the_contract_labels(name: str, kind: str, labels: set[str]) -> None:
    samples = samples_by_name(exposition(metrics_used=True))
    family = name.removesuffix("_total")

    for suffix in _SAMPLE_SUFFIXES[kind]:
        sample_name = family + suffix
        assert sample_name in samples, sample_name
        for sample_labels in samples[sample_name]:
            assert set(sample_labels) - {"le"} == labels


@pytest.mark.parametrize(
    ("sample", "labels"),
    [
        ("nudgeflow_events_received_total", {"source": "http"}),
        ("nudgeflow_events_received_total", {"source": "kafka"}),
        *[("nudgeflow_events_rejected_total", {"reason": r}) for r in KNOWN_REJECT_REASONS],
        ("nudgeflow_interventions_suppressed_total", {"cause": "cooldown"}),
    ],
)
def test_known_label_values_start_at_zero(sample: str, labels: dict[str, str]) -> None:
    text = exposition(metrics_used=False)

    values = {
        tuple(sorted(s.labels.items())): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == sample
    }
    assert values[tuple(sorted(labels.items()))] == 0.0


def test_announce_interventions_shows_zero_series() -> None:
    registry = CollectorRegistry()
    metrics = Metrics.create(registry)

    metrics.announce_interventions(
        [("assist", "rage_click"), ("assist", "step_loop")], ["hst", "ewm"]
    )

    assert (
        registry.get_sample_value(
            "nudgeflow_interventions_total", {"kind": "assist", "reason": "step_loop"}
        )
        == 0.0
    )
    assert registry.get_sample_value("nudgeflow_model_score_count", {"model": "ewm"}) == 0.0


def test_metrics_count() -> None:
    registry = CollectorRegistry()
    metrics = Metrics.create(registry)

    metrics.events_processed.inc(3)
    metrics.events_received.labels(source="http").inc()
    metrics.processing.observe(0.00002)
    metrics.event_lag.set(1.5)

    assert registry.get_sample_value("nudgeflow_events_processed_total") == 3.0
    assert registry.get_sample_value("nudgeflow_events_received_total", {"source": "http"}) == 1.0
    assert registry.get_sample_value("nudgeflow_processing_seconds_bucket", {"le": "2.5e-05"}) == 1
    assert registry.get_sample_value("nudgeflow_event_lag_seconds") == 1.5


@pytest.mark.parametrize(
    ("family", "first", "last"),
    [
        ("nudgeflow_event_to_intervention_seconds", 0.001, 10.0),
        ("nudgeflow_processing_seconds", 0.00001, 0.1),
        ("nudgeflow_model_score", 0.1, 1.0),
    ],
)
def test_histograms_have_explicit_buckets(family: str, first: float, last: float) -> None:
    samples = samples_by_name(exposition(metrics_used=True))

    bounds = [float(labels["le"]) for labels in samples[f"{family}_bucket"]]
    assert bounds == sorted(bounds)
    assert (bounds[0], bounds[-2], bounds[-1]) == (first, last, float("inf"))


def test_prefix_renames_every_metric() -> None:
    registry = CollectorRegistry()
    Metrics.create(registry, prefix="shop")

    names = {f.name for f in registry.collect()}
    assert names
    assert all(name.startswith("shop_") for name in names)


def test_two_sets_need_two_registries() -> None:
    registry = CollectorRegistry()
    Metrics.create(registry)

    with pytest.raises(ValueError, match="Duplicated"):
        Metrics.create(registry)
    Metrics.create(CollectorRegistry())
