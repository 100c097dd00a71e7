r"""Random shifts and rotations of image batches, the digit augmentation of SHOT's source training.

Liang, Hu & Feng (ICML 2020) train their digit source networks on random 28x28 crops of the image
padded by 4 pixels (a shift of up to 4 pixels in each direction, the border filled with zeros) and
rotations of up to 10 degrees. Each image :math:`x` of the batch gets its own affine map

.. math::

    x'(p) = x\big(R_\theta\,(p - c) + c - t\big), \qquad
    \theta \sim U[-\theta_{max}, \theta_{max}], \quad t \sim U\{-s, \dots, s\}^2,

with :math:`p` a pixel's (row, column), :math:`c` the image's centre, :math:`R_\theta` the rotation
by :math:`\theta`, sampled with bilinear interpolation, zeros outside the image. The draws use torch's random
generator, so a seeded fit draws the same shifts, and a resumed one goes on with them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["shift_rotate"]


def shift_rotate(x: torch.Tensor, max_shift: int = 4, max_degrees: float = 10.0) -> torch.Tensor:
    """``x`` (n, channels, height, width), each image shifted by whole pixels in [-max_shift, max_shift] along
    each axis and rotated by an angle in [-max_degrees, max_degrees] about its centre."""
    if x.dim() != 4:
        raise ValueError(f"shift_rotate needs images of shape (n, channels, height, width); got {tuple(x.shape)}.")
    n, _, h, w = x.shape
    angle = (torch.rand(n, device=x.device) * 2 - 1) * math.radians(max_degrees)
    shift = torch.randint(-max_shift, max_shift + 1, (n, 2), device=x.device).to(x.dtype)
    cos, sin = torch.cos(angle).to(x.dtype), torch.sin(angle).to(x.dtype)
    # affine_grid works in coordinates normalised to [-1, 1]: a pixel is 2 / size wide; the map takes each
    # output position to the input position it reads, so the rotation is by -theta and the shift by -t
    theta = torch.zeros(n, 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0], theta[:, 0, 1] = cos, sin * h / w
    theta[:, 1, 0], theta[:, 1, 1] = -sin * w / h, cos
    theta[:, 0, 2] = -2 * shift[:, 0] / w
    theta[:, 1, 2] = -2 * shift[:, 1] / h
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
