"""GoogLeNet (Inception-v1) with torchvision's module names and state_dict keys.

Szegedy et al. 2014, "Going Deeper with Convolutions" (arXiv 1409.4842), in the TF-slim flavour that
torchvision ships (BatchNorm after every convolution). ``torchvision.models.googlenet`` checkpoints load
unchanged (``conv1.conv.weight``, ``inception3a.branch2.1.bn.running_var``, ``aux1.fc1.weight``, ``fc.*``).
"""

from __future__ import annotations

import functools
from collections import namedtuple
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inception_core import nn as icnn
from inception_core.models._cfg import (
    IMAGENET_DEFAULT_MEAN,
    IMAGENET_DEFAULT_STD,
    IMAGENET_INCEPTION_MEAN,
    IMAGENET_INCEPTION_STD,
    model_cfg,
)
from inception_core.models._entry import fused_input
from inception_core.models._registry import register_model
from inception_core.nn import functional as icf
from inception_core.nn.blocks import ChannelSlots, ConcatBlock

# GoogLeNetOutputs is provided by the module __getattr__ below (resolved on first use)
__all__ = ["GoogLeNet", "GoogLeNetOutputs", "Inception", "InceptionAux", "googlenet"]  # noqa: F822


@functools.cache
def _outputs_type() -> type:
    """torchvision's ``GoogLeNetOutputs`` when torchvision is importable (so isinstance checks written
    against torchvision pass), else an identical namedtuple. Resolved on first use: importing
    torchvision costs seconds and it is an optional dependency."""
    try:
        from torchvision.models.googlenet import GoogLeNetOutputs as tv_outputs
    except Exception:  # not installed, or an install that does not match this torch
        outputs = namedtuple("GoogLeNetOutputs", ["logits", "aux_logits2", "aux_logits1"])
        outputs.__annotations__ = {"logits": Tensor, "aux_logits2": Tensor | None, "aux_logits1": Tensor | None}
        return outputs
    return tv_outputs


def __getattr__(name: str) -> Any:  # module attribute GoogLeNetOutputs, resolved lazily (PEP 562)
    if name == "GoogLeNetOutputs":
        return _outputs_type()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Inception(ConcatBlock):
    """GoogLeNet's Inception module: 1x1 | 1x1 -> 3x3 | 1x1 -> "5x5" | 3x3 max pool -> 1x1, concatenated.

    Matches torchvision's ``Inception`` (same arguments and submodule names). On the fused path every
    branch's last layer writes its own channel slice of the block output.
    """

    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int, ch5x5: int,
                 pool_proj: int, conv_block: Callable[..., nn.Module] | None = None) -> None:
        super().__init__()
        conv_block = conv_block or icnn.BasicConv2d
        self.branch1 = conv_block(in_channels, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(
            conv_block(in_channels, ch3x3red, kernel_size=1),
            conv_block(ch3x3red, ch3x3, kernel_size=3, padding=1),
        )
        self.branch3 = nn.Sequential(
            conv_block(in_channels, ch5x5red, kernel_size=1),
            # The "5x5" branch is a 3x3 convolution in torchvision's (TF-slim-derived) weights, a known
            # deviation from the paper (pytorch/vision#906); kept so those checkpoints load and compute
            # what they were trained with.
            conv_block(ch5x5red, ch5x5, kernel_size=3, padding=1),
        )
        self.branch4 = nn.Sequential(
            icnn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            conv_block(in_channels, pool_proj, kernel_size=1),
        )
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj
        self.scratch_channels = ch3x3red + ch5x5red  # the two 1x1 reductions, fused with branch1

    def _forward(self, x: Tensor, cat: ChannelSlots):
        # the three 1x1 convs reading x: one GEMM on the fused path (horizontal fusion)
        branch1, branch2, branch3 = cat.siblings(x, [self.branch2[0], self.branch3[0]], self.branch1, owner=self)
        yield branch1
        yield self.branch2[1](branch2, **cat.slot(self.branch2[1].out_channels))
        yield self.branch3[1](branch3, **cat.slot(self.branch3[1].out_channels))
        yield self.branch4[1](self.branch4[0](x), **cat.slot(self.branch4[1].out_channels))


class InceptionAux(nn.Module):
    """Auxiliary classifier (training only): 4x4 adaptive average pool -> 1x1 conv 128 -> fc 1024 ->
    ReLU -> dropout -> fc. Matches torchvision's ``InceptionAux`` (it is only evaluated in training mode,
    where its conv runs the fused training op)."""

    def __init__(self, in_channels: int, num_classes: int, conv_block: Callable[..., nn.Module] | None = None,
                 dropout: float = 0.7) -> None:
        super().__init__()
        conv_block = conv_block or icnn.BasicConv2d
        self.conv = conv_block(in_channels, 128, kernel_size=1)
        self.fc1 = nn.Linear(2048, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x: Tensor) -> Tensor:
        # aux1: N x 512 x 14 x 14, aux2: N x 528 x 14 x 14
        x = F.adaptive_avg_pool2d(x, (4, 4))
        # N x C x 4 x 4
        x = self.conv(x)
        # N x 128 x 4 x 4
        x = torch.flatten(x, 1)
        # N x 2048
        x = F.relu(self.fc1(x))
        # N x 1024
        x = self.dropout(x)
        # N x 1024
        return self.fc2(x)


class GoogLeNet(nn.Module):
    """GoogLeNet / Inception-v1, weight-compatible with ``torchvision.models.GoogLeNet``.

    Same constructor arguments, defaults, submodule names and outputs as torchvision: in training mode
    with ``aux_logits`` the forward returns ``GoogLeNetOutputs(logits, aux_logits2, aux_logits1)``, else
    a (N, num_classes) tensor. Eval mode without autograd runs the fused kernels (BN folded into every
    convolution, branches writing their slices of each block's output, channels_last throughout).

    Args:
        num_classes: classifier outputs.
        aux_logits: build the two auxiliary classifiers (``aux1`` after 4a, ``aux2`` after 4d).
        transform_input: map ImageNet-normalised input to the (x - 0.5) / 0.5 scaling the ported
            weights expect, as torchvision does.
        init_weights: truncated-normal (std 0.01) init of convolutions and linears, as torchvision.
        dropout: dropout before ``fc``.
        dropout_aux: dropout inside the auxiliary classifiers.
    """

    def __init__(self, num_classes: int = 1000, aux_logits: bool = True, transform_input: bool = False,
                 init_weights: bool | None = True, dropout: float = 0.2, dropout_aux: float = 0.7) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.aux_logits = aux_logits
        self.transform_input = transform_input
        conv_block = icnn.BasicConv2d

        self.conv1 = conv_block(3, 64, kernel_size=7, stride=2, padding=3)
        self.maxpool1 = icnn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = conv_block(64, 64, kernel_size=1)
        self.conv3 = conv_block(64, 192, kernel_size=3, padding=1)
        self.maxpool2 = icnn.MaxPool2d(3, stride=2, ceil_mode=True)

        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64)
        self.maxpool3 = icnn.MaxPool2d(3, stride=2, ceil_mode=True)

        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128)
        self.maxpool4 = icnn.MaxPool2d(2, stride=2, ceil_mode=True)

        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128)

        if aux_logits:
            self.aux1 = InceptionAux(512, num_classes, dropout=dropout_aux)
            self.aux2 = InceptionAux(528, num_classes, dropout=dropout_aux)
        else:
            self.aux1 = None
            self.aux2 = None

        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(1024, num_classes)
        # torchvision's weights take ImageNet-normalised input through transform_input; the network itself
        # computes on (x - 0.5) / 0.5
        self.pretrained_cfg = self.default_cfg = model_cfg(
            source="torchvision googlenet", first_conv="conv1.conv", classifier="fc", num_classes=num_classes,
            input_size=(3, 224, 224), min_input_size=(3, 15, 15),
            mean=IMAGENET_DEFAULT_MEAN if transform_input else IMAGENET_INCEPTION_MEAN,
            std=IMAGENET_DEFAULT_STD if transform_input else IMAGENET_INCEPTION_STD,
            interpolation="bilinear", crop_pct=224 / 256)

        if init_weights is None or init_weights:
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.constant_(m.weight, 1)
                    nn.init.constant_(m.bias, 0)

    def _transform_input(self, x: Tensor) -> Tensor:
        if not self.transform_input:
            return x
        # torchvision's per-channel x * (std / 0.5) + (mean - 0.5) / 0.5, as one broadcast op (no torch.cat)
        scale = x.new_tensor([0.229 / 0.5, 0.224 / 0.5, 0.225 / 0.5]).view(1, 3, 1, 1)
        shift = x.new_tensor([(0.485 - 0.5) / 0.5, (0.456 - 0.5) / 0.5, (0.406 - 0.5) / 0.5]).view(1, 3, 1, 1)
        return x * scale + shift

    def _features(self, x: Tensor, with_aux: bool) -> tuple[Tensor, Tensor | None, Tensor | None]:
        icf.check_network_input(x, self)
        x = fused_input(self, x)
        # N x 3 x 224 x 224
        x = self.conv1(x)
        # N x 64 x 112 x 112
        x = self.maxpool1(x)
        # N x 64 x 56 x 56
        x = self.conv2(x)
        # N x 64 x 56 x 56
        x = self.conv3(x)
        # N x 192 x 56 x 56
        x = self.maxpool2(x)
        # N x 192 x 28 x 28
        x = self.inception3a(x)
        # N x 256 x 28 x 28
        x = self.inception3b(x)
        # N x 480 x 28 x 28
        x = self.maxpool3(x)
        # N x 480 x 14 x 14
        x = self.inception4a(x)
        # N x 512 x 14 x 14
        aux1 = self.aux1(x) if with_aux and self.aux1 is not None and self.training else None
        x = self.inception4b(x)
        # N x 512 x 14 x 14
        x = self.inception4c(x)
        # N x 512 x 14 x 14
        x = self.inception4d(x)
        # N x 528 x 14 x 14
        aux2 = self.aux2(x) if with_aux and self.aux2 is not None and self.training else None
        x = self.inception4e(x)
        # N x 832 x 14 x 14
        x = self.maxpool4(x)
        # N x 832 x 7 x 7
        x = self.inception5a(x)
        # N x 832 x 7 x 7
        x = icf.dense(self.inception5b(x))  # the fused block output is a view behind its scratch channels
        # N x 1024 x 7 x 7
        return x, aux2, aux1

    def forward_features(self, x: Tensor) -> Tensor:
        """(N, 3, H, W) -> the last feature map (N, 1024, H/32, W/32), before global pooling (input
        transform applied, auxiliary heads not run)."""
        return self._features(self._transform_input(x), with_aux=False)[0]

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """(N, 1024, h, w) feature map -> logits (N, num_classes), or the pooled (N, 1024) features."""
        x = self.avgpool(x)
        # N x 1024 x 1 x 1
        x = torch.flatten(x, 1)
        # N x 1024
        x = self.dropout(x)
        # N x 1024 -> N x num_classes
        return x if pre_logits else self.fc(x)

    def forward(self, x: Tensor):
        """(N, 3, H, W) -> (N, num_classes) logits; ``GoogLeNetOutputs(logits, aux_logits2, aux_logits1)``
        in training mode with ``aux_logits``."""
        x, aux2, aux1 = self._features(self._transform_input(x), with_aux=True)
        x = self.forward_head(x)
        if self.training and self.aux_logits:
            return _outputs_type()(x, aux2, aux1)
        return x


@register_model
def googlenet(num_classes: int = 1000, aux_logits: bool = True, transform_input: bool = False,
              dropout: float = 0.2, dropout_aux: float = 0.7, init_weights: bool = True, **kwargs) -> GoogLeNet:
    """GoogLeNet (Inception-v1), torchvision's graph and keys: 6,624,904 parameters without the
    auxiliary heads, 13,004,888 with them (1000 classes); 224x224 input (at least 15x15).

    Defaults are torchvision's ``GoogLeNet`` class defaults (``aux_logits=True``); to load torchvision's
    ImageNet weights pass ``transform_input=True`` as its builder does, and ``aux_logits=False`` after
    dropping their ``aux1.*``/``aux2.*`` keys (the aux heads of that checkpoint are untrained).

    Other keyword arguments go to :class:`GoogLeNet` (an unknown one raises ``TypeError``).
    """
    return GoogLeNet(num_classes=num_classes, aux_logits=aux_logits, transform_input=transform_input,
                     init_weights=init_weights, dropout=dropout, dropout_aux=dropout_aux, **kwargs)
