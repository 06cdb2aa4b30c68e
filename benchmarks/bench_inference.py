"""``inception_core.optimize_for_inference`` (input normalisation folded, layout frozen, CUDA graph) against
the same network on the fused path run eagerly, batch 256, bf16 autocast, channels_last, native input size.

GPU only (a CUDA graph is the point): skipped on a CPU. ``extra_info`` holds images/s from CUDA events
(``inception_core.bench.time_callable``), the autotuning cost of the case (``inception_core.autotune_stats``:
seconds tuned, cache hits; a second run of the suite should tune nothing) and the output's relative
difference between the two providers.
"""

from __future__ import annotations

import pytest
import torch

import inception_core as ic
from inception_core import bench
from inception_core.shapes import MODELS, NATIVE_INPUT
from inception_core.testing import randomize_for_equivalence, rel_err

BATCH = 256
_MODELS: dict[str, torch.nn.Module] = {}


def _model(name: str) -> torch.nn.Module:
    if name not in _MODELS:
        _MODELS.clear()  # one network on the GPU at a time
        model = randomize_for_equivalence(ic.models.create_model(name)).eval()
        _MODELS[name] = model.cuda().to(memory_format=torch.channels_last)
    return _MODELS[name]


@pytest.mark.parametrize("provider", ["fused_eager", "optimized"])
@pytest.mark.parametrize("name", MODELS)
def test_inference(benchmark, request, name, provider):
    if not torch.cuda.is_available():
        pytest.skip("optimize_for_inference's CUDA graph needs a CUDA device")
    if name not in request.config.getoption("--bench-models").split(","):
        pytest.skip(f"{name} not in --bench-models")
    model = _model(name)
    size = NATIVE_INPUT[name]
    x = torch.rand(BATCH, 3, size, size, device="cuda", dtype=torch.bfloat16)

    def eager():
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            return model(x)

    ic.reset_autotune_stats()
    if provider == "optimized":
        optimized = ic.optimize_for_inference(model, x)  # warm-up (autotuning) and capture happen here
        fn = lambda: optimized(x)
    else:
        fn = eager
    timing = bench.time_callable(fn, warmup=3, rounds=20, device="cuda")
    diff = rel_err(fn().float(), eager().float())
    benchmark.group = f"inference/{name}"
    benchmark.extra_info.update(
        provider=provider, network=name, batch=BATCH, dtype="bf16", median_ms=timing.median_s * 1e3,
        iqr_ms=timing.iqr_s * 1e3, images_per_s=BATCH / timing.median_s, max_rel_diff_vs_eager=diff,
        autotune=ic.autotune_stats())
    benchmark.pedantic(fn, rounds=5, iterations=1, warmup_rounds=1)
    assert diff <= 2e-2, f"{name}: optimized output differs from eager by {diff:.3g}"
