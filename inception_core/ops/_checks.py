"""Argument checks shared by the fused ops: every message names the argument and what was expected.

All checks run on the host before any kernel launches. The conv checks (``conv_arguments``,
``residual_argument``) serve both ``conv_bn_act`` and ``conv_bn_act_train``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
ACTS = ("relu", "none")


def pair(value: int | Sequence[int], name: str, *, minimum: int) -> tuple[int, int]:
    """An int or an (h, w) pair of ints >= minimum, as a pair."""
    if isinstance(value, bool):
        raise TypeError(f"{name}: expected an int or a pair of ints, got {value!r}")
    if isinstance(value, int):
        value = (value, value)
    try:
        items = tuple(value)
    except TypeError:
        raise TypeError(f"{name}: expected an int or a pair of ints, got {value!r}") from None
    if len(items) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
        raise TypeError(f"{name}: expected an int or a pair of ints, got {value!r}")
    if min(items) < minimum:
        raise ValueError(f"{name}: expected values >= {minimum}, got {items}")
    return items


def tensor_4d(t: object, name: str, layout: str = "(N, C, H, W)") -> torch.Tensor:
    """A 4-D floating tensor of a supported dtype; ``layout`` names its dimensions in the message."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
    if t.dim() != 4:
        raise ValueError(f"{name}: expected a 4-D tensor {layout}, got {t.dim()}-D with shape {tuple(t.shape)}")
    if t.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected dtype float16, bfloat16, float32 or float64, got {t.dtype}")
    return t


def same_device_dtype(t: torch.Tensor, name: str, ref: torch.Tensor, ref_name: str) -> None:
    if t.device != ref.device:
        raise ValueError(f"{name}: expected a tensor on {ref_name}'s device {ref.device}, got {t.device}")
    if t.dtype != ref.dtype:
        raise TypeError(f"{name}: expected {ref_name}'s dtype {ref.dtype}, got {t.dtype}")


def channel_vector(t: object, name: str, size: int, x: torch.Tensor) -> torch.Tensor | None:
    """None, or a 1-D float32 tensor of ``size`` elements on x's device (float64 when x is)."""
    if t is None:
        return None
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor or None, got {type(t).__name__}")
    if t.shape != (size,):
        raise ValueError(f"{name}: expected shape ({size},) (one value per output channel), got {tuple(t.shape)}")
    allowed = (torch.float32, torch.float64) if x.dtype == torch.float64 else (torch.float32,)
    if t.dtype not in allowed:
        raise TypeError(f"{name}: expected dtype {' or '.join(map(str, allowed))}, got {t.dtype}")
    if t.device != x.device:
        raise ValueError(f"{name}: expected a tensor on x's device {x.device}, got {t.device}")
    return t


def conv_output_size(hw: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
                     padding: tuple[int, int]) -> tuple[int, int]:
    """(OH, OW) of a convolution (floor division, as torch.nn.functional.conv2d)."""
    return tuple((hw[i] + 2 * padding[i] - kernel[i]) // stride[i] + 1 for i in range(2))


def conv_result_shape(x: torch.Tensor, weight: torch.Tensor, stride, padding) -> tuple[int, int, int, int]:
    """(N, K, OH, OW) of ``conv2d(x, weight)``."""
    oh, ow = conv_output_size(tuple(x.shape[2:]), tuple(weight.shape[2:]), tuple(stride), tuple(padding))
    return x.shape[0], weight.shape[0], oh, ow


def conv_arguments(x: object, weight: object, stride: object, padding: object,
                   act: object) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int, int, int]]:
    """The checks of a fused conv's x (N, C, H, W), weight (K, C, R, S), stride, padding and act;
    returns (stride, padding, result shape (N, K, OH, OW))."""
    tensor_4d(x, "x")
    tensor_4d(weight, "weight", "(C_out, C_in, kH, kW)")
    same_device_dtype(weight, "weight", x, "x")
    c = x.shape[1]
    k, wc, r, s = weight.shape
    if wc != c:
        raise ValueError(f"weight: expected {c} input channels (x has shape {tuple(x.shape)}), "
                         f"got weight of shape {tuple(weight.shape)} (grouped convolution is not supported)")
    if k == 0 or r == 0 or s == 0:
        raise ValueError(f"weight: expected non-empty (K, C, R, S), got {tuple(weight.shape)}")
    if c == 0:
        raise ValueError(f"x: expected at least one input channel, got shape {tuple(x.shape)}")
    stride = pair(stride, "stride", minimum=1)
    padding = pair(padding, "padding", minimum=0)
    if act not in ACTS:
        raise ValueError(f"act: expected one of {list(ACTS)}, got {act!r}")
    h, w = x.shape[2:]
    if h + 2 * padding[0] < r or w + 2 * padding[1] < s:
        raise ValueError(f"x: spatial size ({h}, {w}) with padding {padding} is smaller than the "
                         f"kernel ({r}, {s})")
    return stride, padding, conv_result_shape(x, weight, stride, padding)


def residual_argument(residual: object, x: torch.Tensor, shape: tuple[int, int, int, int]) -> None:
    """None, or a tensor of x's dtype and device with the result's shape."""
    if residual is None:
        return
    tensor_4d(residual, "residual")
    same_device_dtype(residual, "residual", x, "x")
    if tuple(residual.shape) != shape:
        raise ValueError(f"residual: expected shape {shape} (the result's), got {tuple(residual.shape)}")


def real_number(value: object, name: str) -> float:
    """An int or a float (not a bool), as a float."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"{name}: expected a float, got {type(value).__name__}")
    return float(value)


def output_slice_target(
    out: object, out_offset: object, *, x: torch.Tensor, shape: tuple[int, int, int, int]
) -> None:
    """Check that ``out`` can take channels [out_offset, out_offset + shape[1]) of a result of ``shape``."""
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"out: expected a torch.Tensor or None, got {type(out).__name__}")
    if not isinstance(out_offset, int) or isinstance(out_offset, bool) or out_offset < 0:
        raise ValueError(f"out_offset: expected an int >= 0, got {out_offset!r}")
    same_device_dtype(out, "out", x, "x")
    if out.dim() != 4:
        raise ValueError(f"out: expected a 4-D tensor (N, C_total, OH, OW), got shape {tuple(out.shape)}")
    n, k, oh, ow = shape
    if out.shape[0] != n or tuple(out.shape[2:]) != (oh, ow) or out.shape[1] < out_offset + k:
        raise ValueError(
            f"out: expected shape ({n}, >= {out_offset + k}, {oh}, {ow}) to take channels "
            f"[{out_offset}, {out_offset + k}) of the result, got {tuple(out.shape)}"
        )
    if not out.is_contiguous(memory_format=torch.channels_last):
        raise ValueError(
            f"out: expected a channels_last tensor (strides of .contiguous(memory_format=torch.channels_last)), "
            f"got strides {out.stride()}"
        )


def out_offset_needs_out(out: object, out_offset: object) -> None:
    """Reject a nonzero ``out_offset`` without ``out`` (it would be ignored)."""
    if out is None and not (isinstance(out_offset, int) and not isinstance(out_offset, bool) and out_offset == 0):
        raise ValueError(f"out_offset: {out_offset!r} given without out=; it is the first channel of out that the "
                         "op writes (pass out=, or leave out_offset at 0)")


def _byte_extent(t: torch.Tensor) -> tuple[int, int]:
    """[first, last) byte addresses that the elements of ``t`` (non-empty) can occupy."""
    low = high = 0
    for size, stride in zip(t.shape, t.stride(), strict=True):
        if stride >= 0:
            high += (size - 1) * stride
        else:
            low += (size - 1) * stride
    item = t.element_size()
    return t.data_ptr() + low * item, t.data_ptr() + (high + 1) * item


def _channel_range(t: torch.Tensor, base: torch.Tensor) -> tuple[int, int] | None:
    """Channel range [c0, c1) of base that t covers when t is a channel slice of a channels_last base."""
    if (t.dtype != base.dtype or t.shape[0] != base.shape[0] or t.shape[2:] != base.shape[2:]
            or t.stride() != base.stride()):
        return None
    offset = (t.data_ptr() - base.data_ptr()) // base.element_size()
    if offset < 0 or offset + t.shape[1] > base.shape[1]:
        return None
    return offset, offset + t.shape[1]


def no_overlap(t: torch.Tensor | None, name: str, out: torch.Tensor, out_offset: int, channels: int) -> None:
    """Reject reads from the channels of ``out`` that the op writes (reads of other channels are fine)."""
    if t is None or t.device != out.device or t.numel() == 0:
        return
    if t.untyped_storage().data_ptr() != out.untyped_storage().data_ptr():
        return
    written = out.narrow(1, out_offset, channels)
    if written.numel() == 0:
        return
    (t0, t1), (w0, w1) = _byte_extent(t), _byte_extent(written)
    if t1 <= w0 or w1 <= t0:  # another region of the same storage
        return
    rng = _channel_range(t, out)
    if rng is not None and (rng[1] <= out_offset or rng[0] >= out_offset + channels):
        return
    raise ValueError(
        f"{name}: shares memory with the channels [{out_offset}, {out_offset + channels}) of out that the op "
        "writes; pass a separate tensor"
    )


def no_overlap_inputs(out: torch.Tensor, out_offset: int, channels: int, **inputs: torch.Tensor | None) -> None:
    """``no_overlap`` for every input of an op (keyword: the argument's name): a kernel that reads a
    tensor while it writes the same memory gives wrong values."""
    for name, t in inputs.items():
        no_overlap(t, name, out, out_offset, channels)


def written_apart(written: dict[str, torch.Tensor | None], read: dict[str, torch.Tensor | None]) -> None:
    """Reject a tensor the op writes in place (``written``, e.g. running statistics) that shares memory
    with another written tensor or with an input (``read``): the result would depend on the order of
    the writes."""
    names = [n for n, t in written.items() if t is not None]
    for i, name in enumerate(names):
        t = written[name]
        others = [(n, written[n]) for n in names[i + 1:]] + [(n, r) for n, r in read.items() if r is not None]
        for other_name, other in others:
            if t.numel() and other.numel() and t.device == other.device and _overlaps(t, other):
                raise ValueError(f"{name}: shares memory with {other_name}; the op writes {name} in place, so "
                                 "pass a separate tensor")


def _overlaps(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.untyped_storage().data_ptr() != b.untyped_storage().data_ptr():
        return False
    (a0, a1), (b0, b1) = _byte_extent(a), _byte_extent(b)
    return a0 < b1 and b0 < a1


def out_without_autograd(out: object, *tensors: torch.Tensor | None) -> None:
    """Reject an ``out=`` slice write when autograd would record the call: slice writes are not
    differentiable (training layers concatenate with torch.cat instead), and ``out`` itself must not
    require grad (an in-place write into it cannot be differentiated)."""
    if out is None or not torch.is_grad_enabled():
        return
    if isinstance(out, torch.Tensor) and out.requires_grad:
        raise ValueError("out: expected a tensor that does not require grad (the op writes into it in place); "
                         "pass a buffer from torch.empty, or call under torch.no_grad()")
    if any(isinstance(t, torch.Tensor) and t.requires_grad for t in tensors):
        raise ValueError("out: slice writes are not differentiable; with inputs that require grad, call the op "
                         "without out= (and concatenate the results)")
