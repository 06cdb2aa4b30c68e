"""The entry of a network: which path a call takes, and the layout the fused path runs in."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from inception_core.nn import functional as icf

__all__ = ["fused_input", "runs_fused"]


def runs_fused(model: nn.Module, x: Tensor) -> bool:
    """Whether this call of ``model`` on ``x`` takes the fused path: eval mode and no autograd graph to
    record (then blocks write their branches into slices of one preallocated output)."""
    return not model.training and not icf.needs_autograd(x, model)


def fused_input(model: nn.Module, x: Tensor) -> Tensor:
    """``x`` made channels_last once, at the network's entry, when the call takes the fused path;
    unchanged otherwise (the autograd path keeps the caller's layout, as the stock layers do)."""
    return x.contiguous(memory_format=torch.channels_last) if runs_fused(model, x) else x
