"""GoogLeNet against torchvision's ``googlenet`` with the same state_dict: eval (fused, torch backend) at
224x224, training outputs and gradients, no ``torch.cat`` on the fused path, BN-fold cache invalidation,
parameter counts, repr, state_dict round trip and the registry. On CPU; the reference is torchvision's
own module with random weights and randomised BatchNorm statistics (so the BN folding is exercised)."""

import copy
import importlib
import io
import sys

import pytest
import torch
import torchvision
from torchvision.models.googlenet import GoogLeNetOutputs as TVGoogLeNetOutputs

import inception_core
from inception_core.models import _registry
from inception_core.testing import buffer_mismatches, grad_mismatches, randomize_for_equivalence, rel_err

gmod = importlib.import_module("inception_core.models.googlenet")

RTOL = 1e-4  # max |ours - ref| / max |ref|


def _pair(**kwargs):
    """(torchvision GoogLeNet, ours) with the same randomised state, both in eval mode."""
    torch.manual_seed(0)
    ref = torchvision.models.googlenet(init_weights=False, **kwargs).eval()
    randomize_for_equivalence(ref)
    ours = gmod.googlenet(**kwargs).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ref, ours


@pytest.fixture(scope="module")
def models():
    return _pair()


@pytest.fixture(scope="module")
def native():
    """A fresh (2, 3, 224, 224) input."""
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    return x


def _no_cat(*args, **kwargs):
    raise AssertionError("torch.cat called on the fused path")


def test_eval_matches_torchvision_at_224(models, native, monkeypatch):
    ref, ours = models
    with torch.no_grad():
        expected = ref(native)
        with inception_core.backend("torch"):
            monkeypatch.setattr(torch, "cat", _no_cat)
            y = ours(native)
            y_cl = ours(native.contiguous(memory_format=torch.channels_last))
            feats = ours.forward_features(native)
            monkeypatch.undo()
    assert isinstance(y, torch.Tensor) and y.shape == (2, 1000)
    assert rel_err(expected[0], expected[1]) > 1e-2  # the output depends on the input (a meaningful check)
    err = rel_err(y, expected)
    assert err <= RTOL, err
    torch.testing.assert_close(y_cl, y, rtol=0, atol=0)  # the layout is converted once at the entry
    assert feats.shape == (2, 1024, 7, 7) and feats.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(ours.forward_head(feats), y, rtol=0, atol=0)
    assert ours.forward_head(feats, pre_logits=True).shape == (2, 1024)


def test_transform_input_and_no_aux_match_torchvision(monkeypatch):
    ref, ours = _pair(aux_logits=False, transform_input=True, num_classes=10)
    assert ours.aux1 is None and ours.aux2 is None
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = ref(x)
        with inception_core.backend("torch"):
            monkeypatch.setattr(torch, "cat", _no_cat)  # transform_input too runs without torch.cat
            y = ours(x)
            monkeypatch.undo()
    assert rel_err(y, expected) <= RTOL
    ref.train()
    ours.train()
    assert isinstance(ours(x), torch.Tensor)  # no aux heads: a Tensor in training mode too, as torchvision


def test_outputs_namedtuple_without_torchvision(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision.models.googlenet", None)  # makes the import fail
    outputs = gmod._outputs_type.__wrapped__()
    assert outputs is not TVGoogLeNetOutputs
    assert outputs.__name__ == "GoogLeNetOutputs" and outputs._fields == TVGoogLeNetOutputs._fields


def test_parameter_count(models):
    ref, ours = models
    n = sum(p.numel() for p in ours.parameters())
    assert n == sum(p.numel() for p in ref.parameters()) == 13_004_888  # with both aux heads (models.md)
    no_aux = gmod.googlenet(aux_logits=False, init_weights=False)
    assert sum(p.numel() for p in no_aux.parameters()) == 6_624_904  # torchvision's num_params
    assert list(ours.state_dict()) == list(ref.state_dict())


def test_training_matches_torchvision(models):
    """Train mode: GoogLeNetOutputs(logits, aux_logits2, aux_logits1) equal to torchvision's (same dropout
    masks from the same seed), running statistics updated the same way, every parameter gets a gradient
    equal to the reference's."""
    inception_core.set_backend("torch")  # the reference comparison (triton: test_training.py)
    ref, ours = (copy.deepcopy(m).train().double() for m in models)  # float64: a mismatch is a bug, not rounding
    x = torch.randn(2, 3, 96, 96, dtype=torch.float64)
    torch.manual_seed(3)
    expected = ref(x)
    torch.manual_seed(3)
    out = ours(x)
    assert type(out) is TVGoogLeNetOutputs
    assert type(out) is gmod.GoogLeNetOutputs
    assert out._fields == ("logits", "aux_logits2", "aux_logits1")
    for name, a, b in zip(out._fields, out, expected, strict=True):
        assert a.shape == b.shape == (2, 1000)
        assert rel_err(a, b) <= RTOL, name
    assert not buffer_mismatches(ours, ref, 1e-5)
    (expected.logits.sum() + 0.3 * (expected.aux_logits1.sum() + expected.aux_logits2.sum())).backward()
    (out.logits.sum() + 0.3 * (out.aux_logits1.sum() + out.aux_logits2.sum())).backward()
    assert all(p.grad is not None for p in ours.parameters())
    assert not grad_mismatches(ours, ref, RTOL)


def test_bn_fold_cache_follows_changes(models):
    """The folded BN cache is rebuilt after an in-place running_var change and after load_state_dict."""
    ref, ours = (copy.deepcopy(m) for m in models)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad(), inception_core.backend("torch"):
        before = ours(x)
        assert rel_err(before, ref(x)) <= RTOL
        for m in (ref, ours):
            m.inception3a.branch2[1].bn.running_var.mul_(4.0)
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
    assert "GoogLeNet" in text and "Inception" in text and "MaxPool2d" in text
    buf = io.BytesIO()
    torch.save(ours.state_dict(), buf)
    buf.seek(0)
    fresh = _registry.create_model("googlenet", init_weights=False).eval()
    fresh.load_state_dict(torch.load(buf, weights_only=True), strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad(), inception_core.backend("torch"):
        torch.testing.assert_close(fresh(x), ours(x), rtol=0, atol=0)
    assert "googlenet" in _registry.list_models()
    with pytest.raises(TypeError):
        gmod.googlenet(not_an_argument=1)
