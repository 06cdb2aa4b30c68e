"""Inception-ResNet-v2 against timm's ``inception_resnet_v2`` (and Cadene's ``inceptionresnetv2`` through
``remap_cadene_inception_resnet_v2``) with the same weights: eval outputs at 299 (torch backend), a thinned
network through the triton backend at the smallest input (75), no torch.cat on the fused path, training mode,
the BN fold cache through the network, parameter count, repr, state_dict round trip, registry."""

import copy
import io

import pytest
import torch

import inception_core
from inception_core.models import _registry
from inception_core.models.inception_resnet_v2 import (
    InceptionResnetV2,
    inception_resnet_v2,
    remap_cadene_inception_resnet_v2,
)
from inception_core.testing import grad_mismatches, randomize_for_equivalence, rel_err

timm = pytest.importorskip("timm")

NATIVE = 299
SMALLEST = 75  # stem (3x3/2, 3x3, pool, 3x3, pool) and the two reductions leave 1 x 1 at 75; 74 leaves nothing
PARAMS = 55_843_464  # timm 55.84M
RTOL = 1e-4


def _thin(model: torch.nn.Module) -> torch.nn.Module:
    """The network with one Block35, one Block17 and no Block8 but the final no-ReLU ``block8``: every kind
    of layer, at a fraction of the interpreter's time."""
    thin = copy.deepcopy(model)
    thin.repeat, thin.repeat_1, thin.repeat_2 = thin.repeat[:1], thin.repeat_1[:1], thin.repeat_2[:0]
    return thin


@pytest.fixture(scope="module")
def ref():
    torch.manual_seed(0)
    model = timm.create_model("inception_resnet_v2", pretrained=False).eval()
    randomize_for_equivalence(model)
    return model


@pytest.fixture(scope="module")
def model(ref):
    ours = inception_resnet_v2().eval()
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
    _, _, ref_logits, _, logits = native
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
        torch.testing.assert_close(model.classif(pooled), logits)


def test_fused_path_independent_of_input_layout(model):
    x = torch.randn(1, 3, SMALLEST + 32, SMALLEST + 32)  # 107: 2 x 2 at the end
    with torch.no_grad(), inception_core.backend("torch"):
        y_nchw = model(x)
        y_cl = model(x.contiguous(memory_format=torch.channels_last))
    assert torch.equal(y_nchw, y_cl)


@pytest.mark.parametrize("variant", ["full"])
def test_triton_backend_at_smallest_size(ref, model, device, monkeypatch, variant):
    """The whole network (all 39 residual blocks; ~60 s through Triton's interpreter on 2 cores) on the
    triton backend at the smallest input, batch 1. (``_thin`` keeps one block of each kind, for
    debugging.)"""
    if device == "cpu" and not inception_core.backends.interpreter_enabled():
        pytest.skip("the triton backend needs a GPU or TRITON_INTERPRET=1")
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


def test_residual_blocks_structure(model):
    assert [b.scale for b in model.repeat] == [0.17] * 10 and all(b.relu for b in model.repeat)
    assert [b.scale for b in model.repeat_1] == [0.10] * 20 and all(b.relu for b in model.repeat_1)
    assert [b.scale for b in model.repeat_2] == [0.20] * 9 and all(b.relu for b in model.repeat_2)
    assert model.block8.scale == 1.0 and not model.block8.relu
    assert model.mixed_5b.branch3[0].count_include_pad is False


def test_training_mode_matches_timm_and_backprops(ref, model):
    inception_core.set_backend("torch")  # the reference comparison (triton: test_training.py)
    ours, theirs = copy.deepcopy(model).train().double(), copy.deepcopy(ref).train().double()  # a mismatch: a bug
    x = torch.randn(2, 3, SMALLEST + 32, SMALLEST + 32, dtype=torch.float64)  # 107: 2 x 2 last grid
    y = ours(x)
    expected = theirs(x)
    assert isinstance(y, torch.Tensor) and type(y) is type(expected) and y.shape == expected.shape == (2, 1000)
    assert rel_err(y.detach(), expected.detach()) <= RTOL
    # the BN running statistics moved the same way
    bn, ref_bn = ours.repeat_2[8].branch1[2].bn, theirs.repeat_2[8].branch1[2].bn
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
        for m in (ours, theirs):  # one BN inside a residual block, in place
            m.repeat[3].branch2[1].bn.running_var.mul_(4.0)
        after = ours(x)
        assert rel_err(after, before) > 1e-3  # the change is visible...
        assert rel_err(after, theirs(x)) <= RTOL  # ...and matches timm's
        for m in (ours, theirs):  # a residual up-projection's bias (no BN: folded into the shift), in place
            m.repeat_1[5].conv2d.bias.add_(0.5)
        after_bias = ours(x)
        assert rel_err(after_bias, after) > 1e-3
        assert rel_err(after_bias, theirs(x)) <= RTOL
        randomize_for_equivalence(theirs)  # a whole new state_dict
        ours.load_state_dict(theirs.state_dict(), strict=True)
        assert rel_err(ours(x), theirs(x)) <= RTOL


def test_repr_state_dict_round_trip_and_registry(model):
    text = repr(model)
    assert text.startswith("InceptionResnetV2(") and "Block35(" in text and "scale=1.0, relu=False" in text
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    fresh = _registry.create_model("inception_resnet_v2").eval()
    assert isinstance(fresh, InceptionResnetV2) and "inception_resnet_v2" in _registry.list_models()
    fresh.load_state_dict(torch.load(buffer, weights_only=True), strict=True)
    x = torch.randn(1, 3, SMALLEST, SMALLEST)
    with torch.no_grad(), inception_core.backend("torch"):
        assert torch.equal(fresh(x), model(x))


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
