"""The CPU torch backend's training conv (``ops/conv_torch_train.py``) on the layers whose weight gradient its
rule computes on NCHW copies: forward and backward of the conv alone, at the layers' native spatial size
(the rule depends on it), fp32, channels_last. The whole training step is timed in bench_models.py.

Providers:
    torch     ``conv2d_train``: ``nn.Conv2d``'s forward, the input gradient in channels_last and the weight
              gradient on NCHW copies (copies included)
    eager     ``nn.Conv2d`` with torch's autograd (both gradients in channels_last)

CPU only (on a GPU the torch backend's training conv is torch's own). The gradients of both providers are
checked against each other (fp32 tolerance). FLOPs: 3 x 2 x N x OH x OW x Cout x Cin x KH x KW.
"""

from __future__ import annotations

import pytest
import torch
from layer_cases import LayerCase as Case
from layer_cases import case_ids
from torch import nn

from inception_core.ops.conv_bn_act import conv_output_size
from inception_core.ops.conv_torch_train import conv2d_train, formulation
from inception_core.shapes import CONV_SHAPES
from inception_core.testing import FP32_RTOL, rel_err

PROVIDERS = ("torch", "eager")

CASES = (
    Case("3x3 s1 147x147", "inception_v3", "Conv2d_2b_3x3.conv", None),  # 32 -> 64 'same'
    Case("3x3 valid 73x73", "inception_v3", "Conv2d_4a_3x3.conv", None),  # 80 -> 192
    Case("3x3 s2 valid 35x35", "inception_v3", "Mixed_6a.branch3x3.conv", None),  # 288 -> 384 reduction
)


def _step(conv: nn.Conv2d, x: torch.Tensor, grad_y: torch.Tensor, ours: bool):
    def step():
        conv.zero_grad(set_to_none=True)
        x.grad = None
        y = conv2d_train(x, conv) if ours else conv(x)
        y.backward(grad_y)
        return x.grad, conv.weight.grad

    return step


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_conv_torch_train(measure, check_error, cfg, case: Case, provider: str, dtype_name: str):
    if cfg.on_gpu:
        pytest.skip("a CPU path: on a GPU the torch backend's training conv is torch's own")
    if dtype_name != "fp32":
        pytest.skip("the CPU training conv takes float32 (other dtypes run torch's own conv)")
    s = case.shape_in(CONV_SHAPES)
    n, cl = cfg.op_batch, torch.channels_last
    conv = nn.Conv2d(s.in_channels, s.out_channels, s.kernel, s.stride, s.padding, bias=False).to(memory_format=cl)
    x = torch.randn(n, s.in_channels, *s.in_hw).contiguous(memory_format=cl).requires_grad_()
    oh, ow = conv_output_size(s.in_hw, s.kernel, s.stride, s.padding)
    grad_y = torch.randn(n, s.out_channels, oh, ow).contiguous(memory_format=cl)
    assert formulation(x.shape, conv.weight.shape, s.stride, s.padding) == ("cl", "nchw"), "a layer the rule moves"
    fn = _step(conv, x, grad_y, ours=provider == "torch")
    got = [g.clone() for g in fn()]
    expected = _step(conv, x, grad_y, ours=False)()
    err = max(rel_err(g, e) for g, e in zip(got, expected, strict=True))
    check_error(err, 10 * FP32_RTOL, ours=provider == "torch", what=f"conv_torch_train {case.label} {provider}")

    flops = 3 * 2.0 * n * oh * ow * s.out_channels * s.in_channels * s.kernel[0] * s.kernel[1]
    info = dict(kind="op", op="conv_torch_train", case=f"conv_torch_train {case.label}",
                layer=f"{case.model}.{case.layer}", provider=provider, mode="train", batch=n, max_rel_diff=err)
    measure(fn, group=f"conv_torch_train {case.label} {dtype_name}", info=info, dtype=torch.float32, flops=flops)
