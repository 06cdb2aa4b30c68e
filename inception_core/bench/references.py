"""The reference networks (torchvision / timm / pretrainedmodels / facenet-pytorch) with random weights,
and the pair a benchmark runs: a reference plus its input size and FLOP count."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from inception_core.bench.flops import count_macs
from inception_core.shapes import MODELS, NATIVE_INPUT
from inception_core.testing import randomize_for_equivalence

NETWORKS: tuple[str, ...] = MODELS
NUM_CLASSES = 1000


class ReferenceUnavailable(RuntimeError):
    """The package that holds a network's reference implementation is not installed."""


@dataclass(frozen=True)
class _Reference:
    source: str    # what users know it as
    package: str   # import name
    install: str   # how to get it
    build: Callable[[], nn.Module]


def _tv_googlenet() -> nn.Module:
    import torchvision

    return torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False)


def _pm_bninception() -> nn.Module:
    import pretrainedmodels

    return pretrainedmodels.bninception(num_classes=NUM_CLASSES, pretrained=None)


def _tv_inception_v3() -> nn.Module:
    import torchvision

    return torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)


def _timm(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import timm

        return timm.create_model(name)

    return build


def _facenet_inception_resnet_v1() -> nn.Module:
    import facenet_pytorch

    # the ImageNet-classifier configuration (inception_resnet_v1_imagenet): 1000 logits after the embedding
    return facenet_pytorch.InceptionResnetV1(pretrained=None, classify=True, num_classes=NUM_CLASSES)


_PIP_NO_DEPS = "pip install --no-deps {} (it pins an old torch; its code runs on this one)"
REFERENCES: dict[str, _Reference] = {
    "googlenet": _Reference("torchvision googlenet (aux heads)", "torchvision", "pip install torchvision",
                            _tv_googlenet),
    "bn_inception": _Reference("pretrainedmodels bninception", "pretrainedmodels",
                               _PIP_NO_DEPS.format("pretrainedmodels==0.7.4"), _pm_bninception),
    "inception_v3": _Reference("torchvision inception_v3 (aux head)", "torchvision", "pip install torchvision",
                               _tv_inception_v3),
    "inception_v4": _Reference("timm inception_v4", "timm", "pip install timm", _timm("inception_v4")),
    "inception_resnet_v1": _Reference("facenet-pytorch InceptionResnetV1 (1000 classes)", "facenet_pytorch",
                                      _PIP_NO_DEPS.format("facenet-pytorch==2.6.0"), _facenet_inception_resnet_v1),
    "inception_resnet_v2": _Reference("timm inception_resnet_v2", "timm", "pip install timm",
                                      _timm("inception_resnet_v2")),
}


@dataclass
class ModelPair:
    """A reference network (CPU, fp32, eval, random weights) and what is needed to benchmark it."""

    name: str
    reference: nn.Module
    input_size: int
    source: str
    _macs: dict = field(default_factory=dict, repr=False)

    def macs(self, training: bool = False) -> int:
        """Conv + linear multiply-accumulates per image of one forward pass (aux heads in training)."""
        if training not in self._macs:
            self._macs[training] = count_macs(self.reference, self.input_size, training=training)
        return self._macs[training]


# The smallest square input each reference runs at, in inference and in training. Training needs more: the
# auxiliary heads (torchvision's Inception-v3 aux head needs the 17x17 grid of a 299 input; BN-Inception's
# final 7x7 average pool needs 224), and batch statistics that mean something: at 75 the last grid of v4
# and the Inception-ResNets is 1x1, so BatchNorm normalises 2 values per channel (batch 2) and rounding is
# amplified until two correct implementations differ by O(1); at 139 it is 3x3. CPU benchmark runs use these.
SMALLEST_INPUT: dict[str, dict[str, int]] = {
    "googlenet": {"infer": 64, "train": 64},
    "bn_inception": {"infer": 224, "train": 224},
    "inception_v3": {"infer": 75, "train": 299},
    "inception_v4": {"infer": 75, "train": 139},
    "inception_resnet_v1": {"infer": 75, "train": 139},
    "inception_resnet_v2": {"infer": 75, "train": 139},
}


def build_pair(name: str, *, seed: int = 1, input_size: int | None = None) -> ModelPair:
    """The reference network ``name`` with He-initialised weights and random BatchNorm statistics, to run at
    ``input_size`` (default: its native size; see ``SMALLEST_INPUT`` for the smallest).

    Raises:
        ValueError: unknown network.
        ReferenceUnavailable: its reference package is not installed (the message says how to get it).
    """
    if name not in REFERENCES:
        raise ValueError(f"network: expected one of {list(NETWORKS)}, got {name!r}")
    spec = REFERENCES[name]
    torch.manual_seed(0)
    try:
        model = spec.build()
    except ImportError as exc:
        raise ReferenceUnavailable(f"{name}: its reference ({spec.source}) needs the package {spec.package!r}, "
                                   f"which cannot be imported ({exc}); {spec.install}") from exc
    randomize_for_equivalence(model.eval(), seed=seed)
    return ModelPair(name, model, input_size or NATIVE_INPUT[name], spec.source)
