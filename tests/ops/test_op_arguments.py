"""Arguments the ops used to accept and then compute something for (or fail on inside a backend): each
is refused before any launch, with the same message on every backend."""

import math

import pytest
import torch

import inception_core
from inception_core.ops import avg_pool2d, conv_bn_act, conv_bn_act_train, max_pool2d

BACKENDS = ["torch", "triton"]


def _train_args(device, c=4):
    x = torch.randn(2, c, 3, 3, device=device)
    w = torch.randn(4, c, 1, 1, device=device)
    return x, w, torch.rand(4, device=device), torch.randn(4, device=device), torch.zeros(4, device=device), \
        torch.ones(4, device=device)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("eps", [0.0, -1e-5, math.nan])
def test_train_eps_must_be_positive(device, backend, eps):
    with inception_core.backend(backend), pytest.raises(ValueError, match=r"^eps: expected a value > 0"):
        conv_bn_act_train(*_train_args(device), momentum_factor=0.1, eps=eps)


def _pools(device):
    x = torch.randn(1, 4, 3, 3, device=device)
    return [("conv_bn_act", lambda **kw: conv_bn_act(x, torch.randn(4, 4, 1, 1, device=device), **kw)),
            ("max_pool2d", lambda **kw: max_pool2d(x, 3, 1, 1, **kw)),
            ("avg_pool2d", lambda **kw: avg_pool2d(x, 3, 1, 1, **kw))]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", [0, 1, 2], ids=["conv_bn_act", "max_pool2d", "avg_pool2d"])
def test_out_that_requires_grad(device, backend, op):
    out = torch.zeros(1, 4, 3, 3, device=device).contiguous(memory_format=torch.channels_last).requires_grad_()
    _, run = _pools(device)[op]
    with inception_core.backend(backend), pytest.raises(ValueError, match="^out: expected a tensor that does not "
                                                                          "require grad"):
        run(out=out)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", [0, 1, 2], ids=["conv_bn_act", "max_pool2d", "avg_pool2d"])
def test_out_offset_without_out(device, backend, op):
    _, run = _pools(device)[op]
    with inception_core.backend(backend), pytest.raises(ValueError, match="^out_offset: 3 given without out="):
        run(out_offset=3)
    with inception_core.backend(backend):
        assert run(out_offset=0).shape == (1, 4, 3, 3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_conv_without_input_channels(device, backend):
    x = torch.randn(2, 0, 3, 3, device=device)
    w = torch.randn(4, 0, 1, 1, device=device)
    with inception_core.backend(backend), pytest.raises(ValueError, match=r"^x: expected at least one input channel, "
                                                                          r"got shape \(2, 0, 3, 3\)"):
        conv_bn_act(x, w)
    _, _, gamma, beta, mean, var = _train_args(device)
    with inception_core.backend(backend), pytest.raises(ValueError, match=r"^x: expected at least one input channel"):
        conv_bn_act_train(x, w, gamma, beta, mean, var, momentum_factor=0.1, eps=1e-3)


def test_weight_rank_message_names_the_weight_layout(device):
    x = torch.randn(1, 4, 3, 3, device=device)
    with pytest.raises(ValueError, match=r"^weight: expected a 4-D tensor \(C_out, C_in, kH, kW\), got 2-D"):
        conv_bn_act(x, torch.randn(4, 4, device=device))
    _, _, gamma, beta, mean, var = _train_args(device)
    with pytest.raises(ValueError, match=r"^weight: expected a 4-D tensor \(C_out, C_in, kH, kW\), got 3-D"):
        conv_bn_act_train(x, torch.randn(4, 4, 1, device=device), gamma, beta, mean, var, momentum_factor=0.1,
                          eps=1e-3)
