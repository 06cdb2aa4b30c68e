"""Block bases: branches concatenated without ``torch.cat``, and the scaled residual block.

A block's ``_forward(x, cat)`` yields its branches in output-channel order; each branch's last op takes
``**cat.slot(channels)``, which on the fused path makes it write straight into its channel slice of
the block output (allocated once by ``forward``), and on the torch path is empty (the branches
return tensors and ``forward`` concatenates them as torchvision does).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor, nn

from inception_core.nn import functional as icf

__all__ = ["ChannelSlots", "ConcatBlock", "ScaledResidualBlock"]


class ChannelSlots:
    """Hands out consecutive channel slices of one channels_last buffer (or nothing when ``out`` is None)."""

    def __init__(self, out: Tensor | None) -> None:
        self.out = out
        self.offset = 0

    def slot(self, channels: int) -> dict:
        """kwargs (``out``, ``out_offset``) for the op that produces the next ``channels`` channels."""
        if self.out is None:
            return {}
        kwargs = {"out": self.out, "out_offset": self.offset}
        self.offset += channels
        return kwargs


class ConcatBlock(nn.Module):
    """Base of the Inception blocks: parallel branches whose results are concatenated along channels.

    Subclasses set ``self.out_channels`` (the concatenated channel count), implement
    ``_forward(x, cat)`` yielding each branch's result (its last op called with ``**cat.slot(c)``)
    and, for blocks that change the spatial size, ``out_hw(h, w)``.
    """

    out_channels: int

    def out_hw(self, h: int, w: int) -> tuple[int, int]:
        """Spatial size of the block's output for an (h, w) input."""
        return h, w

    def _forward(self, x: Tensor, cat: ChannelSlots) -> Iterator[Tensor]:
        raise NotImplementedError

    def fused(self, x: Tensor) -> bool:
        """Whether this call runs on the fused path (eval mode, no autograd graph needed)."""
        return not self.training and not icf.needs_autograd(x, self)

    def concat(self, x: Tensor) -> Tensor:
        """Run the branches and return their concatenation (N, out_channels, *out_hw)."""
        if not self.fused(x):
            return torch.cat(list(self._forward(x, ChannelSlots(None))), 1)
        x = x.to(icf.compute_dtype(x))
        oh, ow = self.out_hw(x.shape[2], x.shape[3])
        out = torch.empty((x.shape[0], self.out_channels, oh, ow), dtype=x.dtype, device=x.device,
                          memory_format=torch.channels_last)
        cat = ChannelSlots(out)
        for _ in self._forward(x, cat):
            pass
        if cat.offset != self.out_channels:
            raise RuntimeError(f"{type(self).__name__}: branches filled {cat.offset} of {self.out_channels} channels")
        return out

    def forward(self, x: Tensor) -> Tensor:
        return self.concat(x)


class ScaledResidualBlock(ConcatBlock):
    """Inception-ResNet block: ``act(x + scale * up(concat(branches)))``.

    Subclasses build the branches and the up-projection ``self.conv2d`` (an ``nn.Conv2d`` with bias,
    no BatchNorm) and set ``self.out_channels`` to the branches' concatenated channel count. The
    scaled residual add and the activation run in the up-projection's epilogue on the fused path.
    ``relu=False`` is the last block of the network (scale 1.0, no activation).
    """

    conv2d: nn.Conv2d

    def __init__(self, scale: float = 1.0, relu: bool = True) -> None:
        super().__init__()
        self.scale = scale
        self.relu = relu

    def forward(self, x: Tensor) -> Tensor:
        branches = self.concat(x)
        act = "relu" if self.relu else "none"
        if self.fused(x):
            return icf.conv_bn_act(branches, self.conv2d, None, act, residual=x, res_scale=self.scale)
        out = self.conv2d(branches) * self.scale + x
        return torch.relu(out) if self.relu else out

    def extra_repr(self) -> str:
        return f"scale={self.scale}" + ("" if self.relu else ", relu=False")
