"""BN-Inception against Cadene's ``pretrainedmodels.bninception`` with the same state_dict: eval (fused,
torch backend) at 224x224, training outputs and gradients, no ``torch.cat`` on the fused path, BN-fold
cache invalidation, parameter count, repr, state_dict round trip and the registry. On CPU; the
reference has random weights and randomised BatchNorm statistics (so the BN folding is exercised)."""

import copy
import importlib
import io

import pretrainedmodels
import pytest
import torch
from torch import nn

import inception_core
from inception_core.models import _registry
from inception_core.testing import buffer_mismatches, grad_mismatches, randomize_for_equivalence, rel_err

bmod = importlib.import_module("inception_core.models.bn_inception")

RTOL = 1e-4  # max |ours - ref| / max |ref|


@pytest.fixture(scope="module")
def models():
    """(Cadene BNInception, ours) with the same randomised state, both in eval mode."""
    torch.manual_seed(0)
    ref = pretrainedmodels.bninception(num_classes=1000, pretrained=None).eval()
    randomize_for_equivalence(ref)
    ours = bmod.bn_inception(num_classes=1000).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ref, ours


def _no_cat(*args, **kwargs):
    raise AssertionError("torch.cat called on the fused path")


def test_eval_matches_cadene_at_224(models, monkeypatch):
    ref, ours = models
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = ref(x)
        with inception_core.backend("torch"):
            monkeypatch.setattr(torch, "cat", _no_cat)
            y = ours(x)
            y_cl = ours(x.contiguous(memory_format=torch.channels_last))
            feats = ours.forward_features(x)
            monkeypatch.undo()
            aliases = ours.logits(ours.features(x))  # the port's method names
    assert y.shape == (2, 1000)
    assert rel_err(expected[0], expected[1]) > 1e-2  # the output depends on the input (a meaningful check)
    err = rel_err(y, expected)
    assert err <= RTOL, err
    torch.testing.assert_close(y_cl, y, rtol=0, atol=0)  # the layout is converted once at the entry
    assert feats.shape == (2, 1024, 7, 7) and feats.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(ours.forward_head(feats), y, rtol=0, atol=0)
    torch.testing.assert_close(aliases, y, rtol=0, atol=0)
    assert ours.forward_head(feats, pre_logits=True).shape == (2, 1024)


def test_parameter_count_and_keys(models):
    ref, ours = models
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters()) == 11_295_240
    assert list(ours.state_dict()) == list(ref.state_dict())
    assert ours.conv1_7x7_s2.bias is not None and ours.conv1_7x7_s2_bn.eps == 1e-5
    assert isinstance(ours.inception_5b_pool, nn.MaxPool2d) and isinstance(ours.inception_5a_pool, nn.AvgPool2d)


def test_training_matches_cadene(models):
    """Train mode (BN batch statistics): same logits, same running-statistics updates, every parameter
    gets a gradient equal to the reference's."""
    inception_core.set_backend("torch")  # the reference comparison (triton: test_training.py)
    ref, ours = (copy.deepcopy(m).train().double() for m in models)  # float64: a mismatch is a bug, not rounding
    x = torch.randn(1, 3, 224, 224, dtype=torch.float64)  # batch 1: BN still sees >= 49 values
    expected = ref(x)
    out = ours(x)
    assert isinstance(out, torch.Tensor) and out.shape == expected.shape == (1, 1000)
    assert rel_err(out, expected) <= RTOL
    assert not buffer_mismatches(ours, ref, 1e-5)
    expected.square().mean().backward()
    out.square().mean().backward()
    assert all(p.grad is not None for p in ours.parameters())
    assert not grad_mismatches(ours, ref, RTOL)


def test_bn_fold_cache_follows_changes(models):
    """The folded BN cache is rebuilt after an in-place running_var change and after load_state_dict.
    Compared on the feature maps at 96x96 (the port's ``features`` takes any size with even sizes at
    the reduction blocks; only its 7x7 head needs 224), which keeps the test quick."""
    ref, ours = (copy.deepcopy(m) for m in models)
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad(), inception_core.backend("torch"):
        before = ours.forward_features(x)
        assert rel_err(before, ref.features(x)) <= RTOL
        for m in (ref, ours):
            m.inception_3a_double_3x3_1_bn.running_var.mul_(4.0)
        expected = ref.features(x)
        assert rel_err(expected, before) > 1e-3  # the change is visible in the output
        assert rel_err(ours.forward_features(x), expected) <= RTOL
        fresh = copy.deepcopy(ref)
        randomize_for_equivalence(fresh, seed=7)
        ref.load_state_dict(fresh.state_dict())
        ours.load_state_dict(fresh.state_dict())
        expected = ref.features(x)
        assert rel_err(ours.forward_features(x), expected) <= RTOL


def test_repr_round_trip_and_registry(models):
    _, ours = models
    text = repr(ours)
    assert "BNInception" in text and "inception_5b_pool" in text and "last_linear" in text
    buf = io.BytesIO()
    torch.save(ours.state_dict(), buf)
    buf.seek(0)
    fresh = _registry.create_model("bn_inception").eval()
    fresh.load_state_dict(torch.load(buf, weights_only=True), strict=True)
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad(), inception_core.backend("torch"):
        torch.testing.assert_close(fresh.forward_features(x), ours.forward_features(x), rtol=0, atol=0)
    assert "bn_inception" in _registry.list_models()
    with pytest.raises(TypeError):
        bmod.bn_inception(not_an_argument=1)
