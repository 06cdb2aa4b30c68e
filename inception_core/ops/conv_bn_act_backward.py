"""Autograd of ``inception_core::conv_bn_act`` (folded BN): the backward custom op and its registration.

``inception_core::conv_bn_act_backward`` returns the gradients of x, weight, scale, shift and residual
(an empty tensor for each one ``output_mask`` leaves out). The gradient of ``scale`` needs the plain
convolution output, which the forward does not keep: it is recomputed only when that gradient is asked for.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from inception_core import backends
from inception_core.ops import _conv_grad, _dispatch
from inception_core.ops._checks import conv_result_shape
from inception_core.ops._launch_common import acc_dtype
from inception_core.ops._launch_common import empty as _empty
from inception_core.ops.conv_bn_act import _conv_bn_act_op, launch_conv_bn_act_triton

__all__ = []


def _recompute_conv(backend: str, x: Tensor, weight: Tensor, stride, padding) -> Tensor:
    """The plain convolution output (N, K, OH, OW), channels_last, x's dtype: the gradient of scale needs
    it and the forward does not keep it."""
    if backend == "triton":
        c = torch.empty(conv_result_shape(x, weight, stride, padding), dtype=x.dtype, device=x.device,
                        memory_format=torch.channels_last)
        launch_conv_bn_act_triton(x, weight, None, None, None, tuple(stride), tuple(padding), "none", 1.0, c)
        return c
    return F.conv2d(x, weight, stride=stride, padding=padding).contiguous(memory_format=torch.channels_last)


@torch.library.custom_op("inception_core::conv_bn_act_backward", mutates_args=())
def _conv_bn_act_backward_op(grad_y: Tensor, x: Tensor, weight: Tensor, scale: Tensor | None, y: Tensor,
                             stride: Sequence[int], padding: Sequence[int], act: str, res_scale: float,
                             output_mask: Sequence[bool]) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    need_x, need_w, need_scale, need_shift, need_res = output_mask
    backend = _dispatch.resolve(x, "conv_bn_act_backward", has_cuda=False)
    with _dispatch.no_autocast(x):
        need_cb = need_scale or need_shift
        if backend == "torch" and not need_scale and x.dtype in (torch.float32, torch.float64):
            gc, g_scale, g_shift, g_res = _pointwise_backward_unscaled(grad_y.to(x.dtype), y, scale, act, res_scale,
                                                                       need_shift, need_res)
        else:
            conv_out = _recompute_conv(backend, x, weight, stride, padding) if need_scale else None
            gc, g_scale, g_shift, g_res = _conv_grad.pointwise_backward(
                backend, grad_y.to(x.dtype), y, conv_out if need_scale else y, scale, None, None, act, res_scale,
                need_cb, need_res)
        gx, gw = _conv_grad.conv_grads(backend, gc, x, weight, tuple(stride), tuple(padding), need_x, need_w)
    vec = scale.dtype if scale is not None else acc_dtype(x)
    return (gx if need_x else _empty(x), gw if need_w else _empty(weight),
            g_scale.to(vec) if need_scale else _empty(x, vec), g_shift.to(vec) if need_shift else _empty(x, vec),
            g_res if need_res else _empty(x))


def _pointwise_backward_unscaled(grad_y: Tensor, y: Tensor, scale: Tensor | None, act: str, res_scale: float,
                                 need_shift: bool, need_res: bool):
    """The epilogue's backward when no gradient of ``scale`` is needed (the Inception-ResNet up-projection:
    conv + bias + scaled residual + act), as stock torch runs it: ``threshold_backward``, one scaling pass,
    one sum for the shift. (grad_conv_out, None, grad_shift or None, grad_residual or None)."""
    g = torch.ops.aten.threshold_backward(grad_y, y, 0) if act == "relu" else grad_y
    grad_res = None
    if need_res:
        grad_res = g.contiguous(memory_format=torch.channels_last) if g is not grad_y else g.clone(
            memory_format=torch.channels_last)
    grad_shift = g.sum((0, 2, 3), dtype=acc_dtype(g)) * res_scale if need_shift else None
    if scale is None and res_scale == 1.0:
        gc = g.clone(memory_format=torch.channels_last) if (g is grad_y or grad_res is g) else g
    else:
        coef = torch.full((g.shape[1],), res_scale, dtype=g.dtype, device=g.device)
        if scale is not None:
            coef = coef * scale.to(g.dtype)
        gc = g * coef.view(1, -1, 1, 1)
    return gc.contiguous(memory_format=torch.channels_last), None, grad_shift, grad_res


@_conv_bn_act_backward_op.register_fake
def _(grad_y, x, weight, scale, y, stride, padding, act, res_scale, output_mask):
    vec = scale.dtype if scale is not None else acc_dtype(x)
    return _conv_grad.fake_conv_grads(x, weight, y, vec, output_mask)


def _setup_context(ctx, inputs, output):
    x, weight, scale, shift, residual, stride, padding, act, res_scale = inputs
    ctx.save_for_backward(x, weight, scale, output)
    ctx.conf = (list(stride), list(padding), act, float(res_scale))
    ctx.has = (scale is not None, shift is not None, residual is not None)
    ctx.backend = backends.get_backend()  # eager backward runs on the forward's backend


def _backward(ctx, grad_y):
    x, weight, scale, y = ctx.saved_tensors
    stride, padding, act, res_scale = ctx.conf
    has_scale, has_shift, has_res = ctx.has
    need = ctx.needs_input_grad
    mask = [need[0], need[1], has_scale and need[2], has_shift and need[3], has_res and need[4]]
    if not any(mask):
        return (None,) * 9
    with backends.backend(ctx.backend):
        gx, gw, g_scale, g_shift, g_res = _conv_bn_act_backward_op(
            grad_y, x, weight, scale if has_scale else None, y, stride, padding, act, res_scale, mask)
    grads = [g if m else None for g, m in zip((gx, gw, g_scale, g_shift, g_res), mask, strict=True)]
    return (*grads, None, None, None, None)


_conv_bn_act_op.register_autograd(_backward, setup_context=_setup_context)
