"""pytest-benchmark suite of inception_core: ``pytest benchmarks/ --benchmark-only``.

Each case is one provider on one shape (ops: a layer of a real network; models: a whole network), warmed
up (autotuning, compilation, CUDA-graph recording) before its timed rounds, with ``group=`` per shape and
``extra_info`` holding the case, images/s, TFLOP/s from an explicit FLOP count, GB/s from the minimal memory
traffic, the fraction of the device's peak, and the output's max relative difference from a reference.

On a GPU: the real sizes (batch 256, native resolution). pytest-benchmark's rounds synchronise once per
call; the derived figures (``median_ms`` and everything computed from it) come from CUDA events
(``inception_core.bench.time_callable``), which do not pay that synchronisation.
On a CPU: small sizes, a few rounds. Triton kernels run there only through Triton's interpreter
(TRITON_INTERPRET=1, set below before the kernels are imported), on tiny shapes: that checks the provider
runs and computes the right thing; its timings mean nothing. CI runs the suite with ``--benchmark-disable``
(each case once): a correctness smoke test.
"""

from __future__ import annotations

import math
import os
import shlex
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import inception_core  # noqa: E402
from inception_core import backends, bench, kernels  # noqa: E402,F401  (kernels: decorated under the setting above)

ON_GPU = torch.cuda.is_available()
DEVICE = torch.device("cuda" if ON_GPU else "cpu")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("inception_core benchmarks")
    group.addoption("--bench-dtypes", default="fp32,fp16,bf16", help="comma list of fp32, fp16, bf16")
    group.addoption("--bench-models", default=",".join(bench.NETWORKS),
                    help="networks of bench_models.py (comma list; default: all six)")
    group.addoption("--bench-batch", type=int, default=None,
                    help="batch of every case (default: GPU 256, training 128; CPU ops 2, inference 1, training 2)")
    group.addoption("--bench-compile-mode", default=None,
                    help="torch.compile mode of the 'compiled' provider (default: max-autotune on CUDA, "
                         "'default' on CPU)")
    group.addoption("--bench-cpu-compile", action="store_true",
                    help="on a CPU, compile every network (20-60 s each); by default only GoogLeNet fp32 "
                         "inference is compiled there, as a smoke test of the provider")


@dataclass(frozen=True)
class BenchConfig:
    device: torch.device
    on_gpu: bool
    op_batch: int
    infer_batch: int
    train_batch: int
    rounds: int          # pytest-benchmark rounds
    warmup: int          # pytest-benchmark warm-up rounds (after the first, untimed call)
    event_rounds: int    # CUDA-event rounds behind the derived figures (GPU)
    compile_mode: str | None
    cpu_compile: bool

    @property
    def device_name(self) -> str:
        return bench.device_name(self.device)


@pytest.fixture(scope="session")
def cfg(request: pytest.FixtureRequest) -> BenchConfig:
    opt = request.config.getoption
    batch = opt("--bench-batch")
    mode = opt("--bench-compile-mode") or bench.default_compile_mode(DEVICE)
    if ON_GPU:
        torch.backends.cudnn.benchmark = True  # eager's best case for fixed shapes, as users run it
        return BenchConfig(DEVICE, True, batch or 256, batch or 256, batch or 128, rounds=20, warmup=3,
                           event_rounds=50, compile_mode=None if mode == "default" else mode, cpu_compile=False)
    return BenchConfig(DEVICE, False, batch or 2, batch or 1, max(2, batch or 2), rounds=3, warmup=1, event_rounds=0,
                       compile_mode=None if mode == "default" else mode, cpu_compile=opt("--bench-cpu-compile"))


def _comma_option(config: pytest.Config, name: str, allowed) -> list[str]:
    items = [v.strip() for v in config.getoption(name).split(",") if v.strip()]
    bad = [v for v in items if v not in allowed]
    if bad or not items:
        raise pytest.UsageError(f"{name}: expected a comma list of {', '.join(allowed)}; got {items}")
    return items


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "dtype_name" in metafunc.fixturenames:
        metafunc.parametrize("dtype_name", _comma_option(metafunc.config, "--bench-dtypes", bench.DTYPES))
    if "network" in metafunc.fixturenames:
        metafunc.parametrize("network", _comma_option(metafunc.config, "--bench-models", bench.NETWORKS))


def pytest_benchmark_update_json(config: pytest.Config, benchmarks, output_json: dict) -> None:
    """--benchmark-json files also carry inception_core's run metadata (device, versions, commit, command)."""
    command = shlex.join(["python", "-m", "pytest", *config.invocation_params.args])
    output_json["inception_core"] = bench.run_metadata(DEVICE, command=command, suite="benchmarks/")


@pytest.fixture(autouse=True)
def _seed_and_backend():
    torch.manual_seed(0)
    inception_core.set_backend("auto")
    yield
    inception_core.set_backend("auto")


def _check_error(err: float, bound: float, *, ours: bool, what: str) -> None:
    if ours:
        assert math.isfinite(err) and err <= bound, f"{what}: max rel diff {err:.2e} > {bound:.2e}"
    elif not (math.isfinite(err) and err <= bound):
        warnings.warn(f"{what}: the reference provider is off by {err:.2e} (bound {bound:.2e})", stacklevel=3)


@pytest.fixture
def check_error() -> Callable[..., None]:
    """``check_error(err, bound, *, ours, what)``: ours must stay within ``bound`` of the reference (an
    assertion: the suite is also a smoke test); a reference provider (eager, compiled) that does not
    gets a warning: a finding about the baseline, not a bug of ours."""
    return _check_error


@pytest.fixture
def require_provider(cfg: BenchConfig) -> Callable[[str], None]:
    """``require_provider(provider)``: skip the case, with the reason, when one of our backends cannot run
    on this device (eager and compiled always can)."""
    def require(provider: str) -> None:
        if provider in backends.AVAILABLE_BACKENDS and (reason := backends.backend_status(provider, cfg.device)):
            pytest.skip(f"{provider} backend unavailable here: {reason}")

    return require


@pytest.fixture
def measure(benchmark, cfg: BenchConfig) -> Callable[..., dict]:
    """``measure(fn, *, group, info, dtype, flops=None, nbytes=None, images=None, bound="compute",
    rounds=None, warmup=None, event_rounds=None)``: time ``fn`` (already called once by the caller) with
    pytest-benchmark, fill ``benchmark.extra_info`` and return it. ``rounds``, ``warmup`` and
    ``event_rounds`` override the configured counts (interpreted Triton, whole networks)."""

    def run(fn: Callable[[], object], *, group: str, info: dict, dtype: torch.dtype, flops: float | None = None,
            nbytes: float | None = None, images: int | None = None, bound: str = "compute",
            rounds: int | None = None, warmup: int | None = None, event_rounds: int | None = None) -> dict:
        benchmark.group = group
        extra = benchmark.extra_info
        extra.update(info)
        extra.update(device=cfg.device_name, dtype=bench.dtype_name(dtype), flops=flops, bytes=nbytes)
        if cfg.on_gpu:
            def target():
                fn()
                torch.cuda.synchronize()
        else:
            target = fn
        benchmark.pedantic(target, rounds=rounds or cfg.rounds, warmup_rounds=cfg.warmup if warmup is None else warmup,
                           iterations=1)
        if getattr(benchmark, "disabled", False) or benchmark.stats is None:
            extra["timing"] = "disabled"
            return dict(extra)
        if cfg.on_gpu:
            timing = bench.time_callable(fn, warmup=0, rounds=event_rounds or cfg.event_rounds, device=cfg.device)
            median, iqr, rounds, method = timing.median_s, timing.iqr_s, timing.rounds, timing.method
        else:
            stats = benchmark.stats.stats
            median, iqr, rounds, method = stats.median, stats.iqr, stats.rounds, "pytest-benchmark"
        extra.update(timing=method, iqr_ms=iqr * 1e3, rounds=rounds)
        extra.update(bench.derived_metrics(median, device=cfg.device, dtype=dtype, flops=flops, nbytes=nbytes,
                                           images=images, bound=bound))
        return dict(extra)

    return run


@pytest.fixture
def measure_interleaved(benchmark, cfg: BenchConfig) -> Callable[..., dict]:
    """``measure_interleaved(runners, *, group, info, dtype, flops=None, images=None, rounds=None, warmup=None)``:
    ``runners`` maps provider -> (callable already called once, its extra fields). pytest-benchmark times
    whole rounds, each calling every provider once in a rotating order (synchronised after each call on a
    GPU); ``extra_info["providers"]`` holds each provider's median, IQR and derived figures, and
    ``extra_info["speedups"]`` the per-round ratios of every reference provider against ``inception_core``."""

    def run(runners: dict, *, group: str, info: dict, dtype: torch.dtype, flops: float | None = None,
            images: int | None = None, rounds: int | None = None, warmup: int | None = None) -> dict:
        benchmark.group = group
        extra = benchmark.extra_info
        extra.update(info)
        extra.update(device=cfg.device_name, dtype=bench.dtype_name(dtype), flops=flops, interleaved=True)
        names = list(runners)
        times: dict[str, list[float]] = {name: [] for name in names}
        state = {"round": 0}

        def one_round():
            r = state["round"]
            state["round"] += 1
            for name in names[r % len(names):] + names[:r % len(names)]:
                t0 = time.perf_counter()
                runners[name][0]()
                bench.synchronize(cfg.device)
                times[name].append(time.perf_counter() - t0)

        warmup = cfg.warmup if warmup is None else warmup
        benchmark.pedantic(one_round, rounds=rounds or cfg.rounds, warmup_rounds=warmup, iterations=1)
        providers = {}
        for name in names:
            timed = times[name][len(times[name]) - (rounds or cfg.rounds):] if not getattr(
                benchmark, "disabled", False) else times[name]
            providers[name] = dict(runners[name][1])
            if timed:
                t = bench.Timing.from_times(timed, "perf_counter")
                providers[name].update(median_ms=t.median_s * 1e3, iqr_ms=t.iqr_s * 1e3, rounds=t.rounds,
                                       times_s=t.times_s)
                providers[name].update(bench.derived_metrics(t.median_s, device=cfg.device, dtype=dtype,
                                                             flops=flops, images=images))
        extra["providers"] = providers
        ours = providers.get("inception_core", {})
        extra["speedups"] = {ref: bench.ratio_summary(providers[ref]["times_s"], ours["times_s"])
                             for ref in bench.REFERENCE_PROVIDERS
                             if ref in providers and "times_s" in providers[ref] and "times_s" in ours}
        if getattr(benchmark, "disabled", False) or benchmark.stats is None:
            extra["timing"] = "disabled"
        return dict(extra)

    return run
