"""The classifier head and its interface shared by the networks in timm's layout (Inception-v4,
Inception-ResNet-v2): ``global_pool`` -> ``head_drop`` -> a linear classifier under the network's own name."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from inception_core.nn import GlobalAvgPool2d

__all__ = ["PooledClassifierNetwork", "linear_classifier"]


def linear_classifier(num_features: int, num_classes: int, device: torch.device | None = None) -> nn.Module:
    """``nn.Linear(num_features, num_classes)``, or ``nn.Identity()`` for ``num_classes=0`` (timm's headless
    form: the pooled features come out)."""
    return nn.Linear(num_features, num_classes, device=device) if num_classes > 0 else nn.Identity()


class PooledClassifierNetwork(nn.Module):
    """Base of a network whose head is (N, num_features, H, W) -> global average pool -> dropout -> the
    classifier named by ``classifier_name``: timm's constructor arguments and classifier methods
    (``get_classifier``, ``reset_classifier``, ``forward_head``). A subclass builds its trunk, then calls
    ``_add_head()`` (the head's keys come last, as in the reference), and defines ``forward_features``.

    Raises:
        ValueError: ``output_stride`` other than 32 or ``global_pool`` other than "avg" (the only ones here).
    """

    classifier_name: str

    def __init__(self, *, num_features: int, num_classes: int, in_chans: int, drop_rate: float,
                 output_stride: int, global_pool: str) -> None:
        super().__init__()
        if output_stride != 32:
            raise ValueError(f"output_stride: only 32 is supported, got {output_stride!r}")
        if global_pool != "avg":
            raise ValueError(f"global_pool: only 'avg' is supported, got {global_pool!r}")
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.num_features = self.head_hidden_size = num_features

    def _add_head(self) -> None:
        self.global_pool = GlobalAvgPool2d()
        self.head_drop = nn.Dropout(self.drop_rate)
        setattr(self, self.classifier_name, linear_classifier(self.num_features, self.num_classes))

    def get_classifier(self) -> nn.Module:
        return getattr(self, self.classifier_name)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier with a fresh one for ``num_classes`` outputs (0: identity), on the device of
        the network's first conv."""
        self.num_classes = num_classes
        device = self.get_submodule(self.pretrained_cfg["first_conv"]).weight.device
        setattr(self, self.classifier_name, linear_classifier(self.num_features, num_classes, device=device))

    def forward_features(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """N x num_features x H x W -> N x num_classes (N x num_features with ``pre_logits``)."""
        x = self.global_pool(x)
        # N x num_features
        x = self.head_drop(x)
        return x if pre_logits else self.get_classifier()(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))
