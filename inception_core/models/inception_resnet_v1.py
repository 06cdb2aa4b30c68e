"""Inception-ResNet-v1 with the module names and keys of facenet-pytorch's ``InceptionResnetV1``.

Szegedy et al. 2016, "Inception-v4, Inception-ResNet and the Impact of Residual Connections on Learning"
(arXiv 1602.07261), as ported from davidsandberg/facenet by timesler/facenet-pytorch: the paper's
Inception-ResNet-v1 stem and blocks (5 x Block35, 10 x Block17, 5 x Block8), with a face-embedding head
(512-d, L2-normalised). ``facenet_pytorch.InceptionResnetV1`` checkpoints (VGGFace2, CASIA-Webface) load
unchanged. An ImageNet classifier configuration of the same trunk is :func:`inception_resnet_v1_imagenet`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inception_core import nn as icnn
from inception_core.models._cfg import model_cfg
from inception_core.models._entry import fused_input
from inception_core.models._reduction import ReductionA
from inception_core.models._registry import register_model
from inception_core.nn import functional as icf
from inception_core.nn.blocks import ChannelSlots, ReductionBlock, ScaledResidualBlock

__all__ = [
    "Block8",
    "Block17",
    "Block35",
    "InceptionResnetV1",
    "Mixed_6a",
    "Mixed_7a",
    "inception_resnet_v1",
    "inception_resnet_v1_imagenet",
]

BasicConv2d = icnn.BasicConv2d  # facenet's BasicConv2d: conv (no bias) + BatchNorm2d(eps=1e-3) + ReLU



class Block35(ScaledResidualBlock):
    """35x35 residual block (Inception-ResNet-A, 256 channels): 1x1 | 1x1 -> 3x3 | 1x1 -> 3x3 -> 3x3,
    concatenated (96), up-projected by ``conv2d`` (1x1 with bias) and added as ``relu(x + scale * up)``.
    Matches facenet's ``Block35``."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__(scale=scale, relu=True)
        self.branch0 = BasicConv2d(256, 32, kernel_size=1, stride=1)
        self.branch1 = nn.Sequential(
            BasicConv2d(256, 32, kernel_size=1, stride=1),
            BasicConv2d(32, 32, kernel_size=3, stride=1, padding=1),
        )
        self.branch2 = nn.Sequential(
            BasicConv2d(256, 32, kernel_size=1, stride=1),
            BasicConv2d(32, 32, kernel_size=3, stride=1, padding=1),
            BasicConv2d(32, 32, kernel_size=3, stride=1, padding=1),
        )
        self.conv2d = nn.Conv2d(96, 256, kernel_size=1, stride=1)
        self.out_channels = 96

    scratch_channels = 32 + 32  # branch1[0] and branch2[0], fused with branch0

    def _forward(self, x: Tensor, cat: ChannelSlots):
        branch0, branch1, branch2 = cat.siblings(x, [self.branch1[0], self.branch2[0]], self.branch0, owner=self)
        yield branch0
        yield self.branch1[1](branch1, **cat.slot(32))
        yield self.branch2[2](self.branch2[1](branch2), **cat.slot(32))


class Block17(ScaledResidualBlock):
    """17x17 residual block (Inception-ResNet-B, 896 channels): 1x1 | 1x1 -> 1x7 -> 7x1, concatenated
    (256), up-projected by ``conv2d`` and added as ``relu(x + scale * up)``. Matches facenet's ``Block17``."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__(scale=scale, relu=True)
        self.branch0 = BasicConv2d(896, 128, kernel_size=1, stride=1)
        self.branch1 = nn.Sequential(
            BasicConv2d(896, 128, kernel_size=1, stride=1),
            BasicConv2d(128, 128, kernel_size=(1, 7), stride=1, padding=(0, 3)),
            BasicConv2d(128, 128, kernel_size=(7, 1), stride=1, padding=(3, 0)),
        )
        self.conv2d = nn.Conv2d(256, 896, kernel_size=1, stride=1)
        self.out_channels = 256

    scratch_channels = 128  # branch1[0], fused with branch0

    def _forward(self, x: Tensor, cat: ChannelSlots):
        branch0, branch1 = cat.siblings(x, [self.branch1[0]], self.branch0, owner=self)
        yield branch0
        yield self.branch1[2](self.branch1[1](branch1), **cat.slot(128))


class Block8(ScaledResidualBlock):
    """8x8 residual block (Inception-ResNet-C, 1792 channels): 1x1 | 1x1 -> 1x3 -> 3x1, concatenated
    (384), up-projected by ``conv2d`` and added as ``relu(x + scale * up)`` (no ReLU with ``noReLU``:
    the network's last block). Matches facenet's ``Block8``."""

    def __init__(self, scale: float = 1.0, noReLU: bool = False) -> None:
        super().__init__(scale=scale, relu=not noReLU)
        self.noReLU = noReLU
        self.branch0 = BasicConv2d(1792, 192, kernel_size=1, stride=1)
        self.branch1 = nn.Sequential(
            BasicConv2d(1792, 192, kernel_size=1, stride=1),
            BasicConv2d(192, 192, kernel_size=(1, 3), stride=1, padding=(0, 1)),
            BasicConv2d(192, 192, kernel_size=(3, 1), stride=1, padding=(1, 0)),
        )
        self.conv2d = nn.Conv2d(384, 1792, kernel_size=1, stride=1)
        self.out_channels = 384

    scratch_channels = 192  # branch1[0], fused with branch0

    def _forward(self, x: Tensor, cat: ChannelSlots):
        branch0, branch1 = cat.siblings(x, [self.branch1[0]], self.branch0, owner=self)
        yield branch0
        yield self.branch1[2](self.branch1[1](branch1), **cat.slot(192))


class Mixed_6a(ReductionA):
    """Reduction-A (35x35 -> 17x17, 256 -> 896 channels). Matches facenet's ``Mixed_6a``."""

    def __init__(self) -> None:
        super().__init__(256, 192, 192, 256, 384)


class Mixed_7a(ReductionBlock):
    """Reduction-B (17x17 -> 8x8, 896 -> 1792 channels): 1x1 -> 3x3/s2 | 1x1 -> 3x3/s2 |
    1x1 -> 3x3 -> 3x3/s2 | 3x3/s2 max pool. Matches facenet's ``Mixed_7a``."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = nn.Sequential(
            BasicConv2d(896, 256, kernel_size=1, stride=1),
            BasicConv2d(256, 384, kernel_size=3, stride=2),
        )
        self.branch1 = nn.Sequential(
            BasicConv2d(896, 256, kernel_size=1, stride=1),
            BasicConv2d(256, 256, kernel_size=3, stride=2),
        )
        self.branch2 = nn.Sequential(
            BasicConv2d(896, 256, kernel_size=1, stride=1),
            BasicConv2d(256, 256, kernel_size=3, stride=1, padding=1),
            BasicConv2d(256, 256, kernel_size=3, stride=2),
        )
        self.branch3 = icnn.MaxPool2d(3, stride=2)
        self.out_channels = 384 + 256 + 256 + 896

    def _forward(self, x: Tensor, cat: ChannelSlots):
        # the three 1x1 reductions reading x: one GEMM into a buffer of their own (17x17, output 8x8)
        branch0, branch1, branch2 = cat.siblings(x, [self.branch0[0], self.branch1[0], self.branch2[0]], owner=self)
        yield self.branch0[1](branch0, **cat.slot(384))
        yield self.branch1[1](branch1, **cat.slot(256))
        yield self.branch2[2](self.branch2[1](branch2), **cat.slot(256))
        yield self.branch3(x, **cat.slot(896))


class InceptionResnetV1(nn.Module):
    """Inception-ResNet-v1, weight-compatible with ``facenet_pytorch.InceptionResnetV1``.

    Trunk: the paper's stem (``conv2d_1a`` ... ``conv2d_4b``), ``repeat_1`` (5 x Block35, scale 0.17),
    ``mixed_6a``, ``repeat_2`` (10 x Block17, scale 0.10), ``mixed_7a``, ``repeat_3`` (5 x Block8, scale
    0.20), ``block8`` (scale 1.0, no ReLU); 1792 channels at 1/32 of the input (input at least 75x75;
    160x160 for the face models). In eval mode without autograd it runs the fused kernels: BN folded,
    branches writing their slices of each block's concat, each residual add and ReLU in the epilogue of
    the block's up-projection, channels_last throughout.

    Heads:
        ``head="embedding"`` (facenet's, the default): adaptive average pool -> dropout ->
            ``last_linear`` (1792 -> 512, no bias) -> ``last_bn`` (BatchNorm1d, eps 1e-3); then
            ``logits`` (512 -> num_classes) when ``classify``, else the L2-normalised 512-d embedding.
            ``logits`` exists whenever ``num_classes`` is given (facenet's pretrained models carry one
            even when they return embeddings), so those checkpoints load strictly with their
            ``num_classes`` (8631 for VGGFace2, 10575 for CASIA-Webface). facenet itself builds
            ``logits`` only for pretrained weights or ``classify=True``: to load a facenet model built
            with ``classify=False, num_classes=k`` and no weights, pass ``num_classes=None``.
        ``head="classifier"`` (ImageNet): global average pool -> dropout -> ``last_linear`` (1792 ->
            num_classes, with bias); no ``last_bn``, no ``logits``.

    Args:
        classify: return ``logits`` (requires ``num_classes``) instead of the embedding (embedding head).
        num_classes: classes of ``logits`` (embedding head) or of ``last_linear`` (classifier head).
        dropout_prob: dropout before ``last_linear``.
        head: "embedding" or "classifier".

    Raises:
        ValueError: ``classify`` without ``num_classes``, a classifier head without ``num_classes``, or
            an unknown ``head``.
    """

    def __init__(self, classify: bool = False, num_classes: int | None = None, dropout_prob: float = 0.6,
                 head: str = "embedding") -> None:
        super().__init__()
        if head not in ("embedding", "classifier"):
            raise ValueError(f"head: expected 'embedding' or 'classifier', got {head!r}")
        if classify and num_classes is None:
            raise ValueError("num_classes: classify=True needs num_classes (the outputs of `logits`)")
        if head == "classifier" and num_classes is None:
            raise ValueError("num_classes: the classifier head needs num_classes")
        self.classify = classify
        self.num_classes = num_classes
        self.head = head

        self.conv2d_1a = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.conv2d_2a = BasicConv2d(32, 32, kernel_size=3, stride=1)
        self.conv2d_2b = BasicConv2d(32, 64, kernel_size=3, stride=1, padding=1)
        self.maxpool_3a = icnn.MaxPool2d(3, stride=2)
        self.conv2d_3b = BasicConv2d(64, 80, kernel_size=1, stride=1)
        self.conv2d_4a = BasicConv2d(80, 192, kernel_size=3, stride=1)
        self.conv2d_4b = BasicConv2d(192, 256, kernel_size=3, stride=2)
        self.repeat_1 = nn.Sequential(*(Block35(scale=0.17) for _ in range(5)))
        self.mixed_6a = Mixed_6a()
        self.repeat_2 = nn.Sequential(*(Block17(scale=0.10) for _ in range(10)))
        self.mixed_7a = Mixed_7a()
        self.repeat_3 = nn.Sequential(*(Block8(scale=0.20) for _ in range(5)))
        self.block8 = Block8(noReLU=True)
        self.avgpool_1a = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout_prob)
        if head == "classifier":
            self.last_linear = nn.Linear(1792, num_classes)
        else:
            self.last_linear = nn.Linear(1792, 512, bias=False)
            self.last_bn = nn.BatchNorm1d(512, eps=0.001, momentum=0.1, affine=True)
            if num_classes is not None:
                self.logits = nn.Linear(512, num_classes)
        # facenet's fixed_image_standardization, (255 x - 127.5) / 128, on aligned face crops
        self.pretrained_cfg = self.default_cfg = model_cfg(
            source="facenet-pytorch InceptionResnetV1", first_conv="conv2d_1a.conv",
            classifier="logits" if hasattr(self, "logits") else "last_linear", num_classes=num_classes,
            input_size=(3, 160, 160) if head == "embedding" else (3, 299, 299), min_input_size=(3, 75, 75),
            mean=(127.5 / 255,) * 3, std=(128 / 255,) * 3)

    def forward_features(self, x: Tensor) -> Tensor:
        """(N, 3, H, W) -> the last feature map (N, 1792, h, w) (3x3 at 160, 8x8 at 299), before pooling."""
        icf.check_network_input(x, self)
        x = fused_input(self, x)
        # N x 3 x 160 x 160
        x = self.conv2d_1a(x)
        # N x 32 x 79 x 79
        x = self.conv2d_2a(x)
        # N x 32 x 77 x 77
        x = self.conv2d_2b(x)
        # N x 64 x 77 x 77
        x = self.maxpool_3a(x)
        # N x 64 x 38 x 38
        x = self.conv2d_3b(x)
        # N x 80 x 38 x 38
        x = self.conv2d_4a(x)
        # N x 192 x 36 x 36
        x = self.conv2d_4b(x)
        # N x 256 x 17 x 17
        x = self.repeat_1(x)
        # N x 256 x 17 x 17
        x = self.mixed_6a(x)
        # N x 896 x 8 x 8
        x = self.repeat_2(x)
        # N x 896 x 8 x 8
        x = self.mixed_7a(x)
        # N x 1792 x 3 x 3
        x = self.repeat_3(x)
        # N x 1792 x 3 x 3
        x = self.block8(x)
        # N x 1792 x 3 x 3
        return x

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """(N, 1792, h, w) feature map -> the network's output.

        Embedding head: the L2-normalised (N, 512) embedding, or (N, num_classes) ``logits`` when
        ``classify``; with ``pre_logits`` the (N, 512) ``last_bn`` output (the input of ``logits``,
        not normalised). Classifier head: (N, num_classes), or the pooled (N, 1792) features.
        """
        x = self.avgpool_1a(x)
        # N x 1792 x 1 x 1
        x = self.dropout(x)
        x = torch.flatten(x, 1)
        # N x 1792
        if self.head == "classifier":
            return x if pre_logits else self.last_linear(x)
        x = self.last_bn(self.last_linear(x))
        # N x 512
        if pre_logits:
            return x
        if self.classify:
            return self.logits(x)  # N x num_classes
        return F.normalize(x, p=2, dim=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


@register_model
def inception_resnet_v1(num_classes: int | None = None, classify: bool = False, dropout_prob: float = 0.6,
                        **kwargs) -> InceptionResnetV1:
    """Inception-ResNet-v1 with facenet-pytorch's keys and face-embedding head (160x160 input):
    23,482,624 parameters without ``logits``.

    As ``facenet_pytorch.InceptionResnetV1(classify=..., num_classes=..., dropout_prob=...)``: the
    L2-normalised 512-d embedding, or ``logits`` when ``classify``. Other keyword arguments go to
    :class:`InceptionResnetV1` (an unknown one raises ``TypeError``).
    """
    return InceptionResnetV1(classify=classify, num_classes=num_classes, dropout_prob=dropout_prob, **kwargs)


@register_model
def inception_resnet_v1_imagenet(num_classes: int = 1000, dropout_prob: float = 0.2, **kwargs) -> InceptionResnetV1:
    """Inception-ResNet-v1 as an ImageNet classifier (the paper's configuration; no public weights):
    the same trunk, then global average pool -> dropout -> ``last_linear`` (Linear(1792, num_classes));
    24,357,096 parameters with 1000 classes; 299x299 input. ``dropout_prob`` 0.2 is the paper's keep
    probability of 0.8."""
    return InceptionResnetV1(num_classes=num_classes, dropout_prob=dropout_prob, head="classifier", **kwargs)
