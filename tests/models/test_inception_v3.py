"""Inception-v3 against torchvision's ``inception_v3`` and timm's: same keys and parameter count, equal
outputs in eval (fused path, torch backend at 299 and interpreted Triton at 75) and in training (batch
statistics, aux head), no torch.cat on the fused path, BN-fold cache invalidation, transform_input."""

import copy
import importlib
import io

import pytest
import timm
import torch
import torchvision

import inception_core
from inception_core.models import _registry
from inception_core.testing import randomize_for_equivalence, rel_err

v3 = importlib.import_module("inception_core.models.inception_v3")

NATIVE = 299
SMALLEST = 75  # torchvision's min_size for inception_v3
RTOL = 1e-4
PARAMS_WITH_AUX = 27_161_264  # torchvision meta num_params
PARAMS_NO_AUX = 23_834_568
CL = torch.channels_last


@pytest.fixture(scope="module")
def pair():
    """torchvision's inception_v3 (random init, randomised BN, eval) and ours with its state_dict."""
    torch.manual_seed(0)
    ref = torchvision.models.inception_v3(init_weights=True).eval()
    randomize_for_equivalence(ref, seed=1)
    ours = v3.inception_v3().eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ours, ref


@pytest.fixture(scope="module")
def native(pair):
    """A native-size input (batch 2) and torchvision's eval output for it."""
    x = torch.randn(2, 3, NATIVE, NATIVE, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        return x, pair[1](x)


def _small(batch: int = 1, seed: int = 3) -> torch.Tensor:
    return torch.randn(batch, 3, SMALLEST, SMALLEST, generator=torch.Generator().manual_seed(seed))


def test_eval_matches_torchvision_at_native_size(pair, native):
    ours, _ = pair
    x, expected = native
    with torch.no_grad(), inception_core.backend("torch"):
        y = ours(x)
        y_cl = ours(x.contiguous(memory_format=CL))
    assert isinstance(y, torch.Tensor) and y.shape == (2, 1000)
    assert rel_err(y, expected) <= RTOL
    assert torch.equal(y_cl, y)  # converted once at the entry: the input layout cannot matter


def test_eval_matches_torchvision_interpreted_triton_at_smallest_size(pair):
    ours, ref = pair
    x = _small()
    with torch.no_grad():
        expected = ref(x)
        with inception_core.backend("triton"):
            y = ours(x)
    assert y.shape == (1, 1000)
    assert rel_err(y, expected) <= RTOL


def test_matches_timm_without_aux(native):
    torch.manual_seed(4)
    ref = timm.create_model("inception_v3", pretrained=False).eval()
    randomize_for_equivalence(ref, seed=5)
    ours = v3.inception_v3(aux_logits=False, init_weights=False).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    assert ours.AuxLogits is None
    x = native[0]
    with torch.no_grad():
        ref_features = ref.forward_features(x)
        expected = ref.forward_head(ref_features)
        with inception_core.backend("torch"):
            features = ours.forward_features(x)
            y = ours.forward_head(features)
            pre = ours.forward_head(features, pre_logits=True)
    assert features.shape == ref_features.shape == (2, 2048, 8, 8)
    assert rel_err(features, ref_features) <= RTOL
    assert rel_err(y, expected) <= RTOL
    assert pre.shape == (2, 2048)


def test_parameter_count_and_keys(pair):
    ours, ref = pair
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(ours) == count(ref) == PARAMS_WITH_AUX
    assert list(ours.state_dict()) == list(ref.state_dict())
    no_aux = v3.inception_v3(aux_logits=False, init_weights=False)
    assert count(no_aux) == count(timm.create_model("inception_v3")) == PARAMS_NO_AUX


def test_fused_path_has_no_cat_and_fuses_sibling_convs(pair, monkeypatch):
    ours = copy.deepcopy(pair[0])
    ours.transform_input = True  # its per-channel formula must not concatenate either
    calls = []
    real = inception_core.ops.conv_bn_act
    monkeypatch.setattr(inception_core.nn.functional.ops, "conv_bn_act",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(torch, "cat", lambda *a, **k: pytest.fail("torch.cat on the fused path"))
    with torch.no_grad(), inception_core.backend("torch"):
        y = ours(_small())
    assert y.shape == (1, 1000)
    # 94 conv layers outside AuxLogits; one stacked GEMM per block for the 1x1 convs that read its input:
    # 3 -> 1 in Mixed_5b..5d, 6b..6e, 7b, 7c (2 saved each), 2 -> 1 in Mixed_7a
    assert len(calls) == 94 - 2 * (3 + 4 + 2) - 1


def test_training_matches_torchvision_and_trains_every_parameter(pair, native):
    ours, ref = (copy.deepcopy(m).train().double() for m in pair)  # float64: a mismatch is a bug, not rounding
    x = native[0].double()
    torch.manual_seed(6)  # same dropout mask in both
    expected = ref(x)
    with inception_core.backend("torch"):
        torch.manual_seed(6)
        y = ours(x)
    assert type(y) is type(expected) and type(y).__name__ == "InceptionOutputs"
    assert y.logits.shape == y.aux_logits.shape == (2, 1000)
    assert rel_err(y.logits, expected.logits) <= RTOL
    assert rel_err(y.aux_logits, expected.aux_logits) <= RTOL
    ref_buffers = ref.state_dict()
    for name, buf in ours.state_dict().items():  # running stats updated as torchvision updates them
        if "running" in name:
            torch.testing.assert_close(buf, ref_buffers[name], rtol=1e-4, atol=1e-6)
    (y.logits.square().mean() + 0.4 * y.aux_logits.square().mean()).backward()
    assert all(p.grad is not None for p in ours.parameters())


def test_training_without_aux_returns_a_tensor(pair):
    ours = copy.deepcopy(pair[0]).train()
    ours.aux_logits, ours.AuxLogits = False, None  # what torchvision's builder does with aux_logits=False
    with inception_core.backend("torch"):
        y = ours(_small(batch=2))
    assert isinstance(y, torch.Tensor) and y.shape == (2, 1000)


def test_transform_input(pair):
    ours, ref = (copy.deepcopy(m) for m in pair)
    ours.transform_input = ref.transform_input = True
    x = _small(batch=2)
    # the formula itself, bit for bit: on the autograd path (NCHW) and the fused one (channels_last)
    assert torch.equal(ours._prepare_input(x), ref._transform_input(x))
    with torch.no_grad():
        prepared = ours._prepare_input(x)
        assert prepared.is_contiguous(memory_format=CL)
        assert torch.equal(prepared, ref._transform_input(x))
    with torch.no_grad():
        expected = ref(x)
        with inception_core.backend("torch"):
            y = ours(x)
            plain = pair[0](x)
    assert rel_err(y, expected) <= RTOL
    assert rel_err(plain, expected) > 1e-2  # the transform changes the result: the check above can fail


def test_bn_fold_cache_follows_changes(pair):
    ours, ref = (copy.deepcopy(m) for m in pair)
    x = _small()

    def check():
        with torch.no_grad(), inception_core.backend("torch"):
            y = ours(x)
            assert rel_err(y, ref(x)) <= RTOL
        return y

    before = check()
    with torch.no_grad():  # in place, on a BN inside a horizontally fused 1x1 conv and on a stem BN
        for m in (ours, ref):
            m.Mixed_6b.branch7x7dbl_1.bn.running_var[:8] *= 4.0
            m.Conv2d_1a_3x3.bn.running_var.mul_(2.0)
    after = check()
    assert rel_err(after, before) > 1e-3
    new = copy.deepcopy(ref)
    randomize_for_equivalence(new, seed=7)
    ref.load_state_dict(new.state_dict())
    ours.load_state_dict(new.state_dict())
    assert rel_err(check(), after) > 1e-3


def test_repr_state_dict_round_trip_and_registry(pair):
    ours = pair[0]
    text = repr(ours)
    assert "Mixed_7c" in text and "InceptionE" in text and "AuxLogits" in text
    buf = io.BytesIO()
    torch.save(ours.state_dict(), buf)
    buf.seek(0)
    fresh = _registry.create_model("inception_v3", init_weights=False).eval()
    assert isinstance(fresh, v3.Inception3)
    fresh.load_state_dict(torch.load(buf, weights_only=True), strict=True)
    x = _small()
    with torch.no_grad(), inception_core.backend("torch"):
        assert torch.equal(fresh(x), ours(x))
    assert "inception_v3" in _registry.list_models()
    small = _registry.create_model("inception_v3", num_classes=10, aux_logits=False, init_weights=False)
    assert small.fc.out_features == 10 and small.AuxLogits is None


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
