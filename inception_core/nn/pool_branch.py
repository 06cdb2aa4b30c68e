"""The average-pool branch of an Inception block, ``act(bn(conv1x1(avg_pool2d(x))))``, conv first where cheaper.

Average pooling is linear per channel with window weights that do not depend on the channel (whatever its
padding, ``count_include_pad`` or ``ceil_mode``), and a 1x1 convolution without bias is linear per pixel, so
``avg_pool2d(conv1x1(x)) == conv1x1(avg_pool2d(x))`` in exact arithmetic. The conv bias and the BatchNorm
shift are added after the pool (with ``count_include_pad=True`` a pooled constant is not that constant at the
borders). With the conv first the pool reads the branch's K_out channels instead of the block's C_in
(Inception-v3 Mixed_6b: 192 instead of 768) and the C_in-channel pooled copy of the input is never written.

The torch backend (without autocast) runs the conv first, 1x1 stride-1 convs under a stride-1 pool:
  eval, no autograd graph: the conv with the folded BatchNorm scale (cached with the fold) and no epilogue,
      the pool written into the block's channel slot, then the shift and the ReLU in place on the slot;
  autograd graph (training, or eval with gradients): torch's conv, pool and BatchNorm module in that order,
      so the running statistics update exactly as torch's modules update them.
The Triton and CUDA backends keep the pool first (their 1x1 conv kernel fuses the epilogue and the slot
write; the pool kernel is what a pool-into-conv fusion would replace), as does a custom conv block.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inception_core import ops
from inception_core.nn import functional as icf

__all__ = ["avg_pool_conv_bn_act", "pool_geometry"]

_POOL_KEYS = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad")


def _pair(value, name: str) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return (value[0], value[1])
    raise ValueError(f"pool: {name} must be an int or a pair of ints, got {value!r}")


def pool_geometry(pool: nn.AvgPool2d | Mapping) -> dict:
    """The average pool's ``F.avg_pool2d`` arguments, normalised (pairs, stride defaulting to the kernel):
    from an ``nn.AvgPool2d`` or a mapping with ``kernel_size`` and optionally ``stride``, ``padding``,
    ``ceil_mode``, ``count_include_pad``."""
    if isinstance(pool, nn.AvgPool2d):
        if pool.divisor_override is not None:
            raise ValueError(f"pool: divisor_override is not supported, got {pool.divisor_override!r}")
        args = {key: getattr(pool, key) for key in _POOL_KEYS}
    elif isinstance(pool, Mapping):
        unknown = sorted(set(pool) - set(_POOL_KEYS))
        if unknown or "kernel_size" not in pool:
            raise ValueError(f"pool: expected the keys {list(_POOL_KEYS)} (kernel_size required), got {sorted(pool)}")
        args = dict(pool)
    else:
        raise TypeError(f"pool: expected an nn.AvgPool2d or a mapping of avg_pool2d arguments, got "
                        f"{type(pool).__name__}")
    kernel = _pair(args["kernel_size"], "kernel_size")
    stride = args.get("stride")
    return {"kernel_size": kernel, "stride": kernel if stride in (None, (), []) else _pair(stride, "stride"),
            "padding": _pair(args.get("padding", 0), "padding"), "ceil_mode": bool(args.get("ceil_mode", False)),
            "count_include_pad": bool(args.get("count_include_pad", True))}


def _parts(unit) -> tuple[nn.Conv2d, nn.Module | None, str] | None:
    """(conv, bn, act) of a BasicConv2d-like module or a (conv, bn[, act]) tuple; None for another layer."""
    try:
        conv, bn, act = icf._unit(unit)
    except AttributeError:  # a custom conv block: it runs as the caller wrote it
        return None
    return (conv, bn, act) if isinstance(conv, nn.Conv2d) else None


def _conv_first(x: Tensor, conv: nn.Conv2d, bn: nn.Module | None, geometry: dict) -> bool:
    """Whether this call runs the conv before the pool (see the module docstring)."""
    from inception_core.backends import backend_for

    if geometry["stride"] != (1, 1) or not (icf._is_pointwise(conv) and icf._conv_supported(conv)):
        return False
    if torch.is_autocast_enabled(x.device.type) or backend_for(x, "avg_pool2d") != "torch":
        return False
    if bn is not None and bn.training and not icf._stock_training(x):  # the fused training op is asked for
        return False
    return True


def _pool_first(x: Tensor, geometry: dict, unit, out: Tensor | None, out_offset: int) -> Tensor:
    pooled = icf.avg_pool2d(x, **geometry)
    if isinstance(unit, tuple):
        conv, bn, act = icf._unit(unit)
        return icf.conv_bn_act(pooled, conv, bn, act, out=out, out_offset=out_offset)
    return unit(pooled) if out is None else unit(pooled, out=out, out_offset=out_offset)


def _stock(x: Tensor, geometry: dict, conv: nn.Conv2d, bn: nn.Module | None, act: str, out: Tensor | None,
           out_offset: int) -> Tensor:
    """torch's conv, pool and normalisation modules, conv first (records the autograd graph)."""
    y = F.avg_pool2d(F.conv2d(x, conv.weight), **geometry)
    if conv.bias is not None:
        y = y + conv.bias.view(1, -1, 1, 1)
    if bn is not None:
        y = bn(y)
    if act == "relu":  # in place on BatchNorm's own result, which its backward does not read
        y = F.relu(y, inplace=isinstance(bn, nn.BatchNorm2d))
    return icf._into(y, out, out_offset)


def _fused(x: Tensor, geometry: dict, conv: nn.Conv2d, bn: nn.BatchNorm2d | None, act: str, out: Tensor | None,
           out_offset: int) -> Tensor:
    """Eval without a graph: the conv with the folded scale, the pool into the slot, shift and act in place."""
    dtype = x.dtype
    if icf._weights_take_scale(x, dtype):
        weight, scale, shift = icf._folded(conv, bn, dtype, 1.0)
    else:
        weight, scale, shift = icf._folded(conv, bn, dtype)
    y = ops.conv_bn_act(x, weight, scale, None, act="none")
    g = geometry
    pooled = ops.avg_pool2d(y, g["kernel_size"], g["stride"], g["padding"], g["ceil_mode"], g["count_include_pad"],
                            out=out, out_offset=out_offset)
    if shift is not None:
        pooled.add_(shift.view(1, -1, 1, 1).to(pooled.dtype))
    return pooled.relu_() if act == "relu" else pooled


def avg_pool_conv_bn_act(x: Tensor, pool: nn.AvgPool2d | Mapping, unit, *, out: Tensor | None = None,
                         out_offset: int = 0) -> Tensor:
    """``unit(avg_pool2d(x))``: an average pool, then a conv layer (conv, BatchNorm, act).

    Args:
        x: (N, C_in, H, W) block input.
        pool: the average pool, an ``nn.AvgPool2d`` or a mapping of its arguments (see ``pool_geometry``).
        unit: the conv layer: a ``BasicConv2d``-like module (``.conv``, ``.bn``, ``.act``) or a
            (conv, bn[, act]) tuple of torch modules; another module is called on the pooled input.
        out, out_offset: write the result into channels ``[out_offset, out_offset + K)`` of the
            channels_last buffer ``out`` and return that slice, as ``BasicConv2d`` does.

    Returns:
        (N, K, OH, OW), the pool's output size; equal to the pool-first result within fp32 rounding.
        On the torch backend a 1x1 stride-1 conv runs before a stride-1 pool (the module docstring).
    """
    geometry = pool_geometry(pool)
    parts = _parts(unit)
    if parts is None or not _conv_first(x, parts[0], parts[1], geometry):
        return _pool_first(x, geometry, unit, out, out_offset)
    conv, bn, act = parts
    if (icf.needs_autograd(x, conv) or (bn is not None and (bn.training or icf.needs_autograd(x, bn)))
            or not icf._can_fuse_conv(conv, bn)):
        return _stock(x, geometry, conv, bn, act, out, out_offset)
    return _fused(x, geometry, conv, bn, act, out, out_offset)
