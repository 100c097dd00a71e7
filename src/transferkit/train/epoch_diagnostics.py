"""Per-epoch diagnostics of an adaptation run, computed on fixed subsets of the training inputs.

Nothing here sees a target label: the proxy A-distance and MMD compare source and target
*features*; entropy and class balance describe the *predictions* on target inputs.
"""

from __future__ import annotations

import numpy as np
import torch

from transferkit.metrics import class_balance, mmd, prediction_entropy, proxy_a_distance
from transferkit.nn.backbones import StagedNet
from transferkit.train.loop import to_batch

__all__ = ["EpochDiagnostics"]


class EpochDiagnostics:
    """An ``on_epoch_end`` callback for :func:`~transferkit.train.fit_loop`.

    Parameters
    ----------
    net : StagedNet
        The network being trained; features are read at ``stage``.
    Xs, Xt : ndarray
        Source and target inputs; at most ``n`` of each (a fixed random subset) are used.
    n_classes : int
    """

    def __init__(
        self,
        net: StagedNet,
        Xs: np.ndarray,
        Xt: np.ndarray,
        n_classes: int,
        stage: str | None = None,
        n: int = 500,
        seed: int = 0,
    ):
        rng = np.random.default_rng(seed)
        self.net, self.n_classes, self.stage = net, n_classes, stage or net.adapt_at
        self.Xs = Xs[np.sort(rng.choice(Xs.shape[0], min(n, Xs.shape[0]), replace=False))]
        self.Xt = Xt[np.sort(rng.choice(Xt.shape[0], min(n, Xt.shape[0]), replace=False))]

    def __call__(self, epoch: int, module, log: dict) -> dict[str, float]:
        device = next(self.net.parameters()).device
        with torch.no_grad():
            fs = self.net.forward_to(to_batch(self.Xs, device), self.stage).flatten(1).float().cpu().numpy()
            ht = self.net.forward_to(to_batch(self.Xt, device), self.stage)
            ft = ht.flatten(1).float().cpu().numpy()
            proba = torch.softmax(self.net.forward_from(ht, self.stage), 1).float().cpu().numpy()
        balance = class_balance(proba.argmax(1), self.n_classes)
        return {
            "a_distance": proxy_a_distance(fs, ft, seed=0),
            "mmd": mmd(fs, ft),
            "target_entropy": prediction_entropy(proba),
            "target_top_class_share": float(balance.max()),
        }
