"""Each of the six networks against its reference implementation (torchvision, timm, pretrainedmodels,
facenet-pytorch) with the same state_dict, one parametrized test per check over ``network_cases.NETWORKS``:
equal outputs and features at the native size (eval, fused path, torch backend) with no ``torch.cat``,
``forward`` = features then head whatever the input layout, the parameter count and key order, the
BN-fold cache after in-place changes and after ``load_state_dict``, repr / state_dict round trip /
registry, the metadata (``pretrained_cfg``), and the interpreted triton backend at the smallest input.
Training mode against the references (outputs, running statistics, every parameter's gradient, float64):
test_training.py. What only one network has: test_<network>.py. The reference pair of each network is
built once (network_cases.network_pair) and copied where a test changes it."""

import copy
import io

import pytest
import torch
from network_cases import NETWORKS, network_pair
from torch import nn

import inception_core
from inception_core.models import create_model, list_models
from inception_core.shapes import NATIVE_INPUT
from inception_core.testing import count_parameters, no_concat, randomize_for_equivalence, rel_err

RTOL = 1e-4  # max |ours - ref| / max |ref|
CL = torch.channels_last


@pytest.fixture(scope="module", params=list(NETWORKS))
def net(request):
    """(Network, reference, ours): one network at a time, in eval mode, the same state."""
    return (NETWORKS[request.param], *network_pair(request.param))


def _features(model: nn.Module, method: str | None) -> nn.Module:
    return getattr(model, method or "forward_features")


def test_eval_matches_the_reference_at_native_size(net):
    spec, ref, ours = net
    x = torch.randn(2, 3, spec.native, spec.native, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref_feats = getattr(ref, spec.ref_features)(x) if spec.ref_features else None
        expected = getattr(ref, spec.ref_head)(ref_feats) if spec.ref_head else ref(x)
        with inception_core.backend("torch"), no_concat():
            feats = ours.forward_features(x)
            y = ours.forward_head(feats)
    assert y.shape == expected.shape == (2, spec.outputs)
    assert rel_err(expected[0], expected[1]) > 1e-2  # the output depends on the input: a meaningful check
    assert rel_err(y, expected) <= RTOL, rel_err(y, expected)
    assert feats.shape == (2, *spec.features) and feats.is_contiguous(memory_format=CL)  # fused end to end
    if ref_feats is not None:
        assert rel_err(feats, ref_feats) <= RTOL


def test_forward_is_features_then_head_in_any_input_layout(net):
    spec, _, ours = net
    x = torch.randn(1, 3, spec.small, spec.small)
    with torch.no_grad(), inception_core.backend("torch"), no_concat():
        y = ours(x)
        y_cl = ours(x.contiguous(memory_format=CL))
        feats = ours.forward_features(x)
        head, pooled = ours.forward_head(feats), ours.forward_head(feats, pre_logits=True)
    assert y.shape == (1, spec.outputs)
    assert torch.equal(y_cl, y)  # converted once at the entry: the input layout cannot matter
    assert feats.is_contiguous(memory_format=CL)
    assert torch.equal(head, y)
    assert pooled.shape == (1, spec.pooled)


def test_parameter_count_and_keys(net):
    spec, ref, ours = net
    assert count_parameters(ours) == count_parameters(ref) == spec.params
    assert list(ours.state_dict()) == list(ref.state_dict())


def test_bn_fold_cache_follows_changes(net):
    """The folded BatchNorm (and conv bias) cache is rebuilt after each in-place change of a parameter or
    buffer, and after ``load_state_dict`` of a whole new state."""
    spec, ref, ours = (net[0], *(copy.deepcopy(m) for m in net[1:]))
    size = spec.fold_size or spec.small
    x = torch.randn(1, 3, size, size)

    def outputs():
        if spec.fold_on_features:
            return _features(ours, None)(x), _features(ref, spec.ref_features)(x)
        return ours(x), ref(x)

    with torch.no_grad(), inception_core.backend("torch"):
        before, expected = outputs()  # fills the fold caches
        assert rel_err(before, expected) <= RTOL
        for path, change in spec.changes:
            module, _, attr = path.rpartition(".")
            for m in (ref, ours):
                change(getattr(m.get_submodule(module), attr))
            after, expected = outputs()
            assert rel_err(expected, before) > 1e-3, path  # the change is visible in the output...
            assert rel_err(after, expected) <= RTOL, path  # ...and ours follows it
            before = after
        fresh = randomize_for_equivalence(copy.deepcopy(ref), seed=7)
        ref.load_state_dict(fresh.state_dict())
        ours.load_state_dict(fresh.state_dict(), strict=True)
        after, expected = outputs()
        assert rel_err(after, expected) <= RTOL


def test_repr_state_dict_round_trip_and_registry(net):
    spec, _, ours = net
    text = repr(ours)
    assert all(name in text for name in spec.repr_has), text[:200]
    buffer = io.BytesIO()
    torch.save(ours.state_dict(), buffer)
    buffer.seek(0)
    fresh = create_model(spec.name, **spec.kwargs).eval()
    assert type(fresh) is type(ours) and spec.name in list_models()
    fresh.load_state_dict(torch.load(buffer, weights_only=True), strict=True)
    size = spec.fold_size or spec.small
    x = torch.randn(1, 3, size, size)
    with torch.no_grad(), inception_core.backend("torch"):
        if spec.fold_on_features:  # the head needs a larger input
            assert torch.equal(fresh.forward_features(x), ours.forward_features(x))
        else:
            assert torch.equal(fresh(x), ours(x))
    with pytest.raises(TypeError):
        create_model(spec.name, not_an_argument=1)


def test_pretrained_cfg_names_the_real_layers(net):
    """timm's metadata keys: ``first_conv`` is the conv reading the input, ``classifier`` the last linear."""
    spec, _, ours = net
    cfg = ours.pretrained_cfg
    assert ours.default_cfg is cfg
    first = ours.get_submodule(cfg["first_conv"])
    assert isinstance(first, nn.Conv2d) and first.in_channels == cfg["input_size"][0] == 3
    classifier = ours.get_submodule(cfg["classifier"])
    assert isinstance(classifier, nn.Linear) and classifier.out_features == spec.outputs
    assert cfg["input_size"] == (3, spec.native, spec.native) == (3, NATIVE_INPUT[spec.name], NATIVE_INPUT[spec.name])
    assert len(cfg["mean"]) == len(cfg["std"]) == 3 and min(cfg["std"]) > 0
    with torch.no_grad(), inception_core.backend("torch"):  # the smallest input it names runs
        ours(torch.randn(1, *cfg["min_input_size"]))


@pytest.mark.parametrize("variant", ["default", pytest.param("full", marks=pytest.mark.slow)])
def test_triton_backend_at_smallest_input(net, variant, device, monkeypatch, slow_selected):
    """The triton backend (Triton's interpreter on a CPU machine) at 75x75, batch 1: Inception-v3, -v4 and
    Inception-ResNet-v2 thinned to one block of each kind (every block of a kind runs the same code; the
    whole network, one to several minutes interpreted, with -m slow). Inception-ResNet-v1: block by block in
    test_inception_resnet_v1.py; GoogLeNet and BN-Inception: the same layer kinds, covered there."""
    spec, ref, ours = net
    if spec.triton is None or (variant == "full" and not spec.triton_thinned):
        pytest.skip(f"{spec.name}: no {variant} triton-backend network check here (see the docstring)")
    if device == "cpu" and not inception_core.backends.interpreter_enabled():
        pytest.skip("the triton backend needs a GPU or TRITON_INTERPRET=1")
    if variant == "full" and device == "cpu" and not slow_selected:
        pytest.skip("the full network through Triton's interpreter takes minutes on 2 cores: select it with -m slow")
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    if variant == "default":
        ref, ours = spec.triton(ref), spec.triton(ours)
    if device != "cpu":  # .to() below must not move the shared models
        ref, ours = copy.deepcopy(ref).to(device), copy.deepcopy(ours).to(device)
    x = torch.randn(1, 3, 75, 75, device=device)
    with torch.no_grad():
        expected = ref(x)
        with inception_core.backend("triton"):
            y = ours(x)
    assert y.shape == (1, spec.outputs)
    assert rel_err(y, expected) <= RTOL, rel_err(y, expected)
