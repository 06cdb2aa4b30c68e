"""Inception-v4 (Szegedy et al. 2016, "Inception-v4, Inception-ResNet and the Impact of Residual
Connections on Learning"), with timm's module names so ``timm.create_model("inception_v4")`` checkpoints
(``inception_v4.tf_in1k``) load unchanged.

Every block's branches write into their channel slice of the block output on the fused path (eval, no
autograd): no ``torch.cat``. Branches that are a sequence of layers are ``Branch`` (an ``nn.Sequential``
whose last layer takes the slot), so their keys stay ``branch1.0``, ``branch1.1`` ... as in timm.
"""

from __future__ import annotations

from collections.abc import Iterator

from torch import Tensor, nn

from inception_core.models._cfg import IMAGENET_INCEPTION_MEAN, IMAGENET_INCEPTION_STD, model_cfg
from inception_core.models._classifier import PooledClassifierNetwork
from inception_core.models._entry import fused_input
from inception_core.models._reduction import ReductionA as _ReductionA
from inception_core.models._registry import register_model
from inception_core.nn import (
    AvgPool2d,
    BasicConv2d,
    Branch,
    ChannelSlots,
    ConcatBlock,
    MaxPool2d,
    ReductionBlock,
)
from inception_core.nn import functional as icf
from inception_core.nn.pool_branch import avg_pool_conv_bn_act

__all__ = [
    "InceptionA",
    "InceptionB",
    "InceptionC",
    "InceptionV4",
    "Mixed3a",
    "Mixed4a",
    "Mixed5a",
    "ReductionA",
    "ReductionB",
    "inception_v4",
]



def _avg_pool() -> AvgPool2d:
    # TF "SAME" average pooling: padded positions are not counted
    return AvgPool2d(3, stride=1, padding=1, count_include_pad=False)


class Mixed3a(ReductionBlock):
    """Stem stage: 3x3/2 max pool || 3x3/2 conv, 64 -> 160 channels (timm ``Mixed3a``)."""

    def __init__(self, conv_block: type[nn.Module] = BasicConv2d) -> None:
        super().__init__()
        self.maxpool = MaxPool2d(3, stride=2)
        self.conv = conv_block(64, 96, kernel_size=3, stride=2)
        self.out_channels = 64 + 96

    def _forward(self, x: Tensor, cat: ChannelSlots) -> Iterator[Tensor]:
        # N x 64 x 147 x 147 -> N x 160 x 73 x 73
        yield self.maxpool(x, **cat.slot(64))
        yield self.conv(x, **cat.slot(96))


class Mixed4a(ConcatBlock):
    """Stem stage: two conv branches ending in 3x3 'valid' convs, 160 -> 192 channels (timm ``Mixed4a``)."""

    def __init__(self, conv_block: type[nn.Module] = BasicConv2d) -> None:
        super().__init__()
        self.branch0 = Branch(
            conv_block(160, 64, kernel_size=1, stride=1),
            conv_block(64, 96, kernel_size=3, stride=1),
        )
        self.branch1 = Branch(
            conv_block(160, 64, kernel_size=1, stride=1),
            conv_block(64, 64, kernel_size=(1, 7), stride=1, padding=(0, 3)),
            conv_block(64, 64, kernel_size=(7, 1), stride=1, padding=(3, 0)),
            conv_block(64, 96, kernel_size=(3, 3), stride=1),
        )
        self.out_channels = 96 + 96

    def out_hw(self, h: int, w: int) -> tuple[int, int]:
        return h - 2, w - 2

    def _forward(self, x: Tensor, cat: ChannelSlots) -> Iterator[Tensor]:
        # N x 160 x 73 x 73 -> N x 192 x 71 x 71; both 1x1 reductions in one GEMM (horizontal fusion)
        b0, b1 = cat.siblings(x, [self.branch0[0], self.branch1[0]], owner=self)
        yield self.branch0.tail(b0, **cat.slot(96))
        yield self.branch1.tail(b1, **cat.slot(96))


class Mixed5a(ReductionBlock):
    """Stem stage: 3x3/2 conv || 3x3/2 max pool, 192 -> 384 channels (timm ``Mixed5a``)."""

    def __init__(self, conv_block: type[nn.Module] = BasicConv2d) -> None:
        super().__init__()
        self.conv = conv_block(192, 192, kernel_size=3, stride=2)
        self.maxpool = MaxPool2d(3, stride=2)
        self.out_channels = 192 + 192

    def _forward(self, x: Tensor, cat: ChannelSlots) -> Iterator[Tensor]:
        # N x 192 x 71 x 71 -> N x 384 x 35 x 35
        yield self.conv(x, **cat.slot(192))
        yield self.maxpool(x, **cat.slot(192))


class InceptionA(ConcatBlock):
    """35x35 Inception block, 384 -> 384 channels (timm ``InceptionA``)."""

    def __init__(self, conv_block: type[nn.Module] = BasicConv2d) -> None:
        super().__init__()
        self.branch0 = conv_block(384, 96, kernel_size=1, stride=1)
        self.branch1 = Branch(
            conv_block(384, 64, kernel_size=1, stride=1),
            conv_block(64, 96, kernel_size=3, stride=1, padding=1),
        )
        self.branch2 = Branch(
            conv_block(384, 64, kernel_size=1, stride=1),
            conv_block(64, 96, kernel_size=3, stride=1, padding=1),
            conv_block(96, 96, kernel_size=3, stride=1, padding=1),
        )
        self.branch3 = Branch(_avg_pool(), conv_block(384, 96, kernel_size=1, stride=1))
        self.out_channels = 4 * 96
        self.scratch_channels = 64 + 64  # branch1[0] and branch2[0], fused with branch0

    def _forward(self, x: Tensor, cat: ChannelSlots) -> Iterator[Tensor]:
        # N x 384 x 35 x 35 -> N x 384 x 35 x 35
        b0, b1, b2 = cat.siblings(x, [self.branch1[0], self.branch2[0]], self.branch0, owner=self)
        yield b0
        yield self.branch1.tail(b1, **cat.slot(96))
        yield self.branch2.tail(b2, **cat.slot(96))
        yield avg_pool_conv_bn_act(x, *self.branch3, **cat.slot(96))  # the 1x1 conv first on the torch backend


class ReductionA(_ReductionA):
    """35x35 -> 17x17 reduction, 384 -> 1024 channels (timm ``ReductionA``, TF-slim ``Mixed_6a``)."""

    def __init__(self, conv_block: type[nn.Module] = BasicConv2d) -> None:
        super().__init__(384, 192, 224, 256, 384, conv_block)


class InceptionB(ConcatBlock):
    """17x17 Inception block with factorised 1x7 / 7x1 convs, 1024 -> 1024 channels (timm ``InceptionB``)."""

    def __init__(self, conv_block: type[nn.Module] = BasicConv2d) -> None:
        super().__init__()
        self.branch0 = conv_block(1024, 384, kernel_size=1, stride=1)
        self.branch1 = Branch(
            conv_block(1024, 192, kernel_size=1, stride=1),
            conv_block(192, 224, kernel_size=(1, 7), stride=1, padding=(0, 3)),
            conv_block(224, 256, kernel_size=(7, 1), stride=1, padding=(3, 0)),
        )
        self.branch2 = Branch(
            conv_block(1024, 192, kernel_size=1, stride=1),
            conv_block(192, 192, kernel_size=(7, 1), stride=1, padding=(3, 0)),
            conv_block(192, 224, kernel_size=(1, 7), stride=1, padding=(0, 3)),
            conv_block(224, 224, kernel_size=(7, 1), stride=1, padding=(3, 0)),
            conv_block(224, 256, kernel_size=(1, 7), stride=1, padding=(0, 3)),
        )
        self.branch3 = Branch(_avg_pool(), conv_block(1024, 128, kernel_size=1, stride=1))
        self.out_channels = 384 + 256 + 256 + 128
        self.scratch_channels = 192 + 192  # branch1[0] and branch2[0], fused with branch0

    def _forward(self, x: Tensor, cat: ChannelSlots) -> Iterator[Tensor]:
        # N x 1024 x 17 x 17 -> N x 1024 x 17 x 17
        b0, b1, b2 = cat.siblings(x, [self.branch1[0], self.branch2[0]], self.branch0, owner=self)
        yield b0
        yield self.branch1.tail(b1, **cat.slot(256))
        yield self.branch2.tail(b2, **cat.slot(256))
        yield avg_pool_conv_bn_act(x, *self.branch3, **cat.slot(128))  # the 1x1 conv first on the torch backend


class ReductionB(ReductionBlock):
    """17x17 -> 8x8 reduction, 1024 -> 1536 channels (timm ``ReductionB``, TF-slim ``Mixed_7a``)."""

    def __init__(self, conv_block: type[nn.Module] = BasicConv2d) -> None:
        super().__init__()
        self.branch0 = Branch(
            conv_block(1024, 192, kernel_size=1, stride=1),
            conv_block(192, 192, kernel_size=3, stride=2),
        )
        self.branch1 = Branch(
            conv_block(1024, 256, kernel_size=1, stride=1),
            conv_block(256, 256, kernel_size=(1, 7), stride=1, padding=(0, 3)),
            conv_block(256, 320, kernel_size=(7, 1), stride=1, padding=(3, 0)),
            conv_block(320, 320, kernel_size=3, stride=2),
        )
        self.branch2 = MaxPool2d(3, stride=2)
        self.out_channels = 192 + 320 + 1024

    def _forward(self, x: Tensor, cat: ChannelSlots) -> Iterator[Tensor]:
        # N x 1024 x 17 x 17 -> N x 1536 x 8 x 8
        b0, b1 = cat.siblings(x, [self.branch0[0], self.branch1[0]], owner=self)  # 17x17 reductions, one GEMM
        yield self.branch0.tail(b0, **cat.slot(192))
        yield self.branch1.tail(b1, **cat.slot(320))
        yield self.branch2(x, **cat.slot(1024))


class InceptionC(ConcatBlock):
    """8x8 Inception block whose two inner branches split into 1x3 || 3x1 pairs, 1536 -> 1536 channels
    (timm ``InceptionC``). Each half of a split writes its own slice: the block's output order is
    branch0, branch1_1a, branch1_1b, branch2_3a, branch2_3b, branch3 (256 channels each)."""

    def __init__(self, conv_block: type[nn.Module] = BasicConv2d) -> None:
        super().__init__()
        self.branch0 = conv_block(1536, 256, kernel_size=1, stride=1)

        self.branch1_0 = conv_block(1536, 384, kernel_size=1, stride=1)
        self.branch1_1a = conv_block(384, 256, kernel_size=(1, 3), stride=1, padding=(0, 1))
        self.branch1_1b = conv_block(384, 256, kernel_size=(3, 1), stride=1, padding=(1, 0))

        self.branch2_0 = conv_block(1536, 384, kernel_size=1, stride=1)
        self.branch2_1 = conv_block(384, 448, kernel_size=(3, 1), stride=1, padding=(1, 0))
        self.branch2_2 = conv_block(448, 512, kernel_size=(1, 3), stride=1, padding=(0, 1))
        self.branch2_3a = conv_block(512, 256, kernel_size=(1, 3), stride=1, padding=(0, 1))
        self.branch2_3b = conv_block(512, 256, kernel_size=(3, 1), stride=1, padding=(1, 0))

        self.branch3 = Branch(_avg_pool(), conv_block(1536, 256, kernel_size=1, stride=1))
        self.out_channels = 6 * 256
        self.scratch_channels = 384 + 384  # branch1_0 and branch2_0, fused with branch0

    def _forward(self, x: Tensor, cat: ChannelSlots) -> Iterator[Tensor]:
        # N x 1536 x 8 x 8 -> N x 1536 x 8 x 8
        b0, x1_0, x2_0 = cat.siblings(x, [self.branch1_0, self.branch2_0], self.branch0, owner=self)
        yield b0

        # x1_0: N x 384 x 8 x 8
        yield self.branch1_1a(x1_0, **cat.slot(256))
        yield self.branch1_1b(x1_0, **cat.slot(256))

        x2_2 = self.branch2_2(self.branch2_1(x2_0))  # N x 512 x 8 x 8
        yield self.branch2_3a(x2_2, **cat.slot(256))
        yield self.branch2_3b(x2_2, **cat.slot(256))

        yield avg_pool_conv_bn_act(x, *self.branch3, **cat.slot(256))  # the 1x1 conv first on the torch backend


class InceptionV4(PooledClassifierNetwork):
    """Inception-v4, matching timm's ``InceptionV4`` (``timm.create_model("inception_v4")``): same module
    names and state_dict keys (``features.N...``, ``last_linear``), same parameters (42,679,816 with 1000
    classes), same outputs for the same weights.

    Input N x in_chans x 299 x 299 (any size >= 75 works; NCHW or channels_last); output N x num_classes
    logits. In eval mode without autograd the network runs the fused kernels (BatchNorm folded,
    branches writing their concat slices) in channels_last; otherwise the fused training ops.

    Args:
        num_classes: classifier outputs; 0 leaves the head as an identity (pooled 1536-d features).
        in_chans: input channels.
        drop_rate: dropout before the classifier (``head_drop``).
        output_stride: only 32 (timm's constraint).
        global_pool: only "avg".
    """

    classifier_name = "last_linear"

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.0, output_stride: int = 32,
                 global_pool: str = "avg") -> None:
        super().__init__(num_features=1536, num_classes=num_classes, in_chans=in_chans, drop_rate=drop_rate,
                         output_stride=output_stride, global_pool=global_pool)
        conv_block = BasicConv2d  # conv (no bias) + BatchNorm2d(eps=1e-3) + ReLU, timm's ConvNormAct keys

        features = [
            conv_block(in_chans, 32, kernel_size=3, stride=2),
            conv_block(32, 32, kernel_size=3, stride=1),
            conv_block(32, 64, kernel_size=3, stride=1, padding=1),
            Mixed3a(conv_block),
            Mixed4a(conv_block),
            Mixed5a(conv_block),
        ]
        features += [InceptionA(conv_block) for _ in range(4)]
        features += [ReductionA(conv_block)]  # Mixed6a
        features += [InceptionB(conv_block) for _ in range(7)]
        features += [ReductionB(conv_block)]  # Mixed7a
        features += [InceptionC(conv_block) for _ in range(3)]
        self.features = nn.Sequential(*features)
        self.feature_info = [
            dict(num_chs=64, reduction=2, module="features.2"),
            dict(num_chs=160, reduction=4, module="features.3"),
            dict(num_chs=384, reduction=8, module="features.9"),
            dict(num_chs=1024, reduction=16, module="features.17"),
            dict(num_chs=1536, reduction=32, module="features.21"),
        ]
        self._add_head()
        self.pretrained_cfg = self.default_cfg = model_cfg(
            source="timm inception_v4", first_conv="features.0.conv", classifier=self.classifier_name,
            num_classes=num_classes, input_size=(in_chans, 299, 299), min_input_size=(in_chans, 75, 75),
            mean=IMAGENET_INCEPTION_MEAN, std=IMAGENET_INCEPTION_STD, interpolation="bicubic", crop_pct=0.875)
        # weights: torch's default initialisation of Conv2d / BatchNorm2d / Linear, as timm's InceptionV4

    def forward_features(self, x: Tensor) -> Tensor:
        """N x in_chans x H x W -> N x 1536 x H/32 x W/32 (8 x 8 at 299), the last feature map."""
        icf.check_network_input(x, self)
        x = fused_input(self, x)
        # N x 3 x 299 x 299
        x = icf.dense(self.features(x))  # the last block's fused output is a view behind its scratch channels
        # N x 1536 x 8 x 8
        return x


@register_model
def inception_v4(num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.0, **kwargs) -> InceptionV4:
    """Inception-v4 with timm's layout (``inception_v4.tf_in1k`` weights load unchanged). Random init;
    kwargs go to ``InceptionV4``."""
    return InceptionV4(num_classes=num_classes, in_chans=in_chans, drop_rate=drop_rate, **kwargs)
