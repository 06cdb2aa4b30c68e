"""conv_bn_act_train (BatchNorm with batch statistics): output, every gradient and the running statistics
against a torch twin (nn.Conv2d + nn.BatchNorm2d in training mode + residual + ReLU, float64, same weights,
same grad_output), on both backends. On CPU triton runs under the interpreter: reduced spatial sizes."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import inception_core
from inception_core.kernels import INTERPRETED
from inception_core.ops import conv_bn_act_train, conv_bn_act_train_ref
from inception_core.testing import fp32_rtol, rel_err

BACKENDS = ["torch", "triton"]
LOW_PRECISION = (torch.float16, torch.bfloat16)
NAMES = ("x", "weight", "gamma", "beta", "residual")

# (C, K, kernel, stride, padding, reduced input hw): layers of inception_core.shapes
GEOMETRIES = [
    pytest.param(192, 64, (1, 1), (1, 1), (0, 0), (5, 5), id="1x1-inception_v3.Mixed_5b.branch1x1"),
    pytest.param(64, 96, (3, 3), (1, 1), (1, 1), (5, 5), id="3x3-same-Mixed_5b.branch3x3dbl_2"),
    pytest.param(96, 96, (3, 3), (2, 2), (0, 0), (7, 7), id="3x3s2-valid-Mixed_6a.branch3x3dbl_3"),
    pytest.param(128, 160, (1, 7), (1, 1), (0, 3), (5, 7), id="1x7-inception_resnet_v2.repeat_1.branch1.1"),
    pytest.param(160, 192, (7, 1), (1, 1), (3, 0), (7, 5), id="7x1-inception_resnet_v2.repeat_1.branch1.2"),
    pytest.param(48, 64, (5, 5), (1, 1), (2, 2), (5, 5), id="5x5-Mixed_5b.branch5x5_2"),
    pytest.param(3, 32, (3, 3), (2, 2), (0, 0), (11, 11), id="stem-cin3-3x3s2-Conv2d_1a_3x3"),
]


class Twin(nn.Module):
    """The stock layers the fused op replaces."""

    def __init__(self, c, k, kernel, stride, padding, *, eps, momentum, affine=True, track=True):
        super().__init__()
        self.conv = nn.Conv2d(c, k, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(k, eps=eps, momentum=momentum, affine=affine, track_running_stats=track)

    def forward(self, x, residual=None, res_scale=1.0, act="relu"):
        y = self.bn(self.conv(x))
        if residual is not None:
            y = residual + res_scale * y
        return torch.relu(y) if act == "relu" else y


def _make(c, k, kernel, stride, padding, hw, dtype, device, *, n=2, residual=True, eps=1e-3, momentum=0.1,
          affine=True, track=True, layout="channels_last", x_mean=0.0):
    twin = Twin(c, k, kernel, stride, padding, eps=eps, momentum=momentum, affine=affine, track=track)
    twin = twin.double().to(device)
    with torch.no_grad():
        twin.conv.weight.normal_(0, (2.0 / (c * kernel[0] * kernel[1])) ** 0.5)
        twin.conv.weight.copy_(twin.conv.weight.to(dtype))  # the twin sees the rounded weights
        if affine:
            twin.bn.weight.uniform_(0.5, 1.5)
            twin.bn.bias.normal_(0, 0.5)
        if track:
            twin.bn.running_mean.normal_(0, 0.1)
            twin.bn.running_var.uniform_(0.5, 1.5)
    x = (torch.randn(n, c, *hw, device=device) + x_mean).to(dtype)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    oh = (hw[0] + 2 * padding[0] - kernel[0]) // stride[0] + 1
    ow = (hw[1] + 2 * padding[1] - kernel[1]) // stride[1] + 1
    res = torch.randn(n, k, oh, ow, device=device).to(dtype) if residual else None
    grad_y = torch.randn(n, k, oh, ow, device=device).to(dtype)
    return twin, x, res, grad_y


def _run_twin(twin, x, res, grad_y, **kw):
    xd = x.double().requires_grad_()
    rd = res.double().requires_grad_() if res is not None else None
    twin.zero_grad()
    y = twin(xd, rd, **kw)
    y.backward(grad_y.double())
    bn = twin.bn
    grads = [xd.grad, twin.conv.weight.grad, None if bn.weight is None else bn.weight.grad,
             None if bn.bias is None else bn.bias.grad, None if rd is None else rd.grad]
    return y.detach(), grads


def _ours(backend, twin, x, res, grad_y, dtype, *, factor=None, **kw):
    """The op with the twin's parameters (weight in x's dtype, gamma/beta fp32 leaves) and a copy of its
    running statistics taken before the twin ran; returns output, grads, (running_mean, running_var)."""
    conv, bn = twin.conv, twin.bn
    acc = torch.float64 if dtype == torch.float64 else torch.float32
    w = conv.weight.detach().to(dtype).requires_grad_()
    gamma = bn.weight.detach().to(acc).requires_grad_() if bn.affine else None
    beta = bn.bias.detach().to(acc).requires_grad_() if bn.affine else None
    rm = bn.running_mean.detach().float().clone() if bn.track_running_stats else None
    rv = bn.running_var.detach().float().clone() if bn.track_running_stats else None
    xl = x.detach().clone().requires_grad_()
    rl = res.detach().clone().requires_grad_() if res is not None else None
    with inception_core.backend(backend):
        y = conv_bn_act_train(xl, w, gamma, beta, rm, rv, momentum_factor=bn.momentum if factor is None else factor,
                              eps=bn.eps, stride=conv.stride, padding=conv.padding, residual=rl, **kw)
        y.backward(grad_y)
    grads = [xl.grad, w.grad, None if gamma is None else gamma.grad, None if beta is None else beta.grad,
             None if rl is None else rl.grad]
    return y.detach(), grads, (rm, rv)


def _assert_close(got, ref, tol, what):
    err = rel_err(got, ref)
    assert err <= tol, f"{what}: relative error {err} > {tol}"


def _check(backend, twin, x, res, grad_y, dtype, tol, **kw):
    y, grads, (rm, rv) = _ours(backend, twin, x, res, grad_y, dtype, **kw)
    y_ref, ref = _run_twin(twin, x, res, grad_y, **kw)
    assert y.dtype == dtype and y.is_contiguous(memory_format=torch.channels_last)
    _assert_close(y, y_ref, tol, "output")
    for name, g, r in zip(NAMES, grads, ref, strict=True):
        assert (g is None) == (r is None), name
        if g is not None:
            _assert_close(g, r, tol, f"grad {name}")
    if rm is not None:
        _assert_close(rm, twin.bn.running_mean, tol, "running_mean")
        _assert_close(rv, twin.bn.running_var, tol, "running_var")
    return grads


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("c,k,kernel,stride,padding,hw", GEOMETRIES)
def test_network_geometries_fp32(c, k, kernel, stride, padding, hw, backend, device):
    twin, x, _, grad_y = _make(c, k, kernel, stride, padding, hw, torch.float32, device, residual=False)
    _check(backend, twin, x, None, grad_y, torch.float32, fp32_rtol(INTERPRETED))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("act", ["relu", "none"])
def test_scaled_residual(backend, act, device):
    twin, x, res, grad_y = _make(64, 80, (1, 1), (1, 1), (0, 0), (5, 5), torch.float32, device)
    _check(backend, twin, x, res, grad_y, torch.float32, fp32_rtol(INTERPRETED), res_scale=0.17, act=act)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "n,c,k,kernel,stride,padding,hw,layout",
    [
        pytest.param(1, 24, 40, (3, 3), (1, 1), (1, 1), (5, 5), "channels_last", id="batch1"),
        pytest.param(2, 35, 17, (3, 3), (2, 2), (0, 0), (7, 9), "channels_last", id="odd-channels-stride2-valid"),
        pytest.param(3, 32, 48, (1, 1), (1, 1), (0, 0), (1, 1), "channels_last", id="1x1-spatial"),
        pytest.param(2, 24, 40, (3, 3), (2, 1), (0, 1), (7, 6), "nchw", id="nchw-mixed-stride"),
        pytest.param(5, 16, 24, (1, 1), (1, 1), (0, 0), (8, 9), "channels_last", id="many-stat-groups"),
    ],
)
def test_edge_cases(n, c, k, kernel, stride, padding, hw, layout, backend, device):
    twin, x, res, grad_y = _make(c, k, kernel, stride, padding, hw, torch.float32, device, n=n, layout=layout)
    _check(backend, twin, x, res, grad_y, torch.float32, fp32_rtol(INTERPRETED), res_scale=0.3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_affine_false_and_no_running_stats(backend, device):
    twin, x, res, grad_y = _make(24, 32, (3, 3), (1, 1), (1, 1), (5, 5), torch.float32, device, affine=False)
    _check(backend, twin, x, res, grad_y, torch.float32, fp32_rtol(INTERPRETED))
    twin, x, res, grad_y = _make(24, 32, (3, 3), (1, 1), (1, 1), (5, 5), torch.float32, device, track=False)
    _check(backend, twin, x, res, grad_y, torch.float32, fp32_rtol(INTERPRETED))


@pytest.mark.parametrize("backend", BACKENDS)
def test_momentum_none_cumulative_average(backend, device):
    """momentum=None: the caller passes f = 1 / num_batches_tracked, as BatchNorm2d.forward does."""
    twin, x, _, grad_y = _make(16, 24, (1, 1), (1, 1), (0, 0), (4, 4), torch.float32, device, residual=False,
                               momentum=None)
    rm = twin.bn.running_mean.detach().float().clone()
    rv = twin.bn.running_var.detach().float().clone()
    w = twin.conv.weight.detach().float()
    gamma, beta = twin.bn.weight.detach().float(), twin.bn.bias.detach().float()
    for step in range(1, 4):
        x = torch.randn_like(x) * step + step
        with inception_core.backend(backend):
            conv_bn_act_train(x, w, gamma, beta, rm, rv, momentum_factor=1.0 / step, eps=twin.bn.eps)
        with torch.no_grad():
            twin(x.double())
        assert int(twin.bn.num_batches_tracked) == step
        _assert_close(rm, twin.bn.running_mean, fp32_rtol(INTERPRETED), f"running_mean step {step}")
        _assert_close(rv, twin.bn.running_var, fp32_rtol(INTERPRETED), f"running_var step {step}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_variance_is_stable_for_large_means(backend, device):
    """Inputs whose mean is large compared to their spread: a naive fp32 E[x^2] - E[x]^2 loses the variance."""
    twin, x, _, grad_y = _make(16, 24, (1, 1), (1, 1), (0, 0), (8, 8), torch.float32, device, n=4, residual=False)
    x = (1000.0 + 0.5 * torch.randn_like(x)).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        twin.conv.weight.abs_()  # every channel's output has mean ~1000x its spread
    y, _, (rm, rv) = _ours(backend, twin, x, None, grad_y, torch.float32)
    y_ref, _ = _run_twin(twin, x, None, grad_y)
    # fp32 rounding of conv outputs near 1000 limits what any implementation can do: ~6e-5 of the std
    _assert_close(y, y_ref, 2e-3, "output")
    _assert_close(rv, twin.bn.running_var, 2e-3, "running_var")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", LOW_PRECISION)
def test_low_precision_within_3x_torch_error(dtype, backend, device):
    twin, x, res, grad_y = _make(32, 48, (3, 3), (1, 1), (1, 1), (5, 5), dtype, device)
    y_ref, ref = _run_twin(twin, x, res, grad_y, res_scale=0.2)
    y, grads, _ = _ours(backend, twin, x, res, grad_y, dtype, res_scale=0.2)
    y_t, torch_grads, _ = _ours("torch", twin, x, res, grad_y, dtype, res_scale=0.2)
    eps = torch.finfo(dtype).eps
    assert rel_err(y, y_ref) <= 2 * rel_err(y_t, y_ref) + eps
    for name, g, t, r in zip(NAMES, grads, torch_grads, ref, strict=True):
        assert g.dtype == (dtype if name in ("x", "weight", "residual") else torch.float32), name
        err, torch_err = rel_err(g, r), rel_err(t, r)
        assert err <= 3 * torch_err + eps, f"grad {name}: {err} vs torch backend {torch_err}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck_float64(backend, device):
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64, device=device, requires_grad=True)
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64, device=device, requires_grad=True)
    gamma = (torch.rand(4, dtype=torch.float64, device=device) + 0.5).requires_grad_()
    beta = torch.randn(4, dtype=torch.float64, device=device, requires_grad=True)
    res = torch.randn(2, 4, 2, 2, dtype=torch.float64, device=device, requires_grad=True)

    def fn(x, w, gamma, beta, res):
        return conv_bn_act_train(x, w, gamma, beta, None, None, momentum_factor=0.1, eps=1e-3, stride=1,
                                 padding=0, residual=res, res_scale=0.3, act="none")

    with inception_core.backend(backend):
        # fast_mode: random projections (a full Jacobian of BN costs ~20 s here)
        assert torch.autograd.gradcheck(fn, (x, w, gamma, beta, res), fast_mode=True)


def test_reference_matches_the_twin(device):
    twin, x, res, grad_y = _make(8, 12, (3, 3), (1, 1), (1, 1), (5, 5), torch.float64, device)
    rm, rv = twin.bn.running_mean.clone(), twin.bn.running_var.clone()
    y = conv_bn_act_train_ref(x, twin.conv.weight, twin.bn.weight, twin.bn.bias, rm, rv, momentum_factor=0.1,
                              eps=1e-3, padding=1, residual=res, res_scale=0.5)
    with torch.no_grad():
        y_ref = twin(x, res, 0.5)
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(rv, twin.bn.running_var, rtol=1e-12, atol=1e-12)


def test_triton_is_deterministic(device):
    twin, x, res, grad_y = _make(40, 48, (3, 3), (1, 1), (1, 1), (6, 6), torch.float32, device, n=3)
    y1, g1, s1 = _ours("triton", twin, x, res, grad_y, torch.float32)
    y2, g2, s2 = _ours("triton", twin, x, res, grad_y, torch.float32)
    assert torch.equal(y1, y2) and torch.equal(s1[0], s2[0]) and torch.equal(s1[1], s2[1])
    for name, a, b in zip(NAMES, g1, g2, strict=True):
        assert torch.equal(a, b), name


def test_int64_offsets_give_the_same_bits(device, monkeypatch):
    """The int64 offset paths (tensors >= 2**31 elements) forced on for small tensors: identical results."""
    import sys

    twin, x, res, grad_y = _make(24, 40, (3, 3), (2, 2), (1, 1), (7, 7), torch.float32, device)
    y32, g32, s32 = _ours("triton", twin, x, res, grad_y, torch.float32, res_scale=0.3)
    monkeypatch.setattr(sys.modules["inception_core.ops._launch_common"], "INT32_LIMIT", 0)
    y64, g64, s64 = _ours("triton", twin, x, res, grad_y, torch.float32, res_scale=0.3)
    assert torch.equal(y32, y64) and torch.equal(s32[0], s64[0]) and torch.equal(s32[1], s64[1])
    for name, a, b in zip(NAMES, g32, g64, strict=True):
        assert torch.equal(a, b), name


def test_bad_arguments(device):
    x = torch.randn(2, 4, 5, 5, device=device)
    w = torch.randn(6, 4, 3, 3, device=device)
    rm, rv = torch.zeros(6, device=device), torch.ones(6, device=device)
    kw = dict(momentum_factor=0.1, eps=1e-5)
    with pytest.raises(ValueError, match="running_mean, running_var"):
        conv_bn_act_train(x, w, None, None, rm, None, **kw)
    with pytest.raises(ValueError, match="running_var: expected shape"):
        conv_bn_act_train(x, w, None, None, rm, torch.ones(5, device=device), **kw)
    with pytest.raises(ValueError, match="momentum_factor"):
        conv_bn_act_train(x, w, None, None, rm, rv, momentum_factor=1.5, eps=1e-5)
    with pytest.raises(TypeError, match="gamma: expected dtype"):
        conv_bn_act_train(x, w, torch.ones(6, dtype=torch.float16, device=device), None, rm, rv, **kw)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        conv_bn_act_train(x[:1, :, :3, :3], w, None, None, rm, rv, **kw)
    with pytest.raises(ValueError, match="residual: expected shape"):
        conv_bn_act_train(x, w, None, None, rm, rv, residual=torch.randn(2, 6, 5, 5, device=device), **kw)
    assert torch.equal(rm, torch.zeros(6, device=device))  # nothing ran


def test_autocast_grads_in_parameter_dtypes(device):
    x = torch.randn(2, 16, 5, 5, device=device, requires_grad=True)
    w = torch.randn(24, 16, 3, 3, device=device, requires_grad=True)
    gamma = (torch.rand(24, device=device) + 0.5).requires_grad_()
    beta = torch.randn(24, device=device, requires_grad=True)
    rm, rv = torch.zeros(24, device=device), torch.ones(24, device=device)
    for backend in BACKENDS:
        with inception_core.backend(backend), torch.autocast(device, dtype=torch.bfloat16):
            y = conv_bn_act_train(x.to(torch.bfloat16), w.to(torch.bfloat16), gamma, beta, rm, rv,
                                  momentum_factor=0.1, eps=1e-3, padding=1)
            assert y.dtype == torch.bfloat16
            F.mse_loss(y.float(), torch.ones_like(y, dtype=torch.float32)).backward()
        assert rm.dtype == rv.dtype == torch.float32
        for t in (x, w, gamma, beta):
            assert t.grad.dtype == torch.float32 and torch.isfinite(t.grad).all()
            t.grad = None
