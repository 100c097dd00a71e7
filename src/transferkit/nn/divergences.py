r"""Differentiable discrepancies between two samples of features: MMD and CORAL.

Maximum mean discrepancy (Gretton et al., JMLR 2012) between the distributions of source
features :math:`X = \{x_i\}_{i=1}^{n}` and target features :math:`Y = \{y_j\}_{j=1}^{m}` under a
kernel :math:`k`:

.. math::

    \mathrm{MMD}^2(X, Y) = \mathbb{E}[k(x, x')] + \mathbb{E}[k(y, y')] - 2\,\mathbb{E}[k(x, y)].

Multi-kernel MMD (DAN, Long et al., ICML 2015) uses :math:`k = \sum_u \beta_u k_{\sigma_u}`, a
convex combination of Gaussian kernels :math:`k_\sigma(a, b) = \exp(-\lVert a-b \rVert^2 / 2\sigma^2)`.

CORAL (Sun & Saenko, ECCV 2016 workshops) compares second-order statistics:
:math:`\ell_{CORAL} = \lVert C_S - C_T \rVert_F^2 / (4 d^2)`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch

__all__ = ["gaussian_kernel", "mmd2", "coral_loss", "check_bandwidths", "DEFAULT_BANDWIDTH_MULTIPLIERS"]

#: Bandwidths of the multi-kernel family, as multiples of the base bandwidth (DAN uses a family of
#: Gaussian kernels spread geometrically around the median/mean distance).
DEFAULT_BANDWIDTH_MULTIPLIERS = (0.25, 0.5, 1.0, 2.0, 4.0)


def _sq_dists(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.cdist(a, b, p=2.0).pow(2)


def gaussian_kernel(
    a: torch.Tensor,
    b: torch.Tensor,
    sigmas2: Sequence[float] | torch.Tensor,
) -> torch.Tensor:
    r"""Mean of Gaussian kernels :math:`\frac{1}{U}\sum_u \exp(-\lVert a_i - b_j\rVert^2 / 2\sigma_u^2)`.

    Parameters
    ----------
    a : Tensor, shape (n, d)
    b : Tensor, shape (m, d)
    sigmas2 : sequence of float
        The squared bandwidths :math:`\sigma_u^2`.

    Returns
    -------
    Tensor, shape (n, m)
    """
    d2 = _sq_dists(a, b)
    s2 = torch.as_tensor(sigmas2, dtype=d2.dtype, device=d2.device).view(-1, 1, 1)
    return torch.exp(-d2.unsqueeze(0) / (2.0 * s2)).mean(0)


def check_bandwidths(values, name: str) -> None:
    """Kernel bandwidths must be positive finite numbers, and at least one of them."""
    try:
        vals = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ValueError(f"{name}={values!r}; expected a sequence of positive numbers.") from None
    if not vals or not all(v > 0 and v < float("inf") for v in vals):
        raise ValueError(f"{name}={list(values)!r}; expected one or more positive, finite numbers.")


def _base_sigma2(z: torch.Tensor) -> torch.Tensor:
    r"""The mean squared pairwise distance of the pooled sample ``z`` (detached): the kernel scale.

    In :math:`O(N d)` time and memory, from the identity
    :math:`\sum_{i \ne j} \lVert z_i - z_j \rVert^2 = 2N \sum_i \lVert z_i \rVert^2 - 2 \lVert \sum_i z_i \rVert^2`
    over the :math:`N(N-1)` ordered pairs (accumulated in float64: the two terms nearly cancel when
    the points are close together).
    """
    z64 = z.detach().to(torch.float64)
    n = len(z64)
    total = 2 * n * z64.pow(2).sum() - 2 * z64.sum(0).pow(2).sum()
    return (total.clamp_min(0) / max(n * n - n, 1)).to(z.dtype)


#: Kernel entries computed at once by the block sums below (about 32 MB of float64 per block).
_BLOCK_ENTRIES = 1 << 22


def _kernel_sum(a: torch.Tensor, b: torch.Tensor, sigmas2: torch.Tensor) -> torch.Tensor:
    r""":math:`\sum_{i,j} k(a_i, b_j)` over row blocks of ``a``: O(block x m) memory, never the (n, m) matrix."""
    rows = max(1, _BLOCK_ENTRIES // max(1, len(b) * len(sigmas2)))
    return sum(gaussian_kernel(a[i : i + rows], b, sigmas2).sum() for i in range(0, len(a), rows))


@functools.lru_cache(maxsize=8)
def _mmd_weights(n: int, m: int, unbiased: bool, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The weights C of MMD² = sum_ij C_ij K_ij over the pooled sample (read only: cached)."""
    c = torch.empty(n + m, n + m, dtype=dtype, device=device)
    within_x, within_y = (n * (n - 1), m * (m - 1)) if unbiased else (n * n, m * m)
    c[:n, :n], c[n:, n:], c[:n, n:], c[n:, :n] = 1.0 / within_x, 1.0 / within_y, -1.0 / (n * m), -1.0 / (n * m)
    if unbiased:
        c.fill_diagonal_(0.0)  # k(z_i, z_i) = 1 exactly: the U-statistic leaves it out
    return c


def _kernel_stack(d2: torch.Tensor, sigmas2: torch.Tensor) -> torch.Tensor:
    """exp(-d2 / 2 sigma_u^2) for each bandwidth, one row each. Where the bandwidths halve one after the
    other (the default family), one exponential and squarings: exp(-d/2(s/2)) = exp(-d/2s)^2, exactly."""
    s = sigmas2.tolist()
    order = sorted(range(len(s)), key=lambda u: -s[u])
    if len(s) > 1 and all(s[order[i + 1]] * 2 == s[order[i]] for i in range(len(s) - 1)):
        rows = [(d2 * (-0.5 / s[order[0]])).exp_()]
        for _ in order[1:]:
            rows.append(rows[-1] * rows[-1])
        out = torch.empty(len(s), d2.shape[1], dtype=d2.dtype, device=d2.device)
        for u, row in zip(order, rows, strict=True):
            out[u] = row[0]
        return out
    return (d2 * (-0.5 / sigmas2).view(-1, 1)).exp_()


class _PooledMMD2(torch.autograd.Function):
    r"""The multi-kernel MMD² of a minibatch and its gradient in closed form, in one autograd node.

    With the pooled sample :math:`z = (x_1..x_n, y_1..y_m)`, the kernel matrix
    :math:`K_{ij} = \frac{1}{U}\sum_u K^{(u)}_{ij}`,
    :math:`K^{(u)}_{ij} = \exp(-\lVert z_i - z_j\rVert^2 / 2\sigma_u^2)`, and a symmetric weight
    matrix :math:`C` (:math:`1/n(n-1)` within the source, :math:`1/m(m-1)`
    within the target, zero on the diagonal, :math:`-1/nm` across; :math:`1/n^2`, :math:`1/m^2`
    within and the diagonal kept for the biased estimator), :math:`\mathrm{MMD}^2 = \sum_{ij} C_{ij} K_{ij}`
    and, the bandwidths held fixed,

    .. math::

        \frac{\partial\,\mathrm{MMD}^2}{\partial z_i} = -\sum_j A_{ij} (z_i - z_j), \qquad
        A_{ij} = \frac{2 C_{ij}}{U} \sum_u \frac{K^{(u)}_{ij}}{\sigma_u^2},

    that is :math:`-(\operatorname{diag}(A\mathbf{1}) - A) z`: one matrix product. Autograd through the
    same formula builds about twenty nodes over (U, N, N) tensors, and a DAN step spends more time
    in them than in the network (``benchmarks/mmd_scale.py --minibatch``).
    """

    @staticmethod
    def forward(ctx, z: torch.Tensor, n: int, sigmas2: torch.Tensor, unbiased: bool) -> torch.Tensor:
        c = _mmd_weights(n, len(z) - n, unbiased, z.dtype, z.device)
        sq = z.pow(2).sum(1)  # ||z_i - z_j||² = ||z_i||² + ||z_j||² - 2 z_i.z_j, without cdist's square root
        d2 = torch.addmm(sq.unsqueeze(1) + sq, z, z.t(), alpha=-2.0).clamp_min_(0.0).fill_diagonal_(0.0)
        kernels = _kernel_stack(d2.view(1, -1), sigmas2)  # (U, N²)
        # the two means over the kernels, K and (1/U) sum_u K^(u) / sigma_u^2, in one product
        weights = torch.stack([torch.ones_like(sigmas2), 1.0 / sigmas2]) / len(sigmas2)
        k, k_over_s2 = (weights @ kernels).view(2, len(z), len(z))
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(z, k_over_s2.mul_(2.0 * c))  # A
        return (c * k).sum()

    @staticmethod
    def backward(ctx, grad):
        z, a = ctx.saved_tensors
        grad_z = a @ z - a.sum(1, keepdim=True) * z  # -(diag(A 1) - A) z
        return grad * grad_z, None, None, None


def mmd2(
    x: torch.Tensor,
    y: torch.Tensor,
    kernel: str = "gaussian",
    bandwidths: Sequence[float] | None = None,
    estimator: str = "unbiased",
    multipliers: Sequence[float] = DEFAULT_BANDWIDTH_MULTIPLIERS,
) -> torch.Tensor:
    r"""Squared MMD between samples ``x`` (n, d) and ``y`` (m, d).

    Parameters
    ----------
    kernel : {"gaussian", "linear"}
        ``"linear"`` gives :math:`\lVert \bar x - \bar y \rVert^2` (DDC's kernel).
        ``"gaussian"`` uses the multi-kernel family of DAN.
    bandwidths : sequence of float, optional
        Squared bandwidths :math:`\sigma_u^2`. Default: the mean squared pairwise distance of the
        pooled sample times ``multipliers``.
    multipliers : sequence of float
        The kernel family as multiples of that data-driven scale (used when ``bandwidths`` is None);
        default :data:`DEFAULT_BANDWIDTH_MULTIPLIERS`.
    estimator : {"unbiased", "biased", "linear"}
        ``"unbiased"``: the U-statistic (diagonal terms dropped), O(n²) time.
        ``"biased"``: the V-statistic. Both are summed over row blocks, so their memory is
        O(block x n) (without gradients; autograd keeps what each block needs for the backward
        pass). ``"linear"``: Gretton et al.'s linear-time unbiased estimator
        :math:`\frac{2}{n}\sum_{i=1}^{n/2} h(z_{2i-1}, z_{2i})` with
        :math:`h(z, z') = k(x,x') + k(y,y') - k(x,y') - k(x',y)`; needs ``n == m``; O(n) memory.

    Returns
    -------
    Tensor
        A scalar; it may be slightly negative for the unbiased estimators.
    """
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(
            f"x and y must be (n, d) and (m, d) with the same d; got {tuple(x.shape)} and {tuple(y.shape)}."
        )
    if estimator not in ("unbiased", "biased", "linear"):
        raise ValueError(f"estimator={estimator!r}; expected 'unbiased', 'biased' or 'linear'.")
    if kernel == "linear":
        delta = x.mean(0) - y.mean(0)
        return delta.dot(delta)
    if kernel != "gaussian":
        raise ValueError(f"kernel={kernel!r}; expected 'gaussian' or 'linear'.")
    z = torch.cat([x, y])
    if bandwidths is None:
        check_bandwidths(multipliers, "multipliers")
        # identical points: any scale will do, one whose inverse (the gradient's factor 1/sigma²) stays finite
        base = _base_sigma2(z).clamp_min(torch.finfo(x.dtype).tiny ** 0.5)
        sigmas2 = base * torch.tensor(tuple(multipliers), dtype=x.dtype, device=x.device)
    else:
        check_bandwidths(bandwidths, "bandwidths")
        sigmas2 = torch.as_tensor(tuple(bandwidths), dtype=x.dtype, device=x.device)

    if estimator == "linear":
        if len(x) != len(y) or len(x) < 2:
            raise ValueError(f"the linear estimator needs equal sample sizes >= 2; got {len(x)} and {len(y)}.")
        h = len(x) // 2
        x1, x2, y1, y2 = x[0 : 2 * h : 2], x[1 : 2 * h : 2], y[0 : 2 * h : 2], y[1 : 2 * h : 2]

        def k(a, b):  # row-wise kernel k(a_i, b_i)
            d2 = (a - b).pow(2).sum(1, keepdim=True)
            return torch.exp(-d2 / (2.0 * sigmas2.view(1, -1))).mean(1)

        return (k(x1, x2) + k(y1, y2) - k(x1, y2) - k(x2, y1)).mean()

    n, m = len(x), len(y)
    if estimator == "unbiased" and (n < 2 or m < 2):
        raise ValueError(f"the unbiased estimator needs at least 2 samples per domain; got {n} and {m}.")
    # distances do not change under a common shift; centring keeps the ||a||² + ||b||² - 2ab form that
    # cdist uses for more than 25 rows from cancelling every digit when the points share a large offset
    z = z - z.detach().mean(0)
    if (n + m) ** 2 * len(sigmas2) <= _BLOCK_ENTRIES:  # a minibatch: one kernel matrix of the pooled sample
        return _PooledMMD2.apply(z, n, sigmas2.detach(), estimator == "unbiased")
    # sums over row blocks: memory O(block x n), not the (5, n, m) stack of kernel matrices
    x, y = z[:n], z[n:]
    kxx, kyy, kxy = _kernel_sum(x, x, sigmas2), _kernel_sum(y, y, sigmas2), _kernel_sum(x, y, sigmas2)
    if estimator == "biased":
        return kxx / (n * n) + kyy / (m * m) - 2 * kxy / (n * m)
    # the diagonal of a Gaussian kernel is exactly 1: k(x_i, x_i) = exp(0)
    return (kxx - n) / (n * (n - 1)) + (kyy - m) / (m * (m - 1)) - 2 * kxy / (n * m)


def coral_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""Deep CORAL loss :math:`\frac{1}{4d^2}\lVert C_S - C_T \rVert_F^2` (Sun & Saenko 2016, Eq. 1).

    :math:`C = \frac{1}{n-1}(D^\top D - \frac{1}{n}(\mathbf{1}^\top D)^\top(\mathbf{1}^\top D))`, the
    unbiased feature covariance of each domain.
    """
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(
            f"x and y must be (n, d) and (m, d) with the same d; got {tuple(x.shape)} and {tuple(y.shape)}."
        )
    if len(x) < 2 or len(y) < 2:
        raise ValueError(f"covariances need at least 2 samples per domain; got {len(x)} and {len(y)}.")
    d = x.shape[1]

    def cov(a):
        a = a - a.mean(0, keepdim=True)
        return a.T @ a / (len(a) - 1)

    return (cov(x) - cov(y)).pow(2).sum() / (4 * d * d)
