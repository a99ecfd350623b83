"""Session anomaly: how unlike this partition's usual sessions one session is.

River's ``MinMaxScaler`` and ``HalfSpaceTrees``, learned once per ended session and
scored on demand (when a friction signal fires, as extra evidence), never per event.
River plants the trees (their random splits follow from the seed); their masses are
then kept and walked as flat lists (``_FlatTrees``), with River's own arithmetic.
"""

from __future__ import annotations

from array import array
from typing import Any, NamedTuple, cast

from river import anomaly, preprocessing
from river.anomaly import hst

__all__ = ["SessionAnomaly", "SessionFeatures"]


class SessionFeatures(NamedTuple):
    """What the anomaly model sees of one session: counts and durations, all ≥ 0."""

    events_per_min: float
    back_navigations: float
    errors: float
    form_s: float
    step_regressions: float
    search_reformulations: float


class SessionAnomaly:
    """Half-space trees over a session's features; a score in [0, 1], higher is stranger.

    Scores are 0 until the first window of sessions has been learned (cold start).

    Parameters
    ----------
    n_trees, height, window_size
        As River's ``HalfSpaceTrees``: ten trees of height 8, a reference window of 250
        sessions. A few KB pickled (the masses of the nodes that have any).
    seed
        Seed of the trees' random splits: the same sessions give the same scores.

    Examples
    --------
    >>> m = SessionAnomaly(window_size=20)
    >>> usual = SessionFeatures(6.0, 1.0, 0.0, 30.0, 0.0, 1.0)
    >>> m.score_one(usual)
    0.0
    >>> for i in range(40):
    ...     m.learn_one(usual._replace(events_per_min=4.0 + i % 5, form_s=20.0 + i % 20))
    >>> m.score_one(SessionFeatures(90.0, 12.0, 9.0, 900.0, 6.0, 8.0)) > m.score_one(usual)
    True
    """

    def __init__(
        self, n_trees: int = 10, height: int = 8, window_size: int = 250, seed: int = 42
    ) -> None:
        if n_trees < 1 or height < 1 or window_size < 1:
            raise ValueError(
                f"n_trees, height and window_size must be at least 1, "
                f"not {n_trees}, {height} and {window_size}"
            )
        self.n_trees = n_trees
        self.height = height
        self.window_size = window_size
        self.seed = seed
        # River's scaler (untyped).
        self._scaler: Any = preprocessing.MinMaxScaler()
        self._trees = _FlatTrees(_plant(n_trees, height, window_size, seed), window_size)
        # What ``__getstate__`` keeps of the trees, until the next session is learned.
        self._masses: tuple[bytes, bytes, bytes] | None = None

    def score_one(self, x: SessionFeatures) -> float:
        """How anomalous a session like ``x`` is, from 0 (usual) to 1."""
        return self._trees.score_one(self._scaler.transform_one(x._asdict()))

    def learn_one(self, x: SessionFeatures) -> None:
        """Make a session like ``x`` part of what is usual (as River's pipeline learns:
        the scaler first, then the trees on the scaled session)."""
        features = x._asdict()
        scaler = self._scaler
        scaler.learn_one(features)
        self._trees.learn_one(scaler.transform_one(features))
        self._masses = None

    def masses(self) -> list[tuple[int, int]]:
        """Every node's (l_mass, r_mass), tree by tree in depth-first order."""
        trees = self._trees
        return list(zip(trees.l_mass, trees.r_mass, strict=True))

    def __getstate__(self) -> dict[str, Any]:
        if self._masses is None:
            self._masses = self._trees.nonzero_masses()
        return {
            "shape": (self.n_trees, self.height, self.window_size, self.seed),
            "scaler": self._scaler,
            "counter": self._trees.counter,
            "first_window": self._trees.first_window,
            "masses": self._masses,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        n_trees, height, window_size, seed = state["shape"]
        self.__init__(n_trees, height, window_size, seed)  # type: ignore[misc]
        kept = state["masses"]
        self._trees.restore_masses(*(array("I", data) for data in kept))
        self._trees.counter = state["counter"]
        self._trees.first_window = state["first_window"]
        self._scaler = state["scaler"]
        self._masses = kept


class _FlatTrees:
    """River's half-space trees as flat lists, walked as River's ``learn_one`` and
    ``score_one`` walk its node objects (``river.anomaly.hst``), with the same arithmetic
    in the same order: the same masses and the same scores, bit for bit.

    Nodes are numbered tree by tree in depth-first order (a full binary tree: the left
    child of ``place`` at ``depth`` is ``place + 1``, its right child ``place + 1 +
    subtree[depth + 1]``). A walk reads a few list items where River's follows node
    objects scattered over a worker's heap: in a worker holding thousands of customers,
    River's walk took 19 to 26 µs, mostly waiting for memory.
    """

    def __init__(self, trees: anomaly.HalfSpaceTrees, window_size: int) -> None:
        height = trees.height
        nodes = [node for tree_nodes in trees._tree_nodes for node in tree_nodes]
        self.height = height
        self.window_size = window_size
        #: Nodes in a subtree whose root is at each depth (the last: a leaf).
        self.subtree = [2 ** (height - depth + 1) - 1 for depth in range(height + 1)]
        self.roots = [number * self.subtree[0] for number in range(trees.n_trees)]
        # A leaf has no split: its feature and threshold are never read.
        self.feature = [getattr(node, "feature", "") for node in nodes]
        self.threshold = [float(getattr(node, "threshold", 0.0)) for node in nodes]
        self.l_mass = [0] * len(nodes)
        self.r_mass = [0] * len(nodes)
        self.counter = 0
        self.first_window = True
        self.max_score: int = trees._max_score

    def learn_one(self, x: dict[str, float]) -> None:
        """Add ``x`` to the masses of the current window; pivot the windows when full."""
        self._walk(x, learn=True)
        self.counter += 1
        if self.counter == self.window_size:
            self.r_mass = self.l_mass
            self.l_mass = [0] * len(self.l_mass)
            self.first_window = False
            self.counter = 0

    def score_one(self, x: dict[str, float]) -> float:
        """River's score: 0 in the first window, else 1 minus the reference masses along
        ``x``'s paths (weighted by depth) over the largest they could be."""
        if self.first_window:
            return 0.0
        return 1 - self._walk(x, learn=False) / self.max_score

    def _walk(self, x: dict[str, float], learn: bool) -> float:
        """Walk ``x`` down every tree, as River's ``_walk_learn`` (``learn``: add 1 to the
        current window's mass of each node passed) or its ``_walk_score`` (the reference
        masses passed, weighted by depth, until one is below a tenth of the window: their
        sum over the trees). One loop for both, with no call per node: the walk is most of
        the model's cost."""
        height, subtree, feature, threshold = (
            self.height,
            self.subtree,
            self.feature,
            self.threshold,
        )
        l_mass, r_mass = self.l_mass, self.r_mass
        size_limit = 0.1 * self.window_size
        score = 0.0
        for root in self.roots:
            place, depth_pow, tree_score = root, 1, 0.0
            for depth in range(height):
                if learn:
                    l_mass[place] += 1
                else:
                    r = r_mass[place]
                    tree_score += r * depth_pow
                    if r < size_limit:
                        break
                    depth_pow <<= 1
                value = x.get(feature[place])
                if value is None:
                    place = self._fuller_child(place, depth)
                elif value < threshold[place]:
                    place += 1
                else:
                    place += 1 + subtree[depth + 1]
            else:
                if learn:
                    l_mass[place] += 1
                else:
                    tree_score += r_mass[place] * depth_pow
            score += tree_score
        return score

    def _fuller_child(self, place: int, depth: int) -> int:
        """Where River goes from ``place`` when the session lacks the node's feature: to
        the child with more mass in the current window (the left one on a tie)."""
        left, right = place + 1, place + 1 + self.subtree[depth + 1]
        return right if self.l_mass[left] < self.l_mass[right] else left

    def nonzero_masses(self) -> tuple[bytes, bytes, bytes]:
        """The nodes with a mass: their places and masses (~600 of 5 110 in a warm
        partition, ~7 KB; every node's masses would be ~40 KB)."""
        l_mass, r_mass = self.l_mass, self.r_mass
        places = array("I", [p for p in range(len(l_mass)) if l_mass[p] or r_mass[p]])
        return (
            places.tobytes(),
            array("I", [l_mass[p] for p in places]).tobytes(),
            array("I", [r_mass[p] for p in places]).tobytes(),
        )

    def restore_masses(
        self, places: array[int], l_masses: array[int], r_masses: array[int]
    ) -> None:
        """Set the masses ``nonzero_masses`` kept (every other node's is 0)."""
        if not len(places) == len(l_masses) == len(r_masses) or (
            places and places[-1] >= len(self.l_mass)
        ):
            raise ValueError("session anomaly checkpoint does not fit its trees")
        l_mass, r_mass = self.l_mass, self.r_mass
        for place, left, right in zip(places, l_masses, r_masses, strict=True):
            l_mass[place], r_mass[place] = left, right


def _plant(n_trees: int, height: int, window_size: int, seed: int) -> anomaly.HalfSpaceTrees:
    """River's trees as its first ``learn_one`` would grow them (same features, same
    random draws): ~14 ms for ten trees of height 8, paid when a partition's models are
    made rather than by the event that ends its first session. Only their splits are
    kept (``_FlatTrees``)."""
    trees = anomaly.HalfSpaceTrees(
        n_trees=n_trees, height=height, window_size=window_size, seed=seed
    )
    features = sorted(SessionFeatures._fields)
    # River's own (untyped) helpers, as its ``learn_one`` calls them.
    grow: Any = hst.make_padded_tree  # type: ignore[attr-defined]
    trees.trees = [
        grow(limits={f: trees.limits[f] for f in features}, height=trees.height, padding=0.15,
             rng=trees.rng, r_mass=0, l_mass=0)
        for _ in range(trees.n_trees)
    ]  # fmt: skip
    trees._tree_nodes = [list(cast(Any, tree).iter_dfs()) for tree in trees.trees]
    # Places are depth-first ranks in a full tree (``_FlatTrees``).
    if any(len(nodes) != 2 ** (trees.height + 1) - 1 for nodes in trees._tree_nodes):
        raise ValueError("half-space trees are not full binary trees of their height")
    return trees
