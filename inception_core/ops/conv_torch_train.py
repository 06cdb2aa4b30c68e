"""The torch backend's training convolution on a CPU: ``nn.Conv2d``'s forward, a faster backward.

The forward is what ``nn.Conv2d`` runs (``F.conv2d`` with its bias). The backward computes the input
gradient and the weight gradient each in the memory layout where oneDNN computes it faster for the layer's
shape, with ``torch.ops.aten.convolution_backward`` (the op torch's own conv backward calls): on the
tensors as they come (channels_last in the networks, exactly the stock backward), or on NCHW copies of
them (the copies and the conversion of the result back to the input's layout are part of the cost that
the rule below was measured with). Only the gradients autograd asks for are computed (the first conv of a
network needs no input gradient). Double backward is kept: the backward is made of differentiable ops.

Which layout, per gradient (``formulation``), measured on one core (1 thread, AMD EPYC with AVX2, oneDNN
through torch 2.14), batch 8, fp32, over every training conv of the six networks at their native input
size (shapes taken with forward hooks; inputs, weights and output gradients channels_last; providers
alternated round by round, 5-9 rounds, per-round ratios; the NCHW cost includes the copies):
- input gradient: channels_last always. NCHW, the copy of the result back to channels_last included, was
  slower on 227 of the 233 shapes (median 1.18x on kernels larger than 1x1, up to 2.35x; 1.10x on 1x1,
  up to 2.2x); the six exceptions were within noise (0.80-0.99x, small layers or one outlier).
- weight gradient: NCHW for a kernel larger than 1x1 on at least 16 input channels whose work per image,
  C x K x R x S x OH x OW multiply-adds, is at least 70 M; channels_last otherwise. On the 37 shapes at or
  above 70 M, the NCHW wgrad plus the channels_last dgrad (two calls, 9 rounds, median of per-round ratios)
  took 0.72-0.99x the stock backward on 32 (Inception-v4's 64->96 3x3 s2 at 147: 0.72x; 80->192 3x3 at 73:
  0.79x; 288->384 3x3 s2 at 35: 0.85x; 17x17 1x7/7x1 at 192-256 channels: 0.92-0.99x) and 1.01-1.06x on
  five (the 32-channel stems at 77-149, whose channels_last wgrad swung between 1x and 2x of the NCHW one
  from run to run; a 7x1 at 73 and one at 17); on the 73 shapes below it, 0.94-1.26x (median 1.05x).
  1x1 convolutions: NCHW wgrad 1.01-2.9x slower (median 1.56x).
  The 3-channel first conv (which needs no input gradient): NCHW 1.3-2.5x slower.
  Estimated from these over each network's whole conv backward (every conv, 1x1s included), rule / stock:
  googlenet 0.97, bn_inception 0.99, Inception-v3 0.96, Inception-v4 0.96, Inception-ResNet-v1 0.99,
  Inception-ResNet-v2 0.97.
Where the rule picks channels_last for both gradients, ``conv2d_train`` runs ``conv(x)`` itself.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd import forward_ad

__all__ = ["Conv2dTrainFunction", "conv2d_train", "eligible", "formulation"]

CL = torch.channels_last
_MIN_CHANNELS = 16      # the 3-channel first conv: channels_last wgrad 1.3-2.5x faster
_MIN_WORK = 70_000_000  # multiply-adds per image above which the NCHW wgrad wins (module docstring)


def formulation(x_shape, weight_shape, stride, padding) -> tuple[str, str]:
    """("cl" | "nchw" for the input gradient, "cl" | "nchw" for the weight gradient) of a conv with
    input (N, C, H, W) ``x_shape``, weight (K, C, R, S) ``weight_shape``; see the module docstring."""
    k, c, r, s = weight_shape
    oh = (x_shape[2] + 2 * padding[0] - r) // stride[0] + 1
    ow = (x_shape[3] + 2 * padding[1] - s) // stride[1] + 1
    work = c * k * r * s * oh * ow
    return "cl", "nchw" if r * s > 1 and c >= _MIN_CHANNELS and work >= _MIN_WORK else "cl"


def _dense(t: Tensor, memory_format: torch.memory_format) -> Tensor:
    return t if t.is_contiguous(memory_format=memory_format) else t.contiguous(memory_format=memory_format)


def _layout(t: Tensor) -> torch.memory_format:
    """channels_last for a channels_last tensor that is not also NCHW-contiguous, else contiguous_format."""
    if t.is_contiguous(memory_format=CL) and not t.is_contiguous():
        return CL
    return torch.contiguous_format


class Conv2dTrainFunction(torch.autograd.Function):
    """``F.conv2d(x, weight, bias, stride, padding)`` (groups 1, dilation 1) whose backward computes
    each gradient by ``formulation`` (or by ``force``: a (dgrad, wgrad) pair, for tests and benchmarks).
    x (N, C, H, W), weight (K, C, R, S), bias (K,) or None, any layout; the gradients come back in the
    layout of their tensor."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None, stride: tuple[int, int],
                padding: tuple[int, int], force: tuple[str, str] | None = None) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.stride, ctx.padding, ctx.has_bias = tuple(stride), tuple(padding), bias is not None
        ctx.choice = force or formulation(x.shape, weight.shape, stride, padding)
        return F.conv2d(x, weight, bias, stride, padding)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        need_b = need_b and ctx.has_bias
        dgrad, wgrad = ctx.choice
        geometry = (list(ctx.stride), list(ctx.padding), [1, 1], False, [0, 0], 1)
        bias_sizes = [weight.shape[0]] if ctx.has_bias else None
        # the bias gradient goes with the weight gradient's call: oneDNN computes it in its wgrad primitive
        # (asking a channels_last dgrad call for it runs that primitive: 8x64x56x56 -> 192 3x3, 57 -> 161 ms)
        bias_nchw = need_b and need_w and wgrad == "nchw"
        cl_mask = [need_x and dgrad == "cl", need_w and wgrad == "cl", need_b and not bias_nchw]
        nchw_mask = [need_x and dgrad == "nchw", need_w and wgrad == "nchw", bias_nchw]
        grads = [None, None, None]
        if any(cl_mask):
            out = torch.ops.aten.convolution_backward(grad_out, x, weight, bias_sizes, *geometry, cl_mask)
            grads = [g if m else old for g, m, old in zip(out, cl_mask, grads, strict=True)]
        if any(nchw_mask):
            nchw = torch.contiguous_format
            out = torch.ops.aten.convolution_backward(
                _dense(grad_out, nchw), _dense(x, nchw), _dense(weight, nchw), bias_sizes, *geometry, nchw_mask)
            layouts = (_layout(x), _layout(weight), nchw)
            grads = [_dense(g, f) if m else old for g, m, f, old in zip(out, nchw_mask, layouts, grads, strict=True)]
        grad_x, grad_w, grad_b = grads
        return grad_x, grad_w, grad_b, None, None, None


def eligible(x: Tensor, conv: nn.Module) -> bool:
    """Whether ``conv(x)`` may run as ``conv2d_train``: a plain ``nn.Conv2d`` (no subclass, no hooks that
    its ``__call__`` would run; groups 1, dilation 1, zero padding given as numbers) on a float32 CPU
    tensor, recording an autograd graph (reverse mode only: no ``torch.func`` transform, no forward-mode
    dual level), outside ``torch.compile`` tracing."""
    return (type(conv) is nn.Conv2d and x.device.type == "cpu" and x.dtype == torch.float32
            and conv.weight.dtype == torch.float32 and torch.is_grad_enabled()
            and (x.requires_grad or conv.weight.requires_grad) and not torch.compiler.is_compiling()
            and conv.groups == 1 and conv.dilation == (1, 1) and conv.padding_mode == "zeros"
            and not isinstance(conv.padding, str) and not _has_hooks(conv)
            and not torch._C._are_functorch_transforms_active() and forward_ad._current_level < 0)


def _has_hooks(conv: nn.Module) -> bool:
    from torch.nn.modules import module as module_globals

    return bool(conv._forward_hooks or conv._forward_pre_hooks or module_globals._global_forward_hooks
                or module_globals._global_forward_pre_hooks or conv._backward_hooks
                or conv._backward_pre_hooks or module_globals._global_backward_hooks
                or module_globals._global_backward_pre_hooks)


def conv2d_train(x: Tensor, conv: nn.Conv2d) -> Tensor:
    """``conv(x)`` with the backward of ``Conv2dTrainFunction`` where ``eligible``, else ``conv(x)`` itself."""
    if not eligible(x, conv):
        return conv(x)
    choice = formulation(x.shape, conv.weight.shape, conv.stride, conv.padding)
    if choice == ("cl", "cl"):
        return conv(x)
    return Conv2dTrainFunction.apply(x, conv.weight, conv.bias, conv.stride, conv.padding, choice)
