"""The CPU torch backend's separable stride-1 max pool (``ops/pool2d_torch.py``) against ``F.max_pool2d``, at
the 3x3 stride-1 pad-1 pools of GoogLeNet's pool branches (batch 8, fp32, channels_last, no autograd graph).

Both are timed in interleaved rounds (``bench.time_interleaved``) on the machine's threads; ``extra_info``
holds both medians and ``speedup``, the median of the per-round ratios ``F.max_pool2d`` / ours, with its
quartiles. Goal: ``speedup`` >= 1 on every case (the module docstring of ``ops/pool2d_torch.py`` has the
figures the size rule was set from). The results are compared exactly (a max rounds nothing).
"""

from __future__ import annotations

import statistics

import pytest
import torch
import torch.nn.functional as F

from inception_core import bench
from inception_core.ops.pool2d_torch import max_pool2d_torch, separable

# GoogLeNet's pool-branch inputs (inception3a, 3b, 4a, 4b-4d, 4e, 5a-5b), channels x side
CASES = {"inception3a 192x28": (192, 28), "inception3b 256x28": (256, 28), "inception4a 480x14": (480, 14),
         "inception4b 512x14": (512, 14), "inception4e 528x14": (528, 14), "inception5a 832x7": (832, 7)}


@pytest.mark.parametrize("case", list(CASES))
def test_pool2d_torch(benchmark, case):
    if torch.cuda.is_available():
        pytest.skip("a CPU path: on a GPU the torch backend's max pool is torch's own")
    channels, side = CASES[case]
    x = torch.randn(8, channels, side, side).contiguous(memory_format=torch.channels_last)
    assert separable(x, (3, 3), (1, 1), (1, 1)), "a pool the size rule takes"

    def ours():
        return max_pool2d_torch(x, (3, 3), (1, 1), (1, 1), True)

    def reference():
        return F.max_pool2d(x, 3, 1, 1, ceil_mode=True)

    with torch.no_grad():
        assert torch.equal(ours(), reference())
        rounds = 1 if benchmark.disabled else 200
        timings = bench.time_interleaved({"ours": ours, "reference": reference}, warmup=3, rounds=rounds)
        benchmark.pedantic(ours, rounds=1 if benchmark.disabled else 50, iterations=1)
    mine, ref = timings["ours"].times_s, timings["reference"].times_s
    ratio = bench.ratio_summary(ref, mine)
    benchmark.group = f"pool2d_torch: {case}"
    benchmark.extra_info.update(case=case, rounds=rounds, ours_median_us=statistics.median(mine) * 1e6,
                                reference_median_us=statistics.median(ref) * 1e6, speedup=ratio["median"],
                                speedup_q1=ratio["q1"], speedup_q3=ratio["q3"], goal_speedup=1.0)
