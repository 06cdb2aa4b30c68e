"""The torch backend's max pool on a CPU: stride-1 windows as two separable passes of ``torch.maximum``.

``F.max_pool2d`` on a CPU always computes the argmax indices (``max_pool2d_with_indices``), also without
an autograd graph: per output element an int64 index beside the value, and a compare-and-select per
window tap. A max over a (kh, kw) window is the max over kw columns of the max over kh rows, so a
stride-1 pool is kh - 1 elementwise ``torch.maximum`` calls over shifted row views, then kw - 1 over
shifted column views: no indices, each call a vectorised pass. The result is exact (a max rounds
nothing) and NaN propagates as in ``F.max_pool2d``.

Measured with ``F.max_pool2d`` (AMD EPYC with AVX2, torch 2.14, float32, channels_last, 40 interleaved calls,
median of the per-call ratios ``F.max_pool2d`` / this), the 3x3 stride-1 pad-1 pools of GoogLeNet's and
BN-Inception's pool branches: from 1.5e5 to 1.6e6 elements 1.14-1.45x on 2 threads (1x192x28x28 and batch 8 at
28x28, 14x14 and 7x7), 0.93-1.55x on one (0.93x and 0.99x at the two 28x28 batch-8 shapes, 1.10-1.55x below
them); below that the calls' fixed cost wins (1x832x7x7, 4e4 elements: 0.38x, 0.50x), above it the four passes
over memory do (32x480x14x14, 3e6 elements: 0.87x on 2 threads). Hence the size window below. The whole
GoogLeNet inference (batch 8, 2 threads, 40 interleaved rounds): 1.028x (q1 0.996, q3 1.076;
``tools/cpu_path_ab.py --off separable_pool`` measures it again). Strided windows lose (3x3 stride 2 through
strided views: 0.58-0.87x on 11 of 16 shapes of the six networks), so those keep ``F.max_pool2d``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from inception_core.ops import _checks

__all__ = ["max_pool2d_torch", "separable"]

_MIN_NUMEL, _MAX_NUMEL = 1 << 17, 1 << 21  # input elements (module docstring)


def separable(x: Tensor, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int]) -> bool:
    """Whether ``max_pool2d_torch`` runs the separable passes for this call: a CPU floating tensor, stride 1,
    windows of at least 2 along each side whose padding is less than half the window (then every output
    has its window's centre tap inside the input), at least 2 rows and columns, and an input size where the
    passes were measured faster (module docstring)."""
    return (x.device.type == "cpu" and x.dtype in _checks.FLOAT_DTYPES and tuple(stride) == (1, 1)
            and all(k >= 2 and 2 * p < k for k, p in zip(kernel, padding, strict=True))
            and x.dim() == 4 and x.shape[2] >= 2 and x.shape[3] >= 2 and _MIN_NUMEL <= x.numel() <= _MAX_NUMEL)


def _max_along(x: Tensor, dim: int, k: int, p: int, dst: Tensor | None) -> Tensor:
    """The stride-1 max over windows of ``k`` along ``dim`` (``p`` padding each side, 2p < k): output index o
    covers inputs [o - p, o - p + k) that exist. Written into ``dst`` when given."""
    length = x.shape[dim]
    size = length + 2 * p - k + 1
    if dst is None:
        shape = list(x.shape)
        shape[dim] = size
        dst = torch.empty(shape, dtype=x.dtype, device=x.device, memory_format=torch.channels_last)
    base = x.narrow(dim, 0, size)  # tap p: input o, inside for every o because 2p < k
    first = True
    for j in range(k):
        if j == p:
            continue
        lo, hi = max(0, p - j), min(size - 1, length - 1 + p - j)  # outputs whose tap j is inside the input
        if hi < lo:
            continue
        tap = x.narrow(dim, lo - p + j, hi - lo + 1)
        part = dst.narrow(dim, lo, hi - lo + 1)
        if first:  # dst = max(centre tap, tap j), and the centre tap alone where tap j is outside
            torch.maximum(base.narrow(dim, lo, hi - lo + 1), tap, out=part)
            if lo > 0:
                dst.narrow(dim, 0, lo).copy_(base.narrow(dim, 0, lo))
            if hi < size - 1:
                dst.narrow(dim, hi + 1, size - 1 - hi).copy_(base.narrow(dim, hi + 1, size - 1 - hi))
            first = False
        else:
            torch.maximum(part, tap, out=part)
    if first:  # every other tap outside the input
        dst.copy_(base)
    return dst


def max_pool2d_torch(x: Tensor, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
                     ceil_mode: bool, out: Tensor | None = None) -> Tensor:
    """``F.max_pool2d(x, kernel, stride, padding, ceil_mode=ceil_mode)`` (arguments checked by the caller) as a
    channels_last tensor, with the separable passes where ``separable``; ``out``, when given, is an
    (N, C, OH, OW) tensor (a channel slice of a block output) the result is written into and returned as."""
    if not separable(x, kernel, stride, padding):
        y = F.max_pool2d(x, kernel, stride, padding, ceil_mode=ceil_mode)
        if out is not None:
            return out.copy_(y)
        return y if y.is_contiguous(memory_format=torch.channels_last) else y.contiguous(
            memory_format=torch.channels_last)
    # stride 1: ceil_mode changes no output size
    rows = _max_along(x, 2, kernel[0], padding[0], None)
    return _max_along(rows, 3, kernel[1], padding[1], out)
