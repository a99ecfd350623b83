# River's metrics and drift detectors carry no annotations.
# mypy: disable-error-code="no-untyped-call"
"""Progressive validation of a classifier whose labels arrive late.

Each label is scored before it is learned (prequential), so every prediction is
on data the model has not learned yet: the running ROC AUC and log loss are
held-out measures, and ADWIN over the error tells when they start to move.
"""

from __future__ import annotations

from river import drift, metrics

__all__ = ["ProgressiveValidation"]


class ProgressiveValidation:
    """Running ROC AUC, log loss and drift count of predictions met by their labels.

    Examples
    --------
    >>> v = ProgressiveValidation()
    >>> for y, p in [(True, 0.8), (False, 0.3), (True, 0.6), (False, 0.1)]:
    ...     v.update(y, p)
    >>> v.labels, v.auc, round(v.log_loss, 3), v.drifts
    (4, 1.0, 0.299, 0)
    """

    def __init__(self) -> None:
        self.labels = 0
        self.drifts = 0
        self._auc = metrics.ROCAUC()
        self._log_loss = metrics.LogLoss()
        self._drift = drift.ADWIN()

    def update(self, y: bool, p: float) -> None:
        """Meet the prediction ``p`` (the probability of ``y`` being True) with its label."""
        self.labels += 1
        self._auc.update(y, p)
        self._log_loss.update(y, p)
        self._drift.update(abs(y - p))
        if self._drift.drift_detected:
            self.drifts += 1

    @property
    def auc(self) -> float:
        """ROC AUC of the predictions so far (0 before both classes were seen)."""
        return float(self._auc.get())

    @property
    def log_loss(self) -> float:
        """Mean log loss of the predictions so far (0 before any)."""
        return float(self._log_loss.get())
