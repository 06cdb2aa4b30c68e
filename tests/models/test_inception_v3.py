"""Inception-v3's own behaviour (the checks every network shares: test_networks.py): equal to timm's
``inception_v3`` too, horizontal fusion of the sibling 1x1 convs, transform_input, the aux head and
InceptionOutputs in training mode, torchvision's constructor arguments."""

import copy
import importlib

import pytest
import timm
import torch
import torchvision
from network_cases import network_pair

import inception_core
from inception_core.testing import count_parameters, no_concat, randomize_for_equivalence, rel_err

v3 = importlib.import_module("inception_core.models.inception_v3")

RTOL = 1e-4
CL = torch.channels_last


def _small(batch: int = 1, seed: int = 3, size: int = 75) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_matches_timm_without_aux():
    torch.manual_seed(4)
    ref = randomize_for_equivalence(timm.create_model("inception_v3", pretrained=False).eval(), seed=5)
    ours = v3.inception_v3(aux_logits=False, init_weights=False).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    assert ours.AuxLogits is None
    assert count_parameters(ours) == count_parameters(ref) == 23_834_568
    x = _small(batch=2, size=107)  # a 2x2 last grid
    with torch.no_grad():
        ref_features = ref.forward_features(x)
        expected = ref.forward_head(ref_features)
        with inception_core.backend("torch"):
            features = ours.forward_features(x)
            y = ours.forward_head(features)
    assert features.shape == ref_features.shape == (2, 2048, 2, 2)
    assert rel_err(features, ref_features) <= RTOL
    assert rel_err(y, expected) <= RTOL


def test_fused_path_fuses_sibling_convs_without_cat(monkeypatch):
    ours = copy.deepcopy(network_pair("inception_v3")[1])
    ours.transform_input = True  # its per-channel formula must not concatenate either
    calls = []
    real = inception_core.ops.conv_bn_act
    monkeypatch.setattr(inception_core.nn.functional.ops, "conv_bn_act",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    with torch.no_grad(), inception_core.backend("torch"), no_concat():
        y = ours(_small())
    assert y.shape == (1, 1000)
    # 94 conv layers outside AuxLogits; one stacked GEMM per block for the 1x1 convs that read its input:
    # 3 -> 1 in Mixed_5b..5d, 6b..6e, 7b, 7c (2 saved each), 2 -> 1 in Mixed_7a
    assert len(calls) == 94 - 2 * (3 + 4 + 2) - 1


def test_transform_input():
    ref, ours = (copy.deepcopy(m) for m in network_pair("inception_v3"))
    plain_model = network_pair("inception_v3")[1]
    ours.transform_input = ref.transform_input = True
    x = _small(batch=2)
    # the formula itself, bit for bit: on the autograd path (NCHW) and the fused one (channels_last)
    assert torch.equal(ours._prepare_input(x), ref._transform_input(x))
    with torch.no_grad():
        prepared = ours._prepare_input(x)
        assert prepared.is_contiguous(memory_format=CL)
        assert torch.equal(prepared, ref._transform_input(x))
        expected = ref(x)
        with inception_core.backend("torch"):
            y = ours(x)
            plain = plain_model(x)
    assert rel_err(y, expected) <= RTOL
    assert rel_err(plain, expected) > 1e-2  # the transform changes the result: the check above can fail


def test_training_returns_inception_outputs_with_the_aux_head():
    """Values against torchvision in training mode: test_training.py; here the output types."""
    ours = copy.deepcopy(network_pair("inception_v3")[1]).train()
    with torch.no_grad(), inception_core.backend("torch"):
        y = ours(_small(batch=2, size=299))  # the aux head needs the 17x17 grid of a 299 input
        assert type(y) is torchvision.models.inception.InceptionOutputs and type(y).__name__ == "InceptionOutputs"
        assert y.logits.shape == y.aux_logits.shape == (2, 1000)
        ours.aux_logits, ours.AuxLogits = False, None  # what torchvision's builder does with aux_logits=False
        y = ours(_small(batch=2))
    assert isinstance(y, torch.Tensor) and y.shape == (2, 1000)


def test_outputs_type_is_torchvisions_when_importable():
    assert v3.InceptionOutputs is torchvision.models.inception.InceptionOutputs
    assert v3.InceptionOutputs._fields == ("logits", "aux_logits")


def test_construction_arguments():
    with pytest.raises(ValueError, match="inception_blocks"):
        v3.Inception3(inception_blocks=[torchvision.models.inception.BasicConv2d])
    with pytest.raises(ValueError, match="in_chans"):
        v3.inception_v3(transform_input=True, in_chans=1)
    gray = v3.inception_v3(in_chans=1, aux_logits=False, init_weights=False)
    assert gray.Conv2d_1a_3x3.conv.in_channels == 1
    small = inception_core.models.create_model("inception_v3", num_classes=10, aux_logits=False, init_weights=False)
    assert small.fc.out_features == 10 and small.AuxLogits is None
