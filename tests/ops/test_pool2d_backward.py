"""max_pool2d / avg_pool2d backward (the Triton kernels of ``kernels/pool2d_bwd.py``): the input gradient
against torch.nn.functional's autograd (float64 on
the same inputs, same grad_output), for the pools of the six networks (channel counts from the networks,
spatial sizes reduced for the interpreter), ties, padding, ceil_mode, layouts, low precision, gradcheck,
determinism and the out= refusal."""

import pytest
import torch
import torch.nn.functional as F

import inception_core
from inception_core.ops import avg_pool2d, max_pool2d
from inception_core.testing import rel_err

BACKENDS = ["torch", "triton"]
POOLS = {"max": (max_pool2d, F.max_pool2d), "avg": (avg_pool2d, F.avg_pool2d)}

# (op, channels, kernel, stride, padding, ceil_mode, count_include_pad, reduced hw): inception_core.shapes
NETWORK_POOLS = [
    pytest.param("max", 64, 3, 2, 0, False, True, (9, 9), id="max3x3s2-inception_v3.maxpool1"),
    pytest.param("max", 64, 3, 2, 0, True, True, (10, 10), id="max3x3s2-ceil-googlenet.maxpool1"),
    pytest.param("max", 192, 3, 1, 1, True, True, (5, 5), id="max3x3s1p1-googlenet.inception3a.branch4"),
    pytest.param("max", 832, 2, 2, 0, True, True, (5, 5), id="max2x2s2-ceil-googlenet.maxpool4"),
    pytest.param("avg", 192, 3, 1, 1, False, True, (5, 5), id="avg3x3p1-inception_v3.Mixed_5b"),
    pytest.param("avg", 384, 3, 1, 1, False, False, (5, 5), id="avg3x3p1-excl-pad-inception_v4.features.6"),
    pytest.param("avg", 192, 3, 1, 1, True, True, (6, 6), id="avg3x3p1-ceil-bn_inception.inception_3a_pool"),
    pytest.param("avg", 768, 5, 3, 0, False, True, (8, 8), id="avg5x5s3-inception_v3.AuxLogits"),
]


def _grads(backend, op, x, grad_y, kw):
    ours = x.detach().clone().requires_grad_()
    with inception_core.backend(backend):
        y = POOLS[op][0](ours, **kw)
        y.backward(grad_y)
    ref = x.detach().double().requires_grad_()
    y_ref = POOLS[op][1](ref, **kw)
    y_ref.backward(grad_y.double())
    return y.detach(), ours.grad, y_ref.detach(), ref.grad


def _kw(op, kernel, stride, padding, ceil_mode, count_include_pad):
    kw = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode)
    if op == "avg":
        kw["count_include_pad"] = count_include_pad
    return kw


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op,c,kernel,stride,padding,ceil_mode,include_pad,hw", NETWORK_POOLS)
def test_network_pools_fp32(op, c, kernel, stride, padding, ceil_mode, include_pad, hw, backend, device):
    x = torch.randn(2, c, *hw, device=device).contiguous(memory_format=torch.channels_last)
    kw = _kw(op, kernel, stride, padding, ceil_mode, include_pad)
    y_shape = POOLS[op][1](x, **kw).shape
    grad_y = torch.randn(y_shape, device=device)
    y, gx, y_ref, gx_ref = _grads(backend, op, x, grad_y, kw)
    assert gx.shape == x.shape and gx.dtype == x.dtype
    assert rel_err(y, y_ref) <= 1e-6
    assert rel_err(gx, gx_ref) <= 1e-6


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_ties_go_to_the_first_max_in_window_order(backend, device):
    """Few distinct values: most windows hold several maxima; torch gives the gradient to the first."""
    x = torch.randint(0, 3, (2, 16, 7, 7), device=device).float().contiguous(memory_format=torch.channels_last)
    for kw in (dict(kernel_size=3, stride=2), dict(kernel_size=3, stride=1, padding=1, ceil_mode=True)):
        grad_y = torch.rand(F.max_pool2d(x, **kw).shape, device=device) + 0.5
        _, gx, _, gx_ref = _grads(backend, "max", x, grad_y, kw)
        torch.testing.assert_close(gx.double(), gx_ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", ["max", "avg"])
@pytest.mark.parametrize(
    "n,c,hw,layout",
    [
        pytest.param(1, 5, (7, 6), "channels_last", id="batch1-odd-channels"),
        pytest.param(2, 24, (1, 1), "channels_last", id="1x1-spatial"),
        pytest.param(2, 24, (7, 7), "nchw", id="nchw"),
        pytest.param(2, 24, (8, 7), "transposed", id="non-contiguous"),
    ],
)
def test_edge_cases(op, n, c, hw, layout, backend, device):
    x = torch.randn(n, c, *hw, device=device)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    elif layout == "transposed":
        x = x.transpose(2, 3)
    kw = _kw(op, 3, 2, 1, True, False)
    grad_y = torch.randn(POOLS[op][1](x, **kw).shape, device=device).transpose(2, 3).contiguous().transpose(2, 3)
    _, gx, _, gx_ref = _grads(backend, op, x, grad_y, kw)
    assert rel_err(gx, gx_ref) <= 1e-6


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("op", ["max", "avg"])
def test_low_precision_triton(op, dtype, device):
    """The kernels sum in fp32 and round once (aten's CPU bf16 average backward does not: not compared)."""
    backend = "triton"
    x = torch.randn(2, 48, 7, 7, device=device).to(dtype).contiguous(memory_format=torch.channels_last)
    kw = _kw(op, 3, 1, 1, False, True)
    grad_y = torch.randn(POOLS[op][1](x.float(), **kw).shape, device=device).to(dtype)
    _, gx, _, gx_ref = _grads(backend, op, x, grad_y, kw)
    assert gx.dtype == dtype
    # sums of up to 9 gradients in fp32, rounded once: within one rounding step of the float64 result
    assert rel_err(gx, gx_ref) <= torch.finfo(dtype).eps


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", ["max", "avg"])
def test_gradcheck_float64(op, backend, device):
    x = torch.randn(1, 3, 6, 5, dtype=torch.float64, device=device, requires_grad=True)
    kw = _kw(op, 3, 2, 1, True, False)
    with inception_core.backend(backend):
        # fast_mode on the interpreter: random projections instead of one run per input element
        assert torch.autograd.gradcheck(lambda t: POOLS[op][0](t, **kw), (x,), fast_mode=backend == "triton")


@pytest.mark.parametrize("op", ["max", "avg"])
def test_triton_backward_is_deterministic(op, device):
    x = torch.randn(2, 40, 9, 9, device=device).contiguous(memory_format=torch.channels_last)
    kw = _kw(op, 3, 1, 1, False, True)
    grad_y = torch.randn(POOLS[op][1](x, **kw).shape, device=device)
    first = _grads("triton", op, x, grad_y, kw)[1]
    second = _grads("triton", op, x, grad_y, kw)[1]
    assert torch.equal(first, second)


@pytest.mark.parametrize("op", ["max", "avg"])
def test_int64_offsets(op, device, monkeypatch):
    """The int64 offset path (tensors >= 2**31 elements) forced on for a small tensor: same bits."""
    from inception_core.ops import _launch_common

    x = torch.randn(2, 24, 7, 7, device=device).contiguous(memory_format=torch.channels_last)
    kw = _kw(op, 3, 2, 1, True, False)
    grad_y = torch.randn(POOLS[op][1](x, **kw).shape, device=device)
    expected = _grads("triton", op, x, grad_y, kw)[1]
    monkeypatch.setattr(_launch_common, "INT32_LIMIT", 0)
    assert torch.equal(_grads("triton", op, x, grad_y, kw)[1], expected)


@pytest.mark.parametrize("op", ["max", "avg"])
def test_out_slice_write_rejects_autograd(op, device):
    x = torch.randn(2, 8, 5, 5, device=device, requires_grad=True)
    out = torch.empty(2, 16, 5, 5, device=device).contiguous(memory_format=torch.channels_last)
    with pytest.raises(ValueError, match="out: slice writes are not differentiable"):
        POOLS[op][0](x, 3, 1, 1, out=out, out_offset=8)
