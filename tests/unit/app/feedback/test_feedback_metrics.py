"""The feedback counters: names, labels, and every series shown from the start."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from app.feedback import OUTCOMES
from app.runtime.metrics import KNOWN_FEEDBACK_REJECT_REASONS, KNOWN_VARIANT_SKIP_CAUSES, Metrics


def samples() -> dict[str, list[dict[str, str]]]:
    registry = CollectorRegistry()
    Metrics.create(registry)
    found: dict[str, list[dict[str, str]]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(sample.labels)
    return found


@pytest.mark.parametrize(
    ("name", "label", "values"),
    [
        ("nudgeflow_feedback_total", "outcome", OUTCOMES),
        ("nudgeflow_feedback_rejected_total", "reason", KNOWN_FEEDBACK_REJECT_REASONS),
        ("nudgeflow_variant_rewards_skipped_total", "cause", KNOWN_VARIANT_SKIP_CAUSES),
    ],
)
def test_feedback_counters_start_at_zero_for_every_label(
    name: str, label: str, values: tuple[str, ...]
) -> None:
    assert samples()[name] == [{label: value} for value in values]


def test_feedback_reject_reasons_cover_every_refusal_the_parser_gives() -> None:
    parser_reasons = {"invalid_json", "not_an_object", "missing_field", "invalid_field",
                      "unknown_outcome", "ts_too_old", "ts_in_future", "too_large",
                      "unknown_intervention", "customer_mismatch"}  # fmt: skip
    assert parser_reasons <= set(KNOWN_FEEDBACK_REJECT_REASONS)
