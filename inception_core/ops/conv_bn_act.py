"""conv_bn_act: convolution + folded BatchNorm + optional scaled residual + activation, one pass.

    y = act(residual + res_scale * (conv2d(x, weight) * scale + shift))

This module holds the torch reference (``conv_bn_act_ref``), the Triton launcher, the
``torch.library`` custom ops (``inception_core::conv_bn_act`` and the slice-writing
``inception_core::conv_bn_act_out``) with their fake implementations, and the public function.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from inception_core.ops import _checks, _cpu_direct, _dispatch
from inception_core.ops._checks import conv_output_size, conv_result_shape
from inception_core.ops._launch_common import device_context, input_precision, needs_int64
from inception_core.ops.conv_torch import conv_bn_act_torch

__all__ = ["conv_bn_act", "conv_bn_act_ref", "conv_output_size", "launch_conv_bn_act_triton"]


def conv_bn_act_ref(x: Tensor, weight: Tensor, scale: Tensor | None = None, shift: Tensor | None = None, *,
                    stride=1, padding=0, act: str = "relu", residual: Tensor | None = None,
                    res_scale: float = 1.0) -> Tensor:
    """The torch reference: stock ops, epilogue in fp32 (fp64 for fp64 inputs), channels_last result."""
    acc_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    y = F.conv2d(x, weight, stride=stride, padding=padding).to(acc_dtype)
    if scale is not None:
        y = y * scale.to(acc_dtype).view(1, -1, 1, 1)
    if shift is not None:
        y = y + shift.to(acc_dtype).view(1, -1, 1, 1)
    if residual is not None:
        y = residual.to(acc_dtype) + res_scale * y
    if act == "relu":
        y = torch.relu(y)
    return y.to(x.dtype).contiguous(memory_format=torch.channels_last)


def launch_conv_bn_act_triton(x: Tensor, weight: Tensor, scale: Tensor | None, shift: Tensor | None,
                              residual: Tensor | None, stride: tuple[int, int], padding: tuple[int, int],
                              act: str, res_scale: float, y: Tensor, *, config=None,
                              stats: tuple[Tensor, Tensor] | None = None) -> None:
    """Launch the Triton kernel writing into ``y`` (N, K, OH, OW), any strides (a slice view is fine).

    ``config`` (a ``triton.Config``) runs that config; tests use it to check every shipped config.
    Otherwise the launch path chooses one (``inception_core/launch.py``). ``stats`` = (sum, m2), each
    (ceil(N*OH*OW / STATS_ROWS), K) in the accumulation dtype, turns on the STATS epilogue (BatchNorm
    training; kernels/conv_bn_act.py).
    """
    from triton import cdiv

    from inception_core.kernels import INTERPRETED
    from inception_core.launch import launch

    n, c, h, w = x.shape
    k, _, r, s = weight.shape
    oh, ow = y.shape[2], y.shape[3]
    if y.numel() == 0:
        return
    dummy = y  # placeholder pointer for absent optional tensors (never read: its flag is off)
    res = residual if residual is not None else y
    rstr = residual.stride() if residual is not None else (0, 0, 0, 0)
    args = (
        x, weight, scale if scale is not None else dummy, shift if shift is not None else dummy, res, y,
        stats[0] if stats is not None else dummy, stats[1] if stats is not None else dummy,
        n, c, h, w, k, oh, ow,
        x.stride(0), x.stride(1), x.stride(2), x.stride(3),
        weight.stride(0), weight.stride(1), weight.stride(2), weight.stride(3),
        rstr[0], rstr[1], rstr[2], rstr[3],
        y.stride(0), y.stride(1), y.stride(2), y.stride(3),
        float(res_scale),
    )
    meta = dict(
        R=r, S=s, STRIDE_H=stride[0], STRIDE_W=stride[1], PAD_H=padding[0], PAD_W=padding[1],
        HAS_SCALE=scale is not None, HAS_SHIFT=shift is not None, HAS_RESIDUAL=residual is not None,
        ACT_RELU=act == "relu", STATS=stats is not None, INPUT_PRECISION=input_precision(x),
        DOT_FP32=INTERPRETED and x.dtype == torch.bfloat16,
        ACC_FP64=x.dtype == torch.float64, USE_INT64=needs_int64(x, y, residual),
    )
    m = n * oh * ow

    def grid(meta_):
        return (cdiv(m, meta_["BLOCK_M"]) * cdiv(k, meta_["BLOCK_N"]),)

    with device_context(x):
        launch("conv_bn_act_fwd", grid, args, meta, x.device, config=config)


# Each backend writes channels [out_offset, out_offset + K) of ``out`` (the slice contract of
# ``inception_core::conv_bn_act_out``); the result op passes a fresh tensor and offset 0.
def _write_triton(x, weight, scale, shift, residual, stride, padding, act, res_scale, out, out_offset):
    y = out.narrow(1, out_offset, weight.shape[0])
    launch_conv_bn_act_triton(x, weight, scale, shift, residual, stride, padding, act, res_scale, y)


def _write_cuda(x, weight, scale, shift, residual, stride, padding, act, res_scale, out, out_offset):
    from inception_core import _cuda_ext

    _cuda_ext.ops().conv_bn_act_out(x, weight, scale, shift, residual, list(stride), list(padding), act,
                                    float(res_scale), out, out_offset)


def _write_torch(x, weight, scale, shift, residual, stride, padding, act, res_scale, out, out_offset):
    out.narrow(1, out_offset, weight.shape[0]).copy_(
        conv_bn_act_torch(x, weight, scale, shift, residual, stride, padding, act, res_scale))


_WRITE = {"triton": _write_triton, "cuda": _write_cuda, "torch": _write_torch}


@torch.library.custom_op("inception_core::conv_bn_act", mutates_args=())
def _conv_bn_act_op(x: Tensor, weight: Tensor, scale: Tensor | None, shift: Tensor | None,
                    residual: Tensor | None, stride: Sequence[int], padding: Sequence[int], act: str,
                    res_scale: float) -> Tensor:
    stride, padding = tuple(stride), tuple(padding)
    backend = _dispatch.resolve(x, "conv_bn_act")
    if backend == "torch":  # a fresh result: no copy into a preallocated one
        return conv_bn_act_torch(x, weight, scale, shift, residual, stride, padding, act, res_scale)
    y = torch.empty(conv_result_shape(x, weight, stride, padding), dtype=x.dtype, device=x.device,
                    memory_format=torch.channels_last)
    _WRITE[backend](x, weight, scale, shift, residual, stride, padding, act, res_scale, y, 0)
    return y


@_conv_bn_act_op.register_fake
def _(x, weight, scale, shift, residual, stride, padding, act, res_scale):
    return torch.empty(conv_result_shape(x, weight, stride, padding), dtype=x.dtype, device=x.device,
                       memory_format=torch.channels_last)


@torch.library.custom_op("inception_core::conv_bn_act_out", mutates_args=("out",))
def _conv_bn_act_out_op(x: Tensor, weight: Tensor, scale: Tensor | None, shift: Tensor | None,
                        residual: Tensor | None, stride: Sequence[int], padding: Sequence[int], act: str,
                        res_scale: float, out: Tensor, out_offset: int) -> None:
    k = weight.shape[0]
    _checks.no_overlap_inputs(out, out_offset, k, x=x, weight=weight, scale=scale, shift=shift, residual=residual)
    _dispatch.run("conv_bn_act", x, _WRITE, x, weight, scale, shift, residual, tuple(stride), tuple(padding), act,
                  res_scale, out, out_offset)


@_conv_bn_act_out_op.register_fake
def _(x, weight, scale, shift, residual, stride, padding, act, res_scale, out, out_offset):
    return None


def conv_bn_act(x: Tensor, weight: Tensor, scale: Tensor | None = None, shift: Tensor | None = None, *,
                stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0, act: str = "relu",
                residual: Tensor | None = None, res_scale: float = 1.0, out: Tensor | None = None,
                out_offset: int = 0) -> Tensor:
    """Fused convolution + per-channel affine (folded BatchNorm) + scaled residual + activation.

    ``y = act(residual + res_scale * (conv2d(x, weight, stride, padding) * scale + shift))``

    Args:
        x: (N, C, H, W), float32 / float16 / bfloat16 (float64 on the torch backend and the
            interpreter), any memory format: strides are read as they are, no copy is made.
        weight: (K, C, R, S), same dtype and device as x; channels_last weights read fastest.
        scale, shift: (K,) float32 (float64 for float64 x) or None (1 and 0). For eval BatchNorm:
            scale = gamma / sqrt(var + eps), shift = beta - mean * scale (+ conv bias * scale).
        stride, padding: int or (h, w) pair; padding may be asymmetric such as (0, 3) for 1x7.
        act: "relu" or "none".
        residual: optional (N, K, OH, OW) tensor of x's dtype, any memory format.
        res_scale: multiplies the convolution branch before the residual is added.
        out, out_offset: write channels [out_offset, out_offset + K) of the preallocated
            channels_last tensor ``out`` (N, >= out_offset + K, OH, OW) and return that slice as a
            view; no other element of ``out`` is touched (zero-copy concatenation). Not
            differentiable: with inputs that require grad, ``out`` raises ValueError.

    Differentiable wrt x, weight, scale, shift and residual (ReLU and residual backward folded into
    the pointwise backward; the gradient of scale recomputes the plain convolution).

    Returns:
        (N, K, OH, OW) in channels_last memory format, dtype of x; accumulation in fp32 (fp64 for
        fp64 inputs). For fp32 inputs the Triton kernel uses TF32 exactly when
        ``torch.backends.cudnn.allow_tf32`` is True (torch's own rule for convolutions).
    """
    stride, padding, shape = _checks.conv_arguments(x, weight, stride, padding, act)
    res_scale = _checks.real_number(res_scale, "res_scale")
    _checks.out_offset_needs_out(out, out_offset)
    k = shape[1]
    scale = _checks.channel_vector(scale, "scale", k, x)
    shift = _checks.channel_vector(shift, "shift", k, x)
    _checks.residual_argument(residual, x, shape)
    if out is not None:
        _checks.output_slice_target(out, out_offset, x=x, shape=shape)
        _checks.out_without_autograd(out, x, weight, scale, shift, residual)

    direct = _cpu_direct.conv_bn_act(x, weight, scale, shift, residual, stride, padding, act, res_scale, out,
                                     out_offset)
    if direct is not None:  # the torch backend on a CPU, no graph: without the custom op's dispatch
        return direct
    if out is None:
        return _conv_bn_act_op(x, weight, scale, shift, residual, list(stride), list(padding), act, res_scale)
    _conv_bn_act_out_op(x, weight, scale, shift, residual, list(stride), list(padding), act, res_scale, out,
                        out_offset)
    return out.narrow(1, out_offset, k)
