"""Backward of conv_bn_act_train: every gradient in fp16/bf16 within 3x of the torch backend's own error,
gradcheck in float64, two triton runs bit-identical, gradients in the parameters' dtypes under autocast.
(The fp32 gradients of every network geometry are checked with the forward in test_conv_bn_act_train.py;
opcheck of the backward op in test_training_registration.py.)"""

import pytest
import torch
import torch.nn.functional as F
from conv_bn_act_train_twin import BACKENDS, NAMES, make, ours, run_twin
from conv_cases import grad_dtypes, gradcheck_leaves

import inception_core
from inception_core.ops import conv_bn_act_train
from inception_core.testing import LOW_PRECISION, assert_grads_within_torch_error, rel_err


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", LOW_PRECISION)
def test_low_precision_within_3x_torch_error(dtype, backend, device):
    twin, x, res, grad_y = make(32, 48, (3, 3), (1, 1), (1, 1), (5, 5), dtype, device)
    y_ref, ref = run_twin(twin, x, res, grad_y, res_scale=0.2)
    y, grads, _ = ours(backend, twin, x, res, grad_y, dtype, res_scale=0.2)
    y_t, torch_grads, _ = ours("torch", twin, x, res, grad_y, dtype, res_scale=0.2)
    assert rel_err(y, y_ref) <= 2 * rel_err(y_t, y_ref) + torch.finfo(dtype).eps
    assert_grads_within_torch_error(NAMES, grads, torch_grads, ref, grad_dtypes(dtype), factor=3, input_dtype=dtype)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck_float64(backend, device):
    x, w, gamma, beta, res = gradcheck_leaves(2, 3, 4, (3, 3), (4, 4), (2, 2), device)

    def fn(x, w, gamma, beta, res):
        return conv_bn_act_train(x, w, gamma, beta, None, None, momentum_factor=0.1, eps=1e-3, stride=1,
                                 padding=0, residual=res, res_scale=0.3, act="none")

    with inception_core.backend(backend):
        # fast_mode: random projections (a full Jacobian of BN costs ~20 s here)
        assert torch.autograd.gradcheck(fn, (x, w, gamma, beta, res), fast_mode=True)


def test_triton_is_deterministic(device):
    twin, x, res, grad_y = make(40, 48, (3, 3), (1, 1), (1, 1), (6, 6), torch.float32, device, n=3)
    y1, g1, s1 = ours("triton", twin, x, res, grad_y, torch.float32)
    y2, g2, s2 = ours("triton", twin, x, res, grad_y, torch.float32)
    assert torch.equal(y1, y2) and torch.equal(s1[0], s2[0]) and torch.equal(s1[1], s2[1])
    for name, a, b in zip(NAMES, g1, g2, strict=True):
        assert torch.equal(a, b), name


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
