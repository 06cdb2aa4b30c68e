"""max_pool2d / avg_pool2d: 2-D pooling with torch.nn.functional semantics, writing into a slice.

This module holds the torch references (``max_pool2d_ref``, ``avg_pool2d_ref``), the Triton
launcher, the ``torch.library`` custom ops (``inception_core::max_pool2d``,
``inception_core::avg_pool2d`` and the slice-writing ``inception_core::max_pool2d_out``,
``inception_core::avg_pool2d_out``) with their fake implementations, and the public functions.
Dilation and ``return_indices`` are not supported. Their backward: ``pool2d_backward.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from inception_core.ops import _checks, _cpu_direct, _dispatch
from inception_core.ops._launch_common import device_context, needs_int64
from inception_core.ops.pool2d_torch import max_pool2d_torch

__all__ = [
    "avg_pool2d",
    "avg_pool2d_ref",
    "launch_pool2d_triton",
    "max_pool2d",
    "max_pool2d_ref",
    "pool_output_size",
]


def pool_output_size(hw: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
                     padding: tuple[int, int], ceil_mode: bool) -> tuple[int, int]:
    """(OH, OW) of a pooling window, torch's rule (``pooling_output_shape`` with dilation 1).

    ``out = floor((H + 2p - k + (s - 1 if ceil_mode else 0)) / s) + 1``; with ``ceil_mode`` the last
    window must start inside the input or its left padding, else it is dropped. May be < 1 for
    inputs too small for the window (the public functions reject that).
    """
    sizes = []
    for i in range(2):
        out = (hw[i] + 2 * padding[i] - kernel[i] + (stride[i] - 1 if ceil_mode else 0)) // stride[i] + 1
        if ceil_mode and (out - 1) * stride[i] >= hw[i] + padding[i]:
            out -= 1
        sizes.append(out)
    return tuple(sizes)


def max_pool2d_ref(x: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False) -> Tensor:
    """The torch reference: ``F.max_pool2d``, channels_last result of x's dtype (NaN propagates)."""
    y = F.max_pool2d(x, kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode)
    return y.contiguous(memory_format=torch.channels_last)


def avg_pool2d_ref(x: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                   count_include_pad: bool = True) -> Tensor:
    """The torch reference: ``F.avg_pool2d``, channels_last result of x's dtype."""
    y = F.avg_pool2d(x, kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode,
                     count_include_pad=count_include_pad)
    return y.contiguous(memory_format=torch.channels_last)


def launch_pool2d_triton(x: Tensor, kernel_size: tuple[int, int], stride: tuple[int, int],
                         padding: tuple[int, int], is_max: bool, count_include_pad: bool, y: Tensor, *,
                         config=None) -> None:
    """Launch the Triton pooling kernel writing into ``y`` (N, C, OH, OW), any strides.

    ``y``'s shape carries the output size (so ``ceil_mode`` is already applied); a channel-slice view
    of a bigger buffer is fine. ``config`` (a ``triton.Config``) runs that config (tests check every
    shipped config with it); otherwise the launch path chooses one (``inception_core/launch.py``).
    """
    from triton import cdiv

    from inception_core.launch import launch

    n, c, h, w = x.shape
    oh, ow = y.shape[2], y.shape[3]
    if y.numel() == 0:
        return
    args = (
        x, y,
        n, c, h, w, oh, ow,
        x.stride(0), x.stride(1), x.stride(2), x.stride(3),
        y.stride(0), y.stride(1), y.stride(2), y.stride(3),
    )
    meta = dict(
        KH=kernel_size[0], KW=kernel_size[1], STRIDE_H=stride[0], STRIDE_W=stride[1],
        PAD_H=padding[0], PAD_W=padding[1], IS_MAX=bool(is_max), COUNT_INCLUDE_PAD=bool(count_include_pad),
        ACC_FP64=x.dtype == torch.float64, USE_INT64=needs_int64(x, y),
    )
    p = n * oh * ow

    def grid(meta_):
        return (cdiv(p, meta_["BLOCK_P"]), cdiv(c, meta_["BLOCK_C"]))

    with device_context(x):
        launch("pool2d_fwd", grid, args, meta, x.device, config=config)


# Each backend writes channels [out_offset, out_offset + C) of ``out`` (the slice contract of the ``_out``
# ops); the result ops pass a fresh tensor and offset 0.
def _write_triton(x, kernel_size, stride, padding, ceil_mode, is_max, count_include_pad, out, out_offset):
    launch_pool2d_triton(x, tuple(kernel_size), tuple(stride), tuple(padding), is_max, count_include_pad,
                         out.narrow(1, out_offset, x.shape[1]))


def _write_cuda(x, kernel_size, stride, padding, ceil_mode, is_max, count_include_pad, out, out_offset):
    from inception_core import _cuda_ext

    cuda_ops = _cuda_ext.ops()
    if is_max:
        cuda_ops.max_pool2d_out(x, list(kernel_size), list(stride), list(padding), ceil_mode, out, out_offset)
    else:
        cuda_ops.avg_pool2d_out(x, list(kernel_size), list(stride), list(padding), ceil_mode, count_include_pad,
                                out, out_offset)


def _write_torch(x, kernel_size, stride, padding, ceil_mode, is_max, count_include_pad, out, out_offset):
    geometry = (tuple(kernel_size), tuple(stride), tuple(padding), ceil_mode)
    if is_max:
        max_pool2d_torch(x, *geometry, out=out.narrow(1, out_offset, x.shape[1]))
    else:
        out.narrow(1, out_offset, x.shape[1]).copy_(avg_pool2d_ref(x, *geometry, count_include_pad))


_WRITE = {"triton": _write_triton, "cuda": _write_cuda, "torch": _write_torch}


def _compute(x: Tensor, kernel_size, stride, padding, ceil_mode: bool, is_max: bool, count_include_pad: bool,
             out: Tensor, out_offset: int) -> None:
    """Run the op on the backend resolved for this call, writing channels [out_offset, out_offset + C) of
    ``out``."""
    _dispatch.run("max_pool2d" if is_max else "avg_pool2d", x, _WRITE, x, kernel_size, stride, padding, ceil_mode,
                  is_max, count_include_pad, out, out_offset)


def _out_shape(x: Tensor, kernel_size, stride, padding, ceil_mode: bool) -> tuple[int, int, int, int]:
    oh, ow = pool_output_size(tuple(x.shape[2:]), tuple(kernel_size), tuple(stride), tuple(padding),
                              ceil_mode)
    return x.shape[0], x.shape[1], oh, ow


def _empty_result(x: Tensor, kernel_size, stride, padding, ceil_mode: bool) -> Tensor:
    return torch.empty(_out_shape(x, kernel_size, stride, padding, ceil_mode), dtype=x.dtype, device=x.device,
                       memory_format=torch.channels_last)


@torch.library.custom_op("inception_core::max_pool2d", mutates_args=())
def _max_pool2d_op(x: Tensor, kernel_size: Sequence[int], stride: Sequence[int], padding: Sequence[int],
                   ceil_mode: bool) -> Tensor:
    y = _empty_result(x, kernel_size, stride, padding, ceil_mode)
    _compute(x, kernel_size, stride, padding, ceil_mode, True, True, y, 0)
    return y


@_max_pool2d_op.register_fake
def _(x, kernel_size, stride, padding, ceil_mode):
    return _empty_result(x, kernel_size, stride, padding, ceil_mode)


@torch.library.custom_op("inception_core::avg_pool2d", mutates_args=())
def _avg_pool2d_op(x: Tensor, kernel_size: Sequence[int], stride: Sequence[int], padding: Sequence[int],
                   ceil_mode: bool, count_include_pad: bool) -> Tensor:
    y = _empty_result(x, kernel_size, stride, padding, ceil_mode)
    _compute(x, kernel_size, stride, padding, ceil_mode, False, count_include_pad, y, 0)
    return y


@_avg_pool2d_op.register_fake
def _(x, kernel_size, stride, padding, ceil_mode, count_include_pad):
    return _empty_result(x, kernel_size, stride, padding, ceil_mode)


@torch.library.custom_op("inception_core::max_pool2d_out", mutates_args=("out",))
def _max_pool2d_out_op(x: Tensor, kernel_size: Sequence[int], stride: Sequence[int], padding: Sequence[int],
                       ceil_mode: bool, out: Tensor, out_offset: int) -> None:
    _checks.no_overlap(x, "x", out, out_offset, x.shape[1])
    _compute(x, kernel_size, stride, padding, ceil_mode, True, True, out, out_offset)


@_max_pool2d_out_op.register_fake
def _(x, kernel_size, stride, padding, ceil_mode, out, out_offset):
    return None


@torch.library.custom_op("inception_core::avg_pool2d_out", mutates_args=("out",))
def _avg_pool2d_out_op(x: Tensor, kernel_size: Sequence[int], stride: Sequence[int], padding: Sequence[int],
                       ceil_mode: bool, count_include_pad: bool, out: Tensor, out_offset: int) -> None:
    _checks.no_overlap(x, "x", out, out_offset, x.shape[1])
    _compute(x, kernel_size, stride, padding, ceil_mode, False, count_include_pad, out, out_offset)


@_avg_pool2d_out_op.register_fake
def _(x, kernel_size, stride, padding, ceil_mode, count_include_pad, out, out_offset):
    return None


def _check_flag(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name}: expected a bool, got {value!r}")
    return value


def _geometry(kernel_size, stride, padding, ceil_mode) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """The checks of a pool's window arguments (not of its input); returns (kernel, stride, padding)."""
    kernel = _checks.pair(kernel_size, "kernel_size", minimum=1)
    stride = kernel if stride is None else _checks.pair(stride, "stride", minimum=1)
    padding = _checks.pair(padding, "padding", minimum=0)
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(f"padding: expected at most half the kernel size {kernel} (as torch requires), "
                         f"got {padding}")
    _check_flag(ceil_mode, "ceil_mode")
    return kernel, stride, padding


def prepare_pool2d(is_max: bool, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                   count_include_pad: bool = True) -> _cpu_direct.PreparedPool:
    """``max_pool2d`` (``is_max``) or ``avg_pool2d`` with these window arguments, checked once, as a callable
    ``(x, out, out_offset) -> result | None`` for a pooling layer: it runs the torch backend on a CPU directly
    and returns None for a call that must take the public function (see ``_cpu_direct.PreparedPool``).

    Raises:
        TypeError, ValueError: as the public functions, for the window arguments.
    """
    if not is_max:
        _check_flag(count_include_pad, "count_include_pad")
    return _cpu_direct.PreparedPool(is_max, *_geometry(kernel_size, stride, padding, ceil_mode),
                                    ceil_mode, count_include_pad)


def _check_args(x: Tensor, kernel_size, stride, padding, ceil_mode, out, out_offset):
    """Shared checks of both pools; returns (kernel, stride, padding, result shape). Launches nothing."""
    _checks.tensor_4d(x, "x")
    if x.shape[1] == 0 or x.shape[2] == 0 or x.shape[3] == 0:
        raise ValueError(f"x: expected non-zero channels and spatial size, got shape {tuple(x.shape)}")
    kernel, stride, padding = _geometry(kernel_size, stride, padding, ceil_mode)
    _checks.out_offset_needs_out(out, out_offset)
    shape = _out_shape(x, kernel, stride, padding, ceil_mode)
    if shape[2] < 1 or shape[3] < 1:
        raise ValueError(f"x: spatial size {tuple(x.shape[2:])} is too small for kernel_size {kernel}, "
                         f"stride {stride}, padding {padding} (output size {shape[2:]})")
    if out is not None:
        _checks.output_slice_target(out, out_offset, x=x, shape=shape)
        _checks.out_without_autograd(out, x)
    return kernel, stride, padding, shape


def max_pool2d(x: Tensor, kernel_size: int | Sequence[int], stride: int | Sequence[int] | None = None,
               padding: int | Sequence[int] = 0, ceil_mode: bool = False, *, out: Tensor | None = None,
               out_offset: int = 0) -> Tensor:
    """2-D max pooling with ``torch.nn.functional.max_pool2d`` semantics (no dilation, no indices).

    Padded positions count as -inf; a NaN in a window makes that output NaN, as in torch.

    Args:
        x: (N, C, H, W), float32 / float16 / bfloat16 (float64 on the torch backend and the
            interpreter), any memory format: strides are read as they are, no copy is made.
        kernel_size: int or (kh, kw) pair.
        stride: int or (sh, sw) pair; None (default) means kernel_size.
        padding: int or (ph, pw) pair, at most half the kernel size in each dimension.
        ceil_mode: round the output size up (torch's rule: the last window must start inside the
            input or its left padding).
        out, out_offset: write channels [out_offset, out_offset + C) of the preallocated
            channels_last tensor ``out`` (N, >= out_offset + C, OH, OW) of x's dtype and device and
            return that slice as a view; no other element of ``out`` is touched (zero-copy
            concatenation). Not differentiable: with x requiring grad, ``out`` raises ValueError.

    Differentiable wrt x (Triton backward kernels on the triton backend).

    Returns:
        (N, C, OH, OW) in channels_last memory format, dtype of x (or the slice of ``out``).
    """
    kernel, stride, padding, shape = _check_args(x, kernel_size, stride, padding, ceil_mode, out, out_offset)
    direct = _cpu_direct.pool2d(x, True, kernel, stride, padding, ceil_mode, True, out, out_offset)
    if direct is not None:  # the torch backend on a CPU, no graph: without the custom op's dispatch
        return direct
    if out is None:
        return _max_pool2d_op(x, list(kernel), list(stride), list(padding), ceil_mode)
    _max_pool2d_out_op(x, list(kernel), list(stride), list(padding), ceil_mode, out, out_offset)
    return out.narrow(1, out_offset, shape[1])


def avg_pool2d(x: Tensor, kernel_size: int | Sequence[int], stride: int | Sequence[int] | None = None,
               padding: int | Sequence[int] = 0, ceil_mode: bool = False, count_include_pad: bool = True, *,
               out: Tensor | None = None, out_offset: int = 0) -> Tensor:
    """2-D average pooling with ``torch.nn.functional.avg_pool2d`` semantics (no divisor_override).

    Sums in fp32 (fp64 for fp64 inputs) and divides by torch's divisor: the window clipped to the
    padded input when ``count_include_pad``, else clipped to the input itself.

    Args:
        x: (N, C, H, W), float32 / float16 / bfloat16 (float64 on the torch backend and the
            interpreter), any memory format: strides are read as they are, no copy is made.
        kernel_size: int or (kh, kw) pair.
        stride: int or (sh, sw) pair; None (default) means kernel_size.
        padding: int or (ph, pw) pair, at most half the kernel size in each dimension.
        ceil_mode: round the output size up (torch's rule: the last window must start inside the
            input or its left padding).
        count_include_pad: count the zero padding in the divisor (torch's default, Inception-v3's
            pools) or not (Inception-v4 / Inception-ResNet-v2 pools).
        out, out_offset: write channels [out_offset, out_offset + C) of the preallocated
            channels_last tensor ``out`` (N, >= out_offset + C, OH, OW) of x's dtype and device and
            return that slice as a view; no other element of ``out`` is touched (zero-copy
            concatenation). Not differentiable: with x requiring grad, ``out`` raises ValueError.

    Differentiable wrt x (Triton backward kernels on the triton backend).

    Returns:
        (N, C, OH, OW) in channels_last memory format, dtype of x (or the slice of ``out``).
    """
    _check_flag(count_include_pad, "count_include_pad")
    kernel, stride, padding, shape = _check_args(x, kernel_size, stride, padding, ceil_mode, out, out_offset)
    direct = _cpu_direct.pool2d(x, False, kernel, stride, padding, ceil_mode, count_include_pad, out, out_offset)
    if direct is not None:  # the torch backend on a CPU, no graph: without the custom op's dispatch
        return direct
    if out is None:
        return _avg_pool2d_op(x, list(kernel), list(stride), list(padding), ceil_mode, count_include_pad)
    _avg_pool2d_out_op(x, list(kernel), list(stride), list(padding), ceil_mode, count_include_pad, out,
                       out_offset)
    return out.narrow(1, out_offset, shape[1])
