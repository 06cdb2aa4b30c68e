"""ops/pool2d_torch: the CPU torch backend's separable stride-1 max pool equals F.max_pool2d bit for bit."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import inception_core
from inception_core import nn as icnn
from inception_core.ops import pool2d_torch
from inception_core.ops.pool2d_torch import max_pool2d_torch, separable

CL = torch.channels_last


@pytest.fixture(autouse=True)
def any_size(request, monkeypatch):
    """The separable passes at every input size (the suite's inputs are small), except in the size-rule test."""
    if request.node.get_closest_marker("default_size_window") is None:
        monkeypatch.setattr(pool2d_torch, "_MIN_NUMEL", 0)

# (N, C, H, W, kernel, padding): GoogLeNet's and BN-Inception's pool branches at reduced batch, then edges
SEPARABLE_CASES = [
    (2, 192, 28, 28, (3, 3), (1, 1)),
    (2, 480, 14, 14, (3, 3), (1, 1)),
    (1, 832, 7, 7, (3, 3), (1, 1)),
    (1, 1024, 7, 7, (3, 3), (1, 1)),   # BN-Inception inception_5b
    (3, 5, 9, 11, (3, 3), (1, 1)),     # odd channels, rectangular input
    (1, 7, 2, 2, (3, 3), (1, 1)),      # every window clipped
    (2, 3, 8, 6, (2, 3), (0, 1)),      # rectangular window
    (2, 3, 8, 6, (5, 5), (2, 2)),
    (2, 3, 8, 6, (4, 4), (1, 1)),      # even window, padding below half
    (2, 3, 8, 6, (2, 2), (0, 0)),
    (1, 4, 3, 9, (3, 5), (0, 2)),      # a window as tall as the input
    (1, 4, 4, 4, (4, 4), (0, 0)),      # one output per image
]


def _input(n, c, h, w, dtype=torch.float32, layout=CL, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=gen).to(dtype)
    return x.contiguous(memory_format=layout)


def _same(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype
    assert torch.equal(a.isnan(), b.isnan())
    assert torch.equal(torch.nan_to_num(a, nan=0.0), torch.nan_to_num(b, nan=0.0))


@pytest.mark.parametrize("case", SEPARABLE_CASES, ids=lambda c: "x".join(map(str, c[:4])) + f"-k{c[4]}p{c[5]}")
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_separable_equals_max_pool2d(case, ceil_mode):
    n, c, h, w, kernel, padding = case
    x = _input(n, c, h, w)
    assert separable(x, kernel, (1, 1), padding)
    y = max_pool2d_torch(x, kernel, (1, 1), padding, ceil_mode)
    _same(y, F.max_pool2d(x, kernel, 1, padding, ceil_mode=ceil_mode))
    assert y.is_contiguous(memory_format=CL)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_other_dtypes(dtype):
    x = _input(2, 6, 9, 9, dtype)
    _same(max_pool2d_torch(x, (3, 3), (1, 1), (1, 1), True), F.max_pool2d(x, 3, 1, 1, ceil_mode=True))


def test_nan_and_infinities_propagate_as_in_max_pool2d():
    x = _input(2, 8, 10, 10)
    x[0, 1, 0, 0] = float("nan")
    x[1, 2, 5, 9] = float("nan")
    x[0, 3] = float("-inf")                  # a whole channel of -inf: -inf out
    x[1, 4, 3, 3] = float("inf")
    y = max_pool2d_torch(x, (3, 3), (1, 1), (1, 1), False)
    ref = F.max_pool2d(x, 3, 1, 1)
    _same(y, ref)
    assert y.isnan().sum() == ref.isnan().sum() > 0


@pytest.mark.parametrize("layout", ["nchw", "channel_slice", "transposed"])
def test_any_input_layout(layout):
    if layout == "nchw":
        x = _input(2, 6, 9, 7, layout=torch.contiguous_format)
    elif layout == "channel_slice":  # a block output's slot: channels_last view with a larger channel stride
        x = _input(2, 20, 9, 7).narrow(1, 5, 6)
    else:
        x = _input(2, 6, 7, 9).transpose(2, 3)
    assert not x.is_contiguous(memory_format=CL) or layout == "channel_slice"
    _same(max_pool2d_torch(x, (3, 3), (1, 1), (1, 1), True), F.max_pool2d(x, 3, 1, 1, ceil_mode=True))


def test_writes_only_its_slot():
    x = _input(2, 6, 9, 9)
    buf = torch.full((2, 15, 9, 9), float("nan")).contiguous(memory_format=CL)
    buf.narrow(1, 0, 4).fill_(-7.0)
    buf.narrow(1, 10, 5).fill_(13.0)
    slot = buf.narrow(1, 4, 6)
    y = max_pool2d_torch(x, (3, 3), (1, 1), (1, 1), False, out=slot)
    assert y.data_ptr() == slot.data_ptr()
    _same(buf.narrow(1, 4, 6), F.max_pool2d(x, 3, 1, 1))
    assert (buf.narrow(1, 0, 4) == -7.0).all() and (buf.narrow(1, 10, 5) == 13.0).all()


@pytest.mark.parametrize("kernel, stride, padding, shape", [
    ((3, 3), (2, 2), (0, 0), (2, 4, 9, 9)),   # strided: F.max_pool2d
    ((2, 2), (1, 1), (1, 1), (2, 4, 9, 9)),   # padding half the window: an output with no centre tap
    ((1, 3), (1, 1), (0, 1), (2, 4, 9, 9)),   # a 1-wide window
    ((3, 3), (1, 1), (1, 1), (2, 4, 1, 1)),   # 1x1 spatial
    ((3, 3), (1, 1), (1, 1), (2, 4, 1, 9)),
])
def test_other_windows_take_max_pool2d(kernel, stride, padding, shape):
    x = _input(*shape)
    assert not separable(x, kernel, stride, padding)
    for ceil_mode in (False, True):
        y = max_pool2d_torch(x, kernel, stride, padding, ceil_mode)
        _same(y, F.max_pool2d(x, kernel, stride, padding, ceil_mode=ceil_mode))
        assert y.is_contiguous(memory_format=CL)


@pytest.mark.default_size_window
@pytest.mark.parametrize("shape, chosen", [
    ((8, 480, 14, 14), True), ((1, 192, 28, 28), True), ((8, 256, 28, 28), True),
    ((1, 832, 7, 7), False),    # small: the calls' fixed cost
    ((32, 480, 14, 14), False),  # large: four passes over memory
])
def test_size_window(shape, chosen):
    x = torch.empty(shape).contiguous(memory_format=CL)
    assert separable(x, (3, 3), (1, 1), (1, 1)) is chosen


def test_layers_and_ops_run_it_on_the_torch_backend(monkeypatch):
    """The frozen layer's prepared call, the unfrozen layer and the public op (with and without a slot) all
    reach the separable passes on a CPU's torch backend, and give F.max_pool2d's values."""
    import importlib

    mod = importlib.import_module("inception_core.ops.pool2d_torch")
    calls = []
    real = mod._max_along
    monkeypatch.setattr(mod, "_max_along", lambda *a: calls.append(1) or real(*a))
    x = _input(2, 6, 9, 9)
    ref = F.max_pool2d(x, 3, 1, 1, ceil_mode=True)
    pool = icnn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True).eval()
    out = torch.full((2, 10, 9, 9), float("nan")).contiguous(memory_format=CL)
    with inception_core.backend("torch"), torch.no_grad():
        _same(pool(x), ref)
        _same(inception_core.ops.max_pool2d(x, 3, 1, 1, ceil_mode=True), ref)
        inception_core.ops.max_pool2d(x, 3, 1, 1, ceil_mode=True, out=out, out_offset=2)
        _same(out.narrow(1, 2, 6), ref)
        assert out.narrow(1, 0, 2).isnan().all() and out.narrow(1, 8, 2).isnan().all()
    assert len(calls) >= 6  # two passes each


def test_gradients_still_flow_through_torch_max_pool():
    """With a graph to record the layer runs F.max_pool2d (its backward needs the argmax)."""
    x = _input(2, 6, 9, 9).requires_grad_()
    pool = icnn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True)
    with inception_core.backend("torch"):
        pool(x).sum().backward()
    xr = x.detach().clone().requires_grad_()
    F.max_pool2d(xr, 3, 1, 1, ceil_mode=True).sum().backward()
    torch.testing.assert_close(x.grad, xr.grad, rtol=0, atol=0)
