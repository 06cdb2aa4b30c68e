"""Per-network metadata, as timm's ``pretrained_cfg``: where the input goes in and the logits come out,
and the input convention of the weights each layout is known for.

Every network sets ``model.pretrained_cfg`` (and the alias ``model.default_cfg``) in its constructor, for
its construction arguments. Keys (timm's names): ``first_conv`` (module path of the ``nn.Conv2d`` that
reads the input), ``classifier`` (module path of the final ``nn.Linear``), ``num_classes``,
``input_size`` (C, H, W) native, ``min_input_size`` (C, H, W) smallest accepted, ``mean`` / ``std`` (per
channel, on [0, 1] pixels), ``interpolation`` and ``crop_pct`` of the evaluation preprocessing where the
weights' source publishes them (None where it does not), plus ``source`` (the implementation whose
state_dict layout the network follows).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["IMAGENET_DEFAULT_MEAN", "IMAGENET_DEFAULT_STD", "IMAGENET_INCEPTION_MEAN", "IMAGENET_INCEPTION_STD",
           "model_cfg"]

IMAGENET_DEFAULT_MEAN = (0.485, 0.456, 0.406)
IMAGENET_DEFAULT_STD = (0.229, 0.224, 0.225)
IMAGENET_INCEPTION_MEAN = (0.5, 0.5, 0.5)  # (x - 0.5) / 0.5: the TF Inception checkpoints' [-1, 1] input
IMAGENET_INCEPTION_STD = (0.5, 0.5, 0.5)


def model_cfg(*, source: str, first_conv: str, classifier: str | None, num_classes: int | None,
              input_size: tuple[int, int, int], min_input_size: tuple[int, int, int],
              mean: Sequence[float], std: Sequence[float], interpolation: str | None = None,
              crop_pct: float | None = None, **extra) -> dict:
    """The metadata dict of one network (keys in the module docstring; ``extra`` adds source-specific
    ones, such as BN-Inception's ``input_space``)."""
    return dict(source=source, first_conv=first_conv, classifier=classifier, num_classes=num_classes,
                input_size=tuple(input_size), min_input_size=tuple(min_input_size), mean=tuple(mean),
                std=tuple(std), interpolation=interpolation, crop_pct=crop_pct, **extra)
