"""Benchmark core shared by ``inception-core bench`` and the pytest-benchmark suite in ``benchmarks/``.

What is here:
    * the reference networks (torchvision / timm / pretrainedmodels / facenet-pytorch) with random weights
      (``randomize_for_equivalence``) and ours built from them by ``inception_core.convert``: both hold
      the same weights, so their outputs can be compared;
    * ``ModelRunner``: one provider of one network ready to run one inference batch or one training
      step: ``inception_core`` (ours, on the configured backend), ``eager`` (the reference as its
      package runs it: stock cuDNN conv + BN + ReLU + cat) and ``compiled`` (the reference under
      ``torch.compile``; on CUDA ``mode="max-autotune"`` with ``freezing`` for inference);
    * ``time_callable``: CUDA events on a GPU, ``time.perf_counter`` + synchronize elsewhere; median
      and inter-quartile range;
    * FLOP counts (conv + linear multiply-accumulates from a forward-hook pass on the meta device, x2),
      the device peak table, and the derived figures (images/s, TFLOP/s, GB/s, fraction of peak);
    * result records with their JSON / Markdown writers and the bar chart (matplotlib, the ``plot``
      extra, imported only when a chart is asked for).

Everything runs channels_last. Low precision runs under ``torch.autocast`` (weights stay fp32) for every
provider, so ours and the references see the same inputs.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime
import importlib
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inception_core import backends
from inception_core.shapes import MODELS, NATIVE_INPUT
from inception_core.testing import randomize_for_equivalence, rel_err

__all__ = [
    "DTYPES",
    "FORMAT",
    "MODES",
    "NETWORKS",
    "PROVIDERS",
    "REFERENCES",
    "DevicePeak",
    "ModelPair",
    "ModelRunner",
    "ReferenceUnavailable",
    "Result",
    "Timing",
    "build_pair",
    "count_macs",
    "default_compile_mode",
    "derived_metrics",
    "describe_run",
    "device_name",
    "device_peak",
    "format_table",
    "git_commit",
    "markdown_report",
    "model_flops",
    "ours_backend",
    "peak_for_name",
    "peak_tflops",
    "plot_results",
    "read_json",
    "results_from_pytest_benchmark",
    "run_metadata",
    "run_network",
    "synchronize",
    "table_rows",
    "time_callable",
    "truth_output",
    "write_json",
    "write_markdown",
]

FORMAT = "inception_core.bench/1"  # meta["format"] of the JSON files written here
DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
MODES: tuple[str, ...] = ("infer", "train")
PROVIDERS: tuple[str, ...] = ("inception_core", "eager", "compiled")
NETWORKS: tuple[str, ...] = MODELS
AUX_WEIGHT = 0.3  # loss = CE(logits) + AUX_WEIGHT * sum(CE(aux logits)), as torchvision's recipe
NUM_CLASSES = 1000


# ----------------------------------------------------------------------------------------------------
# reference networks
# ----------------------------------------------------------------------------------------------------

class ReferenceUnavailable(RuntimeError):
    """The package that holds a network's reference implementation is not installed."""


@dataclass(frozen=True)
class _Reference:
    source: str    # what users know it as
    package: str   # import name
    install: str   # how to get it
    build: Callable[[], nn.Module]


def _tv_googlenet() -> nn.Module:
    import torchvision

    return torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False)


def _pm_bninception() -> nn.Module:
    import pretrainedmodels

    return pretrainedmodels.bninception(num_classes=NUM_CLASSES, pretrained=None)


def _tv_inception_v3() -> nn.Module:
    import torchvision

    return torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)


def _timm(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import timm

        return timm.create_model(name)

    return build


def _facenet_inception_resnet_v1() -> nn.Module:
    import facenet_pytorch

    # the ImageNet-classifier configuration (inception_resnet_v1_imagenet): 1000 logits after the embedding
    return facenet_pytorch.InceptionResnetV1(pretrained=None, classify=True, num_classes=NUM_CLASSES)


_PIP_NO_DEPS = "pip install --no-deps {} (it pins an old torch; its code runs on this one)"
REFERENCES: dict[str, _Reference] = {
    "googlenet": _Reference("torchvision googlenet (aux heads)", "torchvision", "pip install torchvision",
                            _tv_googlenet),
    "bn_inception": _Reference("pretrainedmodels bninception", "pretrainedmodels",
                               _PIP_NO_DEPS.format("pretrainedmodels==0.7.4"), _pm_bninception),
    "inception_v3": _Reference("torchvision inception_v3 (aux head)", "torchvision", "pip install torchvision",
                               _tv_inception_v3),
    "inception_v4": _Reference("timm inception_v4", "timm", "pip install timm", _timm("inception_v4")),
    "inception_resnet_v1": _Reference("facenet-pytorch InceptionResnetV1 (1000 classes)", "facenet_pytorch",
                                      _PIP_NO_DEPS.format("facenet-pytorch==2.6.0"), _facenet_inception_resnet_v1),
    "inception_resnet_v2": _Reference("timm inception_resnet_v2", "timm", "pip install timm",
                                      _timm("inception_resnet_v2")),
}


@dataclass
class ModelPair:
    """A reference network (CPU, fp32, eval, random weights) and what is needed to benchmark it."""

    name: str
    reference: nn.Module
    input_size: int
    source: str
    _macs: dict = field(default_factory=dict, repr=False)

    def macs(self, training: bool = False) -> int:
        """Conv + linear multiply-accumulates per image of one forward pass (aux heads in training)."""
        if training not in self._macs:
            self._macs[training] = count_macs(self.reference, self.input_size, training=training)
        return self._macs[training]


def build_pair(name: str, *, seed: int = 1) -> ModelPair:
    """The reference network ``name`` with He-initialised weights and random BatchNorm statistics.

    Raises:
        ValueError: unknown network.
        ReferenceUnavailable: its reference package is not installed (the message says how to get it).
    """
    if name not in REFERENCES:
        raise ValueError(f"network: expected one of {list(NETWORKS)}, got {name!r}")
    spec = REFERENCES[name]
    torch.manual_seed(0)
    try:
        model = spec.build()
    except ImportError as exc:
        raise ReferenceUnavailable(f"{name}: its reference ({spec.source}) needs the package {spec.package!r}, "
                                   f"which cannot be imported ({exc}); {spec.install}") from exc
    randomize_for_equivalence(model.eval(), seed=seed)
    return ModelPair(name, model, NATIVE_INPUT[name], spec.source)


# ----------------------------------------------------------------------------------------------------
# FLOPs and device peaks
# ----------------------------------------------------------------------------------------------------

def count_macs(model: nn.Module, input_size: int, *, training: bool = False, in_chans: int = 3) -> int:
    """Conv2d + Linear multiply-accumulates per image of one forward pass at ``input_size`` (square).

    Counted by forward hooks on a copy of ``model`` on the meta device (no arithmetic runs), so it counts
    what the forward really calls: the auxiliary heads only in training mode. Pooling, BatchNorm,
    activations and additions are not counted (well under 1% of the total for these networks).
    """
    meta = copy.deepcopy(model).to("meta").train(training)
    total = 0

    def hook(module: nn.Module, inputs, output) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            total += output.numel() * (module.in_channels // module.groups) * kh * kw
        else:
            total += output.numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in meta.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    batch = 2  # training-mode BatchNorm1d (facenet's embedding) needs more than one sample
    try:
        with torch.no_grad():
            meta(torch.empty(batch, in_chans, input_size, input_size, device="meta"))
    finally:
        for h in handles:
            h.remove()
    return total // batch


def model_flops(pair: ModelPair, mode: str) -> float:
    """FLOPs per image: 2 x MACs for inference; a training step counts 3 x the forward (the forward,
    the input gradients and the weight gradients), so 6 x MACs."""
    return 2.0 * pair.macs(training=False) if mode == "infer" else 6.0 * pair.macs(training=True)


@dataclass(frozen=True)
class DevicePeak:
    """Dense peak throughput of a GPU (vendor specification, no sparsity) and its memory bandwidth."""

    name: str
    tflops: dict  # "bf16", "fp16", "tf32", "fp32" -> TFLOP/s
    gbps: float   # GB/s
    measured: str = ""  # what was measured on such a machine, for context


# Specification sheets (dense). The H100/H200 rows: measured on this project's machines, an
# 8192^3 bf16 matmul ran at 769-798 TFLOP/s (~80% of the 989 spec) and a device-to-device copy at about
# 3.0 TB/s (H100 80GB HBM3) and 4.3 TB/s (H200), counting bytes read and written.
_PEAKS: tuple[tuple[str, DevicePeak], ...] = (
    ("H200", DevicePeak("NVIDIA H200", {"bf16": 989.4, "fp16": 989.4, "tf32": 494.7, "fp32": 66.9}, 4800.0,
                        "bf16 matmul 769-798 TFLOP/s, copy 4.3 TB/s")),
    ("H100 PCIe", DevicePeak("NVIDIA H100 PCIe", {"bf16": 756.0, "fp16": 756.0, "tf32": 378.0, "fp32": 51.2},
                             2000.0)),
    ("H100", DevicePeak("NVIDIA H100 SXM", {"bf16": 989.4, "fp16": 989.4, "tf32": 494.7, "fp32": 66.9}, 3350.0,
                        "bf16 matmul 790-798 TFLOP/s, copy 3.0 TB/s")),
    ("A100", DevicePeak("NVIDIA A100", {"bf16": 312.0, "fp16": 312.0, "tf32": 156.0, "fp32": 19.5}, 2039.0)),
)


def device_name(device: torch.device | str) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"cpu ({name}, {torch.get_num_threads()} threads)"


def peak_for_name(name: str) -> DevicePeak | None:
    """The peak table row whose key is part of a device name such as "NVIDIA H100 80GB HBM3"."""
    return next((peak for key, peak in _PEAKS if key in name), None)


def device_peak(device: torch.device | str) -> DevicePeak | None:
    """The peak table row of a CUDA device, or None (CPUs and GPUs not in the table)."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    return peak_for_name(torch.cuda.get_device_name(device))


def peak_tflops(peak: DevicePeak | None, dtype: torch.dtype) -> float | None:
    """Peak TFLOP/s for a dtype; fp32 convolutions count against TF32 when cuDNN may use it (torch's
    default, which the Triton kernels follow)."""
    if peak is None:
        return None
    if dtype == torch.float32:
        return peak.tflops["tf32" if torch.backends.cudnn.allow_tf32 else "fp32"]
    return peak.tflops["bf16" if dtype == torch.bfloat16 else "fp16"]


def derived_metrics(median_s: float, *, device, dtype: torch.dtype, flops: float | None = None,
                    nbytes: float | None = None, images: int | None = None, bound: str = "compute") -> dict:
    """images/s, TFLOP/s, GB/s and the fraction of the device's peak for one timed call.

    Args:
        median_s: seconds per call.
        flops, nbytes: work and minimal memory traffic of one call (None: not reported).
        images: images per call.
        bound: "compute" (fraction of peak TFLOP/s) or "memory" (fraction of peak GB/s).
    """
    out: dict = {"median_ms": median_s * 1e3}
    if images:
        out["images_per_s"] = images / median_s
    if flops:
        out["tflops"] = flops / median_s / 1e12
    if nbytes:
        out["gbps"] = nbytes / median_s / 1e9
    peak = device_peak(device)
    frac = None
    if peak is not None:
        if bound == "memory" and nbytes:
            frac = out["gbps"] / peak.gbps
        elif bound == "compute" and flops:
            frac = out["tflops"] / peak_tflops(peak, dtype)
    out["peak_fraction"] = frac
    return out


# ----------------------------------------------------------------------------------------------------
# timing
# ----------------------------------------------------------------------------------------------------

def synchronize(device: torch.device | str | None = None) -> None:
    device = torch.device(device) if device is not None else None
    if (device is None or device.type == "cuda") and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize(device)


@dataclass
class Timing:
    """Seconds per call over the timed rounds."""

    median_s: float
    iqr_s: float     # inter-quartile range (q3 - q1); 0 for fewer than two rounds
    min_s: float
    rounds: int
    times_s: list[float]
    method: str      # "cuda_events" or "perf_counter"

    @classmethod
    def from_times(cls, times: Sequence[float], method: str) -> Timing:
        times = [float(t) for t in times]
        if len(times) >= 2:
            q1, _, q3 = statistics.quantiles(times, n=4, method="inclusive")
            iqr = q3 - q1
        else:
            iqr = 0.0
        return cls(statistics.median(times), iqr, min(times), len(times), times, method)


def time_callable(fn: Callable[[], object], warmup: int = 1, rounds: int = 5, *,
                  device: torch.device | str | None = None) -> Timing:
    """Time ``fn()``: ``warmup`` untimed calls (autotuning, compilation, CUDA-graph recording), then
    ``rounds`` timed calls.

    On a CUDA device each round is bracketed by CUDA events on the current stream (no host
    synchronisation between rounds; one at the end); elsewhere by ``time.perf_counter`` with a
    synchronize after the call. ``device`` defaults to CUDA when available.
    """
    if rounds < 1:
        raise ValueError(f"rounds: expected >= 1, got {rounds}")
    device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(rounds)]
        for start, end in events:
            start.record()
            fn()
            end.record()
        torch.cuda.synchronize(device)
        return Timing.from_times([s.elapsed_time(e) / 1e3 for s, e in events], "cuda_events")
    synchronize(device)
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - t0)
    return Timing.from_times(times, "perf_counter")


# ----------------------------------------------------------------------------------------------------
# providers
# ----------------------------------------------------------------------------------------------------

def ours_backend(device: torch.device | str, requested: str = "auto") -> str:
    """The inception_core backend a benchmark runs on: "auto" -> triton on a CUDA device that can run it,
    else torch (on a CPU always torch: Triton's interpreter checks kernels, it is not a benchmark)."""
    device = torch.device(device)
    requested = requested.lower()
    if requested not in ("auto", *backends.AVAILABLE_BACKENDS):
        raise ValueError(f"backend: expected one of {['auto', *backends.AVAILABLE_BACKENDS]}, got {requested!r}")
    if requested != "auto":
        return requested
    if device.type == "cuda" and backends.triton_status(device) is None:
        return "triton"
    return "torch"


def default_compile_mode(device: torch.device | str) -> str | None:
    """``max-autotune`` on CUDA; the default mode (None) elsewhere."""
    return "max-autotune" if torch.device(device).type == "cuda" else None


def _logits(out) -> tuple[Tensor, list[Tensor]]:
    """(main logits, aux logits) of a network's output: a tensor, or a tuple such as torchvision's
    ``InceptionOutputs(logits, aux_logits)`` / ``GoogLeNetOutputs(logits, aux2, aux1)``."""
    if isinstance(out, Tensor):
        return out, []
    return out[0], [o for o in out[1:] if isinstance(o, Tensor)]


class ModelRunner:
    """One provider of one network on ``device``, with its own copy of the pair's weights, ready to run
    one inference batch or one training step per call.

    Providers:
        ``inception_core``: ``inception_core.convert(reference)`` on ``backend`` (the fused path in
            inference; in training it runs the stock torch layers until the fused training kernels land).
        ``eager``: the reference network as its package runs it.
        ``compiled``: the reference under ``torch.compile(mode=compile_mode)``; inference with
            ``torch._inductor.config.freezing = True`` (weights folded as constants).

    A call returns the main logits (not synchronised). Training: forward (aux heads included), loss =
    CE + 0.3 x aux CE on fixed random labels, backward, SGD step (momentum 0.9; fp16 with a GradScaler,
    whose inf check synchronises once per step as in real fp16 training). Dropout layers are
    kept in eval mode in training so every provider computes the same function (they cost nothing
    measurable). Low precision runs under ``torch.autocast``; the weights stay fp32.
    """

    def __init__(self, pair: ModelPair, provider: str, *, device, dtype: torch.dtype, mode: str, batch: int,
                 backend: str = "auto", compile_mode: str | None = None, lr: float = 1e-3, seed: int = 0) -> None:
        if provider not in PROVIDERS:
            raise ValueError(f"provider: expected one of {list(PROVIDERS)}, got {provider!r}")
        if mode not in MODES:
            raise ValueError(f"mode: expected one of {list(MODES)}, got {mode!r}")
        if mode == "train" and batch < 2:
            raise ValueError(f"batch: training needs at least 2 images (BatchNorm statistics), got {batch}")
        self.pair, self.provider, self.mode, self.batch = pair, provider, mode, batch
        self.device = torch.device(device)
        self.dtype = dtype
        self.backend = ours_backend(self.device, backend) if provider == "inception_core" else None
        model = copy.deepcopy(pair.reference)
        if provider == "inception_core":
            from inception_core.convert import convert

            model = convert(model)
        model = model.to(self.device).to(memory_format=torch.channels_last).train(mode == "train")
        for m in model.modules():
            if isinstance(m, nn.Dropout):
                m.eval()
        self.model = model
        self.module: Callable = model
        self.compile_mode = None
        if provider == "compiled":
            importlib.import_module("torch._inductor.config")  # freezing is patched per call

            self.compile_mode = compile_mode
            torch._dynamo.reset()  # a fresh cache: earlier networks must not use up the recompile limit
            self.module = torch.compile(model, mode=compile_mode)
        gen = torch.Generator().manual_seed(seed)
        size = pair.input_size
        self.x = torch.randn(batch, 3, size, size, generator=gen).to(self.device)
        self.x = self.x.contiguous(memory_format=torch.channels_last)
        self.labels = torch.randint(0, NUM_CLASSES, (batch,), generator=gen).to(self.device)
        self.optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9) if mode == "train" else None
        # fp16 training scales the loss, as real fp16 training does (its inf check syncs once per step)
        self.scaler = torch.amp.GradScaler(self.device.type) if mode == "train" and dtype == torch.float16 else None

    def _context(self) -> contextlib.ExitStack:
        stack = contextlib.ExitStack()
        stack.enter_context(torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32))
        if self.backend is not None:
            stack.enter_context(backends.backend(self.backend))
        if self.provider == "compiled" and self.mode == "infer":
            stack.enter_context(torch._inductor.config.patch(freezing=True))
        return stack

    def __call__(self) -> Tensor:
        if self.provider == "compiled" and self.device.type == "cuda":
            torch.compiler.cudagraph_mark_step_begin()  # max-autotune records CUDA graphs: one step per call
        if self.mode == "infer":
            with torch.no_grad(), self._context():
                return _logits(self.module(self.x))[0]
        with self._context():
            logits, aux = _logits(self.module(self.x))
            loss = F.cross_entropy(logits.float(), self.labels)
            for a in aux:
                loss = loss + AUX_WEIGHT * F.cross_entropy(a.float(), self.labels)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return logits.detach()

    def output(self) -> Tensor:
        """One call's logits as a float32 copy (the first training step's logits come before its update)."""
        return self().float().clone()


def truth_output(pair: ModelPair, *, device, mode: str, batch: int, seed: int = 0) -> Tensor:
    """The reference's output in full fp32 (TF32 off) for the inputs every ModelRunner with this
    batch and seed uses: the yardstick of the "max rel diff" column."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        runner = ModelRunner(pair, "eager", device=device, dtype=torch.float32, mode=mode, batch=batch, seed=seed)
        out = runner.output()
        del runner
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
    _release(device)
    return out


def _release(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()


# ----------------------------------------------------------------------------------------------------
# results
# ----------------------------------------------------------------------------------------------------

@dataclass
class Result:
    """One benchmark case: a network (kind "model") or an op on one layer shape (kind "op")."""

    kind: str                 # "model" | "op"
    name: str                 # network, or the op case ("conv_bn_act 1x1 17x17 ...")
    provider: str
    mode: str                 # "infer" | "train" (ops: "fwd")
    dtype: str
    batch: int
    median_s: float | None = None
    iqr_s: float | None = None
    rounds: int = 0
    images_per_s: float | None = None
    tflops: float | None = None
    gbps: float | None = None
    peak_fraction: float | None = None
    max_rel_diff: float | None = None
    group: str = ""
    note: str = ""
    times_s: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.median_s is not None


def run_network(pair: ModelPair, *, providers: Sequence[str] = PROVIDERS, device, dtype: torch.dtype, mode: str,
                batch: int, backend: str = "auto", compile_mode: str | None = None, warmup: int = 2,
                rounds: int = 10, on_provider: Callable[[str, str], None] | None = None) -> list[Result]:
    """Benchmark one network with each provider; one Result per provider (a provider that fails gets a
    Result without timing whose ``note`` says why, and the others still run).

    ``max_rel_diff``: max |out - truth| / max |truth| of the (first) logits, truth = the reference in full
    fp32. ``on_provider(network, provider)`` is called before each provider starts (progress bars).
    """
    dtype_name = _dtype_name(dtype)
    truth = truth_output(pair, device=device, mode=mode, batch=batch)
    flops = model_flops(pair, mode)
    results = []
    for provider in providers:
        if on_provider is not None:
            on_provider(pair.name, provider)
        note = ""
        if provider == "inception_core":
            note = f"{ours_backend(device, backend)} backend"
            if mode == "train":
                note += "; training runs the stock torch layers (fused training kernels not yet in)"
        elif provider == "compiled":
            note = f"mode={compile_mode or 'default'}" + (", freezing" if mode == "infer" else "")
        runner = None
        try:
            runner = ModelRunner(pair, provider, device=device, dtype=dtype, mode=mode, batch=batch, backend=backend,
                                 compile_mode=compile_mode)
            diff = rel_err(runner.output(), truth)
            timing = time_callable(runner, warmup=warmup, rounds=rounds, device=device)
        except Exception as exc:  # reported in the table, the other providers still run
            msg = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
            results.append(Result("model", pair.name, provider, mode, dtype_name, batch, note=f"failed: {msg}"))
            continue
        finally:
            del runner
            _release(device)
        metrics = derived_metrics(timing.median_s, device=device, dtype=dtype, flops=flops * batch, images=batch)
        results.append(Result("model", pair.name, provider, mode, dtype_name, batch, timing.median_s, timing.iqr_s,
                              timing.rounds, metrics["images_per_s"], metrics["tflops"], None,
                              metrics["peak_fraction"], diff, group=f"{pair.input_size}x{pair.input_size}",
                              note=note, times_s=timing.times_s))
    return results


def _dtype_name(dtype: torch.dtype) -> str:
    return next(k for k, v in DTYPES.items() if v == dtype)


def git_commit(path: str | os.PathLike | None = None) -> str | None:
    """``git rev-parse HEAD`` of the checkout holding this package (plus "-dirty" when tracked files
    changed), or None outside a git checkout."""
    cwd = Path(path) if path is not None else Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10)
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _triton_version() -> str | None:
    if backends._triton_import_error() is not None:
        return None
    import triton

    return triton.__version__


def run_metadata(device, *, command: str | None = None, **extra) -> dict:
    """Device, versions, commit, the exact command line and the time of a run."""
    import inception_core

    device = torch.device(device)
    meta = {
        "format": FORMAT,
        "device": device_name(device),
        "device_type": device.type,
        "torch": torch.__version__,
        "triton": _triton_version(),
        "inception_core": inception_core.__version__,
        "python": platform.python_version(),
        "commit": git_commit(),
        "command": command if command is not None else shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if device.type == "cuda":
        meta.update(cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                    tf32=bool(torch.backends.cudnn.allow_tf32), cudnn_benchmark=bool(torch.backends.cudnn.benchmark))
    peak = device_peak(device)
    if peak is not None:
        meta["peak"] = dataclasses.asdict(peak)
    meta.update(extra)
    return meta


def write_json(path: str | os.PathLike, meta: dict, results: Iterable[Result]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"meta": meta, "results": [dataclasses.asdict(r) for r in results]}, f, indent=1)
        f.write("\n")


def read_json(path: str | os.PathLike) -> tuple[dict, list[Result]]:
    """(meta, results) of a file written by ``write_json``.

    Raises:
        ValueError: not such a file.
    """
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict) or data.get("meta", {}).get("format") != FORMAT:
        raise ValueError(f"{path}: not an inception_core benchmark result (meta.format != {FORMAT!r})")
    names = {f.name for f in dataclasses.fields(Result)}
    return data["meta"], [Result(**{k: v for k, v in r.items() if k in names}) for r in data["results"]]


def results_from_pytest_benchmark(path: str | os.PathLike) -> tuple[dict, list[Result]]:
    """(meta, results) from a ``pytest --benchmark-json`` file of ``benchmarks/`` (the cases keep their
    description in ``extra_info``; medians and IQRs come from pytest-benchmark's stats, or from CUDA
    events where the case recorded them)."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    commit = data.get("commit_info", {})
    meta = {"format": FORMAT, "device": None, "commit": commit.get("id"), "time": data.get("datetime")}
    meta.update(data.get("inception_core", {}))  # written by benchmarks/conftest.py
    meta.update(source="pytest-benchmark", pytest_benchmark=data.get("version"))
    results = []
    for b in data.get("benchmarks", []):
        info, stats = b.get("extra_info", {}), b.get("stats") or {}
        meta["device"] = meta["device"] or info.get("device")
        median = info.get("median_ms")
        median_s = median / 1e3 if median is not None else stats.get("median")
        iqr = info.get("iqr_ms")
        results.append(Result(
            kind=info.get("kind", "op"), name=info.get("case", b.get("name", "")), provider=info.get("provider", ""),
            mode=info.get("mode", ""), dtype=info.get("dtype", ""), batch=int(info.get("batch", 0)),
            median_s=median_s, iqr_s=iqr / 1e3 if iqr is not None else stats.get("iqr"),
            rounds=int(info.get("rounds", stats.get("rounds", 0))), images_per_s=info.get("images_per_s"),
            tflops=info.get("tflops"), gbps=info.get("gbps"), peak_fraction=info.get("peak_fraction"),
            max_rel_diff=info.get("max_rel_diff"), group=b.get("group") or "", note=info.get("note", "")))
    return meta, results


# ----------------------------------------------------------------------------------------------------
# tables and the chart
# ----------------------------------------------------------------------------------------------------

def _speedups(results: Sequence[Result]) -> dict[int, tuple[float | None, float | None]]:
    """id(result) -> (images/s relative to eager, relative to compiled) within its (name, mode, dtype)."""
    base: dict[tuple, dict[str, float]] = {}
    for r in results:
        if r.ok:
            base.setdefault((r.name, r.mode, r.dtype), {})[r.provider] = r.median_s
    out = {}
    for r in results:
        ref = base.get((r.name, r.mode, r.dtype), {})
        vs_e = ref["eager"] / r.median_s if r.ok and "eager" in ref else None
        vs_c = ref["compiled"] / r.median_s if r.ok and "compiled" in ref else None
        out[id(r)] = (vs_e, vs_c)
    return out


def _fmt(value: float | None, spec: str, empty: str = "-") -> str:
    if value is None:
        return empty
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return "0" if value == 0 else format(value, spec)


_NUMERIC = ("images/s", "vs eager", "vs compiled", "max rel diff")


def table_rows(results: Sequence[Result]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the model table: network, mode, dtype, provider, images/s, speed-ups over
    eager and compiled (ratios of medians), max rel diff against the fp32 reference, note."""
    header = ["network", "mode", "dtype", "provider", "images/s", "vs eager", "vs compiled", "max rel diff", "note"]
    ups = _speedups(results)
    rows = []
    for r in results:
        vs_e, vs_c = (f"{v:.2f}x" if v is not None else "-" for v in ups[id(r)])
        rows.append([r.name, r.mode, r.dtype, r.provider, _fmt(r.images_per_s, ",.1f"), vs_e, vs_c,
                     _fmt(r.max_rel_diff, ".1e"), r.note])
    return header, rows


def format_table(results: Sequence[Result], *, markdown: bool = False, compact: bool = True) -> str:
    """The model results as a fixed-width text table (or a Markdown table). ``compact``: the mode and
    dtype columns are left out where every row has the same value (the title says it)."""
    header, rows = table_rows(results)
    keep = [i for i, h in enumerate(header)
            if not compact or h not in ("mode", "dtype") or len({row[i] for row in rows}) > 1]
    header = [header[i] for i in keep]
    rows = [[row[i] for i in keep] for row in rows]
    if markdown:
        lines = ["| " + " | ".join(header) + " |",
                 "|" + "|".join("---:" if h in _NUMERIC else "---" for h in header) + "|"]
        lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(header)]
    widths[-1] = 0  # the note runs free

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if h in _NUMERIC else c.ljust(w)
                         for c, w, h in zip(cells, widths, header, strict=True)).rstrip()

    out = [line(header), "-" * max(len(line(header)), 100)]
    previous = None
    for row in rows:
        shown = list(row)
        if row[0] == previous:
            shown[0] = ""  # the network's name once per group of rows
        previous = row[0]
        out.append(line(shown))
    return "\n".join(out)


def describe_run(meta: dict) -> str:
    """One line: mode, dtype, batch, device."""
    parts = [meta.get("mode", ""), meta.get("dtype", ""), f"batch {meta['batch']}" if "batch" in meta else "",
             "channels_last", f"on {meta.get('device', '?')}"]
    return ", ".join(p for p in parts if p)


def markdown_report(meta: dict, results: Sequence[Result]) -> str:
    """A short Markdown file: what ran where (device, versions, commit, command) and the table."""
    models = [r for r in results if r.kind == "model"]
    ops = [r for r in results if r.kind != "model"]
    cli_run = "mode" in meta and "dtype" in meta  # a pytest-benchmark file mixes modes and dtypes
    title = "inception-core bench" if cli_run else "benchmarks/ (pytest-benchmark)"
    lines = [f"# {title}: {describe_run(meta)}", ""]
    for key in ("device", "torch", "triton", "cuda", "cudnn", "inception_core", "commit", "time", "backend",
                "compile", "tf32"):
        if meta.get(key) is not None:
            lines.append(f"- {key}: `{meta[key]}`")
    lines += [f"- command: `{meta.get('command', '')}`", ""]
    if models:
        lines += [format_table(models, markdown=True, compact=cli_run), ""]
        lines.append("images/s: batch / median time per call; speed-ups are ratios of medians; max rel diff: "
                     "max |logits - reference fp32| / max |reference fp32|.")
    if ops:
        lines += ["", "| case | provider | dtype | median ms | IQR ms | TFLOP/s | GB/s | of peak |",
                  "|---|---|---|---:|---:|---:|---:|---:|"]
        for r in ops:
            ms = [None if v is None else 1e3 * v for v in (r.median_s, r.iqr_s)]
            frac = None if r.peak_fraction is None else 100 * r.peak_fraction
            cells = [r.name, r.provider, r.dtype, _fmt(ms[0], ".3f"), _fmt(ms[1], ".3f"), _fmt(r.tflops, ".3g"),
                     _fmt(r.gbps, ".4g"), _fmt(frac, ".0f") + ("%" if frac is not None else "")]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_markdown(path: str | os.PathLike, meta: dict, results: Sequence[Result]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(markdown_report(meta, results), encoding="utf-8")


def plot_results(path: str | os.PathLike, meta: dict, results: Sequence[Result]) -> None:
    """A grouped bar chart (images/s per network, one bar per provider, speed-up over eager above
    ours) written as a PNG.

    Raises:
        ImportError: matplotlib is missing (the ``plot`` extra).
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError("the chart needs matplotlib: pip install 'inception_core[plot]' "
                          "(or pip install matplotlib)") from exc
    models = [r for r in results if r.kind == "model" and r.ok]
    names = list(dict.fromkeys(r.name for r in models))
    providers = [p for p in PROVIDERS if any(r.provider == p for r in models)]
    ups = _speedups(models)
    fig = Figure(figsize=(max(6.0, 1.6 * len(names) + 2), 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(providers))
    colours = {"inception_core": "#d62728", "eager": "#7f7f7f", "compiled": "#1f77b4"}
    for j, provider in enumerate(providers):
        xs, ys, labels = [], [], []
        for i, name in enumerate(names):
            r = next((r for r in models if r.name == name and r.provider == provider), None)
            if r is not None:
                xs.append(i + (j - (len(providers) - 1) / 2) * width)
                ys.append(r.images_per_s)
                labels.append(ups[id(r)][0])
        bars = ax.bar(xs, ys, width, label=provider, color=colours.get(provider))
        if provider == "inception_core":
            for bar, up in zip(bars, labels, strict=True):
                if up:
                    ax.annotate(f"{up:.2f}x", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                                ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right")
    ax.set_ylabel("images/s")
    ax.set_title(f"inception-core bench: {describe_run(meta)}", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=120)
