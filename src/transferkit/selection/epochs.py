"""Choosing the epoch of an adaptation run with a label-free validator.

:class:`EpochSelector` is an ``on_epoch_end`` callback: after every epoch it scores the network
with a validator from :mod:`transferkit.selection.validators` on a held-out labelled source sample
and the unlabelled target, logs the score into the history and keeps a copy of the best weights.
The copy lives in buffers of a :class:`BestWeights` module attached to the training objective,
so it is saved with every checkpoint and a resumed run still returns the best epoch of the whole
run, not of its last part.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from transferkit.nn.backbones import StagedNet
from transferkit.selection.search import choose
from transferkit.selection.validators import Evidence, Validator, untrusted
from transferkit.train.loop import to_batch

__all__ = ["BestWeights", "EpochSelector"]


class BestWeights(nn.Module):
    """Buffers holding a copy of ``net``'s state, its score and its epoch (-1: none yet)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.keys = list(net.state_dict())
        for i, value in enumerate(net.state_dict().values()):
            self.register_buffer(f"w{i}", value.detach().clone())
        self.register_buffer("score", torch.tensor(float("-inf"), dtype=torch.float64))
        self.register_buffer("epoch", torch.tensor(-1))

    @torch.no_grad()
    def keep(self, net: nn.Module, score: float, epoch: int) -> None:
        for i, value in enumerate(net.state_dict().values()):
            getattr(self, f"w{i}").copy_(value)
        self.score.fill_(score)
        self.epoch.fill_(epoch)

    def state_for(self) -> dict[str, torch.Tensor]:
        return {k: getattr(self, f"w{i}") for i, k in enumerate(self.keys)}


class EpochSelector:
    """Score the network after each epoch with ``validator``; keep the best weights in ``best``.

    Parameters
    ----------
    net : StagedNet
        The network being trained; features are read at ``stage`` (its ``adapt_at`` by default).
    validator : Validator
        A label-free validator (``uses_target_labels`` is refused).
    Xs_val, ys_val : ndarray
        The held-out labelled source sample, never trained on; ``ys_val`` as class indices.
    Xt : ndarray
        Unlabelled target inputs; at most ``n`` of them (a fixed random subset) are scored.
    best : BestWeights
        Where the best weights are kept; attach it to the objective so checkpoints carry it.
    """

    def __init__(
        self,
        net: StagedNet,
        validator: Validator,
        Xs_val: np.ndarray,
        ys_val: np.ndarray,
        Xt: np.ndarray,
        best: BestWeights,
        stage: str | None = None,
        n: int = 2000,
        seed: int = 0,
    ):
        if validator.uses_target_labels:
            raise ValueError(f"validator {validator.name!r} reads target labels; an estimator never sees them.")
        rng = np.random.default_rng(seed)
        self.net, self.validator, self.best, self.seed = net, validator, best, seed
        self.stage = stage or net.adapt_at
        self.Xs_val, self.ys_val = Xs_val, ys_val
        self.Xt = Xt[np.sort(rng.choice(Xt.shape[0], min(n, Xt.shape[0]), replace=False))]
        self.key = f"select_{validator.name}"
        self.scores: list[float] = []  # this process's epochs (a resumed run scores its own)
        self.reasons: list[str | None] = []

    def _outputs(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        device = next(self.net.parameters()).device
        feats, probas = [], []
        for i in range(0, X.shape[0], 1024):
            h = self.net.forward_to(to_batch(X[i : i + 1024], device), self.stage)
            feats.append(h.flatten(1).float().cpu().numpy())
            probas.append(torch.softmax(self.net.forward_from(h, self.stage), 1).float().cpu().numpy())
        return np.concatenate(probas), np.concatenate(feats)

    def __call__(self, epoch: int, module, log: dict) -> dict[str, float]:
        ps, fs = self._outputs(self.Xs_val)
        pt, ft = self._outputs(self.Xt)
        evidence = Evidence(
            source_proba=ps, source_y=self.ys_val, source_features=fs, target_proba=pt, target_features=ft
        )
        score = self.validator.score(evidence, self.seed)
        reason = untrusted(self.validator.name, evidence, score)
        self.scores.append(score)
        self.reasons.append(reason)
        if reason is None and score > float(self.best.score):  # an untrusted score never wins
            self.best.keep(self.net, score, epoch + 1)
        return {self.key: score}

    def restore(self, last_epoch: int) -> tuple[int, str | None]:
        """Load the best weights into the network; return their epoch (1-based), and a warning when the
        scores could not decide and the weights of ``last_epoch`` were kept instead."""
        why = None
        if int(self.best.epoch) < 0:
            reason = next((r for r in self.reasons if r), "no epoch was scored")
            why = f"no epoch's score can be trusted ({reason})"
        elif len(self.scores) == last_epoch:  # every epoch scored here (a resumed run saw only its own)
            _, why = choose(self.scores, self.reasons, fallback=-1)
        if why is not None:
            return last_epoch, (
                f"select_epoch={self.validator.name!r} could not choose: {why}; kept the last epoch ({last_epoch})."
            )
        self.net.load_state_dict(self.best.state_for())
        return int(self.best.epoch), None
