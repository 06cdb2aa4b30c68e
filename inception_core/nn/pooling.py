"""Pooling layers: torch.nn's MaxPool2d / AvgPool2d running the fused ops, able to write a channel slice;
the global average pool of the networks' heads."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inception_core.nn import functional as icf
from inception_core.ops.pool2d import prepare_pool2d

__all__ = ["AvgPool2d", "GlobalAvgPool2d", "MaxPool2d"]

_PREPARED = "_ic_prepared_pool"


def _prepared(pool: nn.Module, is_max: bool, x: Tensor, out: Tensor | None, out_offset: int) -> Tensor | None:
    """The pool's call through its prepared form (``ops.pool2d.prepare_pool2d``: the window arguments checked
    once, kept with the attribute values they came from, so an edited attribute is seen at the next call);
    None when the call must take ``icf.max_pool2d`` / ``icf.avg_pool2d`` (which raise the usual errors)."""
    if torch.compiler.is_compiling():
        return None
    key = (pool.kernel_size, pool.stride, pool.padding, pool.ceil_mode, getattr(pool, "count_include_pad", True))
    entry = pool.__dict__.get(_PREPARED)
    if entry is None or entry[0] != key:
        try:
            entry = (key, prepare_pool2d(is_max, *key))
        except (TypeError, ValueError):  # bad window arguments: the checked path raises, in its order
            entry = (key, None)
        pool.__dict__[_PREPARED] = entry
    return None if entry[1] is None else entry[1](x, out, out_offset)


class MaxPool2d(nn.MaxPool2d):
    """``torch.nn.MaxPool2d`` (same constructor, defaults and repr); ``forward`` runs the fused op and
    takes ``out``/``out_offset``. dilation != 1 and return_indices are not supported: they raise here."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.dilation not in (1, (1, 1)):
            raise ValueError(f"dilation: MaxPool2d supports only dilation=1, got {self.dilation!r}")
        if self.return_indices:
            raise ValueError("return_indices: not supported by inception_core.nn.MaxPool2d")

    def forward(self, x: Tensor, *, out: Tensor | None = None, out_offset: int = 0) -> Tensor:
        y = _prepared(self, True, x, out, out_offset)
        if y is not None:
            return y
        return icf.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, out=out,
                              out_offset=out_offset)


class AvgPool2d(nn.AvgPool2d):
    """``torch.nn.AvgPool2d`` (same constructor, defaults and repr); ``forward`` runs the fused op and
    takes ``out``/``out_offset``. divisor_override is not supported: it raises here."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.divisor_override is not None:
            raise ValueError("divisor_override: not supported by inception_core.nn.AvgPool2d")

    def forward(self, x: Tensor, *, out: Tensor | None = None, out_offset: int = 0) -> Tensor:
        y = _prepared(self, False, x, out, out_offset)
        if y is not None:
            return y
        return icf.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                              self.count_include_pad, out=out, out_offset=out_offset)


class GlobalAvgPool2d(nn.Module):
    """Global average pooling then flatten: (N, C, H, W) -> (N, C), in the input's dtype; timm's
    ``SelectAdaptivePool2d('avg', flatten=True)`` without parameters, so the head's keys are unchanged."""

    def forward(self, x: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(x, 1).flatten(1)

    def extra_repr(self) -> str:
        return "pool_type=avg, flatten=True"
