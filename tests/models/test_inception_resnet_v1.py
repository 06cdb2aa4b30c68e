"""Inception-ResNet-v1 against facenet-pytorch's ``InceptionResnetV1`` with the same state_dict: eval
(fused, torch backend) at 160x160, the interpreted triton backend block by block at 75x75 (the smallest
input), training outputs and gradients, no ``torch.cat`` on the fused path, BN-fold cache invalidation,
the classify / logits semantics, the ImageNet head, parameter counts, repr, state_dict round trip and
the registry. On CPU; the reference has random weights and randomised BatchNorm statistics."""

import copy
import importlib
import io

import pytest
import torch
from facenet_pytorch import InceptionResnetV1 as FacenetIRv1
from torch import nn

import inception_core
from inception_core.models import _registry
from inception_core.testing import buffer_mismatches, grad_mismatches, randomize_for_equivalence, rel_err

imod = importlib.import_module("inception_core.models.inception_resnet_v1")

RTOL = 1e-4  # max |ours - ref| / max |ref|
SMALLEST = 75  # the smallest input: mixed_7a needs 3x3, i.e. 75x75 at the entry


def _pair(**kwargs):
    """(facenet InceptionResnetV1, ours) with the same randomised state, both in eval mode."""
    torch.manual_seed(0)
    ref = FacenetIRv1(**kwargs).eval()
    randomize_for_equivalence(ref)
    ours = imod.inception_resnet_v1(**kwargs).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ref, ours


@pytest.fixture(scope="module")
def models():
    return _pair()


def _no_cat(*args, **kwargs):
    raise AssertionError("torch.cat called on the fused path")


def _stages(model: nn.Module) -> list[nn.Module]:
    """The stem and one block of each kind, in network order (facenet's and ours alike)."""
    return [model.conv2d_1a, model.conv2d_2a, model.conv2d_2b, model.maxpool_3a, model.conv2d_3b, model.conv2d_4a,
            model.conv2d_4b, model.repeat_1[0], model.mixed_6a, model.repeat_2[0], model.mixed_7a,
            model.repeat_3[0], model.block8]


def test_eval_matches_facenet_at_160(models, monkeypatch):
    ref, ours = models
    x = torch.randn(2, 3, 160, 160, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = ref(x)
        with inception_core.backend("torch"):
            monkeypatch.setattr(torch, "cat", _no_cat)
            y = ours(x)
            y_cl = ours(x.contiguous(memory_format=torch.channels_last))
            feats = ours.forward_features(x)
            monkeypatch.undo()
    assert y.shape == (2, 512)
    assert rel_err(expected[0], expected[1]) > 1e-2  # the output depends on the input (a meaningful check)
    err = rel_err(y, expected)
    assert err <= RTOL, err
    torch.testing.assert_close(y_cl, y, rtol=0, atol=0)  # the layout is converted once at the entry
    assert feats.shape == (2, 1792, 3, 3) and feats.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(ours.forward_head(feats), y, rtol=0, atol=0)
    emb = ours.forward_head(feats, pre_logits=True)  # last_bn output, before the L2 normalisation
    torch.testing.assert_close(nn.functional.normalize(emb, dim=1), y, rtol=0, atol=0)


def test_triton_interpreted_blocks_at_smallest_input(models):
    """The triton backend (interpreted on CPU) through the stem and one block of each kind (Block35,
    Mixed_6a, Block17, Mixed_7a, Block8, the final no-ReLU Block8) at 75x75, batch 1, each stage
    against facenet's module on the same chain. The whole network takes ~50 s interpreted (20 residual
    blocks), this ~20 s; every block of a kind runs the same code."""
    ref, ours = models
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


def test_parameter_counts(models):
    ref, ours = models
    n = sum(p.numel() for p in ours.parameters())
    assert n == sum(p.numel() for p in ref.parameters()) == 23_482_624  # models.md, 512-d embedding head
    assert list(ours.state_dict()) == list(ref.state_dict())
    imagenet = imod.inception_resnet_v1_imagenet()
    assert sum(p.numel() for p in imagenet.parameters()) == 24_357_096  # models.md, 1000-class head
    classify = imod.inception_resnet_v1(classify=True, num_classes=10)
    assert sum(p.numel() for p in classify.parameters()) == sum(
        p.numel() for p in FacenetIRv1(classify=True, num_classes=10).parameters())


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


def test_training_matches_facenet(models):
    """Train mode (BN batch statistics, dropout 0.6 with the same seed): same embedding, same running-
    statistics updates, every parameter gets a gradient equal to the reference's."""
    inception_core.set_backend("torch")  # the reference comparison (triton: test_training.py)
    ref, ours = (copy.deepcopy(m).train().double() for m in models)  # float64: a mismatch is a bug, not rounding
    x = torch.randn(2, 3, 139, 139, dtype=torch.float64)  # 3x3 last grid: BN over 18 values
    torch.manual_seed(3)
    expected = ref(x)
    torch.manual_seed(3)
    out = ours(x)
    assert isinstance(out, torch.Tensor) and out.shape == expected.shape == (2, 512)
    assert rel_err(out, expected) <= RTOL
    assert not buffer_mismatches(ours, ref, 1e-5)
    weight = torch.randn(2, 512, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    (expected * weight).sum().backward()
    (out * weight).sum().backward()
    assert all(p.grad is not None for p in ours.parameters())
    assert not grad_mismatches(ours, ref, RTOL)


def test_bn_fold_cache_follows_changes(models):
    """The folded BN cache is rebuilt after an in-place running_var change and after load_state_dict."""
    ref, ours = (copy.deepcopy(m) for m in models)
    x = torch.randn(1, 3, SMALLEST, SMALLEST)
    with torch.no_grad(), inception_core.backend("torch"):
        before = ours(x)  # fills the fold caches (equality with the reference: test_eval_matches_facenet_at_160)
        for m in (ref, ours):
            m.repeat_1[2].branch2[1].bn.running_var.mul_(4.0)
        expected = ref(x)
        assert rel_err(expected, before) > 1e-3  # the change is visible in the output
        assert rel_err(ours(x), expected) <= RTOL
        fresh = copy.deepcopy(ref)
        randomize_for_equivalence(fresh, seed=7)
        ref.load_state_dict(fresh.state_dict())
        ours.load_state_dict(fresh.state_dict())
        expected = ref(x)
        assert rel_err(ours(x), expected) <= RTOL


def test_repr_round_trip_and_registry(models):
    _, ours = models
    text = repr(ours)
    assert "InceptionResnetV1" in text and "Block35" in text and "scale=0.17" in text and "relu=False" in text
    buf = io.BytesIO()
    torch.save(ours.state_dict(), buf)
    buf.seek(0)
    fresh = _registry.create_model("inception_resnet_v1").eval()
    fresh.load_state_dict(torch.load(buf, weights_only=True), strict=True)
    x = torch.randn(1, 3, SMALLEST, SMALLEST)
    with torch.no_grad(), inception_core.backend("torch"):
        torch.testing.assert_close(fresh(x), ours(x), rtol=0, atol=0)
    assert {"inception_resnet_v1", "inception_resnet_v1_imagenet"} <= set(_registry.list_models())
    assert _registry.create_model("inception_resnet_v1_imagenet", num_classes=10).last_linear.out_features == 10
    with pytest.raises(TypeError):
        imod.inception_resnet_v1(not_an_argument=1)
