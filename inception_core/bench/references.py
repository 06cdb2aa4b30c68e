"""The reference networks (torchvision / timm / pretrainedmodels / facenet-pytorch): the one place that builds
them (``build_reference``, ``randomized_reference``), and the pair a benchmark runs: a reference plus its input
size and FLOP count."""

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
    build: Callable[[int | None, bool], nn.Module]  # (num_classes, aux_logits) -> the package's network
    aux_heads: str | None = None  # what its auxiliary classifiers are called, where it has them
    embedding: bool = False       # num_classes=None builds it without a classifier (its 512-d embedding)

    def describe(self, num_classes: int | None, aux_logits: bool) -> str:
        """The source with the options that differ between its configurations."""
        notes = [self.aux_heads] if self.aux_heads and aux_logits else []
        if self.embedding:
            notes.append("face embedding" if num_classes is None else f"{num_classes} classes")
        return self.source + (f" ({', '.join(notes)})" if notes else "")


def _torchvision(name: str) -> Callable[[int | None, bool], nn.Module]:
    def build(num_classes: int | None, aux_logits: bool) -> nn.Module:
        import torchvision

        return getattr(torchvision.models, name)(weights=None, num_classes=num_classes, aux_logits=aux_logits,
                                                 init_weights=False)

    return build


def _pm_bninception(num_classes: int | None, aux_logits: bool) -> nn.Module:
    import pretrainedmodels

    return pretrainedmodels.bninception(num_classes=num_classes, pretrained=None)


def _timm(name: str) -> Callable[[int | None, bool], nn.Module]:
    def build(num_classes: int | None, aux_logits: bool) -> nn.Module:
        import timm

        return timm.create_model(name, pretrained=False, num_classes=num_classes)

    return build


def _facenet_inception_resnet_v1(num_classes: int | None, aux_logits: bool) -> nn.Module:
    import facenet_pytorch

    # with num_classes: the ImageNet-classifier configuration (inception_resnet_v1_imagenet's graph with
    # facenet's head: `logits` after the embedding); without: facenet's default, the 512-d embedding
    return facenet_pytorch.InceptionResnetV1(pretrained=None, classify=num_classes is not None,
                                             num_classes=num_classes)


_PIP_NO_DEPS = "pip install --no-deps {} (it pins an old torch; its code runs on this one)"
REFERENCES: dict[str, _Reference] = {
    "googlenet": _Reference("torchvision googlenet", "torchvision", "pip install torchvision",
                            _torchvision("googlenet"), aux_heads="aux heads"),
    "bn_inception": _Reference("pretrainedmodels bninception", "pretrainedmodels",
                               _PIP_NO_DEPS.format("pretrainedmodels==0.7.4"), _pm_bninception),
    "inception_v3": _Reference("torchvision inception_v3", "torchvision", "pip install torchvision",
                               _torchvision("inception_v3"), aux_heads="aux head"),
    "inception_v4": _Reference("timm inception_v4", "timm", "pip install timm", _timm("inception_v4")),
    "inception_resnet_v1": _Reference("facenet-pytorch InceptionResnetV1", "facenet_pytorch",
                                      _PIP_NO_DEPS.format("facenet-pytorch==2.6.0"), _facenet_inception_resnet_v1,
                                      embedding=True),
    "inception_resnet_v2": _Reference("timm inception_resnet_v2", "timm", "pip install timm",
                                      _timm("inception_resnet_v2")),
}


def build_reference(name: str, *, num_classes: int | None = NUM_CLASSES, aux_logits: bool = True) -> nn.Module:
    """The reference implementation of network ``name`` (a ``REFERENCES`` key), with its package's own
    initialisation (nothing is downloaded), in training mode as its package returns it.

    Args:
        num_classes: classifier outputs; None (inception_resnet_v1 only) builds facenet's default, the
            face-embedding network without ``logits``.
        aux_logits: build the auxiliary classifiers (googlenet, inception_v3: torchvision's default); False
            is refused for the networks that have none.

    Raises:
        ValueError: unknown network, or an option it does not have.
        ReferenceUnavailable: its reference package is not installed (the message says how to get it).
    """
    if name not in REFERENCES:
        raise ValueError(f"network: expected one of {list(NETWORKS)}, got {name!r}")
    spec = REFERENCES[name]
    if not aux_logits and spec.aux_heads is None:
        raise ValueError(f"aux_logits: {name}'s reference ({spec.source}) has no auxiliary classifier to leave out")
    if num_classes is None and not spec.embedding:
        raise ValueError(f"num_classes: expected a class count for {name}, got None (only inception_resnet_v1 "
                         "has a configuration without a classifier)")
    try:
        return spec.build(num_classes, aux_logits)
    except ImportError as exc:
        raise ReferenceUnavailable(f"{name}: its reference ({spec.describe(num_classes, aux_logits)}) needs the "
                                   f"package {spec.package!r}, which cannot be imported ({exc}); {spec.install}"
                                   ) from exc


def randomized_reference(name: str, *, seed: int = 1, num_classes: int | None = NUM_CLASSES,
                         aux_logits: bool = True) -> nn.Module:
    """``build_reference(name, ...)`` in eval mode with He-initialised weights and random BatchNorm statistics
    (``randomize_for_equivalence(seed=seed)``; torch's generator seeded with 0 before it is built), the same
    weights for every caller that asks for the same network, options and seed. Raises as ``build_reference``."""
    torch.manual_seed(0)
    model = build_reference(name, num_classes=num_classes, aux_logits=aux_logits)
    return randomize_for_equivalence(model.eval(), seed=seed)


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
    model = randomized_reference(name, seed=seed)
    return ModelPair(name, model, input_size or NATIVE_INPUT[name],
                     REFERENCES[name].describe(NUM_CLASSES, aux_logits=True))
