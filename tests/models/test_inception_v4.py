"""Inception-v4 against timm's ``inception_v4`` with the same state_dict: eval outputs at 299 (torch backend),
a thinned network through the triton backend at the smallest input (75), no torch.cat on the fused path,
training mode, the BN fold cache through the network, parameter count, repr, state_dict round trip, registry."""

import copy
import io

import pytest
import torch

import inception_core
from inception_core.models import _registry
from inception_core.models.inception_v4 import InceptionV4, inception_v4
from inception_core.testing import grad_mismatches, randomize_for_equivalence, rel_err

timm = pytest.importorskip("timm")

NATIVE = 299
SMALLEST = 75  # stem (3x3/2, 3x3, 3x3/2 pool) and the two reductions leave 1 x 1 at 75; 74 leaves nothing
PARAMS = 42_679_816  # timm 42.68M
RTOL = 1e-4
# one block of each kind, in network order: stem convs, Mixed3a/4a/5a, InceptionA, ReductionA, InceptionB,
# ReductionB, InceptionC (channel counts chain, so the thinned network is a valid network)
THIN = (0, 1, 2, 3, 4, 5, 6, 10, 11, 18, 19)


def _thin(model: torch.nn.Module) -> torch.nn.Module:
    thin = copy.deepcopy(model)
    thin.features = torch.nn.Sequential(*[thin.features[i] for i in THIN])
    return thin


@pytest.fixture(scope="module")
def ref():
    torch.manual_seed(0)
    model = timm.create_model("inception_v4", pretrained=False).eval()
    randomize_for_equivalence(model)
    return model


@pytest.fixture(scope="module")
def model(ref):
    ours = inception_v4().eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ours


@pytest.fixture(scope="module")
def native(ref, model):
    """Input at 299 (batch 2), timm's and our (torch backend) features and logits."""
    torch.manual_seed(1)
    x = torch.randn(2, 3, NATIVE, NATIVE)
    with torch.no_grad():
        ref_feats = ref.forward_features(x)
        ref_logits = ref.forward_head(ref_feats)
        with inception_core.backend("torch"):
            feats = model.forward_features(x)
            logits = model.forward_head(feats)
    return x, ref_feats, ref_logits, feats, logits


def test_matches_timm_at_native_size(native):
    _, ref_feats, ref_logits, feats, logits = native
    assert logits.shape == ref_logits.shape == (2, 1000)
    err = rel_err(logits, ref_logits)
    assert err <= RTOL, err


def test_forward_features_match_timm(native):
    _, ref_feats, _, feats, _ = native
    assert feats.shape == ref_feats.shape == (2, 1536, 8, 8)
    assert feats.is_contiguous(memory_format=torch.channels_last)  # fused path end to end
    assert rel_err(feats, ref_feats) <= RTOL


def test_forward_head_pre_logits(model, native):
    _, _, _, feats, logits = native
    with torch.no_grad():
        pooled = model.forward_head(feats, pre_logits=True)
        assert pooled.shape == (2, 1536)
        torch.testing.assert_close(model.last_linear(pooled), logits)


def test_fused_path_independent_of_input_layout(model):
    x = torch.randn(1, 3, SMALLEST + 32, SMALLEST + 32)  # 107: 2 x 2 at the end
    with torch.no_grad(), inception_core.backend("torch"):
        y_nchw = model(x)
        y_cl = model(x.contiguous(memory_format=torch.channels_last))
    assert torch.equal(y_nchw, y_cl)


@pytest.mark.parametrize("variant", ["thin", pytest.param("full", marks=pytest.mark.slow)])
def test_triton_backend_at_smallest_size(ref, model, device, monkeypatch, slow_selected, variant):
    """Every kind of block (one of each, in order) through the triton backend (Triton's interpreter on a
    CPU machine) at the smallest input, batch 1; the ``full`` variant (all 22 blocks, ~60 s
    interpreted) runs with -m slow."""
    if device == "cpu" and not inception_core.backends.interpreter_enabled():
        pytest.skip("the triton backend needs a GPU or TRITON_INTERPRET=1")
    if variant == "full" and device == "cpu" and not slow_selected:
        pytest.skip("the full network through Triton's interpreter takes ~60 s on 2 cores: select it with -m slow")
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    if variant == "thin":
        ref, model = _thin(ref), _thin(model)
    elif device != "cpu":  # .to() below must not move the module-scoped models
        ref, model = copy.deepcopy(ref), copy.deepcopy(model)
    ref, model = ref.to(device), model.to(device)
    x = torch.randn(1, 3, SMALLEST, SMALLEST, device=device)
    with torch.no_grad():
        expected = ref(x)
        with inception_core.backend("triton"):
            y = model(x)
    assert y.shape == (1, 1000)
    err = rel_err(y, expected)
    assert err <= RTOL, err


def test_no_torch_cat_on_fused_path(model, monkeypatch):
    def _no_cat(*args, **kwargs):
        raise AssertionError("torch.cat called on the fused path")

    monkeypatch.setattr(torch, "cat", _no_cat)
    monkeypatch.setattr(torch, "concat", _no_cat)
    x = torch.randn(1, 3, SMALLEST, SMALLEST)
    with torch.no_grad(), inception_core.backend("torch"):
        y = model(x)
    assert y.shape == (1, 1000)


def test_parameter_count(ref, model):
    count = sum(p.numel() for p in model.parameters())
    assert count == sum(p.numel() for p in ref.parameters()) == PARAMS
    assert list(model.state_dict()) == list(ref.state_dict())


def test_training_mode_matches_timm_and_backprops(ref, model):
    inception_core.set_backend("torch")  # the reference comparison (triton: test_training.py)
    ours, theirs = copy.deepcopy(model).train().double(), copy.deepcopy(ref).train().double()  # a mismatch: a bug
    x = torch.randn(2, 3, SMALLEST + 32, SMALLEST + 32, dtype=torch.float64)  # 107: 2 x 2 last grid
    y = ours(x)
    expected = theirs(x)
    assert isinstance(y, torch.Tensor) and type(y) is type(expected) and y.shape == expected.shape == (2, 1000)
    assert rel_err(y.detach(), expected.detach()) <= RTOL
    # the BN running statistics moved the same way
    bn, ref_bn = ours.features[19].branch2_3b.bn, theirs.features[19].branch2_3b.bn
    torch.testing.assert_close(bn.running_var, ref_bn.running_var, rtol=1e-4, atol=1e-5)
    y.square().mean().backward()
    expected.square().mean().backward()
    assert all(p.grad is not None for p in ours.parameters())
    assert not grad_mismatches(ours, theirs, RTOL)


def test_bn_fold_cache_invalidation(ref, model):
    ours, theirs = copy.deepcopy(model), copy.deepcopy(ref)
    x = torch.randn(1, 3, SMALLEST, SMALLEST)
    with torch.no_grad(), inception_core.backend("torch"):
        before = ours(x)  # fills the fold caches
        for m in (ours, theirs):  # one BN, in place
            m.features[11].branch1[1].bn.running_var.mul_(4.0)
        after = ours(x)
        assert rel_err(after, before) > 1e-3  # the change is visible...
        assert rel_err(after, theirs(x)) <= RTOL  # ...and matches timm's
        randomize_for_equivalence(theirs)  # a whole new state_dict
        ours.load_state_dict(theirs.state_dict(), strict=True)
        assert rel_err(ours(x), theirs(x)) <= RTOL


def test_repr_state_dict_round_trip_and_registry(model):
    text = repr(model)
    assert text.startswith("InceptionV4(") and "InceptionC(" in text and "Branch(" in text
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    fresh = _registry.create_model("inception_v4").eval()
    assert isinstance(fresh, InceptionV4) and "inception_v4" in _registry.list_models()
    fresh.load_state_dict(torch.load(buffer, weights_only=True), strict=True)
    x = torch.randn(1, 3, SMALLEST, SMALLEST)
    with torch.no_grad(), inception_core.backend("torch"):
        assert torch.equal(fresh(x), model(x))


def test_builder_arguments():
    small = inception_v4(num_classes=10, in_chans=1, drop_rate=0.2)
    assert small.last_linear.out_features == 10 and small.features[0].conv.in_channels == 1
    assert small.head_drop.p == 0.2
    small.reset_classifier(0)  # timm's headless form: pooled 1536-d features
    assert isinstance(small.get_classifier(), torch.nn.Identity)
    with torch.no_grad(), inception_core.backend("torch"):
        assert small.eval()(torch.randn(1, 1, SMALLEST, SMALLEST)).shape == (1, 1536)
    with pytest.raises(ValueError, match="output_stride"):
        inception_v4(output_stride=16)
