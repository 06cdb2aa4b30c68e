"""The prepared calls of frozen layers and pools on a CPU's torch backend (``_cpu_direct.FrozenConv``,
``PreparedPool``): same results as the stock modules, and every change that the checked path would see is
seen by the next call (the plan's invalidation rules), with the same errors for bad input."""

import importlib

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import inception_core
import inception_core.nn as icnn
from inception_core.nn import functional as icf
from inception_core.ops.conv_torch import onednn_fusable

pytestmark = pytest.mark.skipif(not onednn_fusable(torch.ones(1)), reason="the prepared calls need oneDNN")

conv_mod = importlib.import_module("inception_core.ops.conv_bn_act")  # the package exports same-named functions


def _randomize(module):
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
    return module


def _stock(layer, x, residual=None, res_scale=1.0):
    """The stock modules on the layer's current tensors."""
    y = layer.bn(layer.conv(x))
    if residual is not None:
        y = residual + res_scale * y
    return torch.relu(y) if layer.act == "relu" else y


def _half_round_trip(layer):
    layer.half().float()  # new storages, same Parameter objects and versions (Module._apply sets .data)


def _replace_bn_weight(layer):
    layer.bn.weight = torch.nn.Parameter(torch.rand_like(layer.bn.weight) + 0.5)


def _new_conv(layer):
    old = layer.conv
    layer.conv = torch.nn.Conv2d(old.in_channels, old.out_channels, old.kernel_size, old.stride, old.padding,
                                 bias=False)


# Each edit changes what the layer computes; the next frozen call must compute the new thing.
_EDITS = {
    "versioned running_var": lambda m: m.bn.running_var.mul_(2.0),
    "replaced bn.weight": _replace_bn_weight,
    "replaced conv module": _new_conv,
    "half-float round trip": _half_round_trip,
    "bn.eps": lambda m: setattr(m.bn, "eps", 0.5),
    "act": lambda m: setattr(m, "act", "none"),
    "conv.padding": lambda m: setattr(m.conv, "padding", (0, 0)),
    "conv.stride": lambda m: setattr(m.conv, "stride", (2, 2)),
    "bn.train()": lambda m: m.bn.train(),
}


@pytest.mark.parametrize("edit", list(_EDITS))
def test_a_frozen_layer_sees_every_change_at_the_next_call(edit):
    layer = _randomize(icnn.BasicConv2d(8, 6, kernel_size=3, padding=1)).eval()
    icnn.freeze_folding(layer)
    x = torch.randn(2, 8, 5, 5).contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), inception_core.backend("torch"):
        layer(x)
        assert icf._PLAN in layer.conv.__dict__  # the next call is the prepared one
        torch.testing.assert_close(layer(x), _stock(layer, x), rtol=1e-5, atol=1e-5)
        _EDITS[edit](layer)
        expected = _stock(layer, x)
        torch.testing.assert_close(layer(x), expected, rtol=1e-6, atol=1e-6)
        if edit == "bn.train()":  # the training path updated the running statistics: compare the outputs only
            return
        torch.testing.assert_close(layer(x), expected, rtol=1e-6, atol=1e-6)


def test_a_frozen_conv_without_batchnorm_sees_new_storages():
    """A conv without BatchNorm (the residual blocks' up-projection): ``.half().float()`` gives its parameters
    new storages under the same Parameter objects and versions; the next call must use the rounded values."""
    conv = torch.nn.Conv2d(8, 6, 1, bias=True).eval()
    icnn.freeze_folding(conv)
    x = torch.randn(2, 8, 3, 3).contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), inception_core.backend("torch"):
        for _ in range(2):
            y = icf.conv_bn_act(x, conv, None, "none")
        assert icf._PLAN in conv.__dict__
        torch.testing.assert_close(y, conv(x), rtol=1e-5, atol=1e-5)
        conv.half().float()
        torch.testing.assert_close(icf.conv_bn_act(x, conv, None, "none"), conv(x), rtol=1e-6, atol=1e-6)


def test_a_frozen_residual_layer_keys_its_plan_on_the_gain():
    layer = _randomize(icnn.BasicConv2d(8, 8, kernel_size=1, act="relu")).eval()
    icnn.freeze_folding(layer)
    x = torch.randn(2, 8, 4, 4).contiguous(memory_format=torch.channels_last)
    res = torch.randn(2, 8, 4, 4).contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), inception_core.backend("torch"):
        for scale in (0.17, 0.17, 1.0, 0.3):
            y = icf.conv_bn_act(x, layer.conv, layer.bn, "relu", residual=res, res_scale=scale)
            torch.testing.assert_close(y, _stock(layer, x, res, scale), rtol=1e-5, atol=1e-5)
        y = icf.conv_bn_act(x, layer.conv, layer.bn, "relu")  # without the residual
        torch.testing.assert_close(y, _stock(layer, x), rtol=1e-5, atol=1e-5)


def test_a_frozen_layer_leaves_other_calls_to_the_checked_path(monkeypatch):
    """Gradients, a dispatch mode, another backend, another dtype: the custom op (or the kernel) runs; bad
    input raises the checked path's errors."""
    layer = _randomize(icnn.BasicConv2d(8, 6, kernel_size=1)).eval()
    icnn.freeze_folding(layer)
    x = torch.randn(1, 8, 3, 3).contiguous(memory_format=torch.channels_last)
    calls = []
    real = conv_mod._conv_bn_act_op
    monkeypatch.setattr(conv_mod, "_conv_bn_act_op", lambda *a: calls.append(1) or real(*a))
    inception_core.set_backend("torch")
    with torch.no_grad():
        layer(x)
        layer(x)
        assert calls == []
        with FlopCounterMode(display=False):
            layer(x)
        assert calls == [1]
        with pytest.raises(ValueError, match="weight: expected 5 input channels"):
            layer(torch.randn(1, 5, 3, 3))
        with pytest.raises(ValueError, match="x: expected a 4-D tensor"):
            layer(torch.randn(8, 3, 3))
        torch.testing.assert_close(layer(x.double()), _stock(layer.double(), x.double()))  # the checked path's rule
        layer.float()
        out = torch.empty(1, 6, 3, 3)  # NCHW: not a slice target
        with pytest.raises(ValueError, match="out: expected a channels_last tensor"):
            layer(x, out=out)
        with pytest.raises(ValueError, match="x: shares memory"):
            shared = torch.empty(1, 14, 3, 3).contiguous(memory_format=torch.channels_last)
            layer(shared[:, :8], out=shared, out_offset=2)
        layer(x)
        assert icf._PLAN in layer.conv.__dict__
        launches = []
        monkeypatch.setattr(conv_mod, "launch_conv_bn_act_triton", lambda *a, **k: launches.append(1))
        inception_core.set_backend("triton")  # the backend in force is read at every call
        layer(x)
        assert launches == [1]
    inception_core.set_backend("torch")
    y = layer(x.clone().requires_grad_())
    assert y.requires_grad
    y.sum().backward()
    assert layer.conv.weight.grad is not None


def test_freezing_again_or_unfreezing_drops_the_plans():
    layer = _randomize(icnn.BasicConv2d(8, 6, kernel_size=1)).eval()
    x = torch.randn(1, 8, 3, 3)
    with torch.no_grad(), inception_core.backend("torch"):
        icnn.freeze_folding(layer)
        layer(x)
        layer.conv.weight.data.mul_(0.5)  # .data: not seen while frozen (the documented contract)
        assert not torch.allclose(layer(x), _stock(layer, x))
        icnn.freeze_folding(layer)
        torch.testing.assert_close(layer(x), _stock(layer, x), rtol=1e-5, atol=1e-5)
        icnn.freeze_folding(layer, False)
        assert icf._PLAN not in layer.conv.__dict__
        layer.conv.weight.data.mul_(0.5)
        torch.testing.assert_close(layer(x), _stock(layer, x), rtol=1e-5, atol=1e-5)


class _Siblings(icnn.ConcatBlock):
    """Two 1x1 reductions and a 1x1 branch reading the same input (horizontally fused)."""

    def __init__(self, cin=8):
        super().__init__()
        self.branch1x1 = icnn.BasicConv2d(cin, 4, kernel_size=1)
        self.reduce_a = icnn.BasicConv2d(cin, 3, kernel_size=1)
        self.reduce_b = icnn.BasicConv2d(cin, 5, kernel_size=1)
        self.out_channels = 4 + 3 + 5

    def _forward(self, x, cat):
        direct, a, b = cat.siblings(x, [self.reduce_a, self.reduce_b], self.branch1x1, owner=self)
        yield direct
        yield icnn.MaxPool2d(1)(a, **cat.slot(3))
        yield icnn.MaxPool2d(1)(b, **cat.slot(5))


@pytest.mark.parametrize("edit", ["versioned running_mean", "replaced conv module", "half-float round trip"])
def test_frozen_siblings_see_a_change_of_any_unit(edit):
    block = _randomize(_Siblings()).eval()
    icnn.freeze_folding(block)
    x = torch.randn(2, 8, 3, 3).contiguous(memory_format=torch.channels_last)

    def expected():
        return torch.cat([_stock(u, x) for u in (block.branch1x1, block.reduce_a, block.reduce_b)], 1)

    edits = {"versioned running_mean": lambda: block.reduce_b.bn.running_mean.add_(0.5),
             "replaced conv module": lambda: _new_conv(block.reduce_a),
             "half-float round trip": lambda: _half_round_trip(block)}
    with torch.no_grad(), inception_core.backend("torch"):
        block(x)
        assert icf._SIBLING_PLAN in block.__dict__
        torch.testing.assert_close(block(x), expected(), rtol=1e-5, atol=1e-5)
        edits[edit]()
        torch.testing.assert_close(block(x), expected(), rtol=1e-6, atol=1e-6)


def test_a_pool_sees_an_edited_attribute_and_keeps_its_errors():
    x = torch.randn(2, 4, 7, 7).contiguous(memory_format=torch.channels_last)
    ours, ref = icnn.AvgPool2d(3, 1, 1), torch.nn.AvgPool2d(3, 1, 1)
    with torch.no_grad(), inception_core.backend("torch"):
        for attr, value in (("kernel_size", 3), ("count_include_pad", False), ("stride", 2), ("ceil_mode", True),
                            ("kernel_size", 5), ("padding", 2), ("padding", (2, 0)), ("kernel_size", (5, 3))):
            setattr(ours, attr, value)
            setattr(ref, attr, value)
            for _ in range(2):  # the first call after an edit, and the prepared one after it
                torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=0)
        ours.padding = 3  # more than half the kernel
        with pytest.raises(ValueError, match="padding: expected at most half the kernel size"):
            ours(x)
        with pytest.raises(ValueError, match="x: expected a 4-D tensor"):
            icnn.MaxPool2d(3)(torch.randn(4, 7, 7))


@pytest.mark.parametrize("shape, k, kernel, threads, native", [
    ((1, 16, 2, 2), 16, 1, 1, True),  # tiny 1x1: torch's native kernel, no oneDNN fixed cost
    ((2, 16, 2, 2), 16, 1, 2, False),  # 1x1 on two threads: torch would run oneDNN too
    ((1, 64, 32, 32), 64, 1, 1, False),  # 1x1 of 4.2M multiply-adds: the prepacked op is faster
    ((1, 8, 5, 5), 8, 3, 2, True),  # batch-1 small 3x3
    ((2, 8, 5, 5), 8, 3, 1, False),  # batch-2 3x3: oneDNN either way
])
def test_a_frozen_layer_picks_the_faster_convolution_by_size(shape, k, kernel, threads, native, monkeypatch):
    cd = importlib.import_module("inception_core.ops._cpu_direct")
    used = []
    real = cd._POINTWISE_BINARY
    monkeypatch.setattr(cd, "_POINTWISE_BINARY", lambda *a: used.append("pointwise") or real(*a))
    layer = _randomize(icnn.BasicConv2d(shape[1], k, kernel_size=kernel, padding=kernel // 2)).eval()
    icnn.freeze_folding(layer)
    x = torch.randn(*shape).contiguous(memory_format=torch.channels_last)
    res = torch.randn(shape[0], k, *shape[2:])  # NCHW: made channels_last where the op needs it
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.no_grad(), inception_core.backend("torch"):
            for _ in range(2):  # the checked call builds the plan, the next one is the prepared call
                used.clear()
                y = icf.conv_bn_act(x, layer.conv, layer.bn, "relu", residual=res, res_scale=0.3)
    finally:
        torch.set_num_threads(saved)
    assert used == ([] if native else ["pointwise"])
    assert y.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(y, _stock(layer, x, res, 0.3), rtol=1e-5, atol=1e-5)


def test_a_frozen_model_that_ran_can_be_copied_and_saved():
    """Its weights carry oneDNN-packed copies and its layers plans: copies and pickles pack again, and their
    plans, built on the original's tensors, are not current on the copy's."""
    import copy
    import io

    block = _randomize(_Siblings()).eval()
    icnn.freeze_folding(block)
    x = torch.randn(2, 8, 3, 3)
    with torch.no_grad(), inception_core.backend("torch"):
        block(x)
        expected = block(x)
        buffer = io.BytesIO()
        torch.save(block, buffer)
        buffer.seek(0)
        for twin in (copy.deepcopy(block), torch.load(buffer, weights_only=False)):
            torch.testing.assert_close(twin(x), expected, rtol=0, atol=0)
            with torch.no_grad():
                twin.reduce_a.bn.running_var.mul_(2.0)
            assert not torch.allclose(twin(x), expected)  # the copy follows its own tensors
            torch.testing.assert_close(block(x), expected, rtol=0, atol=0)
