"""Reduction-A of the Inception-v4 paper, shared by Inception-v4 and both Inception-ResNets."""

from __future__ import annotations

from collections.abc import Iterator

from torch import Tensor, nn

from inception_core.nn import BasicConv2d, Branch, ChannelSlots, MaxPool2d, ReductionBlock

__all__ = ["ReductionA"]


class ReductionA(ReductionBlock):
    """35x35 -> 17x17: 3x3/2 conv (n) | 1x1 (k) -> 3x3 (l) -> 3x3/2 (m) | 3x3/2 max pool, concatenated.

    (k, l, m, n) from the paper's table: Inception-v4 (192, 224, 256, 384), Inception-ResNet-v1
    (192, 192, 256, 384), Inception-ResNet-v2 (256, 256, 384, 384). Keys ``branch0``, ``branch1.{0,1,2}``
    as timm's ``ReductionA`` / ``Mixed_6a`` and facenet's ``Mixed_6a``.
    """

    def __init__(self, in_channels: int, k: int, l: int, m: int, n: int,  # noqa: E741 (the paper's names)
                 conv_block: type[nn.Module] = BasicConv2d) -> None:
        super().__init__()
        self.branch0 = conv_block(in_channels, n, kernel_size=3, stride=2)
        self.branch1 = Branch(
            conv_block(in_channels, k, kernel_size=1, stride=1),
            conv_block(k, l, kernel_size=3, stride=1, padding=1),
            conv_block(l, m, kernel_size=3, stride=2),
        )
        self.branch2 = MaxPool2d(3, stride=2)
        self.channels = (n, m, in_channels)
        self.out_channels = n + m + in_channels

    def _forward(self, x: Tensor, cat: ChannelSlots) -> Iterator[Tensor]:
        # N x in_channels x 35 x 35 -> N x (n + m + in_channels) x 17 x 17
        n, m, c = self.channels
        yield self.branch0(x, **cat.slot(n))
        yield self.branch1(x, **cat.slot(m))
        yield self.branch2(x, **cat.slot(c))
