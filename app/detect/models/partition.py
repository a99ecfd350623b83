"""One set of models per ``clicks`` partition, learned in offset order and checkpointed.

Models are never per customer: a partition's events teach its ``PartitionModels``
in offset order, and a checkpoint holds the models with the newest offset they
include. Restored on another worker after a rebalance, or after a restart, the
models continue from that offset, so a replay at any speed learns the same thing.

Checkpoint format: ``b"NFPM"``, the format version (2 bytes, big-endian), the
length (1 byte) and ASCII text of the River version that wrote it, then a pickle
(protocol 5) of the ``PartitionModels``, compressed with zlib (level 1: a warm
partition's ~16 KB pickle becomes ~6 KB in ~0.1 ms; a checkpoint is written at every
commit that follows some learning, to a broker that may keep every one). The version rule: bump
``CHECKPOINT_VERSION`` whenever the attributes of a class pickled here change
(added, removed, renamed or read differently) or a feature record changes its
fields. A checkpoint of another format version, or written with another River
version (whose pickles need not read back the same), is refused: the partition
then starts cold, which every model supports (baselines answer with the
defaults, the classifier with 0.5, the trees with 0, the variant bandit draws from
flat priors). Checkpoints are the worker's own data; pickle is not for anything a
client could write.
"""

from __future__ import annotations

import pickle
import struct
import zlib

from river.__version__ import __version__ as _RIVER_VERSION

from app.decide.variants import VariantBandit
from app.detect.models.abandonment import AbandonmentFeatures, AbandonmentModel
from app.detect.models.anomaly import SessionAnomaly, SessionFeatures
from app.detect.models.baselines import ShopBaselines
from app.detect.models.rhythm import EwStats, churn_risk
from app.detect.models.validation import ProgressiveValidation

__all__ = ["CHECKPOINT_VERSION", "MODEL_NAMES", "PartitionModels"]

#: Names of the models in metrics (beside the rules' "rules").
MODEL_NAMES: tuple[str, ...] = ("baselines", "abandonment", "anomaly", "rhythm", "variants")
#: Format version of ``PartitionModels.to_bytes`` (see the module's version rule). 4: a
#: pending abandonment session holds its scored snapshots (features and score), not only
#: the last features. 5: the variant bandit, and its counts in ``learned`` and ``scored``.
#: 6: the anomaly trees keep only the nodes with a mass, the variant bandit only its counts;
#: the pickle is compressed. 7: the abandonment features include the cart's items, its
#: changes and the session's age. 8: a pending session's snapshots hold the features'
#: values as a plain tuple.
CHECKPOINT_VERSION = 8

_MAGIC = b"NFPM"
_HEADER = struct.Struct(">4sHB")
_PICKLE_PROTOCOL = 5  # fixed, so equal models give equal bytes whatever the default
_ZLIB_LEVEL = 1  # level 6 saves another 7 % of the bytes for 3x the time


class PartitionModels:
    """The models of one ``clicks`` partition, with what they learned and scored.

    ``learned`` and ``scored`` count calls per model name (``MODEL_NAMES``) for the
    runtime's metrics; ``offset`` is the newest offset whose events the models
    include (-1 before any). The variant bandit also learns from feedback, which has
    no offset in the partition's stream: ``learned["variants"]`` counts its lessons.

    Parameters
    ----------
    seed
        Seed of the anomaly model's random splits and of the variant bandit's draws.
    pending_max
        Sessions scored for abandonment and still waiting for their label.
    baseline_min_count
        Values a baseline metric needs before it replaces the default.

    Examples
    --------
    >>> models = PartitionModels()
    >>> models.baseline_threshold("checkout_step_ms", 60_000.0)
    60000.0
    >>> x = AbandonmentFeatures(80.0, 3.0, 2.0, 240.0, 30.0, 1.0, 0.0, 1.0, 2.0, 2.0, 600.0)
    >>> models.score_abandonment("c1/s1", x)
    0.5
    >>> models.label_session("c1/s1", abandoned=True)
    True
    >>> models.include(41)
    >>> restored = PartitionModels.from_bytes(models.to_bytes())
    >>> restored.offset, restored.learned["abandonment"], restored.includes(41)
    (41, 1, True)
    """

    def __init__(
        self, seed: int = 42, pending_max: int = 20_000, baseline_min_count: int = 200
    ) -> None:
        self.anomaly = SessionAnomaly(seed=seed)
        self.baselines = ShopBaselines(min_count=baseline_min_count)
        self.abandonment = AbandonmentModel(pending_max)
        self.variants = VariantBandit(seed=seed)
        self.seed = seed
        self.pending_max = pending_max
        self.baseline_min_count = baseline_min_count
        self.offset = -1
        # The thresholds the baselines raised at their last refresh (name → ms), and the
        # baseline count of the next refresh: kept with the models so that a restored
        # partition decides with the thresholds the previous owner had.
        self.adapted_thresholds: dict[str, int] = {}
        self.refresh_at = 0
        self.learned = dict.fromkeys(MODEL_NAMES, 0)
        self.scored = dict.fromkeys(MODEL_NAMES, 0)

    def includes(self, offset: int) -> bool:
        """Whether the event at ``offset`` is already in the models (skip it on a replay)."""
        return offset <= self.offset

    def include(self, offset: int) -> None:
        """Mark every event up to ``offset`` as in the models (call it after the event's
        model calls, at the latest before ``to_bytes``)."""
        if offset < self.offset:
            raise ValueError(f"offset {offset} is before {self.offset}: models learn in order")
        self.offset = offset

    def observe_baseline(self, metric: str, value: float) -> None:
        """Fold one duration into the shop's baseline of ``metric``."""
        self.baselines.observe(metric, value)
        self.learned["baselines"] += 1

    def baseline_threshold(self, metric: str, default: float) -> float:
        """The shop's p90 of ``metric`` within bounds, or ``default`` while cold."""
        threshold = self.baselines.threshold(metric, default)
        self.scored["baselines"] += 1
        return threshold

    def score_abandonment(self, session_key: str, features: AbandonmentFeatures) -> float:
        """The session's abandonment risk; ``features`` and the risk are kept for its label."""
        risk = self.abandonment.score_session(session_key, features)
        self.scored["abandonment"] += 1
        return risk

    def label_session(self, session_key: str, abandoned: bool) -> bool:
        """Teach the session's outcome (a purchase: False; an end with a cart: True): each
        of its scored snapshots is validated, then learned (``learned`` counts snapshots).

        Returns False when the session was never scored (or was forgotten).
        """
        learned = self.abandonment.label_session(session_key, abandoned)
        self.learned["abandonment"] += learned
        return learned > 0

    def forget_session(self, session_key: str) -> None:
        """Drop a scored session that ended with nothing to learn (no cart, no purchase)."""
        self.abandonment.forget(session_key)

    def score_anomaly(self, features: SessionFeatures) -> float:
        """How unusual a session like ``features`` is in this partition (0 to 1)."""
        score = self.anomaly.score_one(features)
        self.scored["anomaly"] += 1
        return score

    def learn_anomaly(self, features: SessionFeatures) -> None:
        """Make an ended session part of what is usual."""
        self.anomaly.learn_one(features)
        self.learned["anomaly"] += 1

    def learn_rhythm(self) -> None:
        """Count one gap folded into a customer's rhythm: the statistics are the customer's
        own, kept in their state (``app.detect.state.update_rhythm``), not here."""
        self.learned["rhythm"] += 1

    def churn_risk(self, visit_gaps_days: EwStats, gap_days: float) -> float:
        """The customer's churn risk for a gap of ``gap_days`` since the last visit."""
        risk = churn_risk(visit_gaps_days, gap_days)
        self.scored["rhythm"] += 1
        return risk

    def pick_variant(self, reason: str, variants: tuple[str, ...]) -> str:
        """The variant (one of ``variants``) to answer an intervention of ``reason`` with."""
        variant = self.variants.pick(reason, variants)
        self.scored["variants"] += 1
        return variant

    def learn_variant(self, reason: str, variant: str, reward: float) -> None:
        """Teach the bandit what ``variant`` of ``reason`` earned (1.0 or 0.0)."""
        self.variants.learn(reason, variant, reward)
        self.learned["variants"] += 1

    def auc(self, model: str) -> float:
        """Progressive ROC AUC of ``model`` (only "abandonment" has labels)."""
        return self._validation(model).auc

    def log_loss(self, model: str) -> float:
        """Progressive log loss of ``model`` (only "abandonment" has labels)."""
        return self._validation(model).log_loss

    def drifts(self, model: str) -> int:
        """Drifts ADWIN found in the error of ``model`` (only "abandonment" has labels)."""
        return self._validation(model).drifts

    def to_bytes(self) -> bytes:
        """The checkpoint of these models and the offset they include."""
        return self.sealed(self.snapshot())

    def snapshot(self) -> bytes:
        """These models as they are now, pickled: a copy, which ``sealed`` makes the
        checkpoint while the models go on learning (the pickle is ~60 % of ``to_bytes``)."""
        return pickle.dumps(self, protocol=_PICKLE_PROTOCOL)

    @staticmethod
    def sealed(snapshot: bytes) -> bytes:
        """The checkpoint of a ``snapshot``: format header, River version, compressed pickle."""
        river_version = _RIVER_VERSION.encode("ascii")
        header = _HEADER.pack(_MAGIC, CHECKPOINT_VERSION, len(river_version))
        return header + river_version + zlib.compress(snapshot, _ZLIB_LEVEL)

    @classmethod
    def from_bytes(cls, data: bytes) -> PartitionModels:
        """Models from a checkpoint of ``to_bytes``; ValueError if it is of another format
        or River version."""
        if len(data) < _HEADER.size:
            raise ValueError("not a models checkpoint: too short")
        magic, version, length = _HEADER.unpack_from(data)
        if magic != _MAGIC:
            raise ValueError("not a models checkpoint")
        if version != CHECKPOINT_VERSION:
            raise ValueError(
                f"models checkpoint of version {version}, this worker reads {CHECKPOINT_VERSION}"
            )
        start = _HEADER.size + length
        written_with = data[_HEADER.size : start].decode("ascii")
        if written_with != _RIVER_VERSION:
            raise ValueError(
                f"models checkpoint written with River {written_with}, "
                f"this worker has {_RIVER_VERSION}"
            )
        try:
            pickled = zlib.decompress(data[start:])
        except zlib.error as exc:
            raise ValueError(f"models checkpoint does not decompress: {exc}") from exc
        models = pickle.loads(pickled)
        if not isinstance(models, cls):
            raise ValueError(f"models checkpoint holds a {type(models).__name__}")
        return models

    def _validation(self, model: str) -> ProgressiveValidation:
        if model != "abandonment":
            raise ValueError(f"{model!r} is not validated against labels; only 'abandonment' is")
        return self.abandonment.validation
