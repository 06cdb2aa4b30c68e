"""convert(): reference network -> inception_core network with the same weights and mode."""

from functools import partial

import pytest
import torch

import inception_core
from inception_core.bench.references import build_reference
from inception_core.convert import convertible
from inception_core.testing import rel_err


def _references():
    """(name, builder of the reference, input size) for every network convert() accepts: the six networks'
    references as the tests build them, and the other layouts convert() knows."""
    import pretrainedmodels
    import timm

    return [
        ("tv_googlenet", partial(build_reference, "googlenet"), 64),
        ("tv_inception_v3", partial(build_reference, "inception_v3"), 75),
        ("timm_inception_v3", lambda: timm.create_model("inception_v3"), 75),
        ("timm_inception_v4", partial(build_reference, "inception_v4"), 75),
        ("timm_inception_resnet_v2", partial(build_reference, "inception_resnet_v2"), 75),
        # Cadene's heads are fixed-size pools (8x8, 7x7: native input sizes): features at a small input, the
        # head on a feature map of the size it takes (_FIXED_HEADS)
        ("cadene_inceptionresnetv2", lambda: pretrainedmodels.inceptionresnetv2(num_classes=1000, pretrained=None),
         75),
        ("cadene_bninception", partial(build_reference, "bn_inception"), 96),
        ("facenet_embedding", partial(build_reference, "inception_resnet_v1", num_classes=None), 75),
        ("facenet_classifier", partial(build_reference, "inception_resnet_v1", num_classes=7), 75),
    ]


def _randomize_bn(model):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)


# the feature map (C, H, W) that the fixed-size heads of Cadene's networks take
_FIXED_HEADS = {"cadene_inceptionresnetv2": (1536, 8, 8), "cadene_bninception": (1024, 7, 7)}


@pytest.mark.parametrize("case", range(9), ids=lambda i: _references()[i][0])
def test_convert_keeps_weights_outputs_and_mode(case):
    name, build, size = _references()[case]
    torch.manual_seed(case)
    ref = build().eval()
    _randomize_bn(ref)
    before = {k: v.clone() for k, v in ref.state_dict().items()}
    ours = inception_core.convert(ref)
    assert not ours.training
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        if name in _FIXED_HEADS:
            feature_map = torch.randn(1, *_FIXED_HEADS[name])
            expected = torch.cat([ref.features(x).flatten(), ref.logits(feature_map).flatten()])
        else:
            expected = ref(x)
        with inception_core.backend("torch"):
            if name in _FIXED_HEADS:
                got = torch.cat([ours.forward_features(x).flatten(), ours.forward_head(feature_map).flatten()])
            else:
                got = ours(x)
    assert rel_err(got, expected) <= 1e-4, name
    assert convertible(ref)
    assert all(torch.equal(before[k], v) for k, v in ref.state_dict().items())  # the input is untouched
    assert inception_core.convert(ref.train()).training


def test_convert_keeps_dtype_and_memory_format():
    ref = build_reference("googlenet", aux_logits=False).double()
    ref = ref.to(memory_format=torch.channels_last).eval()
    ours = inception_core.convert(ref)
    weight = ours.conv1.conv.weight
    assert weight.dtype == torch.float64 and weight.is_contiguous(memory_format=torch.channels_last)


def test_convert_rejects_other_models():
    assert not convertible(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="^model: expected one of"):
        inception_core.convert(torch.nn.Linear(2, 2))


def test_convert_names_a_replaced_classifier():
    ref = build_reference("googlenet", aux_logits=False)
    ref.fc = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(1024, 5))
    with pytest.raises(TypeError, match=r"^model.fc: expected the reference's nn.Linear classifier, got Sequential"):
        inception_core.convert(ref)


def test_convert_names_modified_layers():
    ref = build_reference("googlenet", aux_logits=False)
    ref.conv1.conv = torch.nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=True)  # a bias the reference lacks
    with pytest.raises(ValueError, match=r"^model: its parameters do not match the reference"):
        inception_core.convert(ref)
