"""The digit augmentation of SHOT's source training: shifts and rotations checked against SciPy's affine map."""

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from transferkit.nn.augment import shift_rotate


def test_each_image_is_shifted_and_rotated_about_its_centre_as_the_formula_says():
    x = torch.rand(5, 2, 12, 9, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(1)
    out = shift_rotate(x, max_shift=3, max_degrees=25.0)
    torch.manual_seed(1)  # the same draws: an angle per image, then a whole-pixel shift (x, y) per image
    angles = (torch.rand(5) * 2 - 1) * math.radians(25.0)
    shifts = torch.randint(-3, 4, (5, 2))
    c = np.array([(12 - 1) / 2, (9 - 1) / 2])  # the centre, (row, column)
    for i in range(5):
        a, (tx, ty) = float(angles[i]), shifts[i].tolist()
        R = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        for ch in range(2):  # x'(p) = x(R (p - c) + c - t), bilinear, zeros outside
            expected = ndimage.affine_transform(
                x[i, ch].numpy(), R, offset=c - R @ c - np.array([ty, tx]), order=1, mode="grid-constant"
            )
            np.testing.assert_allclose(out[i, ch].numpy(), expected, atol=1e-5)
    assert len({round(float(a), 6) for a in angles}) == 5  # every image its own draw


def test_a_shift_alone_moves_every_pixel_by_whole_pixels_and_fills_zeros():
    x = torch.arange(36.0).reshape(1, 1, 6, 6) + 1
    torch.manual_seed(3)
    out = shift_rotate(x, max_shift=2, max_degrees=0.0)[0, 0]
    torch.manual_seed(3)
    torch.rand(1)
    tx, ty = torch.randint(-2, 3, (1, 2))[0].tolist()
    expected = torch.zeros(6, 6)
    expected[max(ty, 0) : 6 + min(ty, 0), max(tx, 0) : 6 + min(tx, 0)] = x[
        0, 0, max(-ty, 0) : 6 - max(ty, 0), max(-tx, 0) : 6 - max(tx, 0)
    ]
    torch.testing.assert_close(out, expected)
    assert (tx, ty) != (0, 0)


def test_shift_rotate_needs_image_batches():
    with pytest.raises(ValueError, match=r"needs images of shape \(n, channels, height, width\); got \(4, 10\)"):
        shift_rotate(torch.zeros(4, 10))
