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
import torch.nn.functional as F
from torch import Tensor
from torch.utils._python_dispatch import _get_current_dispatch_mode

from inception_core import backends
from inception_core.ops import _checks
from inception_core.ops.conv_torch import _weight_for
from inception_core.ops.pool2d_torch import max_pool2d_torch

__all__ = ["FrozenConv", "PreparedPool", "conv_bn_act", "cpu_backend", "eligible", "pool2d"]

_CPU = torch.device("cpu")
_CPU_BACKEND: dict[tuple[str, bool], str] = {}


def cpu_backend(op: str) -> str:
    """``backends.backend_for`` of ``op`` on a CPU tensor (about 7 us), remembered per (backend in force,
    ``TRITON_INTERPRET``): for a CPU device the answer depends on nothing else (the device status is cached
    per process, the op name only enters error messages, and no dtype rule applies to a CPU choice). Both are
    read on every call, so ``backend()``, ``set_backend`` and the environment variables apply at once.
    Raises as ``backend_for`` (nothing is remembered then)."""
    name = backends.get_backend()
    if name == "torch":
        return name
    key = (name, backends.interpreter_enabled())
    chosen = _CPU_BACKEND.get(key)
    if chosen is None:
        chosen = _CPU_BACKEND[key] = backends.resolve_backend(_CPU, op)
    return chosen


def eligible(x: Tensor, op: str, *tensors: Tensor | None) -> bool:
    """Whether a call of ``op`` on ``x`` (and ``tensors``, None allowed) may run the torch backend directly."""
    if not x.is_cpu or torch.compiler.is_compiling() or _get_current_dispatch_mode() is not None:
        return False
    grad = torch.is_grad_enabled()
    for t in (x, *tensors):
        if t is not None and (type(t) not in (Tensor, torch.nn.Parameter) or (grad and t.requires_grad)):
            return False
    return cpu_backend(op) == "torch"


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
    from inception_core.ops.pool2d import avg_pool2d_ref

    if not eligible(x, "max_pool2d" if is_max else "avg_pool2d", out):
        return None
    if out is not None:
        _checks.no_overlap(x, "x", out, out_offset, x.shape[1])
    geometry = (kernel, stride, padding, ceil_mode)
    slot = None if out is None else out.narrow(1, out_offset, x.shape[1])
    if is_max:
        return max_pool2d_torch(x, *geometry, out=slot)
    y = avg_pool2d_ref(x, *geometry, count_include_pad)
    return y if slot is None else slot.copy_(y)


def _slot_fits(out: object, out_offset: object, dtype: torch.dtype, n: int, k: int, oh: int, ow: int) -> bool:
    """Whether a prepared call may write its (n, k, oh, ow) result into channels ``[out_offset, out_offset + k)``
    of ``out``: a plain CPU channels_last (n, >= out_offset + k, oh, ow) tensor of ``dtype``. Anything else
    goes to the checked path, which raises the errors."""
    if (type(out) is not Tensor or type(out_offset) is not int or out_offset < 0 or out.dtype != dtype
            or not out.is_cpu or out.dim() != 4):
        return False
    size = out.shape
    return (size[0] == n and size[2] == oh and size[3] == ow and size[1] >= out_offset + k
            and out.is_contiguous(memory_format=torch.channels_last))


class FrozenConv:
    """``conv_bn_act`` of one frozen layer on a CPU's torch backend, float32: ``act(conv2d(x, weight) + bias)``
    (``+ residual`` before the act when the layer has one), everything derived from the weights computed once:
    the weight prepacked in oneDNN's layout at the first call, the bias, the argument lists, the op.

    A call checks only what depends on its own tensors and on the calling context, in a few attribute reads,
    and returns None for a call that ``ops.conv_bn_act`` would not run this way (another dtype, device, shape
    or output layout, a graph to record, tracing, a dispatch mode, autocast, another backend): the caller
    then takes the checked path, which gives the same result or raises the usual error.
    """

    __slots__ = ("weight", "bias", "channels", "out_channels", "kernel", "stride", "padding", "relu", "_packed",
                 "_macs_per_row", "_unstrided_1x1", "_native_batch1")

    def __init__(self, weight: Tensor, bias: Tensor | None, stride: tuple[int, int], padding: tuple[int, int],
                 act: str) -> None:
        """weight: (K, C, R, S) float32 channels_last, never written again (a frozen fold, marked by
        ``conv_torch.allow_prepack``: else it runs unpacked); bias: (K,) float32 or None."""
        self.weight, self.bias = weight, bias
        self.out_channels, self.channels = weight.shape[0], weight.shape[1]
        self.kernel = tuple(weight.shape[2:])
        self.stride, self.padding = [int(v) for v in stride], [int(v) for v in padding]
        self.relu = act == "relu"
        self._packed = None
        self._macs_per_row = self.channels * self.out_channels * self.kernel[0] * self.kernel[1]
        self._unstrided_1x1 = self.kernel == (1, 1) and self.stride == [1, 1] and self.padding == [0, 0]
        self._native_batch1 = not (self.kernel[0] > 3 and self.kernel[1] > 3)

    def __reduce__(self):  # copies and pickles pack again (a oneDNN tensor has no storage to copy)
        return FrozenConv, (self.weight, self.bias, self.stride, self.padding, "relu" if self.relu else "none")

    def __call__(self, x: Tensor, residual: Tensor | None, out: Tensor | None, out_offset: int) -> Tensor | None:
        """The layer's (N, K, OH, OW) channels_last result, or the slice of ``out`` it was copied into; None when
        the call must take the checked path."""
        if (type(x) is not Tensor or x.dtype is not torch.float32 or not x.is_cpu or torch.is_grad_enabled()
                or torch.compiler.is_compiling() or _get_current_dispatch_mode() is not None
                or torch.is_autocast_enabled("cpu") or cpu_backend("conv_bn_act") != "torch"):
            return None
        shape = x.shape
        if len(shape) != 4 or shape[1] != self.channels or shape[0] == 0:
            return None
        (r, s), (sh, sw), (ph, pw), k = self.kernel, self.stride, self.padding, self.out_channels
        oh, ow = (shape[2] + 2 * ph - r) // sh + 1, (shape[3] + 2 * pw - s) // sw + 1
        if oh < 1 or ow < 1:
            return None
        result = (shape[0], k, oh, ow)
        if residual is not None and (type(residual) is not Tensor or residual.dtype is not torch.float32
                                     or not residual.is_cpu or residual.shape != result):
            return None
        if out is not None:
            if not _slot_fits(out, out_offset, x.dtype, result[0], k, oh, ow):
                return None
            _checks.no_overlap(x, "x", out, out_offset, k)
            _checks.no_overlap(residual, "residual", out, out_offset, k)
        macs = result[0] * oh * ow * self._macs_per_row
        y = self._native(x, residual) if macs < _NATIVE_MACS_1X1 and self._native_is_faster(x, macs) else \
            self._conv(x, residual)
        return y if out is None else out.narrow(1, out_offset, k).copy_(y)

    def _native_is_faster(self, x: Tensor, macs: int) -> bool:
        """Whether ``F.conv2d`` beats the pointwise op here: where torch's conv2d takes its native (non-oneDNN)
        kernel (a 1x1 stride-1 conv below batch 16 on one thread; batch 1 with an input of at most 20480
        elements and a kernel side <= 3) and the layer is small, the pointwise op's fixed cost (about 35 us
        more per call) dominates. Measured on one thread (AMD EPYC, AVX2; F.conv2d + relu_ / the pointwise op,
        median of interleaved rounds): 1x1 0.27-0.85x below 2**21 multiply-adds (N*OH*OW*C*K), 0.94-1.0x at
        2.4M, 1.1-1.45x from 3.5M on; batch-1 3x3 0.36-0.73x below 2**19, 0.98-1.02x at 1M, 1.39x at 3M;
        batch-2 3x3 (oneDNN either way) 1.0-1.18x, so never chosen. On two threads torch runs a 1x1 conv on
        oneDNN too (then no win), so the 1x1 rule asks for one thread."""
        if self._unstrided_1x1 and x.shape[0] < 16 and torch.get_num_threads() == 1:
            return True
        return macs < _NATIVE_MACS and self._native_batch1 and x.shape[0] == 1 and x.numel() <= 20480

    def _native(self, x: Tensor, residual: Tensor | None) -> Tensor:
        y = F.conv2d(x, self.weight, self.bias, self.stride, self.padding)
        if residual is not None:
            y.add_(residual)
        if self.relu:
            y.relu_()
        return y if y.is_contiguous(memory_format=torch.channels_last) else y.contiguous(
            memory_format=torch.channels_last)

    def _conv(self, x: Tensor, residual: Tensor | None) -> Tensor:
        packed = self._packed
        if packed is None:  # packed once, shared with the weight's other users (conv_torch._weight_for)
            packed = self._packed = _weight_for(self.weight, x, self.padding, self.stride)
        if residual is None:
            y = _POINTWISE(x, packed, self.bias, self.padding, self.stride, _ONES, 1, "relu" if self.relu else "none",
                           _NO_SCALARS, "")
        else:
            if not residual.is_contiguous(memory_format=torch.channels_last):
                residual = residual.contiguous(memory_format=torch.channels_last)
            y = _POINTWISE_BINARY(x, residual, packed, self.bias, self.padding, self.stride, _ONES, 1, "add", None,
                                  "relu" if self.relu else None, _NO_SCALARS, "")
        return y if y.is_contiguous(memory_format=torch.channels_last) else y.contiguous(
            memory_format=torch.channels_last)



class PreparedPool:
    """``max_pool2d`` / ``avg_pool2d`` of one pooling layer on a CPU's torch backend, its window arguments
    checked once (``pool2d.prepare_pool2d``). A call checks what depends on its tensors and the calling
    context and returns None for a call that ``pool``'s public function would not run this way (another
    device or dtype, a bad shape, a graph to record, tracing, a dispatch mode, another backend)."""

    __slots__ = ("is_max", "op", "kernel", "stride", "padding", "ceil_mode", "count_include_pad")

    def __init__(self, is_max: bool, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
                 ceil_mode: bool, count_include_pad: bool) -> None:
        self.is_max, self.op = is_max, "max_pool2d" if is_max else "avg_pool2d"
        self.kernel, self.stride, self.padding = kernel, stride, padding
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad

    def _size(self, i: int, n: int) -> int:
        """Output size along spatial dim i for input size n (``pool2d.pool_output_size``'s rule)."""
        k, s, p = self.kernel[i], self.stride[i], self.padding[i]
        size = (n + 2 * p - k + (s - 1 if self.ceil_mode else 0)) // s + 1
        if self.ceil_mode and (size - 1) * s >= n + p:
            size -= 1
        return size

    def __call__(self, x: Tensor, out: Tensor | None, out_offset: int) -> Tensor | None:
        """The (N, C, OH, OW) channels_last result, or the slice of ``out`` it was copied into; None when the
        call must take the checked path."""
        if (type(x) is not Tensor or not x.is_cpu or x.dtype not in _checks.FLOAT_DTYPES
                or (torch.is_grad_enabled() and x.requires_grad) or torch.compiler.is_compiling()
                or _get_current_dispatch_mode() is not None or cpu_backend(self.op) != "torch"):
            return None
        shape = x.shape
        if len(shape) != 4 or not (shape[1] and shape[2] and shape[3]):
            return None
        c, oh, ow = shape[1], self._size(0, shape[2]), self._size(1, shape[3])
        if oh < 1 or ow < 1:
            return None
        if out is not None:
            if not _slot_fits(out, out_offset, x.dtype, shape[0], c, oh, ow) or (
                    torch.is_grad_enabled() and out.requires_grad):
                return None
            _checks.no_overlap(x, "x", out, out_offset, c)
        if self.is_max:
            return max_pool2d_torch(x, self.kernel, self.stride, self.padding, self.ceil_mode,
                                    None if out is None else out.narrow(1, out_offset, c))
        y = F.avg_pool2d(x, self.kernel, self.stride, self.padding, self.ceil_mode, self.count_include_pad)
        if out is not None:
            return out.narrow(1, out_offset, c).copy_(y)
        return y if y.is_contiguous(memory_format=torch.channels_last) else y.contiguous(
            memory_format=torch.channels_last)


_ONES, _NO_SCALARS = [1, 1], []
_NATIVE_MACS_1X1, _NATIVE_MACS = 1 << 21, 1 << 19  # FrozenConv._native_is_faster
_POINTWISE = _POINTWISE_BINARY = None
if hasattr(torch.ops.mkldnn, "_convolution_pointwise"):
    _POINTWISE = torch.ops.mkldnn._convolution_pointwise.default
    _POINTWISE_BINARY = torch.ops.mkldnn._convolution_pointwise.binary
