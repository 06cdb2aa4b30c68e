"""conv_bn_act_train (BatchNorm with batch statistics): output, every gradient and the running statistics
against a torch twin (nn.Conv2d + nn.BatchNorm2d in training mode + residual + ReLU, float64, same weights,
same grad_output), on both backends. On CPU triton runs under the interpreter: reduced spatial sizes."""

import pytest
import torch
from conv_bn_act_train_twin import BACKENDS, NAMES, check, make, ours, run_twin
from conv_cases import EDGE_CASES, NETWORK_LAYERS, layer

import inception_core
from inception_core.kernels import INTERPRETED
from inception_core.ops import conv_bn_act_train, conv_bn_act_train_ref
from inception_core.testing import assert_within, fp32_rtol

# (C, K, kernel, stride, padding, reduced input hw)
GEOMETRIES = [
    *NETWORK_LAYERS,
    layer("inception_resnet_v2", "repeat_1.0.branch1.1.conv", (5, 7), "1x7"),
    layer("inception_resnet_v2", "repeat_1.0.branch1.2.conv", (7, 5), "7x1"),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("c,k,kernel,stride,padding,hw", GEOMETRIES)
def test_network_geometries_fp32(c, k, kernel, stride, padding, hw, backend, device):
    twin, x, _, grad_y = make(c, k, kernel, stride, padding, hw, torch.float32, device, residual=False)
    check(backend, twin, x, None, grad_y, torch.float32, fp32_rtol(INTERPRETED))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("act", ["relu", "none"])
def test_scaled_residual(backend, act, device):
    twin, x, res, grad_y = make(64, 80, (1, 1), (1, 1), (0, 0), (5, 5), torch.float32, device)
    check(backend, twin, x, res, grad_y, torch.float32, fp32_rtol(INTERPRETED), res_scale=0.17, act=act)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "n,c,k,kernel,stride,padding,hw,layout",
    [
        *EDGE_CASES,
        pytest.param(3, 32, 48, (1, 1), (1, 1), (0, 0), (1, 1), "channels_last", id="1x1-spatial"),
        pytest.param(5, 16, 24, (1, 1), (1, 1), (0, 0), (8, 9), "channels_last", id="many-stat-groups"),
    ],
)
def test_edge_cases(n, c, k, kernel, stride, padding, hw, layout, backend, device):
    twin, x, res, grad_y = make(c, k, kernel, stride, padding, hw, torch.float32, device, n=n, layout=layout)
    check(backend, twin, x, res, grad_y, torch.float32, fp32_rtol(INTERPRETED), res_scale=0.3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_affine_false_and_no_running_stats(backend, device):
    twin, x, res, grad_y = make(24, 32, (3, 3), (1, 1), (1, 1), (5, 5), torch.float32, device, affine=False)
    check(backend, twin, x, res, grad_y, torch.float32, fp32_rtol(INTERPRETED))
    twin, x, res, grad_y = make(24, 32, (3, 3), (1, 1), (1, 1), (5, 5), torch.float32, device, track=False)
    check(backend, twin, x, res, grad_y, torch.float32, fp32_rtol(INTERPRETED))


@pytest.mark.parametrize("backend", BACKENDS)
def test_momentum_none_cumulative_average(backend, device):
    """momentum=None: the caller passes f = 1 / num_batches_tracked, as BatchNorm2d.forward does."""
    twin, x, _, grad_y = make(16, 24, (1, 1), (1, 1), (0, 0), (4, 4), torch.float32, device, residual=False,
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
        assert_within(rm, twin.bn.running_mean, fp32_rtol(INTERPRETED), f"running_mean step {step}")
        assert_within(rv, twin.bn.running_var, fp32_rtol(INTERPRETED), f"running_var step {step}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_variance_is_stable_for_large_means(backend, device):
    """Inputs whose mean is large compared to their spread: a naive fp32 E[x^2] - E[x]^2 loses the variance."""
    twin, x, _, grad_y = make(16, 24, (1, 1), (1, 1), (0, 0), (8, 8), torch.float32, device, n=4, residual=False)
    x = (1000.0 + 0.5 * torch.randn_like(x)).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        twin.conv.weight.abs_()  # every channel's output has mean ~1000x its spread
    y, _, (rm, rv) = ours(backend, twin, x, None, grad_y, torch.float32)
    y_ref, _ = run_twin(twin, x, None, grad_y)
    # fp32 rounding of conv outputs near 1000 limits what any implementation can do: ~6e-5 of the std
    assert_within(y, y_ref, 2e-3, "output")
    assert_within(rv, twin.bn.running_var, 2e-3, "running_var")


def test_reference_matches_the_twin(device):
    twin, x, res, grad_y = make(8, 12, (3, 3), (1, 1), (1, 1), (5, 5), torch.float64, device)
    rm, rv = twin.bn.running_mean.clone(), twin.bn.running_var.clone()
    y = conv_bn_act_train_ref(x, twin.conv.weight, twin.bn.weight, twin.bn.bias, rm, rv, momentum_factor=0.1,
                              eps=1e-3, padding=1, residual=res, res_scale=0.5)
    with torch.no_grad():
        y_ref = twin(x, res, 0.5)
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(rv, twin.bn.running_var, rtol=1e-12, atol=1e-12)


def test_int64_offsets_give_the_same_bits(device, monkeypatch):
    """The int64 offset paths (tensors >= 2**31 elements) forced on for small tensors: identical results."""
    import sys

    twin, x, res, grad_y = make(24, 40, (3, 3), (2, 2), (1, 1), (7, 7), torch.float32, device)
    y32, g32, s32 = ours("triton", twin, x, res, grad_y, torch.float32, res_scale=0.3)
    monkeypatch.setattr(sys.modules["inception_core.ops._launch_common"], "INT32_LIMIT", 0)
    y64, g64, s64 = ours("triton", twin, x, res, grad_y, torch.float32, res_scale=0.3)
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
