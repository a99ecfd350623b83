"""The partitions' online models as an SRE sees them: metrics from their counters."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from app.detect.learning import PartitionLearner
from app.detect.models.partition import MODEL_NAMES
from app.runtime.metrics import Metrics

__all__ = ["ModelMetricsExport"]

log = logging.getLogger(__name__)

# The model that learns from labels and is validated progressively.
_VALIDATED = "abandonment"


class ModelMetricsExport:
    """Turns the learners' running counts into Prometheus counters and gauges.

    Counts a learner's models came with (restored from a checkpoint,
    ``PartitionLearner.learned_before``) are held (``nudgeflow_model_examples``) but
    not counted as learned here (``nudgeflow_model_learned_total``), so a restart does
    not count them twice.
    """

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        # Partition → (the learner, its learned and drift counts as last exported).
        self._seen: dict[int, tuple[PartitionLearner, dict[str, int], int]] = {}
        self._score = {name: metrics.model_score.labels(model=name) for name in MODEL_NAMES}
        self._learned = {name: metrics.model_learned.labels(model=name) for name in MODEL_NAMES}
        for name in MODEL_NAMES:
            metrics.model_examples.labels(model=name)
        metrics.model_drift.labels(model=_VALIDATED)
        metrics.model_auc.labels(model=_VALIDATED)
        metrics.model_log_loss.labels(model=_VALIDATED)

    def export(self, learners: Mapping[int, PartitionLearner]) -> None:
        """Count what the learners scored and learned since the last call."""
        metrics = self.metrics
        held = dict.fromkeys(MODEL_NAMES, 0)
        auc_sum = log_loss_sum = 0.0
        labels = 0
        for partition, learner in learners.items():
            models = learner.models
            for name, score in learner.scores:
                self._score[name].observe(score)
            learner.scores.clear()
            seen = self._seen.get(partition)
            drifts = models.drifts(_VALIDATED)
            if seen is None or seen[0] is not learner:  # restored counts: held only
                seen = (learner, learner.learned_before, learner.drifts_before)
            _learner, exported, exported_drifts = seen
            for name in MODEL_NAMES:
                count = models.learned[name]
                if count > exported[name]:
                    self._learned[name].inc(count - exported[name])
                held[name] += count
            if drifts > exported_drifts:
                metrics.model_drift.labels(model=_VALIDATED).inc(drifts - exported_drifts)
                log.warning("concept drift in the %s model of clicks[%s] (%d so far; "
                            "progressive AUC %.3f)", _VALIDATED, partition, drifts,
                            models.auc(_VALIDATED))  # fmt: skip
            self._seen[partition] = (learner, dict(models.learned), drifts)
            validation = models.abandonment.validation
            if validation.labels:
                auc_sum += models.auc(_VALIDATED) * validation.labels
                log_loss_sum += models.log_loss(_VALIDATED) * validation.labels
                labels += validation.labels
        for partition in [p for p in self._seen if p not in learners]:
            del self._seen[partition]
        for name, count in held.items():
            metrics.model_examples.labels(model=name).set(count)
        if labels:
            metrics.model_auc.labels(model=_VALIDATED).set(auc_sum / labels)
            metrics.model_log_loss.labels(model=_VALIDATED).set(log_loss_sum / labels)
