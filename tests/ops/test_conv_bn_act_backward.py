"""conv_bn_act (folded BN) backward: every gradient against a float64 torch twin, both backends.

The twin is stock ``F.conv2d`` -> affine -> residual -> ReLU with torch's autograd, in float64 on the same
(rounded) inputs and the same grad_output. On CPU the triton backend runs under the interpreter (conftest),
so the network geometries keep their channel counts but run at a reduced spatial size and batch 2.
"""

import pytest
import torch
import torch.nn.functional as F
from conv_cases import EDGE_CASES, NETWORK_LAYERS, grad_dtypes, gradcheck_leaves, layer

import inception_core
from inception_core.kernels import INTERPRETED
from inception_core.ops import conv_bn_act
from inception_core.ops._conv_grad import launch_conv_grads_triton
from inception_core.ops.conv_bn_act import conv_output_size
from inception_core.testing import (
    LOW_PRECISION,
    assert_grads_within,
    assert_grads_within_torch_error,
    assert_within,
    fp32_rtol,
    rel_err,
)

BACKENDS = ["torch", "triton"]
NAMES = ("x", "weight", "scale", "shift", "residual")

# (C, K, kernel, stride, padding, reduced input hw)
GEOMETRIES = [
    *NETWORK_LAYERS,
    layer("bn_inception", "inception_3c_3x3", (6, 6), "3x3s2-same"),
    layer("inception_v3", "Mixed_6b.branch7x7_2.conv", (5, 7), "1x7"),
    layer("inception_v3", "Mixed_6b.branch7x7_3.conv", (7, 5), "7x1"),
]


def _leaf(t):
    return t.detach().clone().requires_grad_(True)


def _inputs(n, c, k, kernel, stride, padding, hw, dtype, *, residual, device, layout="channels_last"):
    """x, weight, scale, shift, residual (or None) and grad_output of a (C -> K, kernel, stride, padding) conv."""
    x = torch.randn(n, c, *hw, device=device).to(dtype)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    w = (torch.randn(k, c, *kernel, device=device) / (c * kernel[0] * kernel[1]) ** 0.5).to(dtype)
    w = w.contiguous(memory_format=torch.channels_last)
    acc = torch.float64 if dtype == torch.float64 else torch.float32
    scale = (torch.rand(k, device=device) + 0.5).to(acc)
    shift = torch.randn(k, device=device).to(acc)
    out_hw = conv_output_size(hw, kernel, stride, padding)
    res = torch.randn(n, k, *out_hw, device=device).to(dtype) if residual else None
    grad_y = torch.randn(n, k, *out_hw, device=device).to(dtype)
    return x, w, scale, shift, res, grad_y


def _twin(x, w, scale, shift, res, grad_y, *, stride, padding, act, res_scale):
    """float64 stock-op twin: output and the gradients of (x, w, scale, shift, residual)."""
    leaves = [None if t is None else _leaf(t.double()) for t in (x, w, scale, shift, res)]
    xd, wd, sd, bd, rd = leaves
    y = F.conv2d(xd, wd, stride=stride, padding=padding)
    y = y * (sd.view(1, -1, 1, 1) if sd is not None else 1) + (bd.view(1, -1, 1, 1) if bd is not None else 0)
    if rd is not None:
        y = rd + res_scale * y
    if act == "relu":
        y = torch.relu(y)
    y.backward(grad_y.double())
    return y.detach(), [None if t is None else t.grad for t in leaves]


def _ours(backend, x, w, scale, shift, res, grad_y, **kw):
    leaves = [None if t is None else _leaf(t) for t in (x, w, scale, shift, res)]
    with inception_core.backend(backend):
        y = conv_bn_act(leaves[0], leaves[1], leaves[2], leaves[3], residual=leaves[4], **kw)
        y.backward(grad_y)
    return y.detach(), [None if t is None else t.grad for t in leaves]


def _check_fp32(backend, x, w, scale, shift, res, grad_y, **kw):
    """Output and every gradient of the op within the fp32 tolerance of the float64 twin."""
    y, grads = _ours(backend, x, w, scale, shift, res, grad_y, **kw)
    y_ref, ref = _twin(x, w, scale, shift, res, grad_y, **kw)
    tol = fp32_rtol(INTERPRETED)
    assert_within(y, y_ref, tol, "output")
    assert_grads_within(NAMES, grads, ref, tol)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("c,k,kernel,stride,padding,hw", GEOMETRIES)
def test_network_geometries_fp32(c, k, kernel, stride, padding, hw, backend, device):
    x, w, scale, shift, _, grad_y = _inputs(2, c, k, kernel, stride, padding, hw, torch.float32, residual=False,
                                            device=device)
    _check_fp32(backend, x, w, scale, shift, None, grad_y, stride=stride, padding=padding, act="relu", res_scale=1.0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("act", ["relu", "none"])
def test_residual_up_projection(backend, act, device):
    """Inception-ResNet-v2 block35 up-projection: 1x1 128 -> 320 with bias (shift only), scaled residual."""
    x, w, _, shift, res, grad_y = _inputs(2, 128, 320, (1, 1), (1, 1), (0, 0), (5, 5), torch.float32, residual=True,
                                          device=device)
    _check_fp32(backend, x, w, None, shift, res, grad_y, stride=(1, 1), padding=(0, 0), act=act, res_scale=0.17)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "n,c,k,kernel,stride,padding,hw,layout",
    [
        *EDGE_CASES,
        pytest.param(3, 32, 48, (3, 3), (1, 1), (1, 1), (1, 1), "channels_last", id="1x1-spatial"),
        pytest.param(2, 16, 24, (1, 1), (2, 2), (0, 0), (7, 6), "channels_last", id="1x1-stride2-untouched-phases"),
        pytest.param(2, 16, 24, (5, 5), (3, 2), (2, 1), (10, 9), "channels_last", id="stride3x2-5x5-phases"),
    ],
)
def test_edge_cases(n, c, k, kernel, stride, padding, hw, layout, backend, device):
    x, w, scale, shift, res, grad_y = _inputs(n, c, k, kernel, stride, padding, hw, torch.float32, residual=True,
                                              device=device, layout=layout)
    _check_fp32(backend, x, w, scale, shift, res, grad_y, stride=stride, padding=padding, act="relu", res_scale=0.3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_noncontiguous_input_and_grad(backend, device):
    """A channel slice of a bigger NHWC tensor as x, a transposed (non-dense) grad_output."""
    wide = torch.randn(2, 50, 6, 6, device=device).contiguous(memory_format=torch.channels_last)
    x = wide[:, 13:37]
    _, w, scale, shift, _, _ = _inputs(2, 24, 16, (3, 3), (1, 1), (1, 1), (6, 6), torch.float32, residual=False,
                                       device=device)
    grad_y = torch.randn(2, 16, 6, 6, device=device).transpose(2, 3)
    _check_fp32(backend, x, w, scale, shift, None, grad_y, stride=(1, 1), padding=(1, 1), act="relu", res_scale=1.0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", LOW_PRECISION)
def test_low_precision_within_3x_torch_error(dtype, backend, device):
    """fp16/bf16 gradients within 3x the torch backend's own error against float64 (plus one rounding step)."""
    x, w, scale, shift, res, grad_y = _inputs(2, 64, 96, (3, 3), (1, 1), (1, 1), (5, 5), dtype, residual=True,
                                              device=device)
    kw = dict(stride=(1, 1), padding=(1, 1), act="relu", res_scale=0.2)
    _, ref = _twin(x, w, scale, shift, res, grad_y, **kw)
    _, grads = _ours(backend, x, w, scale, shift, res, grad_y, **kw)
    _, torch_grads = _ours("torch", x, w, scale, shift, res, grad_y, **kw)
    assert_grads_within_torch_error(NAMES, grads, torch_grads, ref, grad_dtypes(dtype), factor=3, input_dtype=dtype)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck_float64(backend, device):
    x, w, scale, shift, res = gradcheck_leaves(1, 3, 4, (3, 3), (5, 4), (2, 2), device)

    def fn(x, w, scale, shift, res):
        return conv_bn_act(x, w, scale, shift, stride=2, padding=(0, 1), residual=res, res_scale=0.3, act="none")

    with inception_core.backend(backend):
        # fast_mode on the interpreter: a few random projections instead of one run per input element
        assert torch.autograd.gradcheck(fn, (x, w, scale, shift, res), fast_mode=backend == "triton")


def test_triton_backward_is_deterministic(device):
    x, w, scale, shift, res, grad_y = _inputs(2, 40, 48, (3, 3), (1, 1), (1, 1), (7, 7), torch.float32,
                                              residual=True, device=device)
    kw = dict(stride=(1, 1), padding=(1, 1), act="relu", res_scale=0.5)
    _, first = _ours("triton", x, w, scale, shift, res, grad_y, **kw)
    _, second = _ours("triton", x, w, scale, shift, res, grad_y, **kw)
    for name, a, b in zip(NAMES, first, second, strict=True):
        assert torch.equal(a, b), name


def test_out_slice_write_rejects_autograd(device):
    x, w, scale, shift, _, _ = _inputs(2, 8, 8, (1, 1), (1, 1), (0, 0), (4, 4), torch.float32, residual=False,
                                       device=device)
    out = torch.empty(2, 16, 4, 4, device=device).contiguous(memory_format=torch.channels_last)
    with pytest.raises(ValueError, match="out: slice writes are not differentiable"):
        conv_bn_act(x.requires_grad_(), w, scale, shift, out=out, out_offset=0)
    with torch.no_grad():
        conv_bn_act(x, w, scale, shift, out=out, out_offset=8)  # fine without autograd


def test_every_shipped_backward_config(device):
    """Every GPU config of the dgrad and wgrad kernels computes the right gradients (run one by one)."""
    from inception_core.kernels.configs import GPU_CONFIGS

    x, w, _, _, _, _ = _inputs(2, 40, 70, (3, 3), (2, 2), (1, 1), (9, 7), torch.float32, residual=False,
                               device=device)
    gc = torch.randn(2, 70, 5, 4, device=device).contiguous(memory_format=torch.channels_last)
    gx_ref, gw_ref = torch.ops.aten.convolution_backward(gc.double(), x.double(), w.double(), None, [2, 2], [1, 1],
                                                         [1, 1], False, [0, 0], 1, [True, True, False])[:2]
    tol = 1e-5 if INTERPRETED else 2e-3
    for dx_config, dw_config in zip(GPU_CONFIGS["conv_bwd_dx"], GPU_CONFIGS["conv_bwd_dw"] * 2, strict=False):
        gx, gw = launch_conv_grads_triton(gc, x, w, (2, 2), (1, 1), True, True, dx_config=dx_config,
                                          dw_config=dw_config)
        assert rel_err(gx, gx_ref) <= tol and rel_err(gw, gw_ref) <= tol, (dx_config, dw_config)


def test_autocast_grads_in_parameter_dtypes(device):
    """Under autocast the layers cast to bf16 before the op: grads come back in the fp32 leaves' dtype."""
    x = torch.randn(2, 16, 5, 5, device=device, requires_grad=True)
    w = torch.randn(24, 16, 3, 3, device=device, requires_grad=True)
    scale = (torch.rand(24, device=device) + 0.5).requires_grad_()
    shift = torch.randn(24, device=device, requires_grad=True)
    for backend in BACKENDS:
        with inception_core.backend(backend), torch.autocast(device, dtype=torch.bfloat16):
            y = conv_bn_act(x.to(torch.bfloat16), w.to(torch.bfloat16), scale, shift, padding=1)
            assert y.dtype == torch.bfloat16
            y.float().square().mean().backward()
        for t in (x, w, scale, shift):
            assert t.grad.dtype == torch.float32 and torch.isfinite(t.grad).all()
            t.grad = None
