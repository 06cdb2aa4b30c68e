"""conv_bn_act: convolution + folded BatchNorm + optional scaled residual + activation, one pass.

    y = act(residual + res_scale * (conv2d(x, weight) * scale + shift))

This module holds the torch reference (``conv_bn_act_ref``), the Triton launcher, the
``torch.library`` custom ops (``inception_core::conv_bn_act`` and the slice-writing
``inception_core::conv_bn_act_out``) with their fake implementations, and the public function.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from inception_core.backends import backend_for
from inception_core.ops import _checks
from inception_core.ops.conv_torch import conv_bn_act_torch

__all__ = ["conv_bn_act", "conv_bn_act_ref", "conv_output_size", "launch_conv_bn_act_triton"]

_ACTS = ("relu", "none")
_INT32_LIMIT = 2**31 - 1


def conv_output_size(hw: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
                     padding: tuple[int, int]) -> tuple[int, int]:
    """(OH, OW) of a convolution (floor division, as torch.nn.functional.conv2d)."""
    return tuple((hw[i] + 2 * padding[i] - kernel[i]) // stride[i] + 1 for i in range(2))


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
    from inception_core.kernels import INTERPRETED
    from inception_core.launch import launch

    n, c, h, w = x.shape
    k, _, r, s = weight.shape
    oh, ow = y.shape[2], y.shape[3]
    if y.numel() == 0:
        return
    fp32_in = x.dtype == torch.float32
    # fp32 inputs follow cuDNN's flag, as torch's own convolutions do (default: TF32 allowed).
    precision = "tf32" if (fp32_in and torch.backends.cudnn.allow_tf32) else "ieee"
    # Offsets index into the storages (a slice or strided view reaches past its own numel).
    big = max(_storage_elems(t) for t in (x, y, residual) if t is not None)
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
        ACT_RELU=act == "relu", STATS=stats is not None, INPUT_PRECISION=precision,
        DOT_FP32=INTERPRETED and x.dtype == torch.bfloat16,
        ACC_FP64=x.dtype == torch.float64, USE_INT64=big > _INT32_LIMIT,
    )
    m = n * oh * ow

    def grid(meta_):
        return (_cdiv(m, meta_["BLOCK_M"]) * _cdiv(k, meta_["BLOCK_N"]),)

    with torch.cuda.device(x.device) if x.device.type == "cuda" else contextlib.nullcontext():
        launch("conv_bn_act_fwd", grid, args, meta, x.device, config=config)


def _storage_elems(t: Tensor) -> int:
    return max(t.numel(), t.untyped_storage().nbytes() // t.element_size())


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _compute(x, weight, scale, shift, residual, stride, padding, act, res_scale, y) -> None:
    """Run the op on the resolved backend, writing into ``y``."""
    chosen = backend_for(x, "conv_bn_act")
    if chosen == "triton":
        launch_conv_bn_act_triton(x, weight, scale, shift, residual, stride, padding, act, res_scale, y)
    elif chosen == "cuda":
        from inception_core import _cuda_ext

        _cuda_ext.ops().conv_bn_act_out(x, weight, scale, shift, residual, list(stride), list(padding), act,
                                        float(res_scale), y, 0)
    else:
        y.copy_(conv_bn_act_torch(x, weight, scale, shift, residual, stride, padding, act, res_scale))


def _out_shape(x: Tensor, weight: Tensor, stride, padding) -> tuple[int, int, int, int]:
    oh, ow = conv_output_size(tuple(x.shape[2:]), tuple(weight.shape[2:]), tuple(stride), tuple(padding))
    return x.shape[0], weight.shape[0], oh, ow


@torch.library.custom_op("inception_core::conv_bn_act", mutates_args=())
def _conv_bn_act_op(x: Tensor, weight: Tensor, scale: Tensor | None, shift: Tensor | None,
                    residual: Tensor | None, stride: Sequence[int], padding: Sequence[int], act: str,
                    res_scale: float) -> Tensor:
    if backend_for(x, "conv_bn_act") == "torch":  # a fresh result: no copy into a preallocated one
        return conv_bn_act_torch(x, weight, scale, shift, residual, tuple(stride), tuple(padding), act, res_scale)
    y = torch.empty(_out_shape(x, weight, stride, padding), dtype=x.dtype, device=x.device,
                    memory_format=torch.channels_last)
    _compute(x, weight, scale, shift, residual, tuple(stride), tuple(padding), act, res_scale, y)
    return y


@_conv_bn_act_op.register_fake
def _(x, weight, scale, shift, residual, stride, padding, act, res_scale):
    return torch.empty(_out_shape(x, weight, stride, padding), dtype=x.dtype, device=x.device,
                       memory_format=torch.channels_last)


@torch.library.custom_op("inception_core::conv_bn_act_out", mutates_args=("out",))
def _conv_bn_act_out_op(x: Tensor, weight: Tensor, scale: Tensor | None, shift: Tensor | None,
                        residual: Tensor | None, stride: Sequence[int], padding: Sequence[int], act: str,
                        res_scale: float, out: Tensor, out_offset: int) -> None:
    k = weight.shape[0]
    _checks.no_overlap_inputs(out, out_offset, k, x=x, weight=weight, scale=scale, shift=shift, residual=residual)
    y = out.narrow(1, out_offset, k)
    _compute(x, weight, scale, shift, residual, tuple(stride), tuple(padding), act, res_scale, y)


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
    _checks.tensor_4d(x, "x")
    _checks.tensor_4d(weight, "weight", "(C_out, C_in, kH, kW)")
    _checks.same_device_dtype(weight, "weight", x, "x")
    n, c = x.shape[:2]
    k, wc, r, s = weight.shape
    if wc != c:
        raise ValueError(f"weight: expected {c} input channels (x has shape {tuple(x.shape)}), "
                         f"got weight of shape {tuple(weight.shape)} (grouped convolution is not supported)")
    if k == 0 or r == 0 or s == 0:
        raise ValueError(f"weight: expected non-empty (K, C, R, S), got {tuple(weight.shape)}")
    if c == 0:
        raise ValueError(f"x: expected at least one input channel, got shape {tuple(x.shape)}")
    stride = _checks.pair(stride, "stride", minimum=1)
    padding = _checks.pair(padding, "padding", minimum=0)
    if act not in _ACTS:
        raise ValueError(f"act: expected one of {list(_ACTS)}, got {act!r}")
    if not isinstance(res_scale, (int, float)) or isinstance(res_scale, bool):
        raise TypeError(f"res_scale: expected a float, got {type(res_scale).__name__}")
    _checks.out_offset_needs_out(out, out_offset)
    h, w = x.shape[2:]
    if h + 2 * padding[0] < r or w + 2 * padding[1] < s:
        raise ValueError(f"x: spatial size ({h}, {w}) with padding {padding} is smaller than the "
                         f"kernel ({r}, {s})")
    shape = _out_shape(x, weight, stride, padding)
    scale = _checks.channel_vector(scale, "scale", k, x)
    shift = _checks.channel_vector(shift, "shift", k, x)
    if residual is not None:
        _checks.tensor_4d(residual, "residual")
        _checks.same_device_dtype(residual, "residual", x, "x")
        if tuple(residual.shape) != shape:
            raise ValueError(f"residual: expected shape {shape} (the result's), got {tuple(residual.shape)}")
    if out is not None:
        _checks.output_slice_target(out, out_offset, x=x, shape=shape)
        _checks.out_without_autograd(out, x, weight, scale, shift, residual)
    if not torch.compiler.is_compiling():
        backend_for(x, "conv_bn_act")  # raise now if the backend cannot run the call (compiled: at run time)

    if out is None:
        return _conv_bn_act_op(x, weight, scale, shift, residual, list(stride), list(padding), act,
                               float(res_scale))
    _conv_bn_act_out_op(x, weight, scale, shift, residual, list(stride), list(padding), act,
                        float(res_scale), out, out_offset)
    return out.narrow(1, out_offset, k)
