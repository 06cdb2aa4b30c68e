"""The training residual up-projection on a CPU's torch backend: ``nn.functional._stock_residual`` (the scale in
the weights and bias, the sum in place on the conv's output) against the stock modules' ``relu(conv(x) * scale +
residual)``, forward and backward, in interleaved rounds (``bench.time_interleaved``).

Cases: the three Inception-ResNet-v2 up-projections at batch 8 (block35 128 -> 320 at 35x35, block17 384 -> 1088
at 17x17, block8 448 -> 2080 at 8x8), fp32, channels_last. ``extra_info``: both medians and ``speedup``, the median
per-round ratio stock / ours (above 1: ours is faster). Measured on a 2-core AMD EPYC (AVX2), 30 rounds, two
runs: block35 1.52x and 1.64x, block17 1.09x and 1.08x, block8 1.02x and 1.04x.
"""

from __future__ import annotations

import statistics

import pytest
import torch
from torch import nn

from inception_core import bench
from inception_core.nn import functional as icf

CL = torch.channels_last
CASES = {"block35 128->320 35x35": (128, 320, 35, 0.17), "block17 384->1088 17x17": (384, 1088, 17, 0.10),
         "block8 448->2080 8x8": (448, 2080, 8, 0.20)}


def _calls(cin: int, k: int, hw: int, scale: float, batch: int):
    conv = nn.Conv2d(cin, k, 1).to(memory_format=CL)
    x = torch.randn(batch, cin, hw, hw).contiguous(memory_format=CL).requires_grad_()
    res = torch.randn(batch, k, hw, hw).contiguous(memory_format=CL).requires_grad_()
    grad = torch.randn(batch, k, hw, hw).contiguous(memory_format=CL)

    def stock():
        icf._stock(x, conv, None, "relu", res, scale, None, 0).backward(grad)

    def ours():
        icf._stock_residual(x, conv, "relu", res, scale, None, 0).backward(grad)

    return stock, ours


@pytest.mark.parametrize("case", list(CASES))
def test_residual_training(benchmark, case):
    disabled = benchmark.disabled
    stock, ours = _calls(*CASES[case], batch=1 if disabled else 8)
    rounds = 1 if disabled else 30
    timings = bench.time_interleaved({"stock": stock, "ours": ours}, warmup=1, rounds=rounds, device="cpu")
    benchmark.pedantic(ours, rounds=1 if disabled else 10, iterations=1)
    summary = bench.ratio_summary(timings["stock"].times_s, timings["ours"].times_s)
    benchmark.group = f"residual training: {case}"
    benchmark.extra_info.update(case=case, rounds=rounds,
                                stock_median_ms=statistics.median(timings["stock"].times_s) * 1e3,
                                ours_median_ms=statistics.median(timings["ours"].times_s) * 1e3,
                                speedup=summary["median"], speedup_q1=summary["q1"], speedup_q3=summary["q3"])
