"""The fixed cost of a frozen layer on a CPU's torch backend: a layer call against the raw torch op it runs,
on inputs so small that the op's own work is negligible (inference, fp32, 1 thread, no autograd graph).

Cases: a frozen ``BasicConv2d`` 16 -> 16 1x1 at 1x16x2x2 (it runs ``F.conv2d`` + ``relu_`` there:
``_cpu_direct.FrozenConv._native_is_faster``) against ``F.conv2d(x, w, b).relu_()``; a ``MaxPool2d(3, 1, 1)``
at 1x16x4x4 against ``F.max_pool2d``. Both are timed in interleaved rounds (``bench.time_interleaved``);
``extra_info`` holds the medians and ``overhead_us``, the median per-round difference.

Goal: ``overhead_us`` <= 50 per layer (a network makes one call per layer: GoogLeNet 57 convolutions and 13
pools, Inception-ResNet-v2 about 240 layers). Measured on a 2-core AMD EPYC (AVX2) shared with other jobs, pinned
to one core: conv 19-25 us (about 155 us before the prepared calls), pool 12-19 us (about 52 us before).
"""

from __future__ import annotations

import statistics

import pytest
import torch
import torch.nn.functional as F

import inception_core
from inception_core import bench
from inception_core.nn import BasicConv2d, MaxPool2d, freeze_folding
from inception_core.ops.conv_torch import onednn_fusable

pytestmark = pytest.mark.skipif(not onednn_fusable(torch.ones(1)), reason="the prepared calls need oneDNN")

GOAL_US = 50.0


def _cases():
    conv = freeze_folding(BasicConv2d(16, 16, kernel_size=1).eval())
    x = torch.randn(1, 16, 2, 2).contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), inception_core.backend("torch"):
        conv(x)  # the checked call builds the plan; the timed ones are the prepared call
    weight = conv.conv.weight.detach().contiguous(memory_format=torch.channels_last)
    bias = torch.randn(16)
    pool = MaxPool2d(3, 1, 1)
    xp = torch.randn(1, 16, 4, 4).contiguous(memory_format=torch.channels_last)
    return {"BasicConv2d 1x1 1x16x2x2": (lambda: conv(x), lambda: F.conv2d(x, weight, bias).relu_()),
            "MaxPool2d 3x3 1x16x4x4": (lambda: pool(xp), lambda: F.max_pool2d(xp, 3, 1, 1))}


@pytest.mark.parametrize("case", list(_cases()))
def test_layer_overhead(benchmark, case):
    layer, raw = _cases()[case]
    rounds = 1 if benchmark.disabled else 2000
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad(), inception_core.backend("torch"):
            timings = bench.time_interleaved({"layer": layer, "raw": raw}, warmup=2, rounds=rounds)
            benchmark.pedantic(layer, rounds=1 if benchmark.disabled else 200, iterations=1)
    finally:
        torch.set_num_threads(saved)
    ours, ref = timings["layer"].times_s, timings["raw"].times_s
    overhead = statistics.median(o - r for o, r in zip(ours, ref, strict=True)) * 1e6
    benchmark.group = f"layer overhead: {case}"
    benchmark.extra_info.update(case=case, rounds=rounds, layer_median_us=statistics.median(ours) * 1e6,
                                raw_median_us=statistics.median(ref) * 1e6, overhead_us=overhead,
                                goal_overhead_us=GOAL_US)
