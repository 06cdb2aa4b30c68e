"""inception_core.nn layers against their torch counterparts: eval (fused) and training paths, the BN fold
cache, autocast, slice writes, construction errors."""

import copy

import pytest
import torch
import torchvision.models.inception as tv_inception

import inception_core
import inception_core.nn as icnn
from inception_core.nn.blocks import ChannelSlots
from inception_core.ops.conv_torch import onednn_fusable


def _randomize_bn(bn):
    with torch.no_grad():
        bn.running_mean.normal_(0, 0.1)
        bn.running_var.uniform_(0.5, 1.5)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.normal_(0, 0.1)


def _pair(cin=16, cout=24, **kw):
    """Our BasicConv2d and torchvision's with the same state."""
    ref = tv_inception.BasicConv2d(cin, cout, **kw)
    _randomize_bn(ref.bn)
    ours = icnn.BasicConv2d(cin, cout, **kw)
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ours, ref


@pytest.mark.parametrize("backend_name", ["torch", "triton"])
@pytest.mark.parametrize(
    "kw", [dict(kernel_size=1), dict(kernel_size=3, stride=2), dict(kernel_size=(1, 7), padding=(0, 3))]
)
def test_basic_conv_eval_matches_torchvision(backend_name, kw, device):
    ours, ref = _pair(**kw)
    ours, ref = ours.to(device).eval(), ref.to(device).eval()
    x = torch.randn(2, 16, 9, 9, device=device)
    with torch.no_grad(), inception_core.backend(backend_name):
        y = ours(x)
    expected = ref(x)
    assert y.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5)


def test_state_dict_keys_match_torchvision():
    ours, ref = _pair(kernel_size=3)
    assert list(ours.state_dict()) == list(ref.state_dict())
    assert "bias" not in dict(ours.conv.named_parameters())
    with_bias = icnn.BasicConv2d(4, 8, eps=1e-5, bias=True, kernel_size=1)
    assert with_bias.conv.bias is not None and with_bias.bn.eps == 1e-5


def test_fold_cache_is_invalidated_by_every_kind_of_change():
    ours, ref = _pair(kernel_size=3, padding=1)
    ours.eval()
    ref.eval()
    x = torch.randn(2, 16, 7, 7)

    def agree():
        with torch.no_grad():
            torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)

    agree()
    with torch.no_grad():  # in-place buffer change
        ours.bn.running_var.mul_(2.0)
        ref.bn.running_var.mul_(2.0)
    agree()
    new = copy.deepcopy(ref)  # load_state_dict copies into the same tensors
    _randomize_bn(new.bn)
    ref.load_state_dict(new.state_dict())
    ours.load_state_dict(new.state_dict())
    agree()
    for module in (ours, ref):  # an optimizer step on the conv weight
        opt = torch.optim.SGD(module.parameters(), lr=0.1)
        module.conv.weight.grad = torch.ones_like(module.conv.weight)
        opt.step()
    agree()
    ours.bn.weight = torch.nn.Parameter(torch.full_like(ours.bn.weight, 2.0))  # a replaced parameter
    ref.bn.weight = torch.nn.Parameter(torch.full_like(ref.bn.weight, 2.0))
    agree()
    ours.double()
    ref.double()
    x = x.double()
    agree()


def test_training_mode_is_the_torch_batchnorm_path(monkeypatch):
    ours, ref = _pair(kernel_size=3)
    ours.train()
    ref.train()
    x = torch.randn(4, 16, 8, 8, requires_grad=True)
    # on the torch backend a training layer is torch's own modules (its fastest correct form on a CPU)
    monkeypatch.setattr(inception_core.nn.functional.ops, "conv_bn_act_train",
                        lambda *a, **k: pytest.fail("the fused training op on the torch backend"))
    with inception_core.backend("torch"):
        torch.testing.assert_close(ours(x), ref(x))
        torch.testing.assert_close(ours.bn.running_mean, ref.bn.running_mean)
        torch.testing.assert_close(ours.bn.running_var, ref.bn.running_var)
        assert ours.bn.num_batches_tracked == ref.bn.num_batches_tracked == 1
        ours(x).sum().backward()
    assert ours.conv.weight.grad is not None and ours.bn.weight.grad is not None


def test_pools_with_gradients_are_torch_pools_on_the_torch_backend(monkeypatch):
    # the fused pool op's forward writes a copy and its backward recomputes the argmax: torch's own pools
    # keep their indices, so a pool recording a graph on the torch backend is torch's
    for name in ("max_pool2d", "avg_pool2d"):
        monkeypatch.setattr(inception_core.nn.functional.ops, name,
                            lambda *a, _n=name, **k: pytest.fail(f"the fused {_n} op with gradients on torch"))
    x = torch.randn(2, 6, 9, 9).contiguous(memory_format=torch.channels_last).requires_grad_()
    cases = [(icnn.MaxPool2d(3, 2, ceil_mode=True), torch.nn.MaxPool2d(3, 2, ceil_mode=True)),
             (icnn.AvgPool2d(3, 1, 1, count_include_pad=False), torch.nn.AvgPool2d(3, 1, 1, count_include_pad=False))]
    for ours, ref in cases:
        with inception_core.backend("torch"):
            y = ours(x)
        expected = ref(x)
        torch.testing.assert_close(y, expected, rtol=0, atol=0)
        g = torch.randn_like(expected)
        torch.testing.assert_close(torch.autograd.grad(y, x, g)[0], torch.autograd.grad(expected, x, g)[0],
                                   rtol=0, atol=0)


def test_eval_with_gradients_falls_back_to_autograd():
    ours, ref = _pair(kernel_size=1)
    ours.eval()
    x = torch.randn(2, 16, 5, 5, requires_grad=True)
    y = ours(x)
    y.sum().backward()
    assert x.grad is not None and ours.conv.weight.grad is not None


def test_autocast_bf16():
    ours, ref = _pair(kernel_size=3, padding=1)
    ours.eval()
    ref.eval()
    x = torch.randn(2, 16, 6, 6)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        y = ours(x)
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), ref(x).detach(), rtol=3e-2, atol=3e-2)


def test_slice_write():
    ours, ref = _pair(kernel_size=1)
    ours.eval()
    x = torch.randn(2, 16, 5, 5)
    out = torch.full((2, 40, 5, 5), float("nan")).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        y = ours(x, out=out, out_offset=8)
    assert y.data_ptr() == out[:, 8:].data_ptr()
    torch.testing.assert_close(out[:, 8:32], ref.eval()(x).detach(), rtol=1e-5, atol=1e-5)
    assert torch.isnan(out[:, :8]).all() and torch.isnan(out[:, 32:]).all()


@pytest.mark.parametrize("kw,name", [(dict(dilation=2), "dilation"), (dict(groups=2), "groups"),
                                     (dict(padding="same"), "padding"), (dict(act="gelu"), "act"),
                                     (dict(padding_mode="reflect"), "padding_mode")])
def test_unsupported_arguments_raise_at_construction(kw, name):
    with pytest.raises(ValueError, match=f"^{name}"):
        icnn.BasicConv2d(4, 8, kernel_size=3, **kw)


@pytest.mark.parametrize("backend_name", ["torch", "triton"])
def test_pooling_layers_match_torch(backend_name, device):
    x = torch.randn(2, 12, 9, 9, device=device)
    cases = [(icnn.MaxPool2d(3, 2, ceil_mode=True), torch.nn.MaxPool2d(3, 2, ceil_mode=True)),
             (icnn.AvgPool2d(3, 1, 1, count_include_pad=False), torch.nn.AvgPool2d(3, 1, 1, count_include_pad=False))]
    for ours, ref in cases:
        assert repr(ours) == repr(ref)
        with torch.no_grad(), inception_core.backend(backend_name):
            torch.testing.assert_close(ours(x), ref(x), rtol=1e-6, atol=1e-6)
    y = torch.randn(1, 4, 5, 5, requires_grad=True)
    icnn.MaxPool2d(3, 2)(y).sum().backward()  # the autograd path
    assert y.grad is not None
    with pytest.raises(ValueError, match="^dilation"):
        icnn.MaxPool2d(3, dilation=2)
    with pytest.raises(ValueError, match="^return_indices"):
        icnn.MaxPool2d(3, return_indices=True)
    with pytest.raises(ValueError, match="^divisor_override"):
        icnn.AvgPool2d(3, divisor_override=2)


class _Toy(icnn.ConcatBlock):
    """Three branches: a 1x1, a 1x1 -> 3x3 chain and a pool -> 1x1."""

    def __init__(self, cin):
        super().__init__()
        self.b1 = icnn.BasicConv2d(cin, 8, kernel_size=1)
        self.b2_1 = icnn.BasicConv2d(cin, 6, kernel_size=1)
        self.b2_2 = icnn.BasicConv2d(6, 10, kernel_size=3, padding=1)
        self.b3 = icnn.BasicConv2d(cin, 4, kernel_size=1)
        self.out_channels = 22

    def _forward(self, x, cat: ChannelSlots):
        yield self.b1(x, **cat.slot(8))
        yield self.b2_2(self.b2_1(x), **cat.slot(10))
        yield self.b3(icnn.functional.avg_pool2d(x, 3, 1, 1), **cat.slot(4))


class _ToyResidual(icnn.ScaledResidualBlock):
    def __init__(self, c, scale, relu):
        super().__init__(scale, relu)
        self.branches = _Toy(c)
        self.conv2d = torch.nn.Conv2d(22, c, 1, bias=True)
        self.out_channels = 22

    def concat(self, x):
        return self.branches(x)


@pytest.mark.parametrize("backend_name", ["torch", "triton"])
def test_concat_block_fused_equals_torch_path(backend_name, device, monkeypatch):
    block = _Toy(16).to(device)
    for m in block.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            _randomize_bn(m)
    x = torch.randn(2, 16, 6, 6, device=device)
    block.eval()
    expected = torch.cat(list(block._forward(x, ChannelSlots(None))), 1).detach()

    def no_cat(*a, **k):
        raise AssertionError("torch.cat on the fused path")

    monkeypatch.setattr(torch, "cat", no_cat)
    with torch.no_grad(), inception_core.backend(backend_name):
        y = block(x)
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("backend_name", ["torch", "triton"])
def test_scaled_residual_block(relu, backend_name, device):
    block = _ToyResidual(16, 0.17 if relu else 1.0, relu).to(device).eval()
    x = torch.randn(2, 16, 6, 6, device=device)
    with torch.no_grad():
        expected = block.conv2d(block.branches(x)) * block.scale + x
        expected = torch.relu(expected) if relu else expected
        with inception_core.backend(backend_name):
            y = block(x)
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5)
    assert (y < 0).any() != relu
    assert "scale=" in repr(block)


def _training_residual(conv, x, residual, scale, act):
    with inception_core.backend("torch"):
        return icnn.functional.conv_bn_act(x, conv, None, act, residual=residual, res_scale=scale)


@pytest.mark.parametrize("scale,act", [(0.17, "relu"), (1.0, "none"), (0.1, "none")])
@pytest.mark.parametrize("hooked", [False, True])
def test_training_residual_up_projection_matches_stock(scale, act, hooked, monkeypatch):
    # the torch backend's training up-projection (scale in the weights, sum in place) against the stock
    # modules' conv(x) * scale + residual: output and every gradient; a conv with a forward hook keeps conv(x)
    conv = torch.nn.Conv2d(21, 13, 1, bias=True).to(memory_format=torch.channels_last)
    seen = []
    if hooked:
        conv.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    x = torch.randn(3, 21, 5, 7).contiguous(memory_format=torch.channels_last).requires_grad_()
    res = torch.randn(3, 13, 5, 7).contiguous(memory_format=torch.channels_last).requires_grad_()
    called = []
    real = icnn.functional._stock_residual
    monkeypatch.setattr(icnn.functional, "_stock_residual", lambda *a: called.append(1) or real(*a))
    y = _training_residual(conv, x, res, scale, act)
    assert bool(called) != hooked and len(seen) == int(hooked)
    expected = conv(x) * scale + res
    expected = torch.relu(expected) if act == "relu" else expected
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-6)
    assert (y < 0).any() != (act == "relu")
    g = torch.randn_like(expected)
    leaves = (x, res, conv.weight, conv.bias)
    for got, want in zip(torch.autograd.grad(y, leaves, g), torch.autograd.grad(expected, leaves, g), strict=True):
        assert torch.isfinite(got).all()
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_nn_reexports_torch_nn():
    assert icnn.Linear is torch.nn.Linear and icnn.Sequential is torch.nn.Sequential
    assert icnn.MaxPool2d is not torch.nn.MaxPool2d and issubclass(icnn.MaxPool2d, torch.nn.MaxPool2d)
    assert {"BasicConv2d", "ConcatBlock", "Linear", "Conv2d", "BatchNorm2d"} <= set(icnn.__all__)
    assert all(hasattr(icnn, name) for name in icnn.__all__)


class _ToySiblings(icnn.ConcatBlock):
    """Inception-v3 InceptionA in miniature: a 1x1 branch and two 1x1 reductions read the same input."""

    def __init__(self, cin, direct=True):
        super().__init__()
        self.direct = direct
        self.branch1x1 = icnn.BasicConv2d(cin, 8, kernel_size=1) if direct else None
        self.branch5x5_1 = icnn.BasicConv2d(cin, 6, kernel_size=1)
        self.branch5x5_2 = icnn.BasicConv2d(6, 10, kernel_size=5, padding=2)
        self.branch3x3_1 = icnn.BasicConv2d(cin, 4, kernel_size=1)
        self.branch3x3_2 = icnn.BasicConv2d(4, 12, kernel_size=3, padding=1)
        self.out_channels = (8 if direct else 0) + 10 + 12
        self.scratch_channels = 6 + 4 if direct else 0  # reserved only in front of a direct branch

    def _forward(self, x, cat: ChannelSlots):
        outs = cat.siblings(x, [self.branch5x5_1, self.branch3x3_1], self.branch1x1, owner=self)
        if self.direct:
            yield outs.pop(0)
        b5, b3 = outs
        yield self.branch5x5_2(b5, **cat.slot(10))
        yield self.branch3x3_2(b3, **cat.slot(12))

    def stock(self, x):
        """The block from torch's own conv, BatchNorm and ReLU modules (the reference)."""
        def unit(u, t):
            return torch.relu(u.bn(u.conv(t)))

        with torch.no_grad():
            direct = [unit(self.branch1x1, x)] if self.direct else []
            return torch.cat(direct + [unit(self.branch5x5_2, unit(self.branch5x5_1, x)),
                                       unit(self.branch3x3_2, unit(self.branch3x3_1, x))], 1)


@pytest.mark.parametrize("direct", [True, False])
@pytest.mark.parametrize("backend_name", ["torch", "triton"])
def test_horizontal_fusion_of_sibling_1x1_convs(direct, backend_name, device, monkeypatch):
    block = _ToySiblings(16, direct).to(device).eval()
    for m in block.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            _randomize_bn(m)
    keys = list(block.state_dict())
    x = torch.randn(2, 16, 6, 6, device=device)
    expected = block.stock(x)
    calls = []
    real = inception_core.ops.conv_bn_act
    counted = lambda *a, **k: calls.append(1) or real(*a, **k)  # noqa: E731
    monkeypatch.setattr(inception_core.nn.functional.ops, "conv_bn_act", counted)
    monkeypatch.setattr(torch, "cat", lambda *a, **k: pytest.fail("torch.cat on the fused path"))
    with torch.no_grad(), inception_core.backend(backend_name):
        y = block(x)
        assert len(calls) == 3  # one stacked 1x1 GEMM + the 5x5 and the 3x3
        if backend_name == "torch":  # no scratch channels in front: the next layer reads a dense tensor
            assert y.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5)
        with torch.no_grad():  # a changed BN of one sibling must reach the stacked cache
            block.branch3x3_1.bn.running_var.mul_(3.0)
        y2 = block(x)
    monkeypatch.undo()
    torch.testing.assert_close(y2, block.stock(x), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(y2, y)
    assert list(block.state_dict()) == keys


# Every source of a fold, edited through .data (no version bump: manual SGD loops, pruning, old init code)
_DATA_EDITS = {
    "conv.weight": lambda conv, bn: conv.weight.data.mul_(0.5),
    "conv.bias": lambda conv, bn: conv.bias.data.add_(0.7),
    "bn.weight": lambda conv, bn: bn.weight.data.mul_(-1.5),
    "bn.bias": lambda conv, bn: bn.bias.data.add_(0.9),
    "bn.running_mean": lambda conv, bn: bn.running_mean.data.add_(0.8),
    "bn.running_var": lambda conv, bn: bn.running_var.data.mul_(3.0),
}


# the fold is backend-independent but for its torch-backend form (scale in the weights): every edit on torch,
# all edits at once on the (interpreted, slow) triton kernel
_EDIT_CASES = [([e], "torch") for e in _DATA_EDITS] + [(list(_DATA_EDITS), "triton")]


@pytest.mark.parametrize("edits, backend_name", _EDIT_CASES, ids=[f"{b}-{'+'.join(e)}" for e, b in _EDIT_CASES])
def test_data_edits_reach_the_next_forward(edits, backend_name):
    """issue 13 item 2: ``.data`` writes do not bump the version counter; the next eval forward must see them."""
    ours = icnn.BasicConv2d(8, 6, bias=True, kernel_size=3, padding=1).eval()
    _randomize_bn(ours.bn)
    x = torch.randn(2, 8, 5, 5)

    def expected():  # the stock modules on the same (edited) tensors
        return torch.relu(ours.bn(ours.conv(x)))

    with torch.no_grad(), inception_core.backend(backend_name):
        torch.testing.assert_close(ours(x), expected(), rtol=1e-5, atol=1e-5)  # the fold is computed here
        for _ in range(2):  # seen every time, not only once
            for edit in edits:
                _DATA_EDITS[edit](ours.conv, ours.bn)
            torch.testing.assert_close(ours(x), expected(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("edits, backend_name", _EDIT_CASES, ids=[f"{b}-{'+'.join(e)}" for e, b in _EDIT_CASES])
def test_data_edits_reach_the_stacked_sibling_fold(edits, backend_name):
    block = _ToySiblings(8, True).eval()
    for m in block.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.bias = torch.nn.Parameter(torch.randn(m.out_channels) * 0.1)
        if isinstance(m, torch.nn.BatchNorm2d):
            _randomize_bn(m)
    x = torch.randn(1, 8, 4, 4)

    def stock(unit, t):
        return torch.relu(unit.bn(unit.conv(t)))

    def expected():  # the stock modules on the same (edited) tensors
        return torch.cat([stock(block.branch1x1, x), stock(block.branch5x5_2, stock(block.branch5x5_1, x)),
                          stock(block.branch3x3_2, stock(block.branch3x3_1, x))], 1)

    with torch.no_grad(), inception_core.backend(backend_name):
        torch.testing.assert_close(block(x), expected(), rtol=1e-5, atol=1e-5)
        for unit in (block.branch1x1, block.branch3x3_1):  # the direct branch and a reduction
            for edit in edits:
                _DATA_EDITS[edit](unit.conv, unit.bn)
            torch.testing.assert_close(block(x), expected(), rtol=1e-5, atol=1e-5)


def test_frozen_folding_is_explicit_and_follows_versioned_edits():
    """``freeze_folding`` caches the fold: versioned in-place edits still reach it, ``.data`` writes do not
    until it is frozen again (the documented contract of the fast path)."""
    ours, ref = _pair(kernel_size=3, padding=1)
    ours.eval()
    ref.eval()
    x = torch.randn(2, 16, 7, 7)
    assert icnn.freeze_folding(ours) is ours
    with torch.no_grad(), inception_core.backend("torch"):
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)
        assert "_ic_fold_cache" in ours.conv.__dict__
        cached = ours.conv.__dict__["_ic_fold_cache"][1][0]
        ours(x)
        assert ours.conv.__dict__["_ic_fold_cache"][1][0] is cached  # reused, not recomputed
        ours.bn.running_var.mul_(2.0)  # versioned: seen
        ref.bn.running_var.mul_(2.0)
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)
        ours.conv.weight.data.mul_(0.5)  # .data: not seen while frozen
        ref.conv.weight.data.mul_(0.5)
        assert not torch.allclose(ours(x), ref(x), rtol=1e-5, atol=1e-5)
        icnn.freeze_folding(ours)  # freezing again folds the current values
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)
        icnn.freeze_folding(ours, False)
        ours.conv.weight.data.mul_(0.5)
        ref.conv.weight.data.mul_(0.5)
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)
    with pytest.raises(TypeError, match="model: expected a torch.nn.Module"):
        icnn.freeze_folding("not a model")


@pytest.mark.skipif(not onednn_fusable(torch.ones(1)), reason="needs oneDNN")
def test_frozen_fold_is_prepacked_once_for_onednn(monkeypatch):
    """A frozen fold keeps its weights in oneDNN's layout: packed at the first call, reused after, packed
    again when a versioned edit rebuilds the fold; an unfrozen layer never packs (it refolds every call)."""
    ours, ref = _pair(kernel_size=3, padding=1)
    ours.eval()
    ref.eval()
    x = torch.randn(2, 16, 7, 7)
    packs = []
    real = torch._C._nn.mkldnn_reorder_conv2d_weight
    monkeypatch.setattr(torch._C._nn, "mkldnn_reorder_conv2d_weight", lambda *a: packs.append(1) or real(*a))
    with torch.no_grad(), inception_core.backend("torch"):
        ours(x)
        assert packs == []
        icnn.freeze_folding(ours)
        for _ in range(2):
            torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)
        assert len(packs) == 1
        ours.bn.running_var.mul_(2.0)
        ref.bn.running_var.mul_(2.0)
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)
        assert len(packs) == 2


def test_cpu_eval_calls_skip_the_custom_ops_dispatch(monkeypatch):
    """On a CPU's torch backend a call without a graph runs the torch implementation directly (the custom
    op's Python dispatch costs about a small convolution); with gradients, and under a dispatch mode, the
    custom ops run."""
    import importlib

    from torch.utils.flop_counter import FlopCounterMode

    conv_mod = importlib.import_module("inception_core.ops.conv_bn_act")  # the package exports same-named functions
    pool_mod = importlib.import_module("inception_core.ops.pool2d")

    ours, ref = _pair(kernel_size=3, padding=1)
    ours.eval()
    ref.eval()
    x = torch.randn(2, 16, 7, 7)
    calls = []
    for mod, name in ((conv_mod, "_conv_bn_act_op"), (conv_mod, "_conv_bn_act_out_op"), (pool_mod, "_max_pool2d_op"),
                      (pool_mod, "_max_pool2d_out_op")):
        real = getattr(mod, name)
        monkeypatch.setattr(mod, name, lambda *a, _r=real, _n=name: calls.append(_n) or _r(*a))
    out = torch.zeros(2, 30, 7, 7).contiguous(memory_format=torch.channels_last)
    with inception_core.backend("torch"):
        with torch.no_grad():
            torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)
            ours(x, out=out, out_offset=3)
            torch.testing.assert_close(icnn.MaxPool2d(3, 1, 1)(x, out=out, out_offset=3)[:, :16],
                                       torch.nn.functional.max_pool2d(x, 3, 1, 1), rtol=0, atol=0)
            assert calls == []
            with FlopCounterMode(display=False):
                ours(x)
            assert calls == ["_conv_bn_act_op"]
        ours(x.requires_grad_()).sum().backward()
    assert calls == ["_conv_bn_act_op"] * 2 and x.grad is not None
