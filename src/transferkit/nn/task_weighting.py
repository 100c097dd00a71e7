r"""How the losses of several tasks become one training signal: weightings and PCGrad.

Every function here turns the per-task losses :math:`L_1 \dots L_T` of one batch into a *surrogate*
scalar whose gradient is the update the method prescribes, so the one training loop (one
``backward``, one optimiser step) trains any of them.

- equal weights: :math:`\sum_t L_t`;
- uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018, eqs. 7 and 10), with
  :math:`s_t = \log\sigma_t^2` learnt:
  :math:`\sum_t c_t e^{-s_t} L_t + \tfrac12 s_t`, :math:`c_t = \tfrac12` for a regression task
  (Gaussian likelihood) and 1 for a classification task (the scaled softmax);
- dynamic weight average (DWA; Liu, Johns & Davison, CVPR 2019, eq. 2):
  :math:`w_t(e) = T\,\exp(r_t(e-1)/\tau) / \sum_k \exp(r_k(e-1)/\tau)` with
  :math:`r_t(e-1) = \bar L_t(e-1)/\bar L_t(e-2)` the ratio of the task's mean losses over the two
  previous epochs (:math:`w_t = 1` in the first two epochs), :math:`\tau = 2`;
- GradNorm (Chen et al., ICML 2018): weights :math:`w_t` learnt so that the gradient norms
  :math:`G_t = \lVert\nabla_W w_t L_t\rVert` on the last shared layer :math:`W` approach
  :math:`\bar G\, r_t^{\alpha}`, :math:`r_t = \tilde L_t / \operatorname{mean}_k \tilde L_k`,
  :math:`\tilde L_t = L_t / L_t(0)`, by descending :math:`\sum_t |G_t - \bar G r_t^\alpha|` (target
  held constant) in the weights only. The paper renormalises the weights to sum to :math:`T` after
  each step; here :math:`w = T\,\operatorname{softmax}(\theta)`, the same constraint built in;
- PCGrad (Yu et al., NeurIPS 2020), on top of any weighting: each task's gradient on the shared
  parameters, :math:`g_t`, loses its component along every other task's gradient it conflicts
  with (:math:`g_t \cdot g_k < 0`: :math:`g_t \leftarrow g_t - \frac{g_t\cdot g_k}{\lVert g_k\rVert^2} g_k`,
  the other tasks in random order); the shared parameters step along :math:`\sum_t g_t`.

The weighting state (:math:`s_t`, :math:`\theta`, DWA's epoch losses, GradNorm's initial losses)
lives in parameters and buffers, so a checkpoint restores it.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["WEIGHTINGS", "TaskWeighting", "pcgrad"]

WEIGHTINGS = ("equal", "uncertainty", "dwa", "gradnorm")


class TaskWeighting(nn.Module):
    """Combine per-task losses by one of :data:`WEIGHTINGS` (see the module docstring).

    Parameters
    ----------
    kinds : list of {"classification", "regression"}
        One entry per task (the uncertainty weighting's constant :math:`c_t` depends on it).
    method : str
    epochs : int
        The run's epochs (DWA reads the epoch off the training progress).
    temperature : float
        DWA's :math:`\\tau` (2 in the paper).
    alpha : float
        GradNorm's asymmetry :math:`\\alpha` (1.5 in the paper for its NYUv2 runs).
    """

    def __init__(self, kinds: list[str], method: str = "equal", epochs: int = 1, temperature: float = 2.0, alpha=1.5):
        super().__init__()
        if method not in WEIGHTINGS:
            raise ValueError(f"weighting={method!r}; expected one of {WEIGHTINGS}.")
        self.method, self.epochs, self.temperature, self.alpha = method, int(epochs), float(temperature), float(alpha)
        n = len(kinds)
        self.register_buffer("c", torch.tensor([0.5 if k == "regression" else 1.0 for k in kinds]))
        if method == "uncertainty":
            self.log_var = nn.Parameter(torch.zeros(n))  # s_t = log sigma_t^2, sigma = 1 at the start
        if method == "gradnorm":
            self.theta = nn.Parameter(torch.zeros(n))
            self.register_buffer("initial_loss", torch.zeros(n))  # L_t(0); 0 until a task is first seen
        if method == "dwa":
            # epoch losses: sums and counts of the current epoch, means of the two before it
            self.register_buffer("epoch", torch.tensor(-1))
            self.register_buffer("sums", torch.zeros(n))
            self.register_buffer("counts", torch.zeros(n))
            self.register_buffer("history", torch.full((2, n), float("nan")))  # rows: e-2, e-1

    def weights(self) -> torch.Tensor:
        """The current task weights :math:`w_t` (uncertainty: :math:`c_t e^{-s_t}`), detached."""
        n = len(self.c)
        if self.method == "uncertainty":
            return (self.c * torch.exp(-self.log_var)).detach()
        if self.method == "gradnorm":
            return (n * torch.softmax(self.theta, 0)).detach()
        if self.method == "dwa" and not torch.isnan(self.history).any():
            ratio = self.history[1] / self.history[0].clamp_min(1e-12)
            return n * torch.softmax(ratio / self.temperature, 0)
        return torch.ones(n, device=self.c.device)

    def _dwa_track(self, losses: torch.Tensor, present: torch.Tensor, progress: float) -> None:
        epoch = min(int(progress * self.epochs), self.epochs - 1)
        if epoch != int(self.epoch):
            if int(self.epoch) >= 0:
                mean = torch.where(self.counts > 0, self.sums / self.counts.clamp_min(1), self.history[1])
                self.history.copy_(torch.stack([self.history[1], mean]))
            self.epoch.fill_(epoch)
            self.sums.zero_()
            self.counts.zero_()
        self.sums += torch.where(present, losses.detach(), torch.zeros_like(losses))
        self.counts += present.float()

    def forward(
        self, losses: torch.Tensor, present: torch.Tensor, progress: float, shared: nn.Parameter | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The weighted loss and the weights used, from the per-task ``losses`` (0 where not ``present``).

        ``shared`` is the last shared layer's weight (GradNorm only).
        """
        if self.method == "equal":
            w = torch.ones_like(losses)
            return (w * losses).sum(), w
        if self.method == "uncertainty":
            precision = self.c * torch.exp(-self.log_var)
            total = (precision * losses + 0.5 * self.log_var * present.float()).sum()
            return total, precision.detach()
        if self.method == "dwa":
            if self.training:
                self._dwa_track(losses, present, progress)
            w = self.weights()
            return (w * losses).sum(), w
        return self._gradnorm(losses, present, shared)

    def _gradnorm(self, losses, present, shared):
        if shared is None:
            raise ValueError("GradNorm needs the last shared layer's weight (shared=...).")
        n = len(losses)
        w = n * torch.softmax(self.theta, 0)
        total = (w.detach() * losses).sum()  # the network descends the weighted loss
        if not self.training or present.sum() < 2:
            return total, w.detach()
        with torch.no_grad():  # L_t(0): the first loss each task shows
            first = present & (self.initial_loss == 0)
            self.initial_loss[first] = losses.detach()[first]
        idx = torch.nonzero(present).flatten()
        norms = []
        for t in idx.tolist():  # G_t, differentiable in theta (the network's part is held fixed)
            (g,) = torch.autograd.grad(losses[t], shared, retain_graph=True)
            norms.append(w[t] * g.detach().norm())
        g_norm = torch.stack(norms)
        ratio = losses.detach()[idx] / self.initial_loss[idx].clamp_min(1e-12)
        r = ratio / ratio.mean()
        target = (g_norm.mean() * r.pow(self.alpha)).detach()
        l_grad = (g_norm - target).abs().sum()
        (grad_theta,) = torch.autograd.grad(l_grad, self.theta, retain_graph=True)
        # a term whose gradient in theta is grad_theta and which adds nothing to the value
        return total + (self.theta * grad_theta).sum() - (self.theta * grad_theta).sum().detach(), w.detach()


def pcgrad(task_losses: list[torch.Tensor], shared: list[nn.Parameter], generator: torch.Generator | None = None):
    """A term to add to the summed loss so that the shared parameters follow PCGrad's projected gradient.

    ``task_losses`` are the weighted losses of the tasks present. Returns a scalar that is zero in
    value and whose gradient on ``shared`` is :math:`\\sum_t \\tilde g_t - \\sum_t g_t`.
    """
    grads = []
    for loss in task_losses:
        g = torch.autograd.grad(loss, shared, retain_graph=True, allow_unused=True)
        grads.append(
            torch.cat([(x if x is not None else torch.zeros_like(p)).flatten() for x, p in zip(g, shared, strict=True)])
        )
    if len(grads) < 2:
        return task_losses[0].new_zeros(())
    g = torch.stack(grads)
    projected = g.clone()
    for t in range(len(g)):
        for k in torch.randperm(len(g), generator=generator).tolist():
            if k == t:
                continue
            dot = projected[t] @ g[k]
            if dot < 0:  # conflict: remove the component along the other task's gradient
                projected[t] -= dot / g[k].pow(2).sum().clamp_min(1e-20) * g[k]
    delta = projected.sum(0) - g.sum(0)
    out, offset = 0.0, 0
    for p in shared:
        d = delta[offset : offset + p.numel()].view_as(p)
        offset += p.numel()
        out = out + (p * d).sum()
    return out - out.detach() if torch.is_tensor(out) else task_losses[0].new_zeros(())
