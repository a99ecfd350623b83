"""Session anomaly: how unlike this partition's usual sessions one session is.

``MinMaxScaler | HalfSpaceTrees``, learned once per ended session and scored on
demand (when a friction signal fires, as extra evidence), never per event: one
score costs ~30 µs.
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
        As River's ``HalfSpaceTrees``: ten trees of height 8 cost ~30 µs a call and
        a few KB pickled (the masses of their nodes that have any); the reference
        window is 250 sessions.
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
        self._scaler = preprocessing.MinMaxScaler()
        self._trees = anomaly.HalfSpaceTrees(
            n_trees=n_trees, height=height, window_size=window_size, seed=seed
        )
        _plant(self._trees)
        self._model = self._scaler | self._trees
        # What ``__getstate__`` keeps of the trees, until the next session is learned.
        self._masses: tuple[bytes, bytes, bytes] | None = None

    def score_one(self, x: SessionFeatures) -> float:
        """How anomalous a session like ``x`` is, from 0 (usual) to 1."""
        return float(self._model.score_one(x._asdict()))

    def learn_one(self, x: SessionFeatures) -> None:
        """Make a session like ``x`` part of what is usual."""
        self._model.learn_one(x._asdict())
        self._masses = None

    def __getstate__(self) -> dict[str, Any]:
        if self._masses is None:
            self._masses = self._nonzero_masses()
        return {
            "shape": (self.n_trees, self.height, self.window_size, self.seed),
            "scaler": self._scaler,
            "counter": self._trees.counter,
            "first_window": self._trees._first_window,
            "masses": self._masses,
        }

    def _nonzero_masses(self) -> tuple[bytes, bytes, bytes]:
        # The trees' shape follows from the seed (``_plant``); only their masses change,
        # and most of them are 0: a node is only reached by the sessions of its half-space,
        # so every node below one with no mass has none either. Only the nodes with a mass
        # are kept, by their place in depth-first order (~600 of 5 110 in a warm partition:
        # ~7 KB, where every node's masses were ~40 KB and the node objects ~170 KB), and
        # the walk skips the empty subtrees. A checkpoint is written at every commit after
        # some learning, mostly of other models: until the next session is learned, the
        # next one reuses these (the walk is ~1 ms once the nodes are out of the CPU cache).
        height = self.height
        # Nodes in a subtree whose root is at each depth: the walk jumps over empty ones.
        subtree = [2 ** (height - depth + 1) - 1 for depth in range(height + 1)]
        places, l_masses, r_masses = array("I"), array("I"), array("I")
        for number, root in enumerate(self._trees.trees):
            todo = [(root, number * subtree[0], 0)]
            while todo:
                node, place, depth = todo.pop()
                if not (node.l_mass or node.r_mass):
                    continue
                places.append(place)
                l_masses.append(node.l_mass)
                r_masses.append(node.r_mass)
                if depth < height:
                    left, right = node.children
                    todo.append((right, place + 1 + subtree[depth + 1], depth + 1))
                    todo.append((left, place + 1, depth + 1))
        return places.tobytes(), l_masses.tobytes(), r_masses.tobytes()

    def __setstate__(self, state: dict[str, Any]) -> None:
        n_trees, height, window_size, seed = state["shape"]
        self.__init__(n_trees, height, window_size, seed)  # type: ignore[misc]
        trees = self._trees
        kept = state["masses"]
        places, l_masses, r_masses = (array("I", data) for data in kept)
        nodes = [node for tree_nodes in trees._tree_nodes for node in tree_nodes]
        if not len(places) == len(l_masses) == len(r_masses) or (
            places and places[-1] >= len(nodes)
        ):
            raise ValueError("session anomaly checkpoint does not fit its trees")
        for place, l_mass, r_mass in zip(places, l_masses, r_masses, strict=True):
            node = nodes[place]
            node.l_mass, node.r_mass = l_mass, r_mass
        trees.counter = state["counter"]
        trees._first_window = state["first_window"]
        self._scaler = state["scaler"]
        self._model = self._scaler | trees
        self._masses = kept


def _plant(trees: anomaly.HalfSpaceTrees) -> None:
    """Build the trees now, as River's first ``learn_one`` would (same features, same
    random draws): ~14 ms for ten trees of height 8, paid when a partition's models are
    made rather than by the event that ends its first session."""
    features = sorted(SessionFeatures._fields)
    # River's own (untyped) helpers, as its ``learn_one`` calls them.
    grow: Any = hst.make_padded_tree  # type: ignore[attr-defined]
    trees.trees = [
        grow(limits={f: trees.limits[f] for f in features}, height=trees.height, padding=0.15,
             rng=trees.rng, r_mass=0, l_mass=0)
        for _ in range(trees.n_trees)
    ]  # fmt: skip
    trees._tree_nodes = [list(cast(Any, tree).iter_dfs()) for tree in trees.trees]
    # The checkpoint places nodes by their depth-first rank in a full tree (__getstate__).
    if any(len(nodes) != 2 ** (trees.height + 1) - 1 for nodes in trees._tree_nodes):
        raise ValueError("half-space trees are not full binary trees of their height")
