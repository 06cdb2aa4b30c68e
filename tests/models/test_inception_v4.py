"""Inception-v4's own behaviour (the checks every network shares: test_networks.py): timm's builder
arguments and classifier interface."""

import pytest
import torch

import inception_core
from inception_core.models.inception_v4 import inception_v4


def test_builder_arguments():
    small = inception_v4(num_classes=10, in_chans=1, drop_rate=0.2)
    assert small.last_linear.out_features == 10 and small.features[0].conv.in_channels == 1
    assert small.head_drop.p == 0.2
    small.reset_classifier(0)  # timm's headless form: pooled 1536-d features
    assert isinstance(small.get_classifier(), torch.nn.Identity)
    with torch.no_grad(), inception_core.backend("torch"):
        assert small.eval()(torch.randn(1, 1, 75, 75)).shape == (1, 1536)
    with pytest.raises(ValueError, match="output_stride"):
        inception_v4(output_stride=16)
