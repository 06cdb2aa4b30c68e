"""Inception-ResNet-v2's own behaviour (the checks every network shares: test_networks.py): the residual
blocks' scales, Cadene's checkpoint through ``remap_cadene_inception_resnet_v2``, timm's builder arguments."""

import pytest
import torch

import inception_core
from inception_core.models.inception_resnet_v2 import inception_resnet_v2, remap_cadene_inception_resnet_v2
from inception_core.testing import randomize_for_equivalence, rel_err

RTOL = 1e-4
SMALLEST = 75


def test_residual_blocks_structure():
    model = inception_resnet_v2()
    assert [b.scale for b in model.repeat] == [0.17] * 10 and all(b.relu for b in model.repeat)
    assert [b.scale for b in model.repeat_1] == [0.10] * 20 and all(b.relu for b in model.repeat_1)
    assert [b.scale for b in model.repeat_2] == [0.20] * 9 and all(b.relu for b in model.repeat_2)
    assert model.block8.scale == 1.0 and not model.block8.relu
    assert model.mixed_5b.branch3[0].count_include_pad is False


def test_cadene_checkpoint_loads_after_remap():
    """Cadene's model (random weights, 1000 classes) -> remap -> strict load -> equal features at 75 and equal
    heads on an 8 x 8 map (Cadene's head is AvgPool2d(8): a global pool only for the 8 x 8 map of 299)."""
    pretrainedmodels = pytest.importorskip("pretrainedmodels")
    cadene = pretrainedmodels.inceptionresnetv2(num_classes=1000, pretrained=None).eval()
    randomize_for_equivalence(cadene)
    state = remap_cadene_inception_resnet_v2(cadene.state_dict())
    assert "classif.weight" in state and not any(k.startswith("last_linear.") for k in state)
    ours = inception_resnet_v2().eval()
    ours.load_state_dict(state, strict=True)
    x = torch.randn(1, 3, SMALLEST, SMALLEST)
    feats = torch.randn(2, 1536, 8, 8)
    with torch.no_grad():
        expected, expected_logits = cadene.features(x), cadene.logits(feats)
        with inception_core.backend("torch"):
            y, logits = ours.forward_features(x), ours.forward_head(feats)
    assert rel_err(y, expected) <= RTOL
    assert rel_err(logits, expected_logits) <= RTOL


def test_cadene_remap_drops_background_class():
    weight, bias = torch.randn(1001, 1536), torch.randn(1001)
    state = {"conv2d_1a.conv.weight": torch.randn(32, 3, 3, 3), "last_linear.weight": weight,
             "last_linear.bias": bias}
    kept = remap_cadene_inception_resnet_v2(state)
    assert list(kept) == ["conv2d_1a.conv.weight", "classif.weight", "classif.bias"]
    assert kept["classif.weight"] is weight
    dropped = remap_cadene_inception_resnet_v2(state, drop_background=True)
    assert torch.equal(dropped["classif.weight"], weight[1:]) and torch.equal(dropped["classif.bias"], bias[1:])
    with pytest.raises(ValueError, match="1001"):
        remap_cadene_inception_resnet_v2(kept | {"last_linear.bias": bias[1:]}, drop_background=True)


def test_builder_arguments():
    small = inception_resnet_v2(num_classes=10, in_chans=1, drop_rate=0.2)
    assert small.classif.out_features == 10 and small.conv2d_1a.conv.in_channels == 1
    assert small.head_drop.p == 0.2
    small.reset_classifier(0)  # timm's headless form: pooled 1536-d features
    assert isinstance(small.get_classifier(), torch.nn.Identity)
    with torch.no_grad(), inception_core.backend("torch"):
        assert small.eval()(torch.randn(1, 1, SMALLEST, SMALLEST)).shape == (1, 1536)
    with pytest.raises(ValueError, match="output_stride"):
        inception_resnet_v2(output_stride=16)
