"""The torch backend of ``conv_bn_act``: as few passes over the output as stock PyTorch allows.

On a CPU with oneDNN (float32): one oneDNN convolution with the ReLU, and the residual add, fused into
it (``torch.ops.mkldnn._convolution_pointwise``, the op Inductor's CPU backend emits); ``scale`` is
folded into the weights when the weights are smaller than the output, else applied in place after the
convolution. Everywhere else: ``conv_bn_act_ref``. The result is a fresh channels_last tensor.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["allow_prepack", "conv_bn_act_torch", "onednn_fusable"]


def _onednn_available() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")


_ONEDNN = _onednn_available()


def onednn_fusable(x: Tensor) -> bool:
    """Whether a conv on ``x`` runs as one oneDNN convolution with a fused epilogue (CPU, float32)."""
    return _ONEDNN and x.device.type == "cpu" and x.dtype == torch.float32


_PACKED = "_ic_onednn_packed"


class _Packed:
    """A weight's prepacked copy for one (padding, stride). Copies and pickles of it (``copy.deepcopy`` or
    ``torch.save`` of a model whose weights carry one) are empty, so the copy packs again at its first call:
    a oneDNN tensor has no storage to copy."""

    __slots__ = ("key", "tensor")

    def __init__(self, key: tuple | None = None, tensor: Tensor | None = None) -> None:
        self.key, self.tensor = key, tensor

    def __reduce__(self):
        return _Packed, ()


def allow_prepack(weight: Tensor) -> Tensor:
    """Mark ``weight``, a cached fold that is never written again (``freeze_folding``), so that the oneDNN
    path keeps a copy of it in oneDNN's blocked layout on it (packed at its first call, as Inductor's CPU
    freezing does): no weight reorder per call. Returns ``weight``."""
    weight.__dict__[_PACKED] = None
    return weight


def _weight_for(weight: Tensor, x: Tensor, padding: tuple[int, int], stride: tuple[int, int]) -> Tensor:
    """The prepacked copy of a marked weight for this (padding, stride), packed on first use; else weight."""
    if _PACKED not in weight.__dict__:
        return weight
    entry = weight.__dict__[_PACKED]
    key = (tuple(padding), tuple(stride))
    if entry is None or entry.key != key:  # x's shape only guides oneDNN's choice of layout
        packed = torch._C._nn.mkldnn_reorder_conv2d_weight(weight.to_mkldnn(), list(padding), list(stride), [1, 1],
                                                            1, list(x.shape))
        entry = weight.__dict__[_PACKED] = _Packed(key, packed)
    return entry.tensor


def _channels_last(t: Tensor) -> Tensor:
    return t if t.is_contiguous(memory_format=torch.channels_last) else t.contiguous(memory_format=torch.channels_last)


def conv_bn_act_torch(x: Tensor, weight: Tensor, scale: Tensor | None, shift: Tensor | None,
                      residual: Tensor | None, stride: tuple[int, int], padding: tuple[int, int], act: str,
                      res_scale: float) -> Tensor:
    """``act(residual + res_scale * (conv2d(x, weight) * scale + shift))`` as a new (N, K, OH, OW)
    channels_last tensor of x's dtype (arguments already checked by ``ops.conv_bn_act``)."""
    from inception_core.ops.conv_bn_act import conv_bn_act_ref

    if not onednn_fusable(x):
        return conv_bn_act_ref(x, weight, scale, shift, stride=stride, padding=padding, act=act,
                               residual=residual, res_scale=res_scale)
    k = weight.shape[0]
    out_numel = x.shape[0] * k * ((x.shape[2] + 2 * padding[0] - weight.shape[2]) // stride[0] + 1) * (
        (x.shape[3] + 2 * padding[1] - weight.shape[3]) // stride[1] + 1)
    gain = None if scale is None else scale.float()
    if residual is not None and res_scale != 1.0:
        gain = torch.full((k,), float(res_scale), device=x.device) if gain is None else gain * res_scale
    bias = None if shift is None else shift.float()
    if bias is not None and residual is not None and res_scale != 1.0:
        bias = bias * res_scale
    late_gain = None
    if gain is not None:
        if weight.numel() <= out_numel:  # one pass over the weights beats one over the output
            weight = weight * gain.view(-1, 1, 1, 1)
        else:
            late_gain = gain
    weight = _weight_for(_channels_last(weight), x, padding, stride)
    unary = "relu" if act == "relu" else "none"
    dims = (list(padding), list(stride), [1, 1], 1)
    if late_gain is not None:  # conv, then y * gain + bias in place, then the residual and the act
        y = _channels_last(torch.ops.mkldnn._convolution_pointwise.default(x, weight, None, *dims, "none", [], ""))
        y.mul_(late_gain.view(1, -1, 1, 1))
        if bias is not None:
            y.add_(bias.view(1, -1, 1, 1))
        if residual is not None:
            y.add_(residual)
        return y.relu_() if act == "relu" else y
    if residual is None:  # the OpOverloads, not the packet: no overload resolution per call
        y = torch.ops.mkldnn._convolution_pointwise.default(x, weight, bias, *dims, unary, [], "")
    else:
        y = torch.ops.mkldnn._convolution_pointwise.binary(x, _channels_last(residual), weight, bias, *dims, "add",
                                                           None, None if unary == "none" else unary, [], "")
    return _channels_last(y)

