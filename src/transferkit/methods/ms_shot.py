r"""Multi-source SHOT: several source models adapted to the target without any source data (DECISION).

Ahmed, Raychaudhuri, Paul, Oymak & Roy-Chowdhury, "Unsupervised Multi-source Domain Adaptation
Without Access to Source Data", CVPR 2021 (DECISION), which extends SHOT (Liang et al., ICML 2020)
to :math:`K` sources.

1. **Sources.** One network per source, :math:`f_k = h_k \circ g_k` (features, bottleneck,
   classifier), trained on that source alone with label smoothing, as SHOT trains its one network.
2. **Target, without the sources.** The classifiers :math:`h_k` are frozen. The target model is the
   weighted ensemble

   .. math:: p(x) = \sum_{k=1}^{K} \alpha_k\, \delta\big(h_k(g_k(x))\big), \qquad
             \alpha = \mathrm{softmax}(a),

   whose feature extractors :math:`g_k` and source weights :math:`\alpha` are trained together by
   SHOT's objective on :math:`p`: information maximisation (confident predictions,
   :math:`-\mathbb E_x \sum_c p_c \log p_c`, and diverse ones, :math:`\sum_c \hat p_c \log \hat p_c`,
   :math:`\hat p = \mathbb E_x p(x)`) plus :math:`\beta` times the cross-entropy of :math:`\log p` to
   pseudo-labels. The pseudo-labels come, at the start of every epoch, from class centroids in every
   source's feature space weighted by :math:`p`, the cosine distances combined with the weights
   :math:`\alpha` (DECISION's weighted clustering), then once more with the centroids of the labelled
   features.

A source that transfers badly loses weight :math:`\alpha_k` during adaptation; ``source_weights_``
reports the weights learnt. The source data are used in step 1 only (``source_models`` skips it).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from transferkit.methods.mdan import pool_sources
from transferkit.methods.shot import SHOT, SourceObjective, TargetObjective, source_classes
from transferkit.train.loop import fit_loop, to_batch

__all__ = ["MultiSourceSHOT", "SourceEnsemble", "weighted_centroid_pseudo_labels"]


class SourceEnsemble(nn.Module):
    """:math:`\\log \\sum_k \\alpha_k \\delta(f_k(x))`, :math:`\\alpha = \\mathrm{softmax}(a)`: the log of the weighted
    mixture of the source networks' class probabilities (so a softmax of it is the mixture itself)."""

    def __init__(self, nets: list[nn.Module]):
        super().__init__()
        self.nets = nn.ModuleList(nets)
        self.mix = nn.Parameter(torch.zeros(len(nets)))

    @property
    def alpha(self) -> torch.Tensor:
        return torch.softmax(self.mix, 0)

    def features(self, x) -> list[torch.Tensor]:
        return [net.forward_features(x).flatten(1) for net in self.nets]

    def forward(self, x):
        log_alpha = torch.log_softmax(self.mix, 0)
        per_source = torch.stack([torch.log_softmax(net(x), 1) for net in self.nets])  # (K, n, C)
        return torch.logsumexp(per_source + log_alpha[:, None, None], 0)


def weighted_centroid_pseudo_labels(features: list[np.ndarray], proba: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """DECISION's pseudo-labels: per source, the cosine distance of every sample to the ``proba``-weighted class
    centroids of that source's features; the distances combined with the weights ``alpha``; nearest class;
    then once more with the centroids of the samples so labelled."""
    f = [z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12) for z in features]
    weights = proba
    for _ in range(2):
        distance = 0.0
        for a_k, z in zip(alpha, f, strict=True):
            c = weights.T @ z / np.maximum(weights.sum(0)[:, None], 1e-12)
            c = c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)
            distance = distance + a_k * (1.0 - z @ c.T)
        labels = distance.argmin(1)
        one_hot = np.eye(proba.shape[1])[labels]
        # a class no sample chose keeps its soft centroid
        weights = np.where(one_hot.sum(0, keepdims=True) > 0, one_hot, proba)
    return labels


@dataclass(eq=False, repr=False, kw_only=True)
class MultiSourceSHOT(SHOT):
    """SHOT with several labelled sources: ``fit([source_1, source_2, ...], target)``; one network per source,
    adapted to the target together as a weighted ensemble, without the sources.

    Parameters are those of :class:`~transferkit.methods.shot.SHOT`; ``source_model`` is a list of
    networks, one per source (``source_models_`` of another fit, or SHOT's ``source_model_`` of
    several), and then ``fit(None, target)`` needs no source data. Predictions keep the class labels
    of the fits that trained them.

    Attributes
    ----------
    source_models_ : nn.ModuleList
        The source networks after step 1, for adapting to another target without the sources.
    source_weights_ : ndarray
        The weights :math:`\\alpha` of the sources after adaptation, in the order given.
    """

    name = "ms-shot"
    description = "source-free adaptation of several source networks, weighted, by SHOT's objective (DECISION)"
    paper = "Ahmed et al., Unsupervised Multi-source Domain Adaptation Without Access to Source Data, CVPR 2021"

    _parameter_constraints = {**SHOT._parameter_constraints, "source_model": [list, tuple, nn.ModuleList, None]}

    def fit(self, source, target=None, sample_domain=None):
        """Step 1 on each source (skipped with ``source_model``), step 2 on the unlabelled ``target`` alone."""
        self._validate_params()
        if self.source_model is not None:
            target = self._source_free_target(source, target)
            nets = [copy.deepcopy(m) for m in self.source_model]
            if len(nets) < 2:
                raise ValueError(f"source_model holds {len(nets)} network(s); expected one per source, two or more.")
            self.classes_ = source_classes(nets, getattr(self, "classes_", None))
            self.input_shape_ = target.feature_shape
        else:
            pooled, ids = pool_sources(source, "SHOT")
            pooled, target = self._check_fit_data(pooled, target, sample_domain)
            self._check_augment(pooled.feature_shape)
            self.classes_ = np.unique(pooled.y)
            self.input_shape_ = pooled.feature_shape
            nets = []
            for k in range(int(ids.max()) + 1):
                own = pooled.subset(ids == k)
                torch.manual_seed(self.seed + k)
                net = self._build_net(self.input_shape_, len(self.classes_))
                y = np.searchsorted(self.classes_, own.y).astype(np.int64)
                fit_loop(
                    SourceObjective(net, self.smoothing, self.augment),
                    {"xs": own.X, "ys": y},
                    None,
                    self._config(self.source_epochs, f"source-{k + 1}"),
                )
                nets.append(net)
        self.n_sources_ = len(nets)
        self.source_models_ = nn.ModuleList(copy.deepcopy(n).eval() for n in nets)
        for net in self.source_models_:
            net.class_labels = self.classes_
        for net in nets:  # the source hypotheses stay as they are
            net.head.requires_grad_(False)
        ensemble = SourceEnsemble(nets)
        # SHOT's objective on the ensemble: its output is log p, and softmax(log p) = p, so the information
        # maximisation and the pseudo-label cross-entropy are those of the mixture p
        objective = TargetObjective(ensemble, len(target), self.beta)
        X_t = target.X

        def relabel(epoch=None, module=None, log=None):
            ensemble.eval()
            device = next(ensemble.parameters()).device
            with torch.no_grad():
                feats, probs = [[] for _ in nets], []
                for i in range(0, X_t.shape[0], 512):
                    x = to_batch(X_t[i : i + 512], device)
                    for k, z in enumerate(ensemble.features(x)):
                        feats[k].append(z.cpu().numpy())
                    probs.append(ensemble(x).exp().cpu().numpy())
                alpha = ensemble.alpha.cpu().numpy()
            labels = weighted_centroid_pseudo_labels([np.concatenate(f) for f in feats], np.concatenate(probs), alpha)
            objective.pseudo.copy_(torch.from_numpy(labels))
            return {
                "pseudo_classes": float(len(np.unique(labels))),
                **{f"alpha_{k}": float(a) for k, a in enumerate(alpha)},
            }

        self._adapt(objective, X_t, relabel)
        self.source_weights_ = ensemble.alpha.detach().cpu().numpy()
        return self

    def transform(self, X) -> np.ndarray:
        """Every source network's adapted features, side by side."""
        return self._batched(X, lambda x: torch.cat(self.model_.features(x), 1))

    def _rebuild_module(self, name: str):
        if name not in ("model_", "source_models_"):
            return None
        nets = [self._build_net(self.input_shape_, len(self.classes_)) for _ in range(self.n_sources_)]
        if name == "model_":
            return SourceEnsemble(nets)
        for net in nets:  # as after fit: the source networks remember their labels
            net.class_labels = self.classes_
        return nn.ModuleList(nets)
