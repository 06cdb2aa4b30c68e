"""max_pool2d / avg_pool2d on layers of the real networks, forward. Memory-bound: GB/s and the fraction
of the device's peak bandwidth are the figures to read.

Providers:
    triton    inception_core's Triton kernel (on a CPU through the interpreter, tiny shapes)
    cuda      the CUDA C++ backend, when built
    torch     inception_core's torch backend
    eager     ``torch.nn.functional`` pooling as the reference networks call it, then the copy into the
              block's concat buffer that ``torch.cat`` makes when the pool feeds the concatenation
    compiled  ``eager`` under torch.compile (max-autotune on CUDA)

Bytes: input + output, once each (the minimum any implementation moves).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from layer_cases import LayerCase as Case
from layer_cases import case_ids, concat_buffer, input_hw, start_case

from inception_core import backends, ops
from inception_core.shapes import POOL_SHAPES, PoolShape
from inception_core.testing import rel_err

PROVIDERS = ("triton", "cuda", "torch", "eager", "compiled")

CASES = (
    Case("max 3x3 s2 147x147", "inception_v3", "maxpool1", None),                          # stem, 64 ch
    Case("max 3x3 s2 35x35", "inception_v3", "Mixed_6a/F.max_pool2d#0", (768, 480)),        # reduction branch
    Case("max 3x3 s2 ceil 28x28", "googlenet", "maxpool3", None),                          # ceil_mode
    Case("max 3x3 s1 ceil 14x14", "googlenet", "inception4b.branch4.0", None),             # pool before a 1x1
    Case("avg 3x3 s1 35x35", "inception_v3", "Mixed_5b/F.avg_pool2d#0", None),              # 192 ch, pad counted
    Case("avg 3x3 s1 17x17", "inception_v3", "Mixed_6b/F.avg_pool2d#0", None),              # 768 ch
    Case("avg 3x3 s1 8x8", "inception_v3", "Mixed_7c/F.avg_pool2d#0", None),                # 2048 ch
    Case("avg 3x3 s1 excl-pad 17x17", "inception_v4", "features.11.branch3.0", None),      # count_include_pad=False
    Case("global avg 8x8", "inception_v3", "avgpool", None),                               # 2048 ch -> 1x1
)


def _geometry(s: PoolShape, hw: tuple[int, int]):
    """(kind, kernel, stride, padding) as ops' arguments; a global pool is an average over the whole map."""
    if s.kind == "adaptive_avg":
        return "avg", hw, hw, (0, 0)
    return s.kind, s.kernel, s.stride, s.padding


def _eager(s: PoolShape, kind: str, kernel, stride, padding):
    if s.kind == "adaptive_avg":
        return lambda x: F.adaptive_avg_pool2d(x, s.kernel)
    if kind == "max":
        return lambda x: F.max_pool2d(x, kernel, stride, padding, ceil_mode=s.ceil_mode)
    return lambda x: F.avg_pool2d(x, kernel, stride, padding, ceil_mode=s.ceil_mode,
                                  count_include_pad=s.count_include_pad)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_pool2d(measure, check_error, require_provider, cfg, case: Case, provider: str, dtype_name: str):
    dtype, ours, interpreted = start_case(provider, dtype_name, require_provider)
    s = case.shape_in(POOL_SHAPES)
    if s.kind == "adaptive_avg":
        hw = s.in_hw if cfg.on_gpu else (min(s.in_hw[0], 5), min(s.in_hw[1], 5))
    else:
        hw = input_hw(s, cfg.on_gpu)
    kind, kernel, stride, padding = _geometry(s, hw)
    n, dev, cl = cfg.op_batch, cfg.device, torch.channels_last
    x = torch.randn(n, s.channels, *hw, device=dev).to(dtype).contiguous(memory_format=cl)
    eager = _eager(s, kind, kernel, stride, padding)
    expected = eager(x.double())
    c, (oh, ow) = s.channels, expected.shape[2:]
    offset = case.offset
    out = concat_buffer(case, n, (oh, ow), dtype, dev)

    def stock(x: torch.Tensor, out: torch.Tensor | None) -> torch.Tensor:
        y = eager(x)
        if out is None:
            return y
        out[:, offset:offset + c] = y
        return out

    if ours:
        op = ops.max_pool2d if kind == "max" else ops.avg_pool2d
        kw = dict(ceil_mode=s.ceil_mode) if kind == "max" else dict(ceil_mode=s.ceil_mode,
                                                                    count_include_pad=s.count_include_pad)

        def fn():
            with backends.backend(provider):
                return op(x, kernel, stride, padding, **kw, out=out, out_offset=offset)
    elif provider == "eager":
        def fn():
            return stock(x, out)
    else:
        torch._dynamo.reset()
        compiled = torch.compile(stock, mode=cfg.compile_mode)

        def fn():
            return compiled(x, out)

    y = fn()  # warm-up: autotuning, compilation
    if y.shape[1] != c:
        y = y.narrow(1, offset, c)
    err = rel_err(y, expected)
    # max pooling is exact; an average rounds once per output (plus the fp32 accumulation)
    bound = 0.0 if kind == "max" else (1e-6 if dtype == torch.float32 else torch.finfo(dtype).eps)
    check_error(err, bound if ours else 2 * bound, ours=ours, what=f"pool {case.label} {provider} {dtype_name}")

    flags = ("ceil " if s.ceil_mode else "") + ("excl-pad " if kind == "avg" and not s.count_include_pad else "")
    shape = f"{kind} {c}ch {kernel[0]}x{kernel[1]} s{stride[0]} p{padding[0]} {flags}@{hw[0]}x{hw[1]}"
    shape += f" into concat[{offset}:{offset + c}] of {case.cat[0]}" if case.cat else ""
    info = dict(kind="op", op=f"{kind}_pool2d", case=f"pool {case.label}", layer=f"{case.model}.{case.layer}",
                shape=shape, provider=provider, mode="fwd", batch=n, max_rel_diff=err,
                note="Triton interpreter: timing meaningless" if interpreted else "")
    nbytes = float((x.numel() + n * c * oh * ow) * x.element_size())
    measure(fn, group=f"pool {case.label} {dtype_name}", info=info, dtype=dtype, nbytes=nbytes, bound="memory",
            rounds=1 if interpreted else None,
            warmup=0 if interpreted else None)
