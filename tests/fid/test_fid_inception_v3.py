"""The FID network against pytorch-fid's and torch-fidelity's own modules on shared random weights: every
tap at 1e-5 relative on the fused path (torch backend), strict loading of both weights layouts, the
TensorFlow pools running through our pooling op, one block on the interpreted Triton kernels."""

import importlib

import pytest
import torch
from fid_helpers import SMALL

import inception_core
from inception_core.fid import InceptionFeatureExtractor
from inception_core.testing import count_parameters, no_concat, rel_err

fidv3 = importlib.import_module("inception_core.models.fid_inception_v3")

RTOL = 1e-5


def _images(n: int, seed: int = 3) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, SMALL, SMALL), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def test_parameter_count_and_keys(fid_state):
    net = fidv3.fid_inception_v3()
    assert count_parameters(net) == 23_850_960
    assert set(net.state_dict()) == set(fid_state)
    assert net.fc.weight.shape == (1008, 2048) and not hasattr(net, "AuxLogits")
    headless = fidv3.fid_inception_v3(num_classes=None)
    assert count_parameters(headless) == 21_785_568


def test_loads_pytorch_fid_and_torch_fidelity_layouts_strictly(fid_state, pytorch_fid_net, fidelity_net,
                                                              fidelity_weights_file):
    # pytorch-fid's fid_inception_v3 and torch-fidelity's extractor loaded these strictly in their fixtures
    assert set(fidv3.FIDInception3().state_dict()) == set(fid_state)
    fidv3.FIDInception3().load_state_dict(fid_state, strict=True)
    # torch-fidelity's file: a plain dict without num_batches_tracked
    fidelity_file = torch.load(fidelity_weights_file, weights_only=True)
    assert not any(k.endswith("num_batches_tracked") for k in fidelity_file)
    fidv3.FIDInception3().load_state_dict(fidelity_file, strict=True)
    with pytest.raises(RuntimeError, match="Unexpected key"):
        fidv3.FIDInception3().load_state_dict({**fid_state, "AuxLogits.fc.weight": torch.zeros(1)}, strict=True)


def test_taps_match_pytorch_fid(ours, pytorch_fid_net, monkeypatch):
    ref = pytorch_fid_net
    monkeypatch.setattr(ref, "resize_input", False)
    monkeypatch.setattr(ref, "normalize_input", False)
    x = torch.rand(1, 3, SMALL, SMALL, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad(), inception_core.backend("torch"):
        expected = ref(x)
        maps = ours.forward_maps(x)
        taps = ours.forward_taps(x, ["64", "192", "768", "2048"])
    for (name, got), want in zip(maps.items(), expected, strict=True):
        if name == "2048":
            want = want.flatten(1)
            got = taps["2048"]
        assert got.shape == want.shape, name
        assert rel_err(got, want) <= RTOL, name
    for name, want in zip(("64", "192", "768"), expected[:3], strict=True):  # pytorch-fid's get_activations pooling
        assert rel_err(taps[name], want.mean((2, 3))) <= RTOL, name


def test_features_match_torch_fidelity(ours, fidelity_net):
    names = ["64", "192", "768", "2048", "logits_unbiased", "logits"]
    ref = fidelity_net
    assert ref.features_list == names
    images = _images(1)
    extractor = InceptionFeatureExtractor(names, preset="torch-fidelity", net=ours, image_size=SMALL)
    with torch.no_grad(), inception_core.backend("torch"):
        expected = ref(images)
        got = extractor(images)
    for name, g, e in zip(names, got, expected, strict=True):
        assert g.dtype == torch.float32 and g.shape == e.shape, name
        assert rel_err(g, e) <= RTOL, name


def test_fused_path_runs_the_tf_pools_through_our_ops(ours, monkeypatch):
    calls = []
    real_avg, real_max = inception_core.ops.avg_pool2d, inception_core.ops.max_pool2d

    def avg(x, *args, **kwargs):
        calls.append(("avg", args, kwargs.get("out") is not None))
        return real_avg(x, *args, **kwargs)

    def mx(x, *args, **kwargs):
        calls.append(("max", args, kwargs.get("out") is not None))
        return real_max(x, *args, **kwargs)

    monkeypatch.setattr(inception_core.ops, "avg_pool2d", avg)
    monkeypatch.setattr(inception_core.ops, "max_pool2d", mx)
    convs = []
    real_conv = inception_core.ops.conv_bn_act
    monkeypatch.setattr(inception_core.nn.functional.ops, "conv_bn_act",
                        lambda *a, **k: convs.append(1) or real_conv(*a, **k))
    with torch.no_grad(), inception_core.backend("torch"), no_concat():
        ours.forward_taps(torch.randn(1, 3, SMALL, SMALL), ["2048"])
    # the fused path: 94 convs, the sibling 1x1s of a block as one GEMM (Mixed_5b-d, 6b-e, 7b, 7c: 3 -> 1;
    # Mixed_7a: 2 -> 1), no concatenation
    assert len(convs) == 94 - 2 * (3 + 4 + 2) - 1
    # avg pools: (kernel, stride, padding, ceil_mode, count_include_pad) positionally from nn.functional
    tf_avg = [c for c in calls if c[0] == "avg" and c[1][-1] is False]
    assert len(tf_avg) == 8 and len([c for c in calls if c[0] == "avg"]) == 8  # Mixed_5b-d, 6b-e, 7b
    stride1_max = [c for c in calls if c[0] == "max" and torch.nn.modules.utils._pair(c[1][1]) == (1, 1)]
    assert len(stride1_max) == 1  # Mixed_7c's branch_pool


def test_count_include_pad_matters(ours):
    """torchvision's pool gives other features: the equivalence tests above would catch a wrong pool."""
    plain = fidv3.InceptionA(192, pool_features=32).eval()
    plain.load_state_dict(ours.Mixed_5b.state_dict())
    x = torch.randn(1, 192, 5, 5)
    with torch.no_grad(), inception_core.backend("torch"):
        assert rel_err(plain(x), ours.Mixed_5b(x)) > 1e-3


def test_block_on_interpreted_triton_matches_torch(ours):
    # count_include_pad=False avg pool inside a fused block (35x35 block at a 5x5 grid)
    x = torch.randn(1, 192, 5, 5).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        with inception_core.backend("torch"):
            want = ours.Mixed_5b(x)
        with inception_core.backend("triton"):
            got = ours.Mixed_5b(x)
    assert rel_err(got, want) <= RTOL


def test_stride1_max_pool_slice_write_on_interpreted_triton():
    # Mixed_7c's branch_pool: 3x3/s1/p1 max pool written into a channel slice, as the fused block does
    x = torch.randn(1, 32, 3, 3).contiguous(memory_format=torch.channels_last)
    out = torch.full((1, 48, 3, 3), float("nan")).contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), inception_core.backend("triton"):
        inception_core.ops.max_pool2d(x, 3, 1, 1, out=out, out_offset=16)
    want = torch.nn.functional.max_pool2d(x, 3, 1, 1)
    assert torch.equal(out[:, 16:], want) and out[:, :16].isnan().all()


def test_bad_taps(ours):
    with pytest.raises(ValueError, match="taps"):
        ours.forward_taps(torch.randn(1, 3, SMALL, SMALL), ["pool3"])
    with pytest.raises(ValueError, match="fc layer"):
        fidv3.FIDInception3(num_classes=None).forward_taps(torch.randn(1, 3, SMALL, SMALL), ["logits"])
