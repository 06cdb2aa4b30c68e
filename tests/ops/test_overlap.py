"""Every input of every op is checked against the memory the op writes: ``out=``'s channel slice for
conv_bn_act and the pools, the running statistics for conv_bn_act_train. An overlap raises ValueError
naming the argument, on the torch backend (which would happen to compute the right values) and on the
triton backend (whose kernel would read values it has already overwritten). Memory of the same storage
that the op does not write stays allowed."""

import pytest
import torch

import inception_core
from inception_core.ops import avg_pool2d, conv_bn_act, conv_bn_act_ref, conv_bn_act_train, max_pool2d

BACKENDS = ["torch", "triton"]
N, C, K, HW = 1, 4, 4, 3  # tiny: the interpreter is slow, the checks run before any launch anyway


def _buffer(device, channels=2 * K):
    return torch.randn(N, channels, HW, HW, device=device).contiguous(memory_format=torch.channels_last)


def _aliases(out, shape):
    """A tensor of ``shape`` that lives in the first elements of ``out``'s memory: pixel (0, 0) and on,
    channels 0.. of the slice the op writes at out_offset 0."""
    return out.permute(0, 2, 3, 1).reshape(-1)[: torch.Size(shape).numel()].view(shape)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["x", "weight", "scale", "shift", "residual"])
def test_conv_input_sharing_the_written_slice(device, backend, name):
    out = _buffer(device)
    args = dict(x=torch.randn(N, C, HW, HW, device=device), weight=torch.randn(K, C, 1, 1, device=device),
                scale=torch.rand(K, device=device), shift=torch.randn(K, device=device),
                residual=torch.randn(N, K, HW, HW, device=device))
    args[name] = _aliases(out, args[name].shape)
    with inception_core.backend(backend), pytest.raises(ValueError, match=f"^{name}: shares memory"):
        conv_bn_act(args["x"], args["weight"], args["scale"], args["shift"], residual=args["residual"], out=out,
                    out_offset=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_conv_inputs_elsewhere_in_the_same_storage(device, backend):
    # one allocation: out's slice first, then the weight, scale and shift after it
    n_out = N * 2 * K * HW * HW
    flat = torch.randn(n_out + K * C + 2 * K, device=device)
    out = flat[:n_out].view(N, HW, HW, 2 * K).permute(0, 3, 1, 2)  # channels_last view
    weight = flat[n_out:n_out + K * C].view(K, C, 1, 1)
    scale, shift = flat[n_out + K * C:n_out + K * C + K], flat[n_out + K * C + K:]
    x = torch.randn(N, C, HW, HW, device=device)
    expected = conv_bn_act_ref(x, weight, scale, shift)
    with inception_core.backend(backend):
        y = conv_bn_act(x, weight, scale, shift, out=out, out_offset=K)
    torch.testing.assert_close(y, expected)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("pool", [max_pool2d, avg_pool2d])
def test_pool_input_sharing_the_written_slice(device, backend, pool):
    out = _buffer(device)
    x = out[:, K - 1:2 * K - 1]  # channels 3..6, the slice writes 4..7
    with inception_core.backend(backend), pytest.raises(ValueError, match="^x: shares memory"):
        pool(x, 3, stride=1, padding=1, out=out, out_offset=K)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", ["mean_is_var", "mean_is_gamma", "var_in_x", "var_in_weight"])
def test_train_running_stats_sharing_memory(device, backend, case):
    x = torch.randn(2, C, HW, HW, device=device)
    weight = torch.randn(K, C, 1, 1, device=device)
    gamma, beta = torch.rand(K, device=device), torch.randn(K, device=device)
    mean, var = torch.zeros(K, device=device), torch.ones(K, device=device)
    name = "running_mean" if case.startswith("mean") else "running_var"
    if case == "mean_is_var":
        mean = var
    elif case == "mean_is_gamma":
        mean = gamma
    elif case == "var_in_x":
        var = x.view(-1)[:K]
    else:
        var = weight.view(-1)[:K]
    with inception_core.backend(backend), pytest.raises(ValueError, match=f"^{name}: shares memory"):
        conv_bn_act_train(x, weight, gamma, beta, mean, var, momentum_factor=0.1, eps=1e-3)
