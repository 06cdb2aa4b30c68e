"""Inception-v3 (Szegedy et al. 2015, "Rethinking the Inception Architecture for Computer Vision").

Module names and state_dict keys are torchvision's ``Inception3`` (``Conv2d_1a_3x3.conv.weight``,
``Mixed_5b.branch1x1.bn.running_var``, ``AuxLogits.fc.weight``, ``fc.weight``), which are also timm's
``inception_v3``: both checkpoints load unchanged (timm's have no ``AuxLogits``: build with
``aux_logits=False``). In eval mode without autograd every block allocates its output once and each
branch's last op writes its channel slice (no ``torch.cat``), and the 1x1 convs that read a block's
input run as one GEMM (horizontal fusion); training runs the fused training ops and joins branches with
``torch.cat``.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from inception_core.models._cfg import (
    IMAGENET_DEFAULT_MEAN,
    IMAGENET_DEFAULT_STD,
    IMAGENET_INCEPTION_MEAN,
    IMAGENET_INCEPTION_STD,
    model_cfg,
)
from inception_core.models._entry import fused_input
from inception_core.models._registry import register_model
from inception_core.nn import BasicConv2d, ChannelSlots, ConcatBlock, MaxPool2d, ReductionBlock
from inception_core.nn import functional as icf
from inception_core.nn.pool_branch import avg_pool_conv_bn_act

__all__ = [
    "Inception3",
    "InceptionA",
    "InceptionAux",
    "InceptionB",
    "InceptionC",
    "InceptionD",
    "InceptionE",
    "InceptionOutputs",  # noqa: F822  (resolved lazily by the module __getattr__)
    "inception3_layers",
    "inception_v3",
]

# torchvision's _transform_input: ImageNet-normalised input -> (x - 0.5) / 0.5 per channel, as
# x_c * (std_c / 0.5) + (mean_c - 0.5) / 0.5 (its exact constants and operation order).
_TRANSFORM_SCALE = tuple(s / 0.5 for s in IMAGENET_DEFAULT_STD)
_TRANSFORM_SHIFT = tuple((m - 0.5) / 0.5 for m in IMAGENET_DEFAULT_MEAN)

# the branch_pool average pool of InceptionA / C / E (torchvision's: count_include_pad=True); the 1x1 conv after
# it runs first on the torch backend (inception_core.nn.pool_branch)
_AVG_POOL_3X3 = {"kernel_size": 3, "stride": 1, "padding": 1, "count_include_pad": True}

_outputs_type: type | None = None


def _inception_outputs() -> type:
    """torchvision's ``InceptionOutputs`` when torchvision imports, else a namedtuple of the same name and
    fields. Resolved on first use: importing torchvision costs about a second, and it stays optional."""
    global _outputs_type
    if _outputs_type is None:
        try:
            from torchvision.models.inception import InceptionOutputs as tv_outputs
        except (ImportError, RuntimeError, AttributeError):  # absent, or built for another torch
            tv_outputs = namedtuple("InceptionOutputs", ["logits", "aux_logits"])
        _outputs_type = tv_outputs
    return _outputs_type


def __getattr__(name: str) -> Any:
    if name == "InceptionOutputs":
        return _inception_outputs()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")



class InceptionA(ConcatBlock):
    """35x35 block (Mixed_5b/5c/5d): 1x1 | 1x1 -> 5x5 | 1x1 -> 3x3 -> 3x3 | avg-pool 3x3 -> 1x1.

    torchvision's ``InceptionA``; output channels 64 + 64 + 96 + ``pool_features``. The average pool
    counts the zero padding (``count_include_pad=True``), as torchvision's does.
    """

    def __init__(self, in_channels: int, pool_features: int, conv_block: Callable[..., nn.Module] | None = None
                 ) -> None:
        super().__init__()
        conv_block = conv_block or BasicConv2d
        self.branch1x1 = conv_block(in_channels, 64, kernel_size=1)

        self.branch5x5_1 = conv_block(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = conv_block(48, 64, kernel_size=5, padding=2)

        self.branch3x3dbl_1 = conv_block(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = conv_block(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = conv_block(96, 96, kernel_size=3, padding=1)

        self.branch_pool = conv_block(in_channels, pool_features, kernel_size=1)
        self.out_channels = 64 + 64 + 96 + pool_features
        self.scratch_channels = 48 + 64

    def _forward(self, x: Tensor, cat: ChannelSlots) -> Iterator[Tensor]:
        # the three 1x1 convs reading x: one GEMM on the fused path (reductions into scratch channels)
        branch1x1, branch5x5, branch3x3dbl = cat.siblings(
            x, [self.branch5x5_1, self.branch3x3dbl_1], self.branch1x1, owner=self)
        yield branch1x1

        yield self.branch5x5_2(branch5x5, **cat.slot(64))

        branch3x3dbl = self.branch3x3dbl_2(branch3x3dbl)
        yield self.branch3x3dbl_3(branch3x3dbl, **cat.slot(96))

        yield avg_pool_conv_bn_act(x, _AVG_POOL_3X3, self.branch_pool, **cat.slot(self.branch_pool.out_channels))


class InceptionB(ReductionBlock):
    """35x35 -> 17x17 reduction (Mixed_6a): 3x3/s2 | 1x1 -> 3x3 -> 3x3/s2 | max-pool 3x3/s2.

    torchvision's ``InceptionB``; output channels 384 + 96 + ``in_channels``.
    """

    def __init__(self, in_channels: int, conv_block: Callable[..., nn.Module] | None = None) -> None:
        super().__init__()
        conv_block = conv_block or BasicConv2d
        self.branch3x3 = conv_block(in_channels, 384, kernel_size=3, stride=2)

        self.branch3x3dbl_1 = conv_block(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = conv_block(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = conv_block(96, 96, kernel_size=3, stride=2)
        self.in_channels = in_channels
        self.out_channels = 384 + 96 + in_channels

    def _forward(self, x: Tensor, cat: ChannelSlots) -> Iterator[Tensor]:
        yield self.branch3x3(x, **cat.slot(384))

        branch3x3dbl = self.branch3x3dbl_1(x)
        branch3x3dbl = self.branch3x3dbl_2(branch3x3dbl)
        yield self.branch3x3dbl_3(branch3x3dbl, **cat.slot(96))

        yield icf.max_pool2d(x, kernel_size=3, stride=2, **cat.slot(self.in_channels))


class InceptionC(ConcatBlock):
    """17x17 block with factorised 7x7 convolutions (Mixed_6b..6e): 1x1 | 1x1 -> 1x7 -> 7x1 |
    1x1 -> 7x1 -> 1x7 -> 7x1 -> 1x7 | avg-pool 3x3 -> 1x1.

    torchvision's ``InceptionC``; output channels 4 x 192 = 768; ``channels_7x7`` is the width inside
    the 7x7 branches.
    """

    def __init__(self, in_channels: int, channels_7x7: int, conv_block: Callable[..., nn.Module] | None = None
                 ) -> None:
        super().__init__()
        conv_block = conv_block or BasicConv2d
        self.branch1x1 = conv_block(in_channels, 192, kernel_size=1)

        c7 = channels_7x7
        self.branch7x7_1 = conv_block(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = conv_block(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = conv_block(c7, 192, kernel_size=(7, 1), padding=(3, 0))

        self.branch7x7dbl_1 = conv_block(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = conv_block(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = conv_block(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = conv_block(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = conv_block(c7, 192, kernel_size=(1, 7), padding=(0, 3))

        self.branch_pool = conv_block(in_channels, 192, kernel_size=1)
        self.out_channels = 4 * 192
        self.scratch_channels = 2 * c7

    def _forward(self, x: Tensor, cat: ChannelSlots) -> Iterator[Tensor]:
        # the three 1x1 convs reading x: one GEMM on the fused path (reductions into scratch channels)
        branch1x1, branch7x7, branch7x7dbl = cat.siblings(
            x, [self.branch7x7_1, self.branch7x7dbl_1], self.branch1x1, owner=self)
        yield branch1x1

        branch7x7 = self.branch7x7_2(branch7x7)
        yield self.branch7x7_3(branch7x7, **cat.slot(192))

        branch7x7dbl = self.branch7x7dbl_2(branch7x7dbl)
        branch7x7dbl = self.branch7x7dbl_3(branch7x7dbl)
        branch7x7dbl = self.branch7x7dbl_4(branch7x7dbl)
        yield self.branch7x7dbl_5(branch7x7dbl, **cat.slot(192))

        yield avg_pool_conv_bn_act(x, _AVG_POOL_3X3, self.branch_pool, **cat.slot(192))


class InceptionD(ReductionBlock):
    """17x17 -> 8x8 reduction (Mixed_7a): 1x1 -> 3x3/s2 | 1x1 -> 1x7 -> 7x1 -> 3x3/s2 | max-pool 3x3/s2.

    torchvision's ``InceptionD``; output channels 320 + 192 + ``in_channels``.
    """

    def __init__(self, in_channels: int, conv_block: Callable[..., nn.Module] | None = None) -> None:
        super().__init__()
        conv_block = conv_block or BasicConv2d
        self.branch3x3_1 = conv_block(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = conv_block(192, 320, kernel_size=3, stride=2)

        self.branch7x7x3_1 = conv_block(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = conv_block(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = conv_block(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = conv_block(192, 192, kernel_size=3, stride=2)
        self.in_channels = in_channels
        self.out_channels = 320 + 192 + in_channels

    def _forward(self, x: Tensor, cat: ChannelSlots) -> Iterator[Tensor]:
        # the two 1x1 reductions reading x: one GEMM on the fused path, into a buffer of their own
        # (they keep the input's 17x17 while the block output is 8x8)
        branch3x3, branch7x7x3 = cat.siblings(x, [self.branch3x3_1, self.branch7x7x3_1], owner=self)
        yield self.branch3x3_2(branch3x3, **cat.slot(320))

        branch7x7x3 = self.branch7x7x3_2(branch7x7x3)
        branch7x7x3 = self.branch7x7x3_3(branch7x7x3)
        yield self.branch7x7x3_4(branch7x7x3, **cat.slot(192))

        yield icf.max_pool2d(x, kernel_size=3, stride=2, **cat.slot(self.in_channels))


class InceptionE(ConcatBlock):
    """8x8 block with expanded filter banks (Mixed_7b/7c): 1x1 | 1x1 -> (1x3 ‖ 3x1) |
    1x1 -> 3x3 -> (1x3 ‖ 3x1) | avg-pool 3x3 -> 1x1.

    torchvision's ``InceptionE``; output channels 320 + 2 x 384 + 2 x 384 + 192 = 2048. The split
    ends of the two middle branches read the same tensor and each writes its own slice (torchvision
    concatenates them first, then again with the other branches: the same channel order).
    """

    def __init__(self, in_channels: int, conv_block: Callable[..., nn.Module] | None = None) -> None:
        super().__init__()
        conv_block = conv_block or BasicConv2d
        self.branch1x1 = conv_block(in_channels, 320, kernel_size=1)

        self.branch3x3_1 = conv_block(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = conv_block(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = conv_block(384, 384, kernel_size=(3, 1), padding=(1, 0))

        self.branch3x3dbl_1 = conv_block(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = conv_block(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = conv_block(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = conv_block(384, 384, kernel_size=(3, 1), padding=(1, 0))

        self.branch_pool = conv_block(in_channels, 192, kernel_size=1)
        self.out_channels = 320 + 4 * 384 + 192
        self.scratch_channels = 384 + 448

    def _forward(self, x: Tensor, cat: ChannelSlots) -> Iterator[Tensor]:
        # the three 1x1 convs reading x: one GEMM on the fused path (reductions into scratch channels)
        branch1x1, branch3x3, branch3x3dbl = cat.siblings(
            x, [self.branch3x3_1, self.branch3x3dbl_1], self.branch1x1, owner=self)
        yield branch1x1

        yield self.branch3x3_2a(branch3x3, **cat.slot(384))
        yield self.branch3x3_2b(branch3x3, **cat.slot(384))

        branch3x3dbl = self.branch3x3dbl_2(branch3x3dbl)
        yield self.branch3x3dbl_3a(branch3x3dbl, **cat.slot(384))
        yield self.branch3x3dbl_3b(branch3x3dbl, **cat.slot(384))

        yield avg_pool_conv_bn_act(x, _AVG_POOL_3X3, self.branch_pool, **cat.slot(192))


class InceptionAux(nn.Module):
    """Auxiliary classifier on the 17x17 features (training only): avg-pool 5x5/s3 -> 1x1 conv 128 ->
    5x5 conv 768 -> global average -> fc. torchvision's ``InceptionAux`` (same keys and init stddevs)."""

    def __init__(self, in_channels: int, num_classes: int, conv_block: Callable[..., nn.Module] | None = None
                 ) -> None:
        super().__init__()
        conv_block = conv_block or BasicConv2d
        self.conv0 = conv_block(in_channels, 128, kernel_size=1)
        self.conv1 = conv_block(128, 768, kernel_size=5)
        self.conv1.stddev = 0.01  # read by Inception3's weight init
        self.fc = nn.Linear(768, num_classes)
        self.fc.stddev = 0.001

    def forward(self, x: Tensor) -> Tensor:
        # N x 768 x 17 x 17
        x = icf.avg_pool2d(x, kernel_size=5, stride=3)
        # N x 768 x 5 x 5
        x = self.conv0(x)
        # N x 128 x 5 x 5
        x = self.conv1(x)
        # N x 768 x 1 x 1
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, (1, 1)), 1)
        # N x 768
        return self.fc(x)  # N x num_classes


def inception3_layers(in_chans: int = 3, *, block_a: type[InceptionA] = InceptionA,
                      block_c: type[InceptionC] = InceptionC, block_7b: type[InceptionE] = InceptionE,
                      block_7c: type[InceptionE] = InceptionE, aux: Callable[[], nn.Module] | None = None
                      ) -> dict[str, nn.Module]:
    """Inception-v3's layers from the stem to Mixed_7c under torchvision's names, in network order (the head
    is the network's own): (N, in_chans, 299, 299) -> (N, 2048, 8, 8).

    The FID network has the same graph but for the pools of Mixed_5b-d (``block_a``), Mixed_6b-e
    (``block_c``), Mixed_7b and Mixed_7c; ``aux`` builds ``AuxLogits``, placed after Mixed_6e where
    torchvision registers it (built there too, so torch's default initialisation draws in its order).
    """
    layers: dict[str, nn.Module] = dict(
        Conv2d_1a_3x3=BasicConv2d(in_chans, 32, kernel_size=3, stride=2),
        Conv2d_2a_3x3=BasicConv2d(32, 32, kernel_size=3),
        Conv2d_2b_3x3=BasicConv2d(32, 64, kernel_size=3, padding=1),
        maxpool1=MaxPool2d(kernel_size=3, stride=2),
        Conv2d_3b_1x1=BasicConv2d(64, 80, kernel_size=1),
        Conv2d_4a_3x3=BasicConv2d(80, 192, kernel_size=3),
        maxpool2=MaxPool2d(kernel_size=3, stride=2),
        Mixed_5b=block_a(192, pool_features=32),
        Mixed_5c=block_a(256, pool_features=64),
        Mixed_5d=block_a(288, pool_features=64),
        Mixed_6a=InceptionB(288),
        Mixed_6b=block_c(768, channels_7x7=128),
        Mixed_6c=block_c(768, channels_7x7=160),
        Mixed_6d=block_c(768, channels_7x7=160),
        Mixed_6e=block_c(768, channels_7x7=192),
    )
    if aux is not None:
        layers["AuxLogits"] = aux()
    layers.update(Mixed_7a=InceptionD(768), Mixed_7b=block_7b(1280), Mixed_7c=block_7c(2048))
    return layers


class Inception3(nn.Module):
    """Inception-v3, a drop-in for torchvision's ``Inception3`` (and timm's ``InceptionV3``).

    Same module names, parameters and buffers as torchvision's (27,161,264 parameters with the
    auxiliary head, 23,834,568 without), same forward semantics: ``transform_input`` maps
    ImageNet-normalised input to the (x - 0.5) / 0.5 scaling the weights were trained with; training
    mode returns ``InceptionOutputs(logits, aux_logits)`` when ``aux_logits``, eval mode a Tensor (the
    auxiliary head runs only in training). Native input 299x299, smallest 75x75.

    Eval mode without autograd runs the fused path: the input is made channels_last once, every conv
    is one fused conv+BN+ReLU kernel, the sibling 1x1 convs of a block run as one stacked GEMM, and every
    block writes its branches into one preallocated output.

    Args:
        num_classes: classifier outputs.
        aux_logits: build the auxiliary classifier ``AuxLogits`` on Mixed_6e.
        transform_input: convert ImageNet-normalised input (torchvision's transforms) to (x - 0.5) / 0.5.
        inception_blocks: torchvision's hook for replacing the block classes; kept in its position for
            a compatible signature, only None is accepted.
        init_weights: torchvision's init (truncated normal conv/linear weights, BN weight 1 bias 0);
            False leaves torch's default init.
        dropout: dropout probability before ``fc``.
        in_chans: input channels (timm's argument; 3 with ``transform_input``).
    """

    def __init__(self, num_classes: int = 1000, aux_logits: bool = True, transform_input: bool = False,
                 inception_blocks: list | None = None, init_weights: bool = True, dropout: float = 0.5,
                 in_chans: int = 3) -> None:
        super().__init__()
        if inception_blocks is not None:
            raise ValueError("inception_blocks: not supported (the blocks here are the fused ones); pass None")
        if transform_input and in_chans != 3:
            raise ValueError(f"in_chans: transform_input needs 3 input channels, got {in_chans}")
        self.aux_logits = aux_logits
        self.transform_input = transform_input
        self.num_classes = num_classes
        self.num_features = 2048
        self.AuxLogits: InceptionAux | None = None
        aux = (lambda: InceptionAux(768, num_classes)) if aux_logits else None
        for name, layer in inception3_layers(in_chans, aux=aux).items():
            setattr(self, name, layer)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(self.num_features, num_classes)
        # torchvision's weights take ImageNet-normalised input through transform_input (bilinear, 342 -> 299);
        # timm's take (x - 0.5) / 0.5 directly (bicubic, crop 0.875)
        self.pretrained_cfg = self.default_cfg = model_cfg(
            source="torchvision inception_v3" if transform_input else "timm inception_v3",
            first_conv="Conv2d_1a_3x3.conv", classifier="fc", num_classes=num_classes,
            input_size=(in_chans, 299, 299), min_input_size=(in_chans, 75, 75),
            mean=IMAGENET_DEFAULT_MEAN if transform_input else IMAGENET_INCEPTION_MEAN,
            std=IMAGENET_DEFAULT_STD if transform_input else IMAGENET_INCEPTION_STD,
            interpolation="bilinear" if transform_input else "bicubic",
            crop_pct=299 / 342 if transform_input else 0.875)
        if init_weights:
            self._init_weights()

    def _init_weights(self) -> None:
        """torchvision's init: conv and linear weights ~ N(0, stddev) truncated to [-2, 2] (stddev 0.1
        unless the module sets ``stddev``), BN weight 1 and bias 0; linear biases keep torch's init."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                stddev = float(getattr(m, "stddev", 0.1))
                nn.init.trunc_normal_(m.weight, mean=0.0, std=stddev, a=-2, b=2)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _prepare_input(self, x: Tensor) -> Tensor:
        """Entry of the network: channels_last once on the fused path, then ``transform_input``
        (torchvision's per-channel formula, broadcast instead of sliced and concatenated)."""
        icf.check_network_input(x, self)
        x = fused_input(self, x)
        if self.transform_input:
            scale = torch.tensor(_TRANSFORM_SCALE, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
            shift = torch.tensor(_TRANSFORM_SHIFT, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
            x = x * scale + shift
        return x

    def forward_preaux(self, x: Tensor) -> Tensor:
        """Stem and the 35x35 and 17x17 stages, up to where the auxiliary head branches off."""
        # N x 3 x 299 x 299
        x = self.Conv2d_1a_3x3(x)
        # N x 32 x 149 x 149
        x = self.Conv2d_2a_3x3(x)
        # N x 32 x 147 x 147
        x = self.Conv2d_2b_3x3(x)
        # N x 64 x 147 x 147
        x = self.maxpool1(x)
        # N x 64 x 73 x 73
        x = self.Conv2d_3b_1x1(x)
        # N x 80 x 73 x 73
        x = self.Conv2d_4a_3x3(x)
        # N x 192 x 71 x 71
        x = self.maxpool2(x)
        # N x 192 x 35 x 35
        x = self.Mixed_5b(x)
        # N x 256 x 35 x 35
        x = self.Mixed_5c(x)
        # N x 288 x 35 x 35
        x = self.Mixed_5d(x)
        # N x 288 x 35 x 35
        x = self.Mixed_6a(x)
        # N x 768 x 17 x 17
        x = self.Mixed_6b(x)
        # N x 768 x 17 x 17
        x = self.Mixed_6c(x)
        # N x 768 x 17 x 17
        x = self.Mixed_6d(x)
        # N x 768 x 17 x 17
        x = self.Mixed_6e(x)
        # N x 768 x 17 x 17
        return x

    def forward_postaux(self, x: Tensor) -> Tensor:
        """The 8x8 stage."""
        # N x 768 x 17 x 17
        x = self.Mixed_7a(x)
        # N x 1280 x 8 x 8
        x = self.Mixed_7b(x)
        # N x 2048 x 8 x 8
        x = icf.dense(self.Mixed_7c(x))  # the fused block output is a view behind its scratch channels
        # N x 2048 x 8 x 8
        return x

    def forward_features(self, x: Tensor) -> Tensor:
        """(N, 3, H, W) input -> (N, 2048, H', W') last feature map (8x8 at 299), dense (channels_last on the
        fused path). ``transform_input`` applies; the auxiliary head does not run."""
        x = self._prepare_input(x)
        return self.forward_postaux(self.forward_preaux(x))

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """(N, 2048, H', W') features -> (N, num_classes) logits, or the pooled (N, 2048) features
        after dropout with ``pre_logits``."""
        # N x 2048 x 8 x 8
        x = self.avgpool(x)
        # N x 2048 x 1 x 1
        x = self.dropout(x)
        x = torch.flatten(x, 1)
        # N x 2048
        if pre_logits:
            return x
        return self.fc(x)  # N x num_classes

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, Tensor | None]:
        """(N, 3, H, W) -> logits (N, num_classes); in training mode with ``aux_logits``,
        ``InceptionOutputs(logits, aux_logits)``."""
        x = self._prepare_input(x)
        x = self.forward_preaux(x)
        aux = self.AuxLogits(x) if self.training and self.AuxLogits is not None else None
        x = self.forward_head(self.forward_postaux(x))
        if self.training and self.aux_logits:
            return _inception_outputs()(x, aux)
        return x


@register_model
def inception_v3(num_classes: int = 1000, aux_logits: bool = True, transform_input: bool = False,
                 dropout: float = 0.5, init_weights: bool = True, **kwargs: Any) -> Inception3:
    """Inception-v3 with torchvision's builder defaults (``aux_logits=True``, ``transform_input=False``,
    ``dropout=0.5``); loads torchvision's checkpoints and, with ``aux_logits=False``, timm's.
    Random init only: no weights are downloaded. Extra kwargs (``in_chans``) go to ``Inception3``."""
    return Inception3(num_classes=num_classes, aux_logits=aux_logits, transform_input=transform_input,
                      init_weights=init_weights, dropout=dropout, **kwargs)
