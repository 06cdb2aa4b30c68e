"""Calls of the torch backend on a CPU without the custom ops' dispatch, for calls that record no graph.

A ``torch.library`` custom op passes through its autograd and redispatch layers in Python on every call;
on a CPU that costs about as much as one small convolution, and a network's inference makes one call per
layer. A call that the custom op would hand to the torch backend anyway gets the same result from that
implementation called directly: on a CPU tensor, with no autograd graph to record, not traced by
``torch.compile`` (whose graphs keep the custom ops) and under no dispatch mode (fake tensors, flop
counters). The public ops check their arguments first, as always; these run after the checks.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils._python_dispatch import _get_current_dispatch_mode

from inception_core.ops import _checks, _dispatch

__all__ = ["conv_bn_act", "eligible", "pool2d"]


def eligible(x: Tensor, op: str, *tensors: Tensor | None) -> bool:
    """Whether a call of ``op`` on ``x`` (and ``tensors``, None allowed) may run the torch backend directly."""
    if x.device.type != "cpu" or torch.compiler.is_compiling() or _get_current_dispatch_mode() is not None:
        return False
    grad = torch.is_grad_enabled()
    for t in (x, *tensors):
        if t is not None and (type(t) not in (Tensor, torch.nn.Parameter) or (grad and t.requires_grad)):
            return False
    return _dispatch.resolve(x, op) == "torch"


def conv_bn_act(x: Tensor, weight: Tensor, scale: Tensor | None, shift: Tensor | None, residual: Tensor | None,
                stride: tuple[int, int], padding: tuple[int, int], act: str, res_scale: float, out: Tensor | None,
                out_offset: int) -> Tensor | None:
    """``ops.conv_bn_act`` (arguments checked) on the torch backend called directly: its result, or the slice
    of ``out`` it was copied into; None when the call is not ``eligible`` (the caller runs the custom op)."""
    from inception_core.ops.conv_torch import conv_bn_act_torch

    if not eligible(x, "conv_bn_act", weight, scale, shift, residual, out):
        return None
    k = weight.shape[0]
    if out is not None:
        _checks.no_overlap_inputs(out, out_offset, k, x=x, weight=weight, scale=scale, shift=shift, residual=residual)
    y = conv_bn_act_torch(x, weight, scale, shift, residual, stride, padding, act, res_scale)
    return y if out is None else out.narrow(1, out_offset, k).copy_(y)


def pool2d(x: Tensor, is_max: bool, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
           ceil_mode: bool, count_include_pad: bool, out: Tensor | None, out_offset: int) -> Tensor | None:
    """``ops.max_pool2d`` / ``ops.avg_pool2d`` (arguments checked) on the torch backend called directly, as
    ``conv_bn_act`` above; None when the call is not ``eligible``."""
    from inception_core.ops.pool2d import avg_pool2d_ref, max_pool2d_ref

    if not eligible(x, "max_pool2d" if is_max else "avg_pool2d", out):
        return None
    if out is not None:
        _checks.no_overlap(x, "x", out, out_offset, x.shape[1])
    geometry = (kernel, stride, padding, ceil_mode)
    y = max_pool2d_ref(x, *geometry) if is_max else avg_pool2d_ref(x, *geometry, count_include_pad)
    return y if out is None else out.narrow(1, out_offset, x.shape[1]).copy_(y)
