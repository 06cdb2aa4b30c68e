"""The entry of a network: which path a call takes, and the layout the fused path runs in."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from inception_core.nn.blocks import runs_fused

__all__ = ["fused_input", "runs_fused"]


def fused_input(model: nn.Module, x: Tensor) -> Tensor:
    """``x`` made channels_last once, at the network's entry, when the call takes the fused path
    (``runs_fused``: eval mode, no autograd graph to record); unchanged otherwise (the autograd path keeps
    the caller's layout, as the stock layers do)."""
    return x.contiguous(memory_format=torch.channels_last) if runs_fused(model, x) else x
