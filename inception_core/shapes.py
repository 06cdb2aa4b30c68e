# GENERATED FILE -- DO NOT EDIT BY HAND.
# Regenerate with:  python tools/make_shape_catalogue.py
# (needs torch, torchvision, timm, pretrainedmodels, facenet-pytorch; random weights, nothing is downloaded)
"""Shape catalogue of every convolution and pooling op run by the six Inception-family networks.

Each network is run once, batch 1, at its native input resolution (``NATIVE_INPUT``) and every call of
``conv2d`` / ``max_pool2d`` / ``avg_pool2d`` / ``adaptive_avg_pool2d`` is recorded with its real arguments.
Entries are deduplicated per model on the geometry (every field except ``layer`` and ``count``), in the
order the network first runs them; ``layer`` is the module path of the first layer with that geometry
(``<block>/F.<op>#<i>`` for functional pools called inside a block's forward) and ``count`` is how many
layers of that model share it.

Reference implementations: googlenet / inception_v3 = torchvision, bn_inception = pretrainedmodels,
inception_v4 / inception_resnet_v2 = timm, inception_resnet_v1 = facenet-pytorch (160x160 faces).

Auxiliary classifier heads (GoogLeNet ``aux1``/``aux2``, Inception-v3 ``AuxLogits``; they only run
in training mode) are included; their entries are never merged with main-network entries, so the
``is_aux`` property (first layer-path component in ``AUX_MODULES``) separates them.

Pools: ``kind`` is "max", "avg" or "adaptive_avg".  For "adaptive_avg" the output size is stored in
``kernel`` and ``stride``/``padding`` are (0, 0) (not applicable).  ``count_include_pad`` is only meaningful
for "avg" pools; it is True for "max" and "adaptive_avg" entries by convention.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

__all__ = [
    "AUX_MODULES",
    "CONV_SHAPES",
    "MODELS",
    "NATIVE_INPUT",
    "POOL_SHAPES",
    "ConvGeometry",
    "ConvShape",
    "PoolGeometry",
    "PoolShape",
    "conv_geometries",
    "pool_geometries",
]

MODELS: tuple[str, ...] = (
    "googlenet",
    "bn_inception",
    "inception_v3",
    "inception_v4",
    "inception_resnet_v1",
    "inception_resnet_v2",
)
# native input resolution (square) of each model
NATIVE_INPUT: dict[str, int] = {
    "googlenet": 224,
    "bn_inception": 224,
    "inception_v3": 299,
    "inception_v4": 299,
    "inception_resnet_v1": 160,
    "inception_resnet_v2": 299,
}
# top-level modules of the auxiliary heads
AUX_MODULES: tuple[str, ...] = ("aux1", "aux2", "AuxLogits")


def _is_aux_layer(layer: str) -> bool:
    return layer.replace("/", ".").split(".", 1)[0] in AUX_MODULES


def _pool_out(n: int, k: int, s: int, p: int, ceil_mode: bool) -> int:
    # PyTorch pooling output size (a ceil-mode window must start inside the input or left padding)
    span = n + 2 * p - k
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


@dataclass(frozen=True)
class ConvShape:
    model: str
    layer: str  # first layer (module path) that has this geometry
    count: int  # how many layers of this model share the geometry
    in_channels: int
    out_channels: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    in_hw: tuple[int, int]  # input spatial size at the native input resolution
    bias: bool

    @property
    def out_hw(self) -> tuple[int, int]:
        return (
            (self.in_hw[0] + 2 * self.padding[0] - self.kernel[0]) // self.stride[0] + 1,
            (self.in_hw[1] + 2 * self.padding[1] - self.kernel[1]) // self.stride[1] + 1,
        )

    @property
    def macs(self) -> int:
        """Multiply-accumulates of ONE such layer at batch 1 (multiply by ``count`` for the total)."""
        oh, ow = self.out_hw
        return oh * ow * self.out_channels * self.in_channels * self.kernel[0] * self.kernel[1]

    @property
    def is_aux(self) -> bool:
        return _is_aux_layer(self.layer)


@dataclass(frozen=True)
class PoolShape:
    model: str
    layer: str
    count: int
    kind: str  # "max" | "avg" | "adaptive_avg"
    channels: int
    kernel: tuple[int, int]  # output size for "adaptive_avg"
    stride: tuple[int, int]
    padding: tuple[int, int]
    ceil_mode: bool
    count_include_pad: bool  # True for max pools
    in_hw: tuple[int, int]

    @property
    def out_hw(self) -> tuple[int, int]:
        if self.kind == "adaptive_avg":
            return self.kernel
        return (
            _pool_out(self.in_hw[0], self.kernel[0], self.stride[0], self.padding[0], self.ceil_mode),
            _pool_out(self.in_hw[1], self.kernel[1], self.stride[1], self.padding[1], self.ceil_mode),
        )

    @property
    def is_aux(self) -> bool:
        return _is_aux_layer(self.layer)


class ConvGeometry(NamedTuple):
    in_channels: int
    out_channels: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]


class PoolGeometry(NamedTuple):
    kind: str
    channels: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    ceil_mode: bool
    count_include_pad: bool


def conv_geometries(models: tuple[str, ...] | None = None) -> tuple[ConvGeometry, ...]:
    """Distinct (in_channels, out_channels, kernel, stride, padding) over ``models`` (default: all),
    ignoring model/layer/count/in_hw/bias, in first-seen order."""
    seen: dict[ConvGeometry, None] = {}
    for s in CONV_SHAPES:
        if models is None or s.model in models:
            seen.setdefault(ConvGeometry(s.in_channels, s.out_channels, s.kernel, s.stride, s.padding))
    return tuple(seen)


def pool_geometries(models: tuple[str, ...] | None = None) -> tuple[PoolGeometry, ...]:
    """Distinct (kind, channels, kernel, stride, padding, ceil_mode, count_include_pad) over ``models``
    (default: all), ignoring model/layer/count/in_hw, in first-seen order."""
    seen: dict[PoolGeometry, None] = {}
    for s in POOL_SHAPES:
        if models is None or s.model in models:
            geometry = PoolGeometry(
                s.kind, s.channels, s.kernel, s.stride, s.padding, s.ceil_mode, s.count_include_pad
            )
            seen.setdefault(geometry)
    return tuple(seen)


def _convs(model: str, rows: tuple[tuple, ...]) -> tuple[ConvShape, ...]:
    return tuple(ConvShape(model, *row) for row in rows)


def _pools(model: str, rows: tuple[tuple, ...]) -> tuple[PoolShape, ...]:
    return tuple(PoolShape(model, *row) for row in rows)


# fmt: off
CONV_SHAPES: tuple[ConvShape, ...] = (
    # googlenet @ 224: 51 geometries
    # (layer, count, in_channels, out_channels, kernel, stride, padding, in_hw, bias)
    *_convs("googlenet", (
        ("conv1.conv", 1, 3, 64, (7, 7), (2, 2), (3, 3), (224, 224), False),
        ("conv2.conv", 1, 64, 64, (1, 1), (1, 1), (0, 0), (56, 56), False),
        ("conv3.conv", 1, 64, 192, (3, 3), (1, 1), (1, 1), (56, 56), False),
        ("inception3a.branch1.conv", 1, 192, 64, (1, 1), (1, 1), (0, 0), (28, 28), False),
        ("inception3a.branch2.0.conv", 1, 192, 96, (1, 1), (1, 1), (0, 0), (28, 28), False),
        ("inception3a.branch2.1.conv", 1, 96, 128, (3, 3), (1, 1), (1, 1), (28, 28), False),
        ("inception3a.branch3.0.conv", 1, 192, 16, (1, 1), (1, 1), (0, 0), (28, 28), False),
        ("inception3a.branch3.1.conv", 1, 16, 32, (3, 3), (1, 1), (1, 1), (28, 28), False),
        ("inception3a.branch4.1.conv", 1, 192, 32, (1, 1), (1, 1), (0, 0), (28, 28), False),
        ("inception3b.branch1.conv", 2, 256, 128, (1, 1), (1, 1), (0, 0), (28, 28), False),
        ("inception3b.branch2.1.conv", 1, 128, 192, (3, 3), (1, 1), (1, 1), (28, 28), False),
        ("inception3b.branch3.0.conv", 1, 256, 32, (1, 1), (1, 1), (0, 0), (28, 28), False),
        ("inception3b.branch3.1.conv", 1, 32, 96, (3, 3), (1, 1), (1, 1), (28, 28), False),
        ("inception3b.branch4.1.conv", 1, 256, 64, (1, 1), (1, 1), (0, 0), (28, 28), False),
        ("inception4a.branch1.conv", 1, 480, 192, (1, 1), (1, 1), (0, 0), (14, 14), False),
        ("inception4a.branch2.0.conv", 1, 480, 96, (1, 1), (1, 1), (0, 0), (14, 14), False),
        ("inception4a.branch2.1.conv", 1, 96, 208, (3, 3), (1, 1), (1, 1), (14, 14), False),
        ("inception4a.branch3.0.conv", 1, 480, 16, (1, 1), (1, 1), (0, 0), (14, 14), False),
        ("inception4a.branch3.1.conv", 1, 16, 48, (3, 3), (1, 1), (1, 1), (14, 14), False),
        ("inception4a.branch4.1.conv", 1, 480, 64, (1, 1), (1, 1), (0, 0), (14, 14), False),
        ("aux1.conv.conv", 1, 512, 128, (1, 1), (1, 1), (0, 0), (4, 4), False),
        ("inception4b.branch1.conv", 1, 512, 160, (1, 1), (1, 1), (0, 0), (14, 14), False),
        ("inception4b.branch2.0.conv", 2, 512, 112, (1, 1), (1, 1), (0, 0), (14, 14), False),
        ("inception4b.branch2.1.conv", 1, 112, 224, (3, 3), (1, 1), (1, 1), (14, 14), False),
        ("inception4b.branch3.0.conv", 2, 512, 24, (1, 1), (1, 1), (0, 0), (14, 14), False),
        ("inception4b.branch3.1.conv", 2, 24, 64, (3, 3), (1, 1), (1, 1), (14, 14), False),
        ("inception4b.branch4.1.conv", 3, 512, 64, (1, 1), (1, 1), (0, 0), (14, 14), False),
        ("inception4c.branch1.conv", 2, 512, 128, (1, 1), (1, 1), (0, 0), (14, 14), False),
        ("inception4c.branch2.1.conv", 1, 128, 256, (3, 3), (1, 1), (1, 1), (14, 14), False),
        ("inception4d.branch2.0.conv", 1, 512, 144, (1, 1), (1, 1), (0, 0), (14, 14), False),
        ("inception4d.branch2.1.conv", 1, 144, 288, (3, 3), (1, 1), (1, 1), (14, 14), False),
        ("inception4d.branch3.0.conv", 1, 512, 32, (1, 1), (1, 1), (0, 0), (14, 14), False),
        ("inception4d.branch3.1.conv", 1, 32, 64, (3, 3), (1, 1), (1, 1), (14, 14), False),
        ("aux2.conv.conv", 1, 528, 128, (1, 1), (1, 1), (0, 0), (4, 4), False),
        ("inception4e.branch1.conv", 1, 528, 256, (1, 1), (1, 1), (0, 0), (14, 14), False),
        ("inception4e.branch2.0.conv", 1, 528, 160, (1, 1), (1, 1), (0, 0), (14, 14), False),
        ("inception4e.branch2.1.conv", 1, 160, 320, (3, 3), (1, 1), (1, 1), (14, 14), False),
        ("inception4e.branch3.0.conv", 1, 528, 32, (1, 1), (1, 1), (0, 0), (14, 14), False),
        ("inception4e.branch3.1.conv", 1, 32, 128, (3, 3), (1, 1), (1, 1), (14, 14), False),
        ("inception4e.branch4.1.conv", 1, 528, 128, (1, 1), (1, 1), (0, 0), (14, 14), False),
        ("inception5a.branch1.conv", 1, 832, 256, (1, 1), (1, 1), (0, 0), (7, 7), False),
        ("inception5a.branch2.0.conv", 1, 832, 160, (1, 1), (1, 1), (0, 0), (7, 7), False),
        ("inception5a.branch2.1.conv", 1, 160, 320, (3, 3), (1, 1), (1, 1), (7, 7), False),
        ("inception5a.branch3.0.conv", 1, 832, 32, (1, 1), (1, 1), (0, 0), (7, 7), False),
        ("inception5a.branch3.1.conv", 1, 32, 128, (3, 3), (1, 1), (1, 1), (7, 7), False),
        ("inception5a.branch4.1.conv", 2, 832, 128, (1, 1), (1, 1), (0, 0), (7, 7), False),
        ("inception5b.branch1.conv", 1, 832, 384, (1, 1), (1, 1), (0, 0), (7, 7), False),
        ("inception5b.branch2.0.conv", 1, 832, 192, (1, 1), (1, 1), (0, 0), (7, 7), False),
        ("inception5b.branch2.1.conv", 1, 192, 384, (3, 3), (1, 1), (1, 1), (7, 7), False),
        ("inception5b.branch3.0.conv", 1, 832, 48, (1, 1), (1, 1), (0, 0), (7, 7), False),
        ("inception5b.branch3.1.conv", 1, 48, 128, (3, 3), (1, 1), (1, 1), (7, 7), False),
    )),
    # bn_inception @ 224: 45 geometries
    # (layer, count, in_channels, out_channels, kernel, stride, padding, in_hw, bias)
    *_convs("bn_inception", (
        ("conv1_7x7_s2", 1, 3, 64, (7, 7), (2, 2), (3, 3), (224, 224), True),
        ("conv2_3x3_reduce", 1, 64, 64, (1, 1), (1, 1), (0, 0), (56, 56), True),
        ("conv2_3x3", 1, 64, 192, (3, 3), (1, 1), (1, 1), (56, 56), True),
        ("inception_3a_1x1", 3, 192, 64, (1, 1), (1, 1), (0, 0), (28, 28), True),
        ("inception_3a_3x3", 1, 64, 64, (3, 3), (1, 1), (1, 1), (28, 28), True),
        ("inception_3a_double_3x3_1", 4, 64, 96, (3, 3), (1, 1), (1, 1), (28, 28), True),
        ("inception_3a_double_3x3_2", 2, 96, 96, (3, 3), (1, 1), (1, 1), (28, 28), True),
        ("inception_3a_pool_proj", 1, 192, 32, (1, 1), (1, 1), (0, 0), (28, 28), True),
        ("inception_3b_1x1", 4, 256, 64, (1, 1), (1, 1), (0, 0), (28, 28), True),
        ("inception_3c_3x3_reduce", 1, 320, 128, (1, 1), (1, 1), (0, 0), (28, 28), True),
        ("inception_3c_3x3", 1, 128, 160, (3, 3), (2, 2), (1, 1), (28, 28), True),
        ("inception_3c_double_3x3_reduce", 1, 320, 64, (1, 1), (1, 1), (0, 0), (28, 28), True),
        ("inception_3c_double_3x3_2", 1, 96, 96, (3, 3), (2, 2), (1, 1), (28, 28), True),
        ("inception_4a_1x1", 1, 576, 224, (1, 1), (1, 1), (0, 0), (14, 14), True),
        ("inception_4a_3x3_reduce", 1, 576, 64, (1, 1), (1, 1), (0, 0), (14, 14), True),
        ("inception_4a_3x3", 1, 64, 96, (3, 3), (1, 1), (1, 1), (14, 14), True),
        ("inception_4a_double_3x3_reduce", 3, 576, 96, (1, 1), (1, 1), (0, 0), (14, 14), True),
        ("inception_4a_double_3x3_1", 3, 96, 128, (3, 3), (1, 1), (1, 1), (14, 14), True),
        ("inception_4a_double_3x3_2", 2, 128, 128, (3, 3), (1, 1), (1, 1), (14, 14), True),
        ("inception_4a_pool_proj", 5, 576, 128, (1, 1), (1, 1), (0, 0), (14, 14), True),
        ("inception_4b_1x1", 1, 576, 192, (1, 1), (1, 1), (0, 0), (14, 14), True),
        ("inception_4c_1x1", 1, 576, 160, (1, 1), (1, 1), (0, 0), (14, 14), True),
        ("inception_4c_3x3", 2, 128, 160, (3, 3), (1, 1), (1, 1), (14, 14), True),
        ("inception_4c_double_3x3_2", 1, 160, 160, (3, 3), (1, 1), (1, 1), (14, 14), True),
        ("inception_4d_1x1", 1, 608, 96, (1, 1), (1, 1), (0, 0), (14, 14), True),
        ("inception_4d_3x3_reduce", 3, 608, 128, (1, 1), (1, 1), (0, 0), (14, 14), True),
        ("inception_4d_3x3", 1, 128, 192, (3, 3), (1, 1), (1, 1), (14, 14), True),
        ("inception_4d_double_3x3_reduce", 1, 608, 160, (1, 1), (1, 1), (0, 0), (14, 14), True),
        ("inception_4d_double_3x3_1", 1, 160, 192, (3, 3), (1, 1), (1, 1), (14, 14), True),
        ("inception_4d_double_3x3_2", 1, 192, 192, (3, 3), (1, 1), (1, 1), (14, 14), True),
        ("inception_4e_3x3", 1, 128, 192, (3, 3), (2, 2), (1, 1), (14, 14), True),
        ("inception_4e_double_3x3_reduce", 1, 608, 192, (1, 1), (1, 1), (0, 0), (14, 14), True),
        ("inception_4e_double_3x3_1", 1, 192, 256, (3, 3), (1, 1), (1, 1), (14, 14), True),
        ("inception_4e_double_3x3_2", 1, 256, 256, (3, 3), (2, 2), (1, 1), (14, 14), True),
        ("inception_5a_1x1", 1, 1056, 352, (1, 1), (1, 1), (0, 0), (7, 7), True),
        ("inception_5a_3x3_reduce", 1, 1056, 192, (1, 1), (1, 1), (0, 0), (7, 7), True),
        ("inception_5a_3x3", 2, 192, 320, (3, 3), (1, 1), (1, 1), (7, 7), True),
        ("inception_5a_double_3x3_reduce", 1, 1056, 160, (1, 1), (1, 1), (0, 0), (7, 7), True),
        ("inception_5a_double_3x3_1", 1, 160, 224, (3, 3), (1, 1), (1, 1), (7, 7), True),
        ("inception_5a_double_3x3_2", 2, 224, 224, (3, 3), (1, 1), (1, 1), (7, 7), True),
        ("inception_5a_pool_proj", 1, 1056, 128, (1, 1), (1, 1), (0, 0), (7, 7), True),
        ("inception_5b_1x1", 1, 1024, 352, (1, 1), (1, 1), (0, 0), (7, 7), True),
        ("inception_5b_3x3_reduce", 2, 1024, 192, (1, 1), (1, 1), (0, 0), (7, 7), True),
        ("inception_5b_double_3x3_1", 1, 192, 224, (3, 3), (1, 1), (1, 1), (7, 7), True),
        ("inception_5b_pool_proj", 1, 1024, 128, (1, 1), (1, 1), (0, 0), (7, 7), True),
    )),
    # inception_v3 @ 299: 45 geometries
    # (layer, count, in_channels, out_channels, kernel, stride, padding, in_hw, bias)
    *_convs("inception_v3", (
        ("Conv2d_1a_3x3.conv", 1, 3, 32, (3, 3), (2, 2), (0, 0), (299, 299), False),
        ("Conv2d_2a_3x3.conv", 1, 32, 32, (3, 3), (1, 1), (0, 0), (149, 149), False),
        ("Conv2d_2b_3x3.conv", 1, 32, 64, (3, 3), (1, 1), (1, 1), (147, 147), False),
        ("Conv2d_3b_1x1.conv", 1, 64, 80, (1, 1), (1, 1), (0, 0), (73, 73), False),
        ("Conv2d_4a_3x3.conv", 1, 80, 192, (3, 3), (1, 1), (0, 0), (73, 73), False),
        ("Mixed_5b.branch1x1.conv", 2, 192, 64, (1, 1), (1, 1), (0, 0), (35, 35), False),
        ("Mixed_5b.branch5x5_1.conv", 1, 192, 48, (1, 1), (1, 1), (0, 0), (35, 35), False),
        ("Mixed_5b.branch5x5_2.conv", 3, 48, 64, (5, 5), (1, 1), (2, 2), (35, 35), False),
        ("Mixed_5b.branch3x3dbl_2.conv", 4, 64, 96, (3, 3), (1, 1), (1, 1), (35, 35), False),
        ("Mixed_5b.branch3x3dbl_3.conv", 3, 96, 96, (3, 3), (1, 1), (1, 1), (35, 35), False),
        ("Mixed_5b.branch_pool.conv", 1, 192, 32, (1, 1), (1, 1), (0, 0), (35, 35), False),
        ("Mixed_5c.branch1x1.conv", 3, 256, 64, (1, 1), (1, 1), (0, 0), (35, 35), False),
        ("Mixed_5c.branch5x5_1.conv", 1, 256, 48, (1, 1), (1, 1), (0, 0), (35, 35), False),
        ("Mixed_5d.branch1x1.conv", 4, 288, 64, (1, 1), (1, 1), (0, 0), (35, 35), False),
        ("Mixed_5d.branch5x5_1.conv", 1, 288, 48, (1, 1), (1, 1), (0, 0), (35, 35), False),
        ("Mixed_6a.branch3x3.conv", 1, 288, 384, (3, 3), (2, 2), (0, 0), (35, 35), False),
        ("Mixed_6a.branch3x3dbl_3.conv", 1, 96, 96, (3, 3), (2, 2), (0, 0), (35, 35), False),
        ("Mixed_6b.branch1x1.conv", 12, 768, 192, (1, 1), (1, 1), (0, 0), (17, 17), False),
        ("Mixed_6b.branch7x7_1.conv", 2, 768, 128, (1, 1), (1, 1), (0, 0), (17, 17), False),
        ("Mixed_6b.branch7x7_2.conv", 2, 128, 128, (1, 7), (1, 1), (0, 3), (17, 17), False),
        ("Mixed_6b.branch7x7_3.conv", 1, 128, 192, (7, 1), (1, 1), (3, 0), (17, 17), False),
        ("Mixed_6b.branch7x7dbl_2.conv", 2, 128, 128, (7, 1), (1, 1), (3, 0), (17, 17), False),
        ("Mixed_6b.branch7x7dbl_5.conv", 1, 128, 192, (1, 7), (1, 1), (0, 3), (17, 17), False),
        ("Mixed_6c.branch7x7_1.conv", 4, 768, 160, (1, 1), (1, 1), (0, 0), (17, 17), False),
        ("Mixed_6c.branch7x7_2.conv", 4, 160, 160, (1, 7), (1, 1), (0, 3), (17, 17), False),
        ("Mixed_6c.branch7x7_3.conv", 2, 160, 192, (7, 1), (1, 1), (3, 0), (17, 17), False),
        ("Mixed_6c.branch7x7dbl_2.conv", 4, 160, 160, (7, 1), (1, 1), (3, 0), (17, 17), False),
        ("Mixed_6c.branch7x7dbl_5.conv", 2, 160, 192, (1, 7), (1, 1), (0, 3), (17, 17), False),
        ("Mixed_6e.branch7x7_2.conv", 4, 192, 192, (1, 7), (1, 1), (0, 3), (17, 17), False),
        ("Mixed_6e.branch7x7_3.conv", 4, 192, 192, (7, 1), (1, 1), (3, 0), (17, 17), False),
        ("AuxLogits.conv0.conv", 1, 768, 128, (1, 1), (1, 1), (0, 0), (5, 5), False),
        ("AuxLogits.conv1.conv", 1, 128, 768, (5, 5), (1, 1), (0, 0), (5, 5), False),
        ("Mixed_7a.branch3x3_2.conv", 1, 192, 320, (3, 3), (2, 2), (0, 0), (17, 17), False),
        ("Mixed_7a.branch7x7x3_4.conv", 1, 192, 192, (3, 3), (2, 2), (0, 0), (17, 17), False),
        ("Mixed_7b.branch1x1.conv", 1, 1280, 320, (1, 1), (1, 1), (0, 0), (8, 8), False),
        ("Mixed_7b.branch3x3_1.conv", 1, 1280, 384, (1, 1), (1, 1), (0, 0), (8, 8), False),
        ("Mixed_7b.branch3x3_2a.conv", 4, 384, 384, (1, 3), (1, 1), (0, 1), (8, 8), False),
        ("Mixed_7b.branch3x3_2b.conv", 4, 384, 384, (3, 1), (1, 1), (1, 0), (8, 8), False),
        ("Mixed_7b.branch3x3dbl_1.conv", 1, 1280, 448, (1, 1), (1, 1), (0, 0), (8, 8), False),
        ("Mixed_7b.branch3x3dbl_2.conv", 2, 448, 384, (3, 3), (1, 1), (1, 1), (8, 8), False),
        ("Mixed_7b.branch_pool.conv", 1, 1280, 192, (1, 1), (1, 1), (0, 0), (8, 8), False),
        ("Mixed_7c.branch1x1.conv", 1, 2048, 320, (1, 1), (1, 1), (0, 0), (8, 8), False),
        ("Mixed_7c.branch3x3_1.conv", 1, 2048, 384, (1, 1), (1, 1), (0, 0), (8, 8), False),
        ("Mixed_7c.branch3x3dbl_1.conv", 1, 2048, 448, (1, 1), (1, 1), (0, 0), (8, 8), False),
        ("Mixed_7c.branch_pool.conv", 1, 2048, 192, (1, 1), (1, 1), (0, 0), (8, 8), False),
    )),
    # inception_v4 @ 299: 38 geometries
    # (layer, count, in_channels, out_channels, kernel, stride, padding, in_hw, bias)
    *_convs("inception_v4", (
        ("features.0.conv", 1, 3, 32, (3, 3), (2, 2), (0, 0), (299, 299), False),
        ("features.1.conv", 1, 32, 32, (3, 3), (1, 1), (0, 0), (149, 149), False),
        ("features.2.conv", 1, 32, 64, (3, 3), (1, 1), (1, 1), (147, 147), False),
        ("features.3.conv.conv", 1, 64, 96, (3, 3), (2, 2), (0, 0), (147, 147), False),
        ("features.4.branch0.0.conv", 2, 160, 64, (1, 1), (1, 1), (0, 0), (73, 73), False),
        ("features.4.branch0.1.conv", 2, 64, 96, (3, 3), (1, 1), (0, 0), (73, 73), False),
        ("features.4.branch1.1.conv", 1, 64, 64, (1, 7), (1, 1), (0, 3), (73, 73), False),
        ("features.4.branch1.2.conv", 1, 64, 64, (7, 1), (1, 1), (3, 0), (73, 73), False),
        ("features.5.conv.conv", 1, 192, 192, (3, 3), (2, 2), (0, 0), (71, 71), False),
        ("features.6.branch0.conv", 8, 384, 96, (1, 1), (1, 1), (0, 0), (35, 35), False),
        ("features.6.branch1.0.conv", 8, 384, 64, (1, 1), (1, 1), (0, 0), (35, 35), False),
        ("features.6.branch1.1.conv", 8, 64, 96, (3, 3), (1, 1), (1, 1), (35, 35), False),
        ("features.6.branch2.2.conv", 4, 96, 96, (3, 3), (1, 1), (1, 1), (35, 35), False),
        ("features.10.branch0.conv", 1, 384, 384, (3, 3), (2, 2), (0, 0), (35, 35), False),
        ("features.10.branch1.0.conv", 1, 384, 192, (1, 1), (1, 1), (0, 0), (35, 35), False),
        ("features.10.branch1.1.conv", 1, 192, 224, (3, 3), (1, 1), (1, 1), (35, 35), False),
        ("features.10.branch1.2.conv", 1, 224, 256, (3, 3), (2, 2), (0, 0), (35, 35), False),
        ("features.11.branch0.conv", 7, 1024, 384, (1, 1), (1, 1), (0, 0), (17, 17), False),
        ("features.11.branch1.0.conv", 15, 1024, 192, (1, 1), (1, 1), (0, 0), (17, 17), False),
        ("features.11.branch1.1.conv", 14, 192, 224, (1, 7), (1, 1), (0, 3), (17, 17), False),
        ("features.11.branch1.2.conv", 7, 224, 256, (7, 1), (1, 1), (3, 0), (17, 17), False),
        ("features.11.branch2.1.conv", 7, 192, 192, (7, 1), (1, 1), (3, 0), (17, 17), False),
        ("features.11.branch2.3.conv", 7, 224, 224, (7, 1), (1, 1), (3, 0), (17, 17), False),
        ("features.11.branch2.4.conv", 7, 224, 256, (1, 7), (1, 1), (0, 3), (17, 17), False),
        ("features.11.branch3.1.conv", 7, 1024, 128, (1, 1), (1, 1), (0, 0), (17, 17), False),
        ("features.18.branch0.1.conv", 1, 192, 192, (3, 3), (2, 2), (0, 0), (17, 17), False),
        ("features.18.branch1.0.conv", 1, 1024, 256, (1, 1), (1, 1), (0, 0), (17, 17), False),
        ("features.18.branch1.1.conv", 1, 256, 256, (1, 7), (1, 1), (0, 3), (17, 17), False),
        ("features.18.branch1.2.conv", 1, 256, 320, (7, 1), (1, 1), (3, 0), (17, 17), False),
        ("features.18.branch1.3.conv", 1, 320, 320, (3, 3), (2, 2), (0, 0), (17, 17), False),
        ("features.19.branch0.conv", 6, 1536, 256, (1, 1), (1, 1), (0, 0), (8, 8), False),
        ("features.19.branch1_0.conv", 6, 1536, 384, (1, 1), (1, 1), (0, 0), (8, 8), False),
        ("features.19.branch1_1a.conv", 3, 384, 256, (1, 3), (1, 1), (0, 1), (8, 8), False),
        ("features.19.branch1_1b.conv", 3, 384, 256, (3, 1), (1, 1), (1, 0), (8, 8), False),
        ("features.19.branch2_1.conv", 3, 384, 448, (3, 1), (1, 1), (1, 0), (8, 8), False),
        ("features.19.branch2_2.conv", 3, 448, 512, (1, 3), (1, 1), (0, 1), (8, 8), False),
        ("features.19.branch2_3a.conv", 3, 512, 256, (1, 3), (1, 1), (0, 1), (8, 8), False),
        ("features.19.branch2_3b.conv", 3, 512, 256, (3, 1), (1, 1), (1, 0), (8, 8), False),
    )),
    # inception_resnet_v1 @ 160: 25 geometries
    # (layer, count, in_channels, out_channels, kernel, stride, padding, in_hw, bias)
    *_convs("inception_resnet_v1", (
        ("conv2d_1a.conv", 1, 3, 32, (3, 3), (2, 2), (0, 0), (160, 160), False),
        ("conv2d_2a.conv", 1, 32, 32, (3, 3), (1, 1), (0, 0), (79, 79), False),
        ("conv2d_2b.conv", 1, 32, 64, (3, 3), (1, 1), (1, 1), (77, 77), False),
        ("conv2d_3b.conv", 1, 64, 80, (1, 1), (1, 1), (0, 0), (38, 38), False),
        ("conv2d_4a.conv", 1, 80, 192, (3, 3), (1, 1), (0, 0), (38, 38), False),
        ("conv2d_4b.conv", 1, 192, 256, (3, 3), (2, 2), (0, 0), (36, 36), False),
        ("repeat_1.0.branch0.conv", 15, 256, 32, (1, 1), (1, 1), (0, 0), (17, 17), False),
        ("repeat_1.0.branch1.1.conv", 15, 32, 32, (3, 3), (1, 1), (1, 1), (17, 17), False),
        ("repeat_1.0.conv2d", 5, 96, 256, (1, 1), (1, 1), (0, 0), (17, 17), True),
        ("mixed_6a.branch0.conv", 1, 256, 384, (3, 3), (2, 2), (0, 0), (17, 17), False),
        ("mixed_6a.branch1.0.conv", 1, 256, 192, (1, 1), (1, 1), (0, 0), (17, 17), False),
        ("mixed_6a.branch1.1.conv", 1, 192, 192, (3, 3), (1, 1), (1, 1), (17, 17), False),
        ("mixed_6a.branch1.2.conv", 1, 192, 256, (3, 3), (2, 2), (0, 0), (17, 17), False),
        ("repeat_2.0.branch0.conv", 20, 896, 128, (1, 1), (1, 1), (0, 0), (8, 8), False),
        ("repeat_2.0.branch1.1.conv", 10, 128, 128, (1, 7), (1, 1), (0, 3), (8, 8), False),
        ("repeat_2.0.branch1.2.conv", 10, 128, 128, (7, 1), (1, 1), (3, 0), (8, 8), False),
        ("repeat_2.0.conv2d", 10, 256, 896, (1, 1), (1, 1), (0, 0), (8, 8), True),
        ("mixed_7a.branch0.0.conv", 3, 896, 256, (1, 1), (1, 1), (0, 0), (8, 8), False),
        ("mixed_7a.branch0.1.conv", 1, 256, 384, (3, 3), (2, 2), (0, 0), (8, 8), False),
        ("mixed_7a.branch1.1.conv", 2, 256, 256, (3, 3), (2, 2), (0, 0), (8, 8), False),
        ("mixed_7a.branch2.1.conv", 1, 256, 256, (3, 3), (1, 1), (1, 1), (8, 8), False),
        ("repeat_3.0.branch0.conv", 12, 1792, 192, (1, 1), (1, 1), (0, 0), (3, 3), False),
        ("repeat_3.0.branch1.1.conv", 6, 192, 192, (1, 3), (1, 1), (0, 1), (3, 3), False),
        ("repeat_3.0.branch1.2.conv", 6, 192, 192, (3, 1), (1, 1), (1, 0), (3, 3), False),
        ("repeat_3.0.conv2d", 6, 384, 1792, (1, 1), (1, 1), (0, 0), (3, 3), True),
    )),
    # inception_resnet_v2 @ 299: 35 geometries
    # (layer, count, in_channels, out_channels, kernel, stride, padding, in_hw, bias)
    *_convs("inception_resnet_v2", (
        ("conv2d_1a.conv", 1, 3, 32, (3, 3), (2, 2), (0, 0), (299, 299), False),
        ("conv2d_2a.conv", 1, 32, 32, (3, 3), (1, 1), (0, 0), (149, 149), False),
        ("conv2d_2b.conv", 1, 32, 64, (3, 3), (1, 1), (1, 1), (147, 147), False),
        ("conv2d_3b.conv", 1, 64, 80, (1, 1), (1, 1), (0, 0), (73, 73), False),
        ("conv2d_4a.conv", 1, 80, 192, (3, 3), (1, 1), (0, 0), (73, 73), False),
        ("mixed_5b.branch0.conv", 1, 192, 96, (1, 1), (1, 1), (0, 0), (35, 35), False),
        ("mixed_5b.branch1.0.conv", 1, 192, 48, (1, 1), (1, 1), (0, 0), (35, 35), False),
        ("mixed_5b.branch1.1.conv", 1, 48, 64, (5, 5), (1, 1), (2, 2), (35, 35), False),
        ("mixed_5b.branch2.0.conv", 2, 192, 64, (1, 1), (1, 1), (0, 0), (35, 35), False),
        ("mixed_5b.branch2.1.conv", 1, 64, 96, (3, 3), (1, 1), (1, 1), (35, 35), False),
        ("mixed_5b.branch2.2.conv", 1, 96, 96, (3, 3), (1, 1), (1, 1), (35, 35), False),
        ("repeat.0.branch0.conv", 30, 320, 32, (1, 1), (1, 1), (0, 0), (35, 35), False),
        ("repeat.0.branch1.1.conv", 10, 32, 32, (3, 3), (1, 1), (1, 1), (35, 35), False),
        ("repeat.0.branch2.1.conv", 10, 32, 48, (3, 3), (1, 1), (1, 1), (35, 35), False),
        ("repeat.0.branch2.2.conv", 10, 48, 64, (3, 3), (1, 1), (1, 1), (35, 35), False),
        ("repeat.0.conv2d", 10, 128, 320, (1, 1), (1, 1), (0, 0), (35, 35), True),
        ("mixed_6a.branch0.conv", 1, 320, 384, (3, 3), (2, 2), (0, 0), (35, 35), False),
        ("mixed_6a.branch1.0.conv", 1, 320, 256, (1, 1), (1, 1), (0, 0), (35, 35), False),
        ("mixed_6a.branch1.1.conv", 1, 256, 256, (3, 3), (1, 1), (1, 1), (35, 35), False),
        ("mixed_6a.branch1.2.conv", 1, 256, 384, (3, 3), (2, 2), (0, 0), (35, 35), False),
        ("repeat_1.0.branch0.conv", 20, 1088, 192, (1, 1), (1, 1), (0, 0), (17, 17), False),
        ("repeat_1.0.branch1.0.conv", 20, 1088, 128, (1, 1), (1, 1), (0, 0), (17, 17), False),
        ("repeat_1.0.branch1.1.conv", 20, 128, 160, (1, 7), (1, 1), (0, 3), (17, 17), False),
        ("repeat_1.0.branch1.2.conv", 20, 160, 192, (7, 1), (1, 1), (3, 0), (17, 17), False),
        ("repeat_1.0.conv2d", 20, 384, 1088, (1, 1), (1, 1), (0, 0), (17, 17), True),
        ("mixed_7a.branch0.0.conv", 3, 1088, 256, (1, 1), (1, 1), (0, 0), (17, 17), False),
        ("mixed_7a.branch0.1.conv", 1, 256, 384, (3, 3), (2, 2), (0, 0), (17, 17), False),
        ("mixed_7a.branch1.1.conv", 1, 256, 288, (3, 3), (2, 2), (0, 0), (17, 17), False),
        ("mixed_7a.branch2.1.conv", 1, 256, 288, (3, 3), (1, 1), (1, 1), (17, 17), False),
        ("mixed_7a.branch2.2.conv", 1, 288, 320, (3, 3), (2, 2), (0, 0), (17, 17), False),
        ("repeat_2.0.branch0.conv", 20, 2080, 192, (1, 1), (1, 1), (0, 0), (8, 8), False),
        ("repeat_2.0.branch1.1.conv", 10, 192, 224, (1, 3), (1, 1), (0, 1), (8, 8), False),
        ("repeat_2.0.branch1.2.conv", 10, 224, 256, (3, 1), (1, 1), (1, 0), (8, 8), False),
        ("repeat_2.0.conv2d", 10, 448, 2080, (1, 1), (1, 1), (0, 0), (8, 8), True),
        ("conv2d_7b.conv", 1, 2080, 1536, (1, 1), (1, 1), (0, 0), (8, 8), False),
    )),
)

POOL_SHAPES: tuple[PoolShape, ...] = (
    # googlenet @ 224: 13 geometries
    # (layer, count, kind, channels, kernel, stride, padding, ceil_mode,
    #  count_include_pad, in_hw)
    *_pools("googlenet", (
        ("maxpool1", 1, "max", 64, (3, 3), (2, 2), (0, 0), True, True, (112, 112)),
        ("maxpool2", 1, "max", 192, (3, 3), (2, 2), (0, 0), True, True, (56, 56)),
        ("inception3a.branch4.0", 1, "max", 192, (3, 3), (1, 1), (1, 1), True, True, (28, 28)),
        ("inception3b.branch4.0", 1, "max", 256, (3, 3), (1, 1), (1, 1), True, True, (28, 28)),
        ("maxpool3", 1, "max", 480, (3, 3), (2, 2), (0, 0), True, True, (28, 28)),
        ("inception4a.branch4.0", 1, "max", 480, (3, 3), (1, 1), (1, 1), True, True, (14, 14)),
        ("aux1/F.adaptive_avg_pool2d#0",
         1, "adaptive_avg", 512, (4, 4), (0, 0), (0, 0), False, True, (14, 14)),
        ("inception4b.branch4.0", 3, "max", 512, (3, 3), (1, 1), (1, 1), True, True, (14, 14)),
        ("aux2/F.adaptive_avg_pool2d#0",
         1, "adaptive_avg", 528, (4, 4), (0, 0), (0, 0), False, True, (14, 14)),
        ("inception4e.branch4.0", 1, "max", 528, (3, 3), (1, 1), (1, 1), True, True, (14, 14)),
        ("maxpool4", 1, "max", 832, (2, 2), (2, 2), (0, 0), True, True, (14, 14)),
        ("inception5a.branch4.0", 2, "max", 832, (3, 3), (1, 1), (1, 1), True, True, (7, 7)),
        ("avgpool", 1, "adaptive_avg", 1024, (1, 1), (0, 0), (0, 0), False, True, (7, 7)),
    )),
    # bn_inception @ 224: 11 geometries
    # (layer, count, kind, channels, kernel, stride, padding, ceil_mode,
    #  count_include_pad, in_hw)
    *_pools("bn_inception", (
        ("pool1_3x3_s2", 1, "max", 64, (3, 3), (2, 2), (0, 0), True, True, (112, 112)),
        ("pool2_3x3_s2", 1, "max", 192, (3, 3), (2, 2), (0, 0), True, True, (56, 56)),
        ("inception_3a_pool", 1, "avg", 192, (3, 3), (1, 1), (1, 1), True, True, (28, 28)),
        ("inception_3b_pool", 1, "avg", 256, (3, 3), (1, 1), (1, 1), True, True, (28, 28)),
        ("inception_3c_pool", 1, "max", 320, (3, 3), (2, 2), (0, 0), True, True, (28, 28)),
        ("inception_4a_pool", 3, "avg", 576, (3, 3), (1, 1), (1, 1), True, True, (14, 14)),
        ("inception_4d_pool", 1, "avg", 608, (3, 3), (1, 1), (1, 1), True, True, (14, 14)),
        ("inception_4e_pool", 1, "max", 608, (3, 3), (2, 2), (0, 0), True, True, (14, 14)),
        ("inception_5a_pool", 1, "avg", 1056, (3, 3), (1, 1), (1, 1), True, True, (7, 7)),
        ("inception_5b_pool", 1, "max", 1024, (3, 3), (1, 1), (1, 1), True, True, (7, 7)),
        ("global_pool", 1, "avg", 1024, (7, 7), (1, 1), (0, 0), True, True, (7, 7)),
    )),
    # inception_v3 @ 299: 13 geometries
    # (layer, count, kind, channels, kernel, stride, padding, ceil_mode,
    #  count_include_pad, in_hw)
    *_pools("inception_v3", (
        ("maxpool1", 1, "max", 64, (3, 3), (2, 2), (0, 0), False, True, (147, 147)),
        ("maxpool2", 1, "max", 192, (3, 3), (2, 2), (0, 0), False, True, (71, 71)),
        ("Mixed_5b/F.avg_pool2d#0", 1, "avg", 192, (3, 3), (1, 1), (1, 1), False, True, (35, 35)),
        ("Mixed_5c/F.avg_pool2d#0", 1, "avg", 256, (3, 3), (1, 1), (1, 1), False, True, (35, 35)),
        ("Mixed_5d/F.avg_pool2d#0", 1, "avg", 288, (3, 3), (1, 1), (1, 1), False, True, (35, 35)),
        ("Mixed_6a/F.max_pool2d#0", 1, "max", 288, (3, 3), (2, 2), (0, 0), False, True, (35, 35)),
        ("Mixed_6b/F.avg_pool2d#0", 4, "avg", 768, (3, 3), (1, 1), (1, 1), False, True, (17, 17)),
        ("AuxLogits/F.avg_pool2d#0", 1, "avg", 768, (5, 5), (3, 3), (0, 0), False, True, (17, 17)),
        ("AuxLogits/F.adaptive_avg_pool2d#1",
         1, "adaptive_avg", 768, (1, 1), (0, 0), (0, 0), False, True, (1, 1)),
        ("Mixed_7a/F.max_pool2d#0", 1, "max", 768, (3, 3), (2, 2), (0, 0), False, True, (17, 17)),
        ("Mixed_7b/F.avg_pool2d#0", 1, "avg", 1280, (3, 3), (1, 1), (1, 1), False, True, (8, 8)),
        ("Mixed_7c/F.avg_pool2d#0", 1, "avg", 2048, (3, 3), (1, 1), (1, 1), False, True, (8, 8)),
        ("avgpool", 1, "adaptive_avg", 2048, (1, 1), (0, 0), (0, 0), False, True, (8, 8)),
    )),
    # inception_v4 @ 299: 8 geometries
    # (layer, count, kind, channels, kernel, stride, padding, ceil_mode,
    #  count_include_pad, in_hw)
    *_pools("inception_v4", (
        ("features.3.maxpool", 1, "max", 64, (3, 3), (2, 2), (0, 0), False, True, (147, 147)),
        ("features.5.maxpool", 1, "max", 192, (3, 3), (2, 2), (0, 0), False, True, (71, 71)),
        ("features.6.branch3.0", 4, "avg", 384, (3, 3), (1, 1), (1, 1), False, False, (35, 35)),
        ("features.10.branch2", 1, "max", 384, (3, 3), (2, 2), (0, 0), False, True, (35, 35)),
        ("features.11.branch3.0", 7, "avg", 1024, (3, 3), (1, 1), (1, 1), False, False, (17, 17)),
        ("features.18.branch2", 1, "max", 1024, (3, 3), (2, 2), (0, 0), False, True, (17, 17)),
        ("features.19.branch3.0", 3, "avg", 1536, (3, 3), (1, 1), (1, 1), False, False, (8, 8)),
        ("global_pool.pool", 1, "adaptive_avg", 1536, (1, 1), (0, 0), (0, 0), False, True, (8, 8)),
    )),
    # inception_resnet_v1 @ 160: 4 geometries
    # (layer, count, kind, channels, kernel, stride, padding, ceil_mode,
    #  count_include_pad, in_hw)
    *_pools("inception_resnet_v1", (
        ("maxpool_3a", 1, "max", 64, (3, 3), (2, 2), (0, 0), False, True, (77, 77)),
        ("mixed_6a.branch2", 1, "max", 256, (3, 3), (2, 2), (0, 0), False, True, (17, 17)),
        ("mixed_7a.branch3", 1, "max", 896, (3, 3), (2, 2), (0, 0), False, True, (8, 8)),
        ("avgpool_1a", 1, "adaptive_avg", 1792, (1, 1), (0, 0), (0, 0), False, True, (3, 3)),
    )),
    # inception_resnet_v2 @ 299: 6 geometries
    # (layer, count, kind, channels, kernel, stride, padding, ceil_mode,
    #  count_include_pad, in_hw)
    *_pools("inception_resnet_v2", (
        ("maxpool_3a", 1, "max", 64, (3, 3), (2, 2), (0, 0), False, True, (147, 147)),
        ("maxpool_5a", 1, "max", 192, (3, 3), (2, 2), (0, 0), False, True, (71, 71)),
        ("mixed_5b.branch3.0", 1, "avg", 192, (3, 3), (1, 1), (1, 1), False, False, (35, 35)),
        ("mixed_6a.branch2", 1, "max", 320, (3, 3), (2, 2), (0, 0), False, True, (35, 35)),
        ("mixed_7a.branch3", 1, "max", 1088, (3, 3), (2, 2), (0, 0), False, True, (17, 17)),
        ("global_pool.pool", 1, "adaptive_avg", 1536, (1, 1), (0, 0), (0, 0), False, True, (8, 8)),
    )),
)
# fmt: on
