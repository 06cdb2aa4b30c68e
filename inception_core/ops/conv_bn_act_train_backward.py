"""Autograd of ``inception_core::conv_bn_act_train`` (BatchNorm with batch statistics): the backward
custom op ``inception_core::conv_bn_act_train_backward`` and its registration.

The op returns the gradients of x, weight, gamma, beta and residual (an empty tensor for each one
``output_mask`` leaves out), from the forward's saved convolution output, mean and invstd.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from inception_core import backends
from inception_core.ops import _conv_grad, _dispatch
from inception_core.ops._launch_common import empty as _empty
from inception_core.ops.conv_bn_act_train import _conv_bn_act_train_op, _native_bn

__all__ = []


@torch.library.custom_op("inception_core::conv_bn_act_train_backward", mutates_args=())
def _conv_bn_act_train_backward_op(grad_y: Tensor, x: Tensor, weight: Tensor, gamma: Tensor | None,
                                   conv_out: Tensor, y: Tensor, mean: Tensor, invstd: Tensor,
                                   stride: Sequence[int], padding: Sequence[int], act: str, res_scale: float,
                                   output_mask: Sequence[bool]) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    need_x, need_w, need_gamma, need_beta, need_res = output_mask
    backend = _dispatch.resolve(x, "conv_bn_act_train_backward", has_cuda=False)
    with _dispatch.no_autocast(x):
        if backend == "torch" and _native_bn(x):
            gc, g_gamma, g_beta, g_res = _pointwise_backward_native(grad_y.to(x.dtype), y, conv_out, gamma, mean,
                                                                    invstd, act, res_scale, need_res)
        else:
            gc, g_gamma, g_beta, g_res = _conv_grad.pointwise_backward(
                backend, grad_y.to(x.dtype), y, conv_out, gamma, mean, invstd, act, res_scale, True, need_res)
        gx, gw = _conv_grad.conv_grads(backend, gc, x, weight, tuple(stride), tuple(padding), need_x, need_w)
    vec = gamma.dtype if gamma is not None else mean.dtype
    return (gx if need_x else _empty(x), gw if need_w else _empty(weight),
            g_gamma.to(vec) if need_gamma else _empty(x, vec), g_beta.to(vec) if need_beta else _empty(x, vec),
            g_res if need_res else _empty(x))


def _pointwise_backward_native(grad_y, y, conv_out, gamma, mean, invstd, act, res_scale, need_res):
    """The act, residual and BatchNorm backward with torch's fused kernels (``threshold_backward``,
    ``native_batch_norm_backward``): (grad_conv_out, grad_gamma, grad_beta, grad_residual or None)."""
    g = torch.ops.aten.threshold_backward(grad_y, y, 0) if act == "relu" else grad_y
    grad_res = None
    if need_res:
        grad_res = g if g is not grad_y else g.clone(memory_format=torch.channels_last)
    k = conv_out.shape[1]
    coef = gamma.to(conv_out.dtype) if gamma is not None else torch.ones(k, dtype=conv_out.dtype, device=g.device)
    if res_scale != 1.0:  # d(residual + s * bn)/d bn = s: scales grad_conv_out through gamma, the others after
        coef = coef * res_scale
    gc, g_gamma, g_beta = torch.ops.aten.native_batch_norm_backward(
        g, conv_out, coef, None, None, mean, invstd, True, 0.0, [True, True, True])
    if res_scale != 1.0:
        g_gamma, g_beta = g_gamma * res_scale, g_beta * res_scale
    return gc.contiguous(memory_format=torch.channels_last), g_gamma, g_beta, grad_res


@_conv_bn_act_train_backward_op.register_fake
def _(grad_y, x, weight, gamma, conv_out, y, mean, invstd, stride, padding, act, res_scale, output_mask):
    vec = gamma.dtype if gamma is not None else mean.dtype
    return _conv_grad.fake_conv_grads(x, weight, y, vec, output_mask)


def _setup_context(ctx, inputs, output):
    x, weight, gamma, beta, _, _, residual, stride, padding, act, res_scale, _, _ = inputs
    y, c, mean, invstd, new_mean, new_var = output
    ctx.mark_non_differentiable(c, mean, invstd, new_mean, new_var)
    ctx.save_for_backward(x, weight, gamma, c, y, mean, invstd)
    ctx.conf = (list(stride), list(padding), act, float(res_scale))
    ctx.has = (gamma is not None, beta is not None, residual is not None)
    ctx.backend = backends.get_backend()  # eager backward runs on the forward's backend


def _backward(ctx, grad_y, *_):
    x, weight, gamma, c, y, mean, invstd = ctx.saved_tensors
    stride, padding, act, res_scale = ctx.conf
    has_gamma, has_beta, has_res = ctx.has
    need = ctx.needs_input_grad
    mask = [need[0], need[1], has_gamma and need[2], has_beta and need[3], has_res and need[6]]
    if grad_y is None or not any(mask):
        return (None,) * 13
    with backends.backend(ctx.backend):
        gx, gw, g_gamma, g_beta, g_res = _conv_bn_act_train_backward_op(
            grad_y, x, weight, gamma if has_gamma else None, c, y, mean, invstd, stride, padding, act, res_scale,
            mask)
    g = [t if m else None for t, m in zip((gx, gw, g_gamma, g_beta, g_res), mask, strict=True)]
    return (g[0], g[1], g[2], g[3], None, None, g[4]) + (None,) * 6


_conv_bn_act_train_op.register_autograd(_backward, setup_context=_setup_context)
