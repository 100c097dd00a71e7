"""A linear layer for sparse inputs (bag-of-words batches) at the cost of their non-zeros.

For a batch :math:`X \\in \\mathbb{R}^{n \\times d}` with :math:`z` non-zeros and a layer
:math:`y = X W^\\top + b`, :math:`W \\in \\mathbb{R}^{h \\times d}`, the forward pass is a CSR times
dense product, :math:`O(z h)`, and the backward pass needs

.. math::

    \\frac{\\partial L}{\\partial W} = \\Big(X^\\top \\frac{\\partial L}{\\partial y}\\Big)^\\top, \\qquad
    \\frac{\\partial L}{\\partial b} = \\mathbf{1}^\\top \\frac{\\partial L}{\\partial y},

again :math:`O(z h)` once :math:`X^\\top` is at hand in CSR form. :func:`torch.nn.functional.linear`
on a sparse COO batch computes the same numbers, but its backward transposes and re-sorts the COO
batch inside torch at every step, which costs more than the products themselves
(``benchmarks/sparse_memory.py`` times the two layers on a DANN step's batch). Here the transpose
is SciPy's counting sort (``tocsc``, :math:`O(z + d)`), done once per batch. Inputs are data,
never trained: no gradient flows to :math:`X`.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import scipy.sparse
import torch
from torch import nn

__all__ = ["SparseInputLinear", "sparse_linear"]


class _SparseLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_csr: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        y = torch.sparse.mm(x_csr, weight.t())
        if bias is not None:
            y = y + bias
        ctx.save_for_backward(x_csr)
        ctx.has_bias = bias is not None
        ctx.weight_stride = weight.stride()
        return y

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor):
        (x_csr,) = ctx.saved_tensors
        grad_w = grad_b = None
        if ctx.needs_input_grad[1]:
            grad_w = (_transpose(x_csr) @ grad_y).t()  # (X^T dL/dy)^T, column-major
            if grad_w.stride() != ctx.weight_stride:  # the weight's own layout, else autograd copies it
                grad_w = grad_w.contiguous()
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_y.sum(0)
        return None, grad_w, grad_b


def _transpose(x_csr: torch.Tensor) -> torch.Tensor:
    """:math:`X^\\top` as a CSR tensor, by SciPy's O(z + d) conversion of X to CSC."""
    n, d = x_csr.shape
    m = scipy.sparse.csr_matrix(
        (x_csr.values().numpy(), x_csr.col_indices().numpy(), x_csr.crow_indices().numpy()), shape=(n, d)
    ).tocsc()
    indptr, indices = (torch.from_numpy(np.asarray(a, dtype=np.int64)) for a in (m.indptr, m.indices))
    with _csr_is_stable():  # SciPy's arrays are canonical: no invariant check needed
        return torch.sparse_csr_tensor(indptr, indices, torch.from_numpy(m.data), (d, n), check_invariants=False)


def sparse_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """:math:`x W^\\top + b` for a sparse (COO or CSR) CPU batch ``x``; the gradients reach ``weight``
    and ``bias`` only. Any other input goes to :func:`torch.nn.functional.linear`."""
    if x.layout not in (torch.sparse_coo, torch.sparse_csr) or x.device.type != "cpu" or weight.device.type != "cpu":
        return nn.functional.linear(x, weight, bias)
    if x.dim() != 2 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"x has shape {tuple(x.shape)}; expected (n, {weight.shape[1]}) for this layer.")
    return _SparseLinear.apply(_as_csr(x).to(weight.dtype), weight, bias)


def _as_csr(x: torch.Tensor) -> torch.Tensor:
    if x.layout == torch.sparse_csr:
        return x
    if not x.is_coalesced():
        # rows of canonical batches stacked by torch.cat are already in order, but not marked so:
        # a linear check spares the sort of coalesce()
        index = x._indices()
        key = index[0] * x.shape[1] + index[1]
        if bool((key[1:] > key[:-1]).all()):
            x = torch.sparse_coo_tensor(index, x._values(), x.shape, is_coalesced=True, check_invariants=False)
        else:
            x = x.coalesce()
    with _csr_is_stable():
        return x.to_sparse_csr()


@contextlib.contextmanager
def _csr_is_stable():
    """torch calls its CSR layout beta, once per process; the two operations used here are not."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta", category=UserWarning)
        yield


class SparseInputLinear(nn.Linear):
    """:class:`torch.nn.Linear` that multiplies a sparse CPU batch at the cost of its non-zeros in both
    passes (:func:`sparse_linear`); dense inputs take the usual path. Same parameters, same state.

    The weight :math:`W` (``out x in``, as in :class:`~torch.nn.Linear`) is stored column-major, so
    :math:`W^\\top` is the contiguous block both products read and write: the forward pass
    multiplies by it without a copy and the backward pass's :math:`(X^\\top \\partial L/\\partial y)^\\top`
    is already in the weight's layout, which spares a transposed copy of the whole weight at every
    step (``benchmarks/optim_step.py``). The optimisers of :mod:`transferkit.train.optim` update
    such a weight as fast as a row-major one.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None):
        super().__init__(in_features, out_features, bias, device, dtype)
        self.weight = nn.Parameter(self.weight.detach().t().contiguous().t())  # same values, column-major

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sparse_linear(x, self.weight, self.bias)
