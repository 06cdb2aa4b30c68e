"""The average-pool branch (``inception_core.nn.pool_branch``): its 1x1 conv runs first on the torch backend and
the result equals pool-then-conv in every mode; the blocks that use it equal their reference packages' blocks."""

import copy
import functools
import importlib

import pytest
import torch
import torch.nn.functional as F
import torchvision.models.inception as tv_inception
from torch import nn

import inception_core
import inception_core.nn as icnn
from inception_core import ops
from inception_core.nn import pool_branch
from inception_core.nn.pool_branch import avg_pool_conv_bn_act, pool_geometry
from inception_core.testing import FP32_RTOL, assert_within, randomize_for_equivalence

# the model modules (the package's names inception_v3 ... are the builder functions)
ic_v3, ic_irv2, ic_bn_inception = (importlib.import_module(f"inception_core.models.{name}") for name in (
    "inception_v3", "inception_resnet_v2", "bn_inception"))

C_IN, K, HW = 12, 5, 6


def _spy(monkeypatch, owner, name: str) -> list:
    """The channel count of the input of every call of ``owner.name`` from now on."""
    seen, real = [], getattr(owner, name)

    def spy(x, *args, **kwargs):
        seen.append(x.shape[1])
        return real(x, *args, **kwargs)

    monkeypatch.setattr(owner, name, spy)
    return seen


@pytest.fixture
def pooled_channels(monkeypatch):
    """The channel count of every torch average pool's input (the torch backend's pool is torch's)."""
    return _spy(monkeypatch, F, "avg_pool2d")


def _unit(kind: str):
    """(ours, twin): a BasicConv2d and torchvision's; or BN-Inception's (Conv2d with bias, BatchNorm2d) pair."""
    if kind == "basic":
        twin = tv_inception.BasicConv2d(C_IN, K, kernel_size=1)
        ours = icnn.BasicConv2d(C_IN, K, kernel_size=1)
    else:
        twin = nn.Sequential(nn.Conv2d(C_IN, K, kernel_size=1), nn.BatchNorm2d(K), nn.ReLU())
        ours = nn.Sequential(nn.Conv2d(C_IN, K, kernel_size=1), nn.BatchNorm2d(K))
    randomize_for_equivalence(twin)
    ours.load_state_dict(twin.state_dict(), strict=False)  # the twin's ReLU holds no state
    return ours, twin


def _call_unit(ours, kind):
    return ours if kind == "basic" else (ours[0], ours[1])


def _assert_same_state_and_grads(ours: nn.Module, ref: nn.Module) -> None:
    """Buffers (the running statistics after the step) within FP32_RTOL, num_batches_tracked equal, every
    parameter's gradient within FP32_RTOL of its reference; a reference gradient that is zero but for rounding
    (a conv bias under training-mode BatchNorm) is checked against the module's largest gradient instead."""
    ref_buffers, ref_params = dict(ref.named_buffers()), dict(ref.named_parameters())
    for name, t in ours.named_buffers():
        if t.dtype == torch.int64:
            assert torch.equal(t, ref_buffers[name]), name
        else:
            assert_within(t, ref_buffers[name], FP32_RTOL, name)
    largest = max(p.grad.abs().max().item() for p in ref_params.values())
    for name, t in ours.named_parameters():
        expected = ref_params[name]
        if expected.grad.abs().max().item() > 1e-4 * largest:
            assert_within(t.grad, expected.grad, FP32_RTOL, f"grad {name}")
        else:
            assert (t.grad - expected.grad).abs().max().item() <= FP32_RTOL * largest, f"grad {name}"


@pytest.mark.parametrize("mode", ["eval", "eval-grad", "train"])
@pytest.mark.parametrize("kind", ["basic", "conv-bias-bn"])
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_conv_first_equals_pool_first(count_include_pad, kind, mode, pooled_channels):
    """Torch backend: the pool reads the conv's K channels, not C_in; output, slot, input and parameter
    gradients and running statistics (after one training step) equal pool -> conv -> BN -> ReLU."""
    ours, twin = _unit(kind)
    ours.train(mode == "train")
    twin.train(mode == "train")
    pool = {"kernel_size": 3, "stride": 1, "padding": 1, "count_include_pad": count_include_pad}
    x = torch.randn(2, C_IN, HW, HW).contiguous(memory_format=torch.channels_last)
    grad = mode != "eval"
    xo, xt = x.clone().requires_grad_(grad), x.clone().requires_grad_(grad)
    out = torch.full((2, K + 7, HW, HW), float("nan")).contiguous(memory_format=torch.channels_last)
    with inception_core.backend("torch"), torch.set_grad_enabled(grad):
        y = avg_pool_conv_bn_act(xo, pool, _call_unit(ours, kind), out=out, out_offset=3)
    assert pooled_channels == [K]
    expected = twin(F.avg_pool2d(xt, 3, 1, 1, count_include_pad=count_include_pad))
    assert y.shape == expected.shape and y.data_ptr() == out[:, 3:].data_ptr()
    assert_within(y.detach(), expected.detach(), FP32_RTOL, "output")
    assert torch.isnan(out[:, :3]).all() and torch.isnan(out[:, 3 + K:]).all()
    if grad:
        g = torch.randn_like(expected)
        y.backward(g)
        expected.backward(g)
        assert_within(xo.grad, xt.grad, FP32_RTOL, "grad x")
        _assert_same_state_and_grads(ours, twin)


@pytest.mark.parametrize("frozen", [False, True])
def test_edits_reach_the_next_call(frozen):
    """The folded conv follows its BatchNorm: unfrozen, a ``.data`` write; frozen, a versioned in-place edit."""
    ours, twin = _unit("basic")
    ours.eval()
    twin.eval()
    if frozen:
        icnn.freeze_folding(ours)
    pool = nn.AvgPool2d(3, 1, 1)
    x = torch.randn(2, C_IN, HW, HW).contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), inception_core.backend("torch"):
        for step in range(3):
            assert_within(avg_pool_conv_bn_act(x, pool, ours), twin(pool(x)), FP32_RTOL, f"output after {step} edits")
            for bn in (ours.bn, twin.bn):
                if frozen:
                    bn.running_var.mul_(4.0)
                    bn.bias.add_(0.5)
                else:
                    bn.running_var.data.mul_(4.0)
                    bn.bias.data.add_(0.5)


def test_other_backends_keep_the_pool_first(monkeypatch):
    """On the triton backend (the interpreter here) the pool runs first, on C_in channels, into the fused conv."""
    if not inception_core.backends.interpreter_enabled() and not torch.cuda.is_available():
        pytest.skip("the triton backend needs a GPU or TRITON_INTERPRET=1")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    ours, twin = _unit("basic")
    ours, twin = ours.to(device).eval(), twin.to(device).eval()
    x = torch.randn(1, C_IN, 4, 4, device=device).contiguous(memory_format=torch.channels_last)
    pooled_channels = _spy(monkeypatch, ops, "avg_pool2d")
    with torch.no_grad(), inception_core.backend("triton"):
        y = avg_pool_conv_bn_act(x, nn.AvgPool2d(3, 1, 1, count_include_pad=False), ours)
    assert pooled_channels == [C_IN]
    expected = twin(F.avg_pool2d(x, 3, 1, 1, count_include_pad=False))
    assert_within(y, expected, FP32_RTOL, "output")


def test_pool_geometry_and_its_errors():
    assert pool_geometry(nn.AvgPool2d(3, 1, 1, ceil_mode=True, count_include_pad=False)) == {
        "kernel_size": (3, 3), "stride": (1, 1), "padding": (1, 1), "ceil_mode": True, "count_include_pad": False}
    assert pool_geometry({"kernel_size": 5})["stride"] == (5, 5)
    with pytest.raises(TypeError, match="pool: expected an nn.AvgPool2d"):
        pool_geometry(nn.MaxPool2d(3))
    with pytest.raises(ValueError, match="pool: divisor_override"):
        pool_geometry(nn.AvgPool2d(3, divisor_override=4))
    with pytest.raises(ValueError, match="pool: expected the keys"):
        pool_geometry({"kernel_size": 3, "dilation": 2})
    with pytest.raises(ValueError, match="pool: stride must be"):
        pool_geometry({"kernel_size": 3, "stride": 1.5})


def _timm_block(module: str, name: str):
    """timm's block ``name`` with the conv layer its network builds (ConvNormAct, BatchNorm eps 1e-3)."""
    conv_block = functools.partial(importlib.import_module("timm.layers").ConvNormAct, padding=0,
                                   norm_kwargs=dict(eps=1e-3), act_kwargs=dict(inplace=True))
    return getattr(importlib.import_module(f"timm.models.{module}"), name)(conv_block)


# (ours, the reference block, its input channels, its input size, the pool branch's conv layer), small sizes: the
# code paths do not depend on them. One block per form of the call: Inception-v3's InceptionE (its A and C make the
# same call with the same pool), Inception-ResNet-v2's Mixed_5b (Branch(AvgPool2d(count_include_pad=False), conv),
# as Inception-v4's A/B/C make it). Every network against its reference, eval and a training step: tests/models.
_BLOCKS = {
    "v3-E": (lambda: ic_v3.InceptionE(48), lambda: tv_inception.InceptionE(48), 48, 3, "branch_pool"),
    "irv2-Mixed_5b": (ic_irv2.Mixed_5b, lambda: _timm_block("inception_resnet_v2", "Mixed_5b"), 192, 5, "branch3.1"),
}


@pytest.mark.parametrize("block", list(_BLOCKS))
def test_block_matches_the_reference_block(block, pooled_channels):
    """Eval (fused path) and one training step (output, input and parameter gradients, running statistics)
    against torchvision's / timm's block, with random weights and BatchNorm statistics; the pool reads K."""
    make_ours, make_ref, cin, hw, pool_conv = _BLOCKS[block]
    ref = randomize_for_equivalence(make_ref())
    ours = make_ours()
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, cin, hw, hw).contiguous(memory_format=torch.channels_last)
    xo, xr = x.clone().requires_grad_(), x.clone().requires_grad_()
    with inception_core.backend("torch"):
        with torch.no_grad():
            y_eval = ours.eval()(x)
        y = ours.train()(xo)
    k = ours.get_submodule(pool_conv).conv.out_channels
    assert pooled_channels == [k, k]  # eval, training: the pool reads the conv's K channels, not C_in
    with torch.no_grad():
        assert_within(y_eval, ref.eval()(x), FP32_RTOL, "eval output")
    expected = ref.train()(xr)
    assert_within(y.detach(), expected.detach(), FP32_RTOL, "training output")
    g = torch.randn_like(expected)
    y.backward(g)
    expected.backward(g)
    assert_within(xo.grad, xr.grad, FP32_RTOL, "grad x")
    _assert_same_state_and_grads(ours, ref)


def test_bn_inception_block_equals_the_pool_first_order(monkeypatch, pooled_channels):
    """BN-Inception's pool_proj (conv with bias, count_include_pad=True, ceil_mode) conv first equals the pool-first
    order (which test_networks checks against the port) in eval and in a training step."""
    model = randomize_for_equivalence(ic_bn_inception.BNInception())
    twin = copy.deepcopy(model)
    x = torch.randn(2, 192, 5, 5).contiguous(memory_format=torch.channels_last)
    conv_first = pool_branch._conv_first

    def run(m, t, first, fused):
        monkeypatch.setattr(pool_branch, "_conv_first", conv_first if first else (lambda *a: False))
        return m._block(t, "3a", fused)

    with inception_core.backend("torch"):
        with torch.no_grad():
            assert_within(run(model.eval(), x, True, True), run(twin.eval(), x, False, True), FP32_RTOL, "eval")
        assert pooled_channels == [32, 192]
        xo, xt = x.clone().requires_grad_(), x.clone().requires_grad_()
        y, expected = run(model.train(), xo, True, False), run(twin.train(), xt, False, False)
    assert pooled_channels[2:] == [32, 192]
    g = torch.randn_like(expected)
    y.backward(g)
    expected.backward(g)
    assert_within(y.detach(), expected.detach(), FP32_RTOL, "training output")
    assert_within(xo.grad, xt.grad, FP32_RTOL, "grad x")
    for name in ("inception_3a_pool_proj", "inception_3a_pool_proj_bn", "inception_3a_1x1"):
        _assert_same_state_and_grads(getattr(model, name), getattr(twin, name))
