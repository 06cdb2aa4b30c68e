"""Autograd of ``inception_core::max_pool2d`` / ``inception_core::avg_pool2d``: backward custom ops,
their torch references and Triton launchers, and the registration.

Max pool: the gradient goes to the first maximum of each window in window order (row-major), a NaN
taking the place as torch's kernels do; the argmax is recomputed from x (the forward keeps no
indices). Both backward kernels gather over the windows that cover each input pixel in a fixed order:
no atomics, same bits every run.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from inception_core import backends
from inception_core.ops import _dispatch
from inception_core.ops._launch_common import device_context, needs_int64
from inception_core.ops.pool2d import _avg_pool2d_op, _max_pool2d_op

__all__ = ["avg_pool2d_backward_ref", "launch_pool2d_backward_triton", "max_pool2d_backward_ref"]


def max_pool2d_backward_ref(grad_y: Tensor, x: Tensor, kernel_size, stride, padding, ceil_mode: bool) -> Tensor:
    """Torch reference: aten's max_pool2d_with_indices backward, result channels_last."""
    _, idx = torch.ops.aten.max_pool2d_with_indices(x, list(kernel_size), list(stride), list(padding), [1, 1],
                                                     ceil_mode)
    gx = torch.ops.aten.max_pool2d_with_indices_backward(grad_y, x, list(kernel_size), list(stride),
                                                         list(padding), [1, 1], ceil_mode, idx)
    return gx.contiguous(memory_format=torch.channels_last)


def avg_pool2d_backward_ref(grad_y: Tensor, x_size: Sequence[int], kernel_size, stride, padding, ceil_mode: bool,
                            count_include_pad: bool) -> Tensor:
    """Torch reference: aten's avg_pool2d backward, result channels_last."""
    x_like = grad_y.new_empty(tuple(x_size))  # only its shape is read
    gx = torch.ops.aten.avg_pool2d_backward(grad_y, x_like, list(kernel_size), list(stride),
                                            list(padding), ceil_mode, count_include_pad, None)
    return gx.contiguous(memory_format=torch.channels_last)


def launch_pool2d_backward_triton(grad_y: Tensor, x: Tensor | None, x_size: Sequence[int], kernel_size, stride,
                                  padding, is_max: bool, count_include_pad: bool, *, config=None) -> Tensor:
    """Triton backward: for max, the argmax kernel (window position of each output's first max, int8),
    then the gather kernel over input pixels; for avg, the gather kernel alone. Returns grad_x
    (N, C, H, W) channels_last in grad_y's dtype."""
    from triton import cdiv

    from inception_core.kernels import pool2d_bwd as kmod
    from inception_core.launch import launch_fixed

    n, c, h, w = x_size
    oh, ow = grad_y.shape[2], grad_y.shape[3]
    gx = torch.empty(tuple(x_size), dtype=grad_y.dtype, device=grad_y.device, memory_format=torch.channels_last)
    big = needs_int64(grad_y, gx, x)
    geometry = dict(KH=kernel_size[0], KW=kernel_size[1], STRIDE_H=stride[0], STRIDE_W=stride[1],
                    PAD_H=padding[0], PAD_W=padding[1], ACC_FP64=grad_y.dtype == torch.float64, USE_INT64=big)
    block = dict(config.kwargs) if config is not None else dict(BLOCK_P=kmod.BLOCK_P, BLOCK_C=kmod.BLOCK_C)
    warps = config.num_warps if config is not None else 4
    with device_context(grad_y):
        if is_max:
            idx = torch.empty((n, c, oh, ow), dtype=torch.int8, device=grad_y.device,
                              memory_format=torch.channels_last)
            launch_fixed("max_pool2d_argmax", kmod._max_pool2d_argmax_kernel,
                         (cdiv(n * oh * ow, block["BLOCK_P"]), cdiv(c, block["BLOCK_C"])),
                         (x, idx, n, c, h, w, oh, ow, *x.stride(), *idx.stride()), dict(**geometry, **block),
                         grad_y.device, num_warps=warps, explicit=config is not None)
        else:
            idx = grad_y  # unused
        launch_fixed("pool2d_bwd", kmod._pool2d_bwd_kernel,
                     (cdiv(n * h * w, block["BLOCK_P"]), cdiv(c, block["BLOCK_C"])),
                     (grad_y, idx, gx, n, c, h, w, oh, ow, *grad_y.stride(), *idx.stride(), *gx.stride()),
                     dict(IS_MAX=is_max, COUNT_INCLUDE_PAD=count_include_pad, **geometry, **block),
                     grad_y.device, num_warps=warps, explicit=config is not None)
    return gx


def _max_backward_triton(grad_y, x, kernel_size, stride, padding, ceil_mode):
    return launch_pool2d_backward_triton(grad_y, x, x.shape, kernel_size, stride, padding, True, True)


def _avg_backward_triton(grad_y, x_size, kernel_size, stride, padding, ceil_mode, count_include_pad):
    return launch_pool2d_backward_triton(grad_y, None, x_size, kernel_size, stride, padding, False, count_include_pad)


# csrc/ has no backward kernels: the cuda backend runs these on the torch references (warned once)
_MAX_BACKWARD = {"triton": _max_backward_triton, "torch": max_pool2d_backward_ref}
_AVG_BACKWARD = {"triton": _avg_backward_triton, "torch": avg_pool2d_backward_ref}


@torch.library.custom_op("inception_core::max_pool2d_backward", mutates_args=())
def _max_pool2d_backward_op(grad_y: Tensor, x: Tensor, kernel_size: Sequence[int], stride: Sequence[int],
                            padding: Sequence[int], ceil_mode: bool) -> Tensor:
    with _dispatch.no_autocast(x):
        return _dispatch.run("max_pool2d_backward", x, _MAX_BACKWARD, grad_y.to(x.dtype), x, kernel_size, stride,
                             padding, ceil_mode)


@_max_pool2d_backward_op.register_fake
def _(grad_y, x, kernel_size, stride, padding, ceil_mode):
    return torch.empty(x.shape, dtype=x.dtype, device=x.device, memory_format=torch.channels_last)


@torch.library.custom_op("inception_core::avg_pool2d_backward", mutates_args=())
def _avg_pool2d_backward_op(grad_y: Tensor, x_size: Sequence[int], kernel_size: Sequence[int],
                            stride: Sequence[int], padding: Sequence[int], ceil_mode: bool,
                            count_include_pad: bool) -> Tensor:
    with _dispatch.no_autocast(grad_y):
        return _dispatch.run("avg_pool2d_backward", grad_y, _AVG_BACKWARD, grad_y, x_size, kernel_size, stride,
                             padding, ceil_mode, count_include_pad)


@_avg_pool2d_backward_op.register_fake
def _(grad_y, x_size, kernel_size, stride, padding, ceil_mode, count_include_pad):
    return torch.empty(tuple(x_size), dtype=grad_y.dtype, device=grad_y.device, memory_format=torch.channels_last)


def _max_setup(ctx, inputs, output):
    x, kernel_size, stride, padding, ceil_mode = inputs
    ctx.save_for_backward(x)
    ctx.conf = (list(kernel_size), list(stride), list(padding), ceil_mode)
    ctx.backend = backends.get_backend()  # eager backward runs on the forward's backend


def _max_backward(ctx, grad_y):
    (x,) = ctx.saved_tensors
    if not ctx.needs_input_grad[0]:
        return None, None, None, None, None
    with backends.backend(ctx.backend):
        return _max_pool2d_backward_op(grad_y, x, *ctx.conf), None, None, None, None


def _avg_setup(ctx, inputs, output):
    x, kernel_size, stride, padding, ceil_mode, count_include_pad = inputs
    ctx.conf = (list(x.shape), list(kernel_size), list(stride), list(padding), ceil_mode, count_include_pad)
    ctx.x_dtype = x.dtype
    ctx.backend = backends.get_backend()


def _avg_backward(ctx, grad_y):
    if not ctx.needs_input_grad[0]:
        return (None,) * 6
    with backends.backend(ctx.backend):
        return (_avg_pool2d_backward_op(grad_y.to(ctx.x_dtype), *ctx.conf),) + (None,) * 5


_max_pool2d_op.register_autograd(_max_backward, setup_context=_max_setup)
_avg_pool2d_op.register_autograd(_avg_backward, setup_context=_avg_setup)
