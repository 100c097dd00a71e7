r"""Transitive transfer: bridge a distant source and target through intermediate domains.

When source and target are too far apart for direct transfer, Tan, Song, Zheng & Yang (KDD 2015)
transfer through intermediate domains chosen from a pool. Here the choice is a shortest path in
the graph of all domains (source, pool, target) whose edge between domains :math:`a, b` costs

.. math:: w(a, b) = d(a, b)^{p},

with :math:`d` a domain distance measured on the inputs, without labels: the proxy A-distance
(Ben-David et al. 2007) or the MMD. With :math:`p > 1` one long jump costs more than several short
ones, so a bridge is taken exactly when its steps are together cheaper than the direct jump
(:math:`p = 2` by default; with :math:`p = 1` and a metric distance the direct edge always wins).

Transfer then runs along the path :math:`D_0 = \text{source}, D_1, \dots, D_k = \text{target}`:
the base method adapts from labelled :math:`D_{i-1}` to unlabelled :math:`D_i`, its predictions
label :math:`D_i` (keeping the ``keep`` most confident; Kumar et al. drop the least confident
10 %), and the next step starts from there (gradual self-training when the base is
source-only, Kumar, Ma & Liang, ICML 2020; gradual adaptation with a domain-adaptation base).
Only the source's labels are ever read.

References
----------
Tan, Song, Zheng & Yang. Transitive transfer learning. KDD 2015.
Kumar, Ma & Liang. Understanding self-training for gradual domain adaptation. ICML 2020.
"""

from __future__ import annotations

import heapq
import time
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from sklearn.base import clone
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from transferkit.data import Domain, as_domain
from transferkit.methods.base import Setting, TransferMethod, store_params
from transferkit.methods.registry import method_named

__all__ = ["TransitiveTransfer", "domain_distances", "cheapest_path"]


def domain_distances(domains: list[np.ndarray], criterion: str = "a-distance", max_samples: int = 500, seed: int = 0):
    """Pairwise distances between domains (arrays of inputs), on at most ``max_samples`` per domain.

    ``criterion``: ``"a-distance"`` (proxy A-distance, in [0, 2]) or ``"mmd"`` (squared MMD with a
    Gaussian kernel, the biased estimate so that it is never negative).
    """
    from transferkit.metrics.divergence import mmd, proxy_a_distance

    if criterion not in ("a-distance", "mmd"):
        raise ValueError(f"criterion={criterion!r}; expected 'a-distance' or 'mmd'.")
    rng = np.random.default_rng(seed)
    take = [X.reshape(len(X), -1)[rng.permutation(len(X))[:max_samples]] for X in domains]
    n = len(take)
    D = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            if criterion == "mmd":
                D[i, j] = mmd(take[i], take[j], estimator="biased")
            else:
                D[i, j] = proxy_a_distance(take[i], take[j], seed=seed)
            D[j, i] = D[i, j]
    return D


def cheapest_path(W: np.ndarray, start: int, end: int) -> list[int]:
    """Dijkstra's shortest path from ``start`` to ``end`` in the complete graph with edge costs ``W``."""
    n = len(W)
    cost = np.full(n, np.inf)
    previous = np.full(n, -1)
    cost[start] = 0.0
    heap = [(0.0, start)]
    while heap:
        c, u = heapq.heappop(heap)
        if c > cost[u]:
            continue
        for v in range(n):
            if v != u and c + W[u, v] < cost[v]:
                cost[v], previous[v] = c + W[u, v], u
                heapq.heappush(heap, (cost[v], v))
    if not np.isfinite(cost[end]):
        raise ValueError(
            f"no path of finite cost leads from domain {start} to domain {end}; "
            f"W has {float(W[start, end])} between them."
        )
    path = [end]
    while path[-1] != start:
        path.append(int(previous[path[-1]]))
    return path[::-1]


class TransitiveTransfer(TransferMethod):
    """Transfer along the cheapest chain of intermediate domains from a pool.

    Parameters
    ----------
    base : TransferMethod or str
        The method run at every step (cloned each time), e.g. ``SourceOnly()`` (gradual
        self-training) or ``DANN()``, or a registered name (``"dann"``); default ``SourceOnly()``.
    criterion : {"a-distance", "mmd"}
        The domain distance :math:`d`.
    power : float
        :math:`p` of the edge cost :math:`d^p`.
    max_samples : int
        Samples per domain used to measure distances.
    keep : float
        Share of each intermediate domain kept for the next step, the most confidently
        pseudo-labelled first (0.9 after Kumar et al. 2020; 1 keeps every sample).
    path : "auto", "direct" or list of int
        ``"auto"`` chooses by the criterion (``distances_`` and ``path_cost_`` record why);
        ``"direct"`` skips the pool; a list of pool indices forces a bridge (to compare with the
        chosen one).
    seed : int
    """

    name: ClassVar[str] = "transitive"
    setting: ClassVar[Setting] = Setting(source_labels=True, target_labels=False)
    description: ClassVar[str] = (
        "bridges distant domains through intermediate ones chosen from a pool by domain distance"
    )
    paper: ClassVar[str] = "Tan, Song, Zheng & Yang, Transitive Transfer Learning, KDD 2015"

    _parameter_constraints = {
        "base": [HasMethods(["fit", "predict"]), str, None],
        "criterion": [StrOptions({"a-distance", "mmd"})],
        "power": [Interval(Real, 0, np.inf, closed="neither")],
        "max_samples": [Interval(Integral, 2, None, closed="left")],
        "keep": [Interval(Real, 0, 1, closed="right")],
        "path": [StrOptions({"auto", "direct"}), list, tuple],
        "seed": [Interval(Integral, 0, None, closed="left")],
    }

    def __init__(
        self,
        base=None,
        criterion: str = "a-distance",
        power: float = 2.0,
        max_samples: int = 500,
        keep: float = 0.9,
        path="auto",
        seed: int = 0,
    ):
        store_params(self, locals())

    def fit(self, source, target=None, pool=None, sample_domain=None):
        """Fit along the chosen path; ``pool`` is a list of unlabelled intermediate domains (arrays or Domains)."""
        source, target = self._check_fit_data(source, target, sample_domain)
        t0 = time.perf_counter()
        if pool is None or len(pool) == 0:
            raise ValueError(
                "pool is empty; transitive transfer chooses intermediate domains from a pool of unlabelled "
                "domains (pool=[X_1, X_2, ...]). For direct transfer, fit the base method itself."
            )
        pool = [as_domain(p, f"pool[{i}]") for i, p in enumerate(pool)]
        for i, p in enumerate(pool):
            if p.feature_shape != source.feature_shape:
                raise ValueError(
                    f"pool[{i}] has samples of shape {p.feature_shape}; source and target have {source.feature_shape}."
                )
            if p.y is not None:
                raise ValueError(f"pool[{i}] has labels; intermediate domains are unlabelled (pass .unlabelled()).")
        domains = [source.X, *[p.X for p in pool], target.X]
        end = len(domains) - 1
        if self.path == "auto":
            self.distances_ = domain_distances(domains, self.criterion, self.max_samples, self.seed)
            route = cheapest_path(self.distances_**self.power, 0, end)
            edges = zip(route, route[1:], strict=False)
            self.path_cost_ = float(sum(self.distances_[a, b] ** self.power for a, b in edges))
        elif self.path == "direct":
            route = [0, end]
        else:
            chosen = [int(i) for i in self.path]
            if any(not 0 <= i < len(pool) for i in chosen):
                raise ValueError(f"path={self.path!r} names pool indices outside 0..{len(pool) - 1}.")
            route = [0, *[i + 1 for i in chosen], end]
        self.path_ = [i - 1 for i in route[1:-1]]  # pool indices of the bridge
        base = self.base
        if base is None:
            from transferkit.methods.source_only import SourceOnly

            base = SourceOnly(seed=self.seed)
        elif isinstance(base, str):  # a registered method by name, with its defaults
            cls = method_named(base)
            if cls is TransitiveTransfer or hasattr(cls, "kinds"):  # itself, or a zero-shot method (no target)
                raise ValueError(
                    f"base={base!r}: each step adapts a method from one domain to the next; {cls.__name__} does "
                    "not (e.g. base='dann' or 'source-only')."
                )
            base = cls(seed=self.seed)
        labelled = source
        self.steps_ = []
        for b in route[1:]:
            model = clone(base)
            unlabelled = Domain(domains[b], None, "target" if b == end else f"pool[{b - 1}]")
            model.fit(labelled, unlabelled if model.setting.target else None)
            self.steps_.append(model)
            if b != end:  # the step's confident predictions label the intermediate domain for the next step
                proba = model.predict_proba(domains[b])
                confident = np.argsort(-proba.max(1), kind="stable")[: max(2, int(round(self.keep * len(proba))))]
                labels = model.classes_[proba.argmax(1)]
                labelled = Domain(domains[b][confident], labels[confident], f"pool[{b - 1}] (pseudo-labelled)")
        self.model_ = self.steps_[-1]
        self.classes_ = np.unique(source.y)
        self.input_shape_ = source.feature_shape
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def predict(self, X) -> np.ndarray:
        self._check_X(X)
        return self.model_.predict(X)

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities over the source's classes (a class the pseudo-labels lost along the way gets 0)."""
        self._check_X(X)
        proba = self.model_.predict_proba(X)
        out = np.zeros((len(proba), len(self.classes_)), dtype=proba.dtype)
        out[:, np.searchsorted(self.classes_, self.model_.classes_)] = proba
        return out
