"""Cases shared by the differentiable conv ops' tests (conv_bn_act's backward, conv_bn_act_train forward
and backward): layers of the six networks at a reduced spatial size, the edge cases both ops run, and the
names and dtypes of the five gradients (x, weight, scale/gamma, shift/beta, residual)."""

import pytest
import torch

from inception_core.shapes import CONV_SHAPES


def layer(model: str, name: str, hw: tuple[int, int], label: str):
    """``pytest.param(C, K, kernel, stride, padding, hw)`` of a catalogue layer (inception_core.shapes), run at
    the reduced input size ``hw``."""
    s = next(s for s in CONV_SHAPES if s.model == model and s.layer == name)
    return pytest.param(s.in_channels, s.out_channels, s.kernel, s.stride, s.padding, hw, id=f"{label}-{model}.{name}")


# (C, K, kernel, stride, padding, reduced input hw): 1x1, 3x3 'same', stride-2 'valid', 5x5, the 3-channel stem
NETWORK_LAYERS = [
    layer("inception_v3", "Mixed_5b.branch1x1.conv", (5, 5), "1x1"),
    layer("inception_v3", "Mixed_5b.branch3x3dbl_2.conv", (5, 5), "3x3-same"),
    layer("inception_v3", "Mixed_6a.branch3x3dbl_3.conv", (7, 7), "3x3s2-valid"),
    layer("inception_v3", "Mixed_5b.branch5x5_2.conv", (5, 5), "5x5"),
    layer("inception_v3", "Conv2d_1a_3x3.conv", (11, 11), "stem-cin3-3x3s2"),
]

# (N, C, K, kernel, stride, padding, hw, layout)
EDGE_CASES = [
    pytest.param(1, 24, 40, (3, 3), (1, 1), (1, 1), (5, 5), "channels_last", id="batch1"),
    pytest.param(2, 35, 17, (3, 3), (2, 2), (0, 0), (7, 9), "channels_last", id="odd-channels-stride2-valid"),
    pytest.param(2, 24, 40, (3, 3), (2, 1), (0, 1), (7, 6), "nchw", id="nchw-mixed-stride"),
]


def grad_dtypes(dtype: torch.dtype) -> tuple[torch.dtype, ...]:
    """The gradients' dtypes for inputs in ``dtype``: x, weight and residual in it, the per-channel vectors
    in fp32 (the dtype of their leaves)."""
    return (dtype, dtype, torch.float32, torch.float32, dtype)


def gradcheck_leaves(n, c, k, kernel, hw, out_hw, device):
    """float64 leaves (x, weight, scale/gamma in [0.5, 1.5), shift/beta, residual) for ``gradcheck``."""
    leaf = dict(dtype=torch.float64, device=device, requires_grad=True)
    x = torch.randn(n, c, *hw, **leaf)
    w = torch.randn(k, c, *kernel, **leaf)
    scale = (torch.rand(k, dtype=torch.float64, device=device) + 0.5).requires_grad_()
    shift = torch.randn(k, **leaf)
    res = torch.randn(n, k, *out_hw, **leaf)
    return x, w, scale, shift, res
