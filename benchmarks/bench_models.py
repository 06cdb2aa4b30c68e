"""The six networks, inference and a training step, at their native input sizes (on a CPU: the smallest
sizes their references accept).

Providers (``inception_core.bench.ModelRunner``; all hold the same random weights), timed in interleaved
rounds within one case per (network, mode, dtype): each round calls every provider once, in a rotating order,
so the per-round ratios hold on a machine whose speed drifts:
    inception_core  ``inception_core.convert(reference)`` on its backend (triton on CUDA, torch on a
                    CPU); training on the fused training ops (on the torch backend:
                    torch's own conv and BatchNorm modules behind the fused layers)
    eager           the reference implementation (torchvision / timm / pretrainedmodels / facenet-pytorch)
    fx_fused        inference: the reference after torch.fx.experimental.optimization.fuse (BN folded)
    compiled        the reference under torch.compile (max-autotune on CUDA), inference with freezing

Low precision through ``torch.autocast``. A training step: forward (aux heads included), CE + 0.3 x aux CE
on random labels, backward, SGD step. FLOPs: 2 x conv+linear MACs per image (inference), 6 x (training).
``max_rel_diff``: the logits of the first call against the reference in full fp32.
"""

from __future__ import annotations

import pytest
import torch

from inception_core import bench
from inception_core.shapes import NATIVE_INPUT
from inception_core.testing import rel_err

# fp32 on a GPU runs TF32 convolutions (torch's default), so its error is TF32's, measured as eager's
_TOL = {"fp32": 1e-4, "fp16": 1e-2, "bf16": 2e-2}


@pytest.fixture(scope="session")
def pairs(cfg):
    """(network, mode) -> ModelPair (or the reason it cannot be built), built once per session: at the native
    input size on a GPU, at the smallest size the reference accepts in that mode on a CPU."""
    cache: dict[tuple[str, int], bench.ModelPair | str] = {}

    def get(name: str, mode: str) -> bench.ModelPair:
        size = NATIVE_INPUT[name] if cfg.on_gpu else bench.SMALLEST_INPUT[name][mode]
        key = (name, size)
        if key not in cache:
            try:
                cache[key] = bench.build_pair(name, input_size=size)
            except bench.ReferenceUnavailable as exc:
                cache[key] = str(exc)
        if isinstance(cache[key], str):
            pytest.skip(cache[key])
        return cache[key]

    return get


@pytest.fixture(scope="session")
def yardsticks(cfg):
    """(pair, mode, batch) -> the reference's logits in full fp32; (..., dtype) -> eager's error from them."""
    truths: dict[tuple, torch.Tensor] = {}
    eager_errors: dict[tuple, float] = {}

    def truth(pair: bench.ModelPair, mode: str, batch: int) -> torch.Tensor:
        key = (pair.name, mode, batch)
        if key not in truths:
            truths[key] = bench.truth_output(pair, device=cfg.device, mode=mode, batch=batch)
        return truths[key]

    def eager_error(pair: bench.ModelPair, mode: str, batch: int, dtype: torch.dtype) -> float:
        key = (pair.name, mode, batch, dtype)
        if key not in eager_errors:
            runner = bench.ModelRunner(pair, "eager", device=cfg.device, dtype=dtype, mode=mode, batch=batch)
            eager_errors[key] = rel_err(runner.output(), truth(pair, mode, batch))
            del runner
        return eager_errors[key]

    return truth, eager_error


def _cpu_skip(cfg, network: str, mode: str, dtype_name: str, provider: str) -> str | None:
    if cfg.on_gpu:
        return None
    if mode == "train" and dtype_name != "fp32":
        return (f"{dtype_name} training on a CPU: slow convolution backward kernels there (fp16 ~25x fp32); skipped to "
                "keep the CPU smoke run short, low-precision training runs on CUDA")
    if provider == "compiled" and not cfg.cpu_compile and (network, mode, dtype_name) != ("googlenet", "infer", "fp32"):
        return ("torch.compile of a whole network takes 20-60 s on a CPU: only GoogLeNet fp32 inference is "
                "compiled here by default (--bench-cpu-compile compiles every case)")
    return None


def _providers(mode: str) -> list[str]:
    return [p for p in bench.PROVIDERS if mode == "infer" or p != "fx_fused"]


@pytest.mark.parametrize("mode", bench.MODES)
def test_model(measure_interleaved, check_error, cfg, pairs, yardsticks, network: str, mode: str, dtype_name: str):
    """Every provider of one (network, mode, dtype), timed in interleaved rounds (each round calls each
    provider once): per-provider medians and per-round ratios in ``extra_info``."""
    pair = pairs(network, mode)
    truth, eager_error = yardsticks
    dtype = bench.DTYPES[dtype_name]
    batch = cfg.infer_batch if mode == "infer" else cfg.train_batch
    runners, skipped = {}, {}
    for provider in _providers(mode):
        if (reason := _cpu_skip(cfg, network, mode, dtype_name, provider)) is not None:
            skipped[provider] = reason
            continue
        runner = bench.ModelRunner(pair, provider, device=cfg.device, dtype=dtype, mode=mode, batch=batch,
                                   compile_mode=cfg.compile_mode)
        err = rel_err(runner.output(), truth(pair, mode, batch))  # the first call: compilation, autotuning
        tol = _TOL[dtype_name]
        if mode == "train" and not cfg.on_gpu:
            # CPU sizes leave 2x2-3x3 last grids: dozens of batch-statistics BatchNorms over a few values amplify
            # fp32 rounding (1e-3 between two correct implementations); exactness is tested in float64 in
            # tests/models/test_training.py, this is a smoke test
            tol = max(tol, 1e-2)
        bound = 2 * eager_error(pair, mode, batch, dtype) + tol
        check_error(err, bound, ours=provider == "inception_core", what=f"{network} {mode} {provider} {dtype_name}")
        note = bench.provider_note(provider, mode=mode, backend=runner.backend, compile_mode=cfg.compile_mode)
        runners[provider] = (runner, dict(max_rel_diff=err, note=note))
    if "inception_core" in skipped:
        pytest.skip(skipped["inception_core"])
    info = dict(kind="model", case=network, mode=mode, batch=batch, input=f"3x{pair.input_size}x{pair.input_size}",
                reference=pair.source, skipped=skipped)
    # a whole network at batch 256 takes tens to hundreds of ms per call: fewer rounds than the ops
    measure_interleaved(runners, group=f"{network} {mode} {dtype_name}", info=info, dtype=dtype,
                        flops=bench.model_flops(pair, mode) * batch, images=batch, rounds=10 if cfg.on_gpu else None,
                        warmup=2 if cfg.on_gpu else None)
