"""conv_bn_act_train on layers of the real networks: one training step of the layer, forward (conv +
BatchNorm with batch statistics + ReLU, running statistics updated) and backward (the gradients of x,
weight, gamma and beta). The whole training step of each network is timed in benchmarks/bench_models.py.

Providers:
    triton    inception_core's Triton kernels (on a CPU through the interpreter, tiny shapes)
    torch     inception_core's torch backend
    eager     the stock layers as torchvision/timm train them: Conv2d -> BatchNorm2d (training mode) -> ReLU,
              in the benchmark's dtype, with torch's autograd

(conv_bn_act_train has no CUDA C++ kernels: the cuda backend would run torch.)
Every provider computes the same output and gradients, checked against a float64 twin on the same inputs.
FLOPs: 3 x 2 x N x OH x OW x Cout x Cin x KH x KW (the forward conv, the input and the weight gradients).
Bytes: x, weight and output three times each (forward: x and weight read, output written; backward:
grad_output and output read, x and weight read again, grad_x and grad_weight written).
"""

from __future__ import annotations

import copy

import pytest
import torch
from layer_cases import LayerCase as Case
from layer_cases import case_ids, input_hw, start_case
from torch import nn

from inception_core import backends, ops
from inception_core.ops.conv_bn_act import conv_output_size
from inception_core.shapes import CONV_SHAPES
from inception_core.testing import fp32_rtol, rel_err

PROVIDERS = ("triton", "torch", "eager")
EPS, MOMENTUM = 1e-3, 0.1  # torchvision's BasicConv2d

CASES = (
    Case("1x1 35x35", "inception_v3", "Mixed_5b.branch1x1.conv", None),           # 192 -> 64
    Case("3x3 s1 147x147", "inception_v3", "Conv2d_2b_3x3.conv", None),          # 32 -> 64 'same'
    Case("3x3 s2 stem 299x299", "inception_v3", "Conv2d_1a_3x3.conv", None),      # 3 input channels
)


def _problem(s, cfg, dtype: torch.dtype) -> dict:
    hw = input_hw(s, cfg.on_gpu)
    n, dev, cl = cfg.op_batch, cfg.device, torch.channels_last
    conv = nn.Conv2d(s.in_channels, s.out_channels, s.kernel, s.stride, s.padding, bias=False, device=dev)
    bn = nn.BatchNorm2d(s.out_channels, eps=EPS, momentum=MOMENTUM, device=dev)
    with torch.no_grad():
        bn.running_mean.normal_(0, 0.1)
        bn.running_var.uniform_(0.5, 1.5)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.normal_(0, 0.1)
    gamma, beta = bn.weight.detach().clone(), bn.bias.detach().clone()  # fp32, as the op takes them
    running_mean, running_var = bn.running_mean.clone(), bn.running_var.clone()
    stock = nn.Sequential(conv, bn, nn.ReLU()).train().to(dtype).to(memory_format=cl)  # eager, in dtype
    x = torch.randn(n, s.in_channels, *hw, device=dev).to(dtype).contiguous(memory_format=cl)
    oh, ow = conv_output_size(hw, s.kernel, s.stride, s.padding)
    grad_y = torch.randn(n, s.out_channels, oh, ow, device=dev).to(dtype).contiguous(memory_format=cl)
    weight = stock[0].weight.detach().contiguous(memory_format=cl)
    twin = copy.deepcopy(stock).double()  # float64 on the same (rounded) weight
    with torch.no_grad():
        twin[1].weight.copy_(gamma)
        twin[1].bias.copy_(beta)
    expected = _eager_step(twin, x.double(), grad_y.double())()
    flops = 3 * 2.0 * n * oh * ow * s.out_channels * s.in_channels * s.kernel[0] * s.kernel[1]
    nbytes = 3.0 * (x.numel() + weight.numel() + grad_y.numel()) * x.element_size()
    return dict(x=x, weight=weight, gamma=gamma, beta=beta, running_mean=running_mean,
                running_var=running_var, grad_y=grad_y, stock=stock, expected=expected, flops=flops,
                nbytes=nbytes, hw=hw)


def _eager_step(stock: nn.Module, x: torch.Tensor, grad_y: torch.Tensor):
    """One training step of the stock layers: (output, grad x, grad weight, grad gamma, grad beta)."""
    x = x.detach().requires_grad_()
    conv, bn = stock[0], stock[1]

    def step():
        stock.zero_grad(set_to_none=True)
        x.grad = None
        y = stock(x)
        y.backward(grad_y)
        return y.detach(), x.grad, conv.weight.grad, bn.weight.grad, bn.bias.grad

    return step


def _op_step(p: dict, s, backend: str):
    """One training step of ops.conv_bn_act_train on ``backend``, on its own copy of the running statistics."""
    x, weight = p["x"].detach().requires_grad_(), p["weight"].detach().clone().requires_grad_()
    gamma, beta = p["gamma"].clone().requires_grad_(), p["beta"].clone().requires_grad_()
    rm, rv = p["running_mean"].clone(), p["running_var"].clone()

    def step():
        for t in (x, weight, gamma, beta):
            t.grad = None
        with backends.backend(backend):
            y = ops.conv_bn_act_train(x, weight, gamma, beta, rm, rv, momentum_factor=MOMENTUM, eps=EPS,
                                      stride=s.stride, padding=s.padding)
            y.backward(p["grad_y"])
        return y.detach(), x.grad, weight.grad, gamma.grad, beta.grad

    return step


def _max_err(got, expected) -> float:
    """The largest relative error over the output and the four gradients."""
    return max(rel_err(g, e) for g, e in zip(got, expected, strict=True))


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_conv_bn_act_train(measure, check_error, require_provider, cfg, case: Case, provider: str,
                           dtype_name: str):
    dtype, ours, interpreted = start_case(provider, dtype_name, require_provider)
    s = case.shape_in(CONV_SHAPES)
    p = _problem(s, cfg, dtype)
    fn = _op_step(p, s, provider) if ours else _eager_step(p["stock"], p["x"], p["grad_y"])

    err = _max_err(fn(), p["expected"])  # warm-up: autotuning
    torch_err = _max_err(_op_step(p, s, "torch")(), p["expected"])
    # fp32 within the fp32 tolerance; fp16/bf16 gradients within 3x the torch backend's own error (the rule
    # of tests/ops/test_conv_bn_act_train_backward.py); eager (BN in the low precision too) gets 4x that
    bound = fp32_rtol(interpreted) if dtype == torch.float32 else 3 * torch_err + torch.finfo(dtype).eps
    check_error(err, bound if ours else 4 * bound, ours=ours,
                what=f"conv_bn_act_train {case.label} {provider} {dtype_name}")

    shape = f"{s.in_channels}->{s.out_channels} {s.kernel[0]}x{s.kernel[1]} s{s.stride[0]} @{p['hw'][0]}x{p['hw'][1]}"
    info = dict(kind="op", op="conv_bn_act_train", case=f"conv_bn_act_train {case.label}",
                layer=f"{case.model}.{case.layer}", shape=shape, provider=provider, mode="train", batch=cfg.op_batch,
                max_rel_diff=err, note="Triton interpreter: timing meaningless" if interpreted else "")
    measure(fn, group=f"conv_bn_act_train {case.label} {dtype_name}", info=info, dtype=dtype, flops=p["flops"],
            nbytes=p["nbytes"], rounds=1 if interpreted else None, warmup=0 if interpreted else None)
