"""Inception-ResNet-v2 (Szegedy et al. 2016, "Inception-v4, Inception-ResNet and the Impact of Residual
Connections on Learning"; the TF-slim graph), with timm's module names so
``timm.create_model("inception_resnet_v2")`` checkpoints (``tf_in1k``, ``tf_ens_adv_in1k``) load unchanged.
Cadene's ``pretrainedmodels`` checkpoints load after ``remap_cadene_inception_resnet_v2``.

On the fused path (eval, no autograd) every block's branches write into their channel slice of the block
output (no ``torch.cat``), and the residual blocks' ``x + scale * conv2d(branches)`` and ReLU run in the
up-projection's epilogue (``ScaledResidualBlock``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from torch import Tensor, nn

from inception_core.models._cfg import IMAGENET_INCEPTION_MEAN, IMAGENET_INCEPTION_STD, model_cfg
from inception_core.models._classifier import PooledClassifierNetwork
from inception_core.models._entry import fused_input
from inception_core.models._reduction import ReductionA
from inception_core.models._registry import register_model
from inception_core.nn import (
    AvgPool2d,
    BasicConv2d,
    Branch,
    ChannelSlots,
    ConcatBlock,
    MaxPool2d,
    ReductionBlock,
    ScaledResidualBlock,
)
from inception_core.nn import functional as icf
from inception_core.nn.pool_branch import avg_pool_conv_bn_act

__all__ = [
    "Block8",
    "Block17",
    "Block35",
    "InceptionResnetV2",
    "Mixed_5b",
    "Mixed_6a",
    "Mixed_7a",
    "inception_resnet_v2",
    "remap_cadene_inception_resnet_v2",
]



class Mixed_5b(ConcatBlock):
    """35x35 Inception block after the stem, 192 -> 320 channels (timm ``Mixed_5b``)."""

    def __init__(self, conv_block: type[nn.Module] = BasicConv2d) -> None:
        super().__init__()
        self.branch0 = conv_block(192, 96, kernel_size=1, stride=1)
        self.branch1 = Branch(
            conv_block(192, 48, kernel_size=1, stride=1),
            conv_block(48, 64, kernel_size=5, stride=1, padding=2),
        )
        self.branch2 = Branch(
            conv_block(192, 64, kernel_size=1, stride=1),
            conv_block(64, 96, kernel_size=3, stride=1, padding=1),
            conv_block(96, 96, kernel_size=3, stride=1, padding=1),
        )
        self.branch3 = Branch(
            AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
            conv_block(192, 64, kernel_size=1, stride=1),
        )
        self.out_channels = 96 + 64 + 96 + 64
        self.scratch_channels = 48 + 64  # branch1[0] and branch2[0], fused with branch0

    def _forward(self, x: Tensor, cat: ChannelSlots) -> Iterator[Tensor]:
        # N x 192 x 35 x 35 -> N x 320 x 35 x 35
        b0, b1, b2 = cat.siblings(x, [self.branch1[0], self.branch2[0]], self.branch0, owner=self)
        yield b0
        yield self.branch1.tail(b1, **cat.slot(64))
        yield self.branch2.tail(b2, **cat.slot(96))
        yield avg_pool_conv_bn_act(x, *self.branch3, **cat.slot(64))  # the 1x1 conv first on the torch backend


class Block35(ScaledResidualBlock):
    """35x35 residual Inception block (Inception-ResNet-A): ``relu(x + scale * conv2d(branches))``,
    320 -> 320 channels, branches 32 + 32 + 64 = 128 channels (timm ``Block35``)."""

    def __init__(self, scale: float = 1.0, conv_block: type[nn.Module] = BasicConv2d) -> None:
        super().__init__(scale=scale, relu=True)
        self.branch0 = conv_block(320, 32, kernel_size=1, stride=1)
        self.branch1 = Branch(
            conv_block(320, 32, kernel_size=1, stride=1),
            conv_block(32, 32, kernel_size=3, stride=1, padding=1),
        )
        self.branch2 = Branch(
            conv_block(320, 32, kernel_size=1, stride=1),
            conv_block(32, 48, kernel_size=3, stride=1, padding=1),
            conv_block(48, 64, kernel_size=3, stride=1, padding=1),
        )
        self.conv2d = nn.Conv2d(128, 320, kernel_size=1, stride=1)
        self.out_channels = 32 + 32 + 64
        self.scratch_channels = 32 + 32  # branch1[0] and branch2[0], fused with branch0

    def _forward(self, x: Tensor, cat: ChannelSlots) -> Iterator[Tensor]:
        # N x 320 x 35 x 35 -> N x 128 x 35 x 35 (then conv2d back to 320 in forward)
        b0, b1, b2 = cat.siblings(x, [self.branch1[0], self.branch2[0]], self.branch0, owner=self)
        yield b0
        yield self.branch1.tail(b1, **cat.slot(32))
        yield self.branch2.tail(b2, **cat.slot(64))


class Mixed_6a(ReductionA):
    """35x35 -> 17x17 reduction (Reduction-A), 320 -> 1088 channels (timm ``Mixed_6a``)."""

    def __init__(self, conv_block: type[nn.Module] = BasicConv2d) -> None:
        super().__init__(320, 256, 256, 384, 384, conv_block)


class Block17(ScaledResidualBlock):
    """17x17 residual Inception block (Inception-ResNet-B) with 1x7 / 7x1 convs, 1088 -> 1088 channels,
    branches 192 + 192 = 384 channels (timm ``Block17``)."""

    def __init__(self, scale: float = 1.0, conv_block: type[nn.Module] = BasicConv2d) -> None:
        super().__init__(scale=scale, relu=True)
        self.branch0 = conv_block(1088, 192, kernel_size=1, stride=1)
        self.branch1 = Branch(
            conv_block(1088, 128, kernel_size=1, stride=1),
            conv_block(128, 160, kernel_size=(1, 7), stride=1, padding=(0, 3)),
            conv_block(160, 192, kernel_size=(7, 1), stride=1, padding=(3, 0)),
        )
        self.conv2d = nn.Conv2d(384, 1088, kernel_size=1, stride=1)
        self.out_channels = 192 + 192
        self.scratch_channels = 128  # branch1[0], fused with branch0

    def _forward(self, x: Tensor, cat: ChannelSlots) -> Iterator[Tensor]:
        # N x 1088 x 17 x 17 -> N x 384 x 17 x 17 (then conv2d back to 1088 in forward)
        b0, b1 = cat.siblings(x, [self.branch1[0]], self.branch0, owner=self)
        yield b0
        yield self.branch1.tail(b1, **cat.slot(192))


class Mixed_7a(ReductionBlock):
    """17x17 -> 8x8 reduction (Reduction-B), 1088 -> 2080 channels (timm ``Mixed_7a``)."""

    def __init__(self, conv_block: type[nn.Module] = BasicConv2d) -> None:
        super().__init__()
        self.branch0 = Branch(
            conv_block(1088, 256, kernel_size=1, stride=1),
            conv_block(256, 384, kernel_size=3, stride=2),
        )
        self.branch1 = Branch(
            conv_block(1088, 256, kernel_size=1, stride=1),
            conv_block(256, 288, kernel_size=3, stride=2),
        )
        self.branch2 = Branch(
            conv_block(1088, 256, kernel_size=1, stride=1),
            conv_block(256, 288, kernel_size=3, stride=1, padding=1),
            conv_block(288, 320, kernel_size=3, stride=2),
        )
        self.branch3 = MaxPool2d(3, stride=2)
        self.out_channels = 384 + 288 + 320 + 1088

    def _forward(self, x: Tensor, cat: ChannelSlots) -> Iterator[Tensor]:
        # N x 1088 x 17 x 17 -> N x 2080 x 8 x 8
        # the three 1x1 reductions (17x17) in one GEMM (horizontal fusion)
        b0, b1, b2 = cat.siblings(x, [self.branch0[0], self.branch1[0], self.branch2[0]], owner=self)
        yield self.branch0.tail(b0, **cat.slot(384))
        yield self.branch1.tail(b1, **cat.slot(288))
        yield self.branch2.tail(b2, **cat.slot(320))
        yield self.branch3(x, **cat.slot(1088))


class Block8(ScaledResidualBlock):
    """8x8 residual Inception block (Inception-ResNet-C) with 1x3 / 3x1 convs, 2080 -> 2080 channels,
    branches 192 + 256 = 448 channels (timm ``Block8``). ``no_relu=True`` is the network's last block
    (scale 1.0, no activation after the add)."""

    def __init__(self, scale: float = 1.0, no_relu: bool = False, conv_block: type[nn.Module] = BasicConv2d) -> None:
        super().__init__(scale=scale, relu=not no_relu)
        self.branch0 = conv_block(2080, 192, kernel_size=1, stride=1)
        self.branch1 = Branch(
            conv_block(2080, 192, kernel_size=1, stride=1),
            conv_block(192, 224, kernel_size=(1, 3), stride=1, padding=(0, 1)),
            conv_block(224, 256, kernel_size=(3, 1), stride=1, padding=(1, 0)),
        )
        self.conv2d = nn.Conv2d(448, 2080, kernel_size=1, stride=1)
        self.out_channels = 192 + 256
        self.scratch_channels = 192  # branch1[0], fused with branch0

    def _forward(self, x: Tensor, cat: ChannelSlots) -> Iterator[Tensor]:
        # N x 2080 x 8 x 8 -> N x 448 x 8 x 8 (then conv2d back to 2080 in forward)
        b0, b1 = cat.siblings(x, [self.branch1[0]], self.branch0, owner=self)
        yield b0
        yield self.branch1.tail(b1, **cat.slot(256))


class InceptionResnetV2(PooledClassifierNetwork):
    """Inception-ResNet-v2, matching timm's ``InceptionResnetV2`` (``timm.create_model("inception_resnet_v2")``):
    same module names and state_dict keys (``conv2d_1a`` ... ``conv2d_7b``, ``classif``), same parameters
    (55,843,464 with 1000 classes), same outputs for the same weights. This is the TF-slim / released graph
    (v3-style stem, ``Mixed_5b``, 10 / 20 / 9+1 residual blocks with scales 0.17 / 0.10 / 0.20), not the
    paper's Figure 15 schema.

    Input N x in_chans x 299 x 299 (any size >= 75 works; NCHW or channels_last); output N x num_classes
    logits. In eval mode without autograd the network runs the fused kernels (BatchNorm folded,
    branches writing their concat slices, residual add + ReLU in the up-projection's epilogue) in
    channels_last; otherwise the fused training ops.

    Args:
        num_classes: classifier outputs; 0 leaves the head as an identity (pooled 1536-d features).
        in_chans: input channels.
        drop_rate: dropout before the classifier (``head_drop``).
        output_stride: only 32 (timm's constraint).
        global_pool: only "avg".
    """

    classifier_name = "classif"

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.0, output_stride: int = 32,
                 global_pool: str = "avg") -> None:
        super().__init__(num_features=1536, num_classes=num_classes, in_chans=in_chans, drop_rate=drop_rate,
                         output_stride=output_stride, global_pool=global_pool)
        conv_block = BasicConv2d  # conv (no bias) + BatchNorm2d(eps=1e-3) + ReLU, timm's ConvNormAct keys

        self.conv2d_1a = conv_block(in_chans, 32, kernel_size=3, stride=2)
        self.conv2d_2a = conv_block(32, 32, kernel_size=3, stride=1)
        self.conv2d_2b = conv_block(32, 64, kernel_size=3, stride=1, padding=1)
        self.maxpool_3a = MaxPool2d(3, stride=2)
        self.conv2d_3b = conv_block(64, 80, kernel_size=1, stride=1)
        self.conv2d_4a = conv_block(80, 192, kernel_size=3, stride=1)
        self.maxpool_5a = MaxPool2d(3, stride=2)
        self.mixed_5b = Mixed_5b(conv_block)
        self.repeat = nn.Sequential(*[Block35(scale=0.17, conv_block=conv_block) for _ in range(10)])
        self.mixed_6a = Mixed_6a(conv_block)
        self.repeat_1 = nn.Sequential(*[Block17(scale=0.10, conv_block=conv_block) for _ in range(20)])
        self.mixed_7a = Mixed_7a(conv_block)
        self.repeat_2 = nn.Sequential(*[Block8(scale=0.20, conv_block=conv_block) for _ in range(9)])
        self.block8 = Block8(no_relu=True, conv_block=conv_block)
        self.conv2d_7b = conv_block(2080, self.num_features, kernel_size=1, stride=1)
        self.feature_info = [
            dict(num_chs=64, reduction=2, module="conv2d_2b"),
            dict(num_chs=192, reduction=4, module="conv2d_4a"),
            dict(num_chs=320, reduction=8, module="repeat"),
            dict(num_chs=1088, reduction=16, module="repeat_1"),
            dict(num_chs=1536, reduction=32, module="conv2d_7b"),
        ]
        self._add_head()
        self.pretrained_cfg = self.default_cfg = model_cfg(
            source="timm inception_resnet_v2", first_conv="conv2d_1a.conv", classifier=self.classifier_name,
            num_classes=num_classes, input_size=(in_chans, 299, 299), min_input_size=(in_chans, 75, 75),
            mean=IMAGENET_INCEPTION_MEAN, std=IMAGENET_INCEPTION_STD, interpolation="bicubic", crop_pct=0.8975)
        # weights: torch's default initialisation of Conv2d / BatchNorm2d / Linear, as timm's InceptionResnetV2

    def forward_features(self, x: Tensor) -> Tensor:
        """N x in_chans x H x W -> N x 1536 x H/32 x W/32 (8 x 8 at 299), the last feature map."""
        icf.check_network_input(x, self)
        x = fused_input(self, x)
        # N x 3 x 299 x 299
        x = self.conv2d_1a(x)
        # N x 32 x 149 x 149
        x = self.conv2d_2a(x)
        # N x 32 x 147 x 147
        x = self.conv2d_2b(x)
        # N x 64 x 147 x 147
        x = self.maxpool_3a(x)
        # N x 64 x 73 x 73
        x = self.conv2d_3b(x)
        # N x 80 x 73 x 73
        x = self.conv2d_4a(x)
        # N x 192 x 71 x 71
        x = self.maxpool_5a(x)
        # N x 192 x 35 x 35
        x = self.mixed_5b(x)
        # N x 320 x 35 x 35
        x = self.repeat(x)
        # N x 320 x 35 x 35
        x = self.mixed_6a(x)
        # N x 1088 x 17 x 17
        x = self.repeat_1(x)
        # N x 1088 x 17 x 17
        x = self.mixed_7a(x)
        # N x 2080 x 8 x 8
        x = self.repeat_2(x)
        # N x 2080 x 8 x 8
        x = self.block8(x)
        # N x 2080 x 8 x 8
        x = self.conv2d_7b(x)
        # N x 1536 x 8 x 8
        return x


def remap_cadene_inception_resnet_v2(state_dict: Mapping[str, Tensor], drop_background: bool = False
                                     ) -> dict[str, Tensor]:
    """Rename a Cadene ``pretrainedmodels.inceptionresnetv2`` state_dict to this (timm's) layout.

    Cadene names the classifier ``last_linear``; timm (and this model) name it ``classif``. Every other
    key is the same. ``drop_background=True`` turns a 1001-class checkpoint (TF-slim's background class
    at row 0, Cadene's ``imagenet+background`` / raw ``inceptionresnetv2-520b38e4.pth``) into the
    1000-class one, as Cadene's ``pretrained='imagenet'`` does.

    Example::

        model = inception_resnet_v2()
        model.load_state_dict(remap_cadene_inception_resnet_v2(cadene_model.state_dict()))
    """
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        if key.startswith("last_linear."):
            key = "classif." + key[len("last_linear."):]
            if drop_background:
                if value.shape[0] != 1001:
                    raise ValueError(f"drop_background: expected 1001 classes in {key}, got {value.shape[0]}")
                value = value[1:]
        out[key] = value
    return out


@register_model
def inception_resnet_v2(num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.0,
                        **kwargs) -> InceptionResnetV2:
    """Inception-ResNet-v2 with timm's layout (``inception_resnet_v2.tf_in1k`` weights load unchanged).
    Random init; kwargs go to ``InceptionResnetV2``."""
    return InceptionResnetV2(num_classes=num_classes, in_chans=in_chans, drop_rate=drop_rate, **kwargs)
