"""conv_bn_act on layers of the real networks, forward with folded BN (inference). The training op
(conv_bn_act_train, forward and backward) is timed per layer in benchmarks/bench_conv_bn_act_train.py; this
op's backward per network, in the training step of benchmarks/bench_models.py.

Providers:
    triton    inception_core's Triton kernel (on a CPU through the interpreter, tiny shapes)
    cuda      the CUDA C++ backend, when built
    torch     inception_core's torch backend (stock ops composing the same fused function)
    eager     the stock layers as torchvision/timm run them: Conv2d -> BatchNorm2d -> ReLU (or the
              Inception-ResNet up-projection: conv with bias, ``x + scale * y``, ReLU), then the copy into
              the block's concat buffer that ``torch.cat`` makes
    compiled  ``eager`` under torch.compile (max-autotune on CUDA) with freezing (BN folded by Inductor)

Every provider produces the same tensor: the layer's output, in its channel slice of the block's concat
buffer when the layer feeds the concatenation directly (the fused op writes there, no copy).
FLOPs: 2 x N x OH x OW x Cout x Cin x KH x KW. Bytes: x + weight + output (+ residual), once each.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from layer_cases import LayerCase as Case
from layer_cases import case_ids, concat_buffer, input_hw, start_case
from torch import nn

from inception_core import backends, ops
from inception_core.nn.functional import fold_bn
from inception_core.ops.conv_bn_act import conv_output_size
from inception_core.shapes import CONV_SHAPES
from inception_core.testing import fp32_rtol, passes, rel_err

PROVIDERS = ("triton", "cuda", "torch", "eager", "compiled")

CASES = (
    Case("1x1 35x35", "inception_v3", "Mixed_5d.branch1x1.conv", (288, 0)),           # 288 -> 64, into the concat
    Case("1x1 17x17", "inception_v3", "Mixed_6b.branch1x1.conv", (768, 0)),           # 768 -> 192, 12 such layers
    Case("1x1 8x8", "inception_v3", "Mixed_7c.branch1x1.conv", (2048, 0)),            # 2048 -> 320
    Case("1x7 17x17", "inception_v3", "Mixed_6e.branch7x7_2.conv", None),             # asymmetric, intermediate
    Case("7x1 17x17", "inception_v3", "Mixed_6e.branch7x7_3.conv", (768, 192)),       # asymmetric, into the concat
    Case("3x3 s1 35x35", "inception_v3", "Mixed_5b.branch3x3dbl_2.conv", None),       # 64 -> 96 'same'
    Case("3x3 s2 35x35", "inception_v3", "Mixed_6a.branch3x3.conv", (768, 0)),        # stride-2 reduction
    Case("5x5 35x35", "inception_v3", "Mixed_5b.branch5x5_2.conv", (256, 64)),        # 48 -> 64, pad 2
    Case("3x3 s2 stem 299x299", "inception_v3", "Conv2d_1a_3x3.conv", None),          # 3 input channels
    Case("1x1 up-projection 17x17", "inception_resnet_v2", "repeat_1.0.conv2d", None, 0.10),  # +residual, 384->1088
)


class StockBranch(nn.Module):
    """One layer as the reference networks run it, plus the concat copy."""

    def __init__(self, conv: nn.Conv2d, bn: nn.BatchNorm2d | None, res_scale: float | None,
                 offset: int | None) -> None:
        super().__init__()
        self.conv, self.bn, self.res_scale, self.offset = conv, bn, res_scale, offset

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None,
                out: torch.Tensor | None = None) -> torch.Tensor:
        y = self.conv(x)
        if self.bn is not None:
            y = self.bn(y)
        if residual is not None:
            y = residual + self.res_scale * y
        y = F.relu(y)
        if out is None:
            return y
        out[:, self.offset:self.offset + y.shape[1]] = y
        return out


def _problem(case: Case, cfg, dtype: torch.dtype) -> dict:
    s = case.shape_in(CONV_SHAPES)
    hw = input_hw(s, cfg.on_gpu)
    n, dev, cl = cfg.op_batch, cfg.device, torch.channels_last
    conv = nn.Conv2d(s.in_channels, s.out_channels, s.kernel, s.stride, s.padding, bias=s.bias, device=dev)
    bn = None
    if case.res_scale is None:
        bn = nn.BatchNorm2d(s.out_channels, eps=1e-3, device=dev).eval()
        with torch.no_grad():
            bn.running_mean.normal_(0, 0.1)
            bn.running_var.uniform_(0.5, 1.5)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.normal_(0, 0.1)
    scale, shift = fold_bn(conv, bn)  # fp32, from the fp32 parameters
    stock = StockBranch(conv, bn, case.res_scale, case.cat[1] if case.cat else None).eval()
    stock = stock.to(dtype).to(memory_format=cl)
    weight = stock.conv.weight.detach().contiguous(memory_format=cl)
    x = torch.randn(n, s.in_channels, *hw, device=dev).to(dtype).contiguous(memory_format=cl)
    oh, ow = conv_output_size(hw, s.kernel, s.stride, s.padding)
    residual = None
    if case.res_scale is not None:
        residual = torch.randn(n, s.out_channels, oh, ow, device=dev).to(dtype).contiguous(memory_format=cl)
    out = concat_buffer(case, n, (oh, ow), dtype, dev)
    kw = dict(stride=s.stride, padding=s.padding, act="relu", residual=residual, res_scale=case.res_scale or 1.0)
    ref_kw = {**kw, "residual": None if residual is None else residual.double()}
    expected = ops.conv_bn_act_ref(x.double(), weight.double(), None if scale is None else scale.double(),
                                   shift.double(), **ref_kw)
    flops = 2.0 * n * oh * ow * s.out_channels * s.in_channels * s.kernel[0] * s.kernel[1]
    moved = x.numel() + weight.numel() + expected.numel() * (2 if residual is not None else 1)
    return dict(x=x, weight=weight, scale=scale, shift=shift, kw=kw, out=out, stock=stock, residual=residual,
                expected=expected, flops=flops, nbytes=float(moved * x.element_size()), hw=hw)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_conv_bn_act(measure, check_error, require_provider, cfg, case: Case, provider: str, dtype_name: str):
    dtype, ours, interpreted = start_case(provider, dtype_name, require_provider)
    p = _problem(case, cfg, dtype)
    s = case.shape_in(CONV_SHAPES)
    k, offset = s.out_channels, case.offset

    if ours:
        def fn():
            with backends.backend(provider):
                return ops.conv_bn_act(p["x"], p["weight"], p["scale"], p["shift"], **p["kw"], out=p["out"],
                                       out_offset=offset)
    elif provider == "eager":
        def fn():
            with torch.no_grad():
                return p["stock"](p["x"], p["residual"], p["out"])
    else:
        torch._dynamo.reset()
        compiled = torch.compile(p["stock"], mode=cfg.compile_mode)

        def fn():
            with torch.no_grad(), torch._inductor.config.patch(freezing=True):
                return compiled(p["x"], p["residual"], p["out"])

    y = fn()  # warm-up: autotuning, compilation
    if y.shape[1] != k:  # the whole concat buffer: the layer's slice
        y = y.narrow(1, offset, k)
    err = rel_err(y, p["expected"])
    with backends.backend("torch"):
        torch_err = rel_err(ops.conv_bn_act(p["x"], p["weight"], p["scale"], p["shift"], **p["kw"]), p["expected"])
    if provider in ("triton", "cuda"):
        assert passes(err, dtype, torch_err=torch_err, interpreted=interpreted), f"max rel err {err:.2e}"
    # the torch backend against its own oracle; eager/compiled (BN unfolded, in the low precision) get 4x
    bound = fp32_rtol(interpreted) if dtype == torch.float32 else 2 * torch_err + torch.finfo(dtype).eps
    check_error(err, bound if ours else 4 * bound, ours=ours, what=f"conv_bn_act {case.label} {provider} {dtype_name}")

    shape = f"{s.in_channels}->{k} {s.kernel[0]}x{s.kernel[1]} s{s.stride[0]} @{p['hw'][0]}x{p['hw'][1]}"
    shape += " +residual" if case.res_scale else ""
    shape += f" into concat[{offset}:{offset + k}] of {case.cat[0]}" if case.cat else ""
    info = dict(kind="op", op="conv_bn_act", case=f"conv_bn_act {case.label}", layer=f"{case.model}.{case.layer}",
                shape=shape, provider=provider, mode="fwd", batch=cfg.op_batch, max_rel_diff=err,
                note="Triton interpreter: timing meaningless" if interpreted else "")
    measure(fn, group=f"conv_bn_act {case.label} {dtype_name}", info=info, dtype=dtype, flops=p["flops"],
            nbytes=p["nbytes"], rounds=1 if interpreted else None,
            warmup=0 if interpreted else None)
