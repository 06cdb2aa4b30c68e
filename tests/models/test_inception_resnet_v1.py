"""Inception-ResNet-v1's own behaviour (the checks every network shares: test_networks.py): the
interpreted triton backend block by block at 75x75 against facenet's modules, the embedding's L2
normalisation, facenet's classify / logits semantics, the ImageNet head and the parameter counts of both
heads."""

import importlib

import pytest
import torch
from facenet_pytorch import InceptionResnetV1 as FacenetIRv1
from network_cases import network_pair
from torch import nn

import inception_core
from inception_core.models import create_model
from inception_core.testing import count_parameters, randomize_for_equivalence, rel_err

imod = importlib.import_module("inception_core.models.inception_resnet_v1")

RTOL = 1e-4  # max |ours - ref| / max |ref|
SMALLEST = 75  # the smallest input: mixed_7a needs 3x3, i.e. 75x75 at the entry


def _pair(**kwargs):
    """(facenet InceptionResnetV1, ours) with the same randomised state, both in eval mode."""
    torch.manual_seed(0)
    ref = randomize_for_equivalence(FacenetIRv1(**kwargs).eval())
    ours = imod.inception_resnet_v1(**kwargs).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ref, ours


def _stages(model: nn.Module) -> list[nn.Module]:
    """The stem and one block of each kind, in network order (facenet's and ours alike)."""
    return [model.conv2d_1a, model.conv2d_2a, model.conv2d_2b, model.maxpool_3a, model.conv2d_3b, model.conv2d_4a,
            model.conv2d_4b, model.repeat_1[0], model.mixed_6a, model.repeat_2[0], model.mixed_7a,
            model.repeat_3[0], model.block8]


def test_triton_interpreted_blocks_at_smallest_input():
    """The triton backend (interpreted on CPU) through the stem and one block of each kind (Block35,
    Mixed_6a, Block17, Mixed_7a, Block8, the final no-ReLU Block8) at 75x75, batch 1, each stage
    against facenet's module on the same chain. The whole network takes ~50 s interpreted (20 residual
    blocks), this ~20 s; every block of a kind runs the same code."""
    ref, ours = network_pair("inception_resnet_v1")
    x = torch.randn(1, 3, SMALLEST, SMALLEST)
    y = x.contiguous(memory_format=torch.channels_last)
    expected = x
    with torch.no_grad():
        for ref_stage, stage in zip(_stages(ref), _stages(ours), strict=True):
            expected = ref_stage(expected)
            with inception_core.backend("triton"):
                y = stage(y)
            assert y.shape == expected.shape
            err = rel_err(y, expected)
            assert err <= RTOL, (type(stage).__name__, err)
    assert y.shape == (1, 1792, 1, 1)


def test_embedding_is_the_normalised_pre_logits():
    ours = network_pair("inception_resnet_v1")[1]
    x = torch.randn(2, 3, SMALLEST, SMALLEST)
    with torch.no_grad(), inception_core.backend("torch"):
        y = ours(x)
        emb = ours.forward_head(ours.forward_features(x), pre_logits=True)  # last_bn output, before the L2 norm
    torch.testing.assert_close(nn.functional.normalize(emb, dim=1), y, rtol=0, atol=0)


def test_parameter_counts_of_the_other_heads():
    assert count_parameters(imod.inception_resnet_v1_imagenet()) == 24_357_096  # models.md, 1000-class head
    classify = imod.inception_resnet_v1(classify=True, num_classes=10)
    assert count_parameters(classify) == count_parameters(FacenetIRv1(classify=True, num_classes=10))
    assert create_model("inception_resnet_v1_imagenet", num_classes=10).last_linear.out_features == 10


def test_classify_and_logits_follow_facenet():
    """classify=True returns facenet's logits; a model with ``logits`` but classify=False (facenet's
    pretrained layout) loads the same state_dict strictly and returns the embedding."""
    ref, ours = _pair(classify=True, num_classes=7)
    x = torch.randn(2, 3, SMALLEST, SMALLEST)
    with torch.no_grad(), inception_core.backend("torch"):
        logits = ours(x)
        assert logits.shape == (2, 7)
        assert rel_err(logits, ref(x)) <= RTOL
        embedder = imod.inception_resnet_v1(num_classes=7).eval()  # classify=False, logits present
        embedder.load_state_dict(ref.state_dict(), strict=True)
        ref.classify = False
        emb = embedder(x)
        assert emb.shape == (2, 512)
        assert rel_err(emb, ref(x)) <= RTOL
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(2))
    with pytest.raises(ValueError, match="num_classes"):
        imod.inception_resnet_v1(classify=True)
    with pytest.raises(ValueError, match="head"):
        imod.InceptionResnetV1(head="mlp")


def test_imagenet_head():
    model = imod.inception_resnet_v1_imagenet(num_classes=1000).eval()
    assert not hasattr(model, "last_bn") and not hasattr(model, "logits")
    assert model.last_linear.in_features == 1792 and model.last_linear.bias is not None
    assert model.dropout.p == 0.2
    x = torch.randn(1, 3, SMALLEST, SMALLEST)
    with torch.no_grad(), inception_core.backend("torch"):
        feats = model.forward_features(x)
        y = model(x)
    assert y.shape == (1, 1000)
    torch.testing.assert_close(y, model.last_linear(feats.mean((2, 3))), rtol=1e-5, atol=1e-5)
    assert model.forward_head(feats, pre_logits=True).shape == (1, 1792)
