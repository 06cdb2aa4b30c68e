"""The providers of a network benchmark (ours, the reference eager, the reference compiled) and the run
over them."""

from __future__ import annotations

import contextlib
import copy
import importlib
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inception_core import backends
from inception_core.bench.flops import derived_metrics, model_flops
from inception_core.bench.references import NUM_CLASSES, ModelPair
from inception_core.bench.results import Result
from inception_core.bench.timing import ratio_summary, time_interleaved
from inception_core.testing import rel_err

DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
MODES: tuple[str, ...] = ("infer", "train")
PROVIDERS: tuple[str, ...] = ("inception_core", "eager", "fx_fused", "compiled")
# the providers ours is compared with, in the order of the table's "vs" columns
REFERENCE_PROVIDERS: tuple[str, ...] = ("eager", "fx_fused", "compiled")
AUX_WEIGHT = 0.3  # loss = CE(logits) + AUX_WEIGHT * sum(CE(aux logits)), as torchvision's recipe


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
            inference, with its BatchNorm folds frozen by ``freeze_folding``; in training the fused
            training ops, or on the torch backend torch's own conv and BatchNorm modules behind the fused
            layers).
        ``eager``: the reference network as its package runs it.
        ``fx_fused``: inference only: the reference after ``torch.fx.experimental.optimization.fuse``
            (BatchNorm folded into the convolutions, a traced copy), channels_last like every provider:
            the strongest CPU reference stock torch gives in two lines.
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
        if provider == "fx_fused" and mode != "infer":
            raise ValueError("provider: fx_fused folds BatchNorm into the convolutions, which is inference only")
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
            if mode == "infer":  # BatchNorm folded once, as fx_fused and compiled(freezing) fold theirs
                from inception_core.nn import freeze_folding

                freeze_folding(model)
        elif provider == "fx_fused":
            from torch.fx.experimental.optimization import fuse

            model = fuse(model.eval())
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



def provider_note(provider: str, *, mode: str, backend: str, compile_mode: str | None) -> str:
    """The table's note for a provider: what it runs (our resolved backend, fx fusion, compile mode)."""
    if provider == "inception_core":
        return f"{backend} backend" + (", folds frozen" if mode == "infer" else "")
    if provider == "fx_fused":
        return "torch.fx fuse (BN folded), channels_last"
    if provider == "compiled":
        return f"mode={compile_mode or 'default'}" + (", freezing" if mode == "infer" else "")
    return ""


def run_network(pair: ModelPair, *, providers: Sequence[str] = PROVIDERS, device, dtype: torch.dtype, mode: str,
                batch: int, backend: str = "auto", compile_mode: str | None = None, warmup: int = 2,
                rounds: int = 10, on_provider: Callable[[str, str], None] | None = None) -> list[Result]:
    """Benchmark one network with each provider, timed in interleaved rounds (each round calls every
    provider once, in a rotating order: ``time_interleaved``); one Result per provider (a provider that
    fails gets a Result without timing whose ``note`` says why, and the others still run).

    ``speedups[ref]`` of each Result: the per-round ratios ``time(ref) / time(this)`` over the rounds
    (median, quartiles, min, max, rounds), for every other provider ``ref`` of ``REFERENCE_PROVIDERS``.
    ``max_rel_diff``: max |out - truth| / max |truth| of the (first) logits, truth = the reference in full
    fp32. ``on_provider(network, provider)`` is called before each provider is built (progress bars).
    """
    dname = dtype_name(dtype)
    truth = truth_output(pair, device=device, mode=mode, batch=batch)
    flops = model_flops(pair, mode)
    results: dict[str, Result] = {}
    runners: dict[str, ModelRunner] = {}
    notes: dict[str, str] = {}
    diffs: dict[str, float] = {}
    for provider in providers:
        if on_provider is not None:
            on_provider(pair.name, provider)
        notes[provider] = provider_note(provider, mode=mode, backend=ours_backend(device, backend),
                                        compile_mode=compile_mode)
        try:
            runner = ModelRunner(pair, provider, device=device, dtype=dtype, mode=mode, batch=batch, backend=backend,
                                 compile_mode=compile_mode)
            diffs[provider] = rel_err(runner.output(), truth)
            runners[provider] = runner
        except Exception as exc:  # reported in the table, the other providers still run
            results[provider] = _failed(pair, provider, mode, dname, batch, exc)
            _release(device)
    broken: dict[str, Exception] = {}  # a provider failing mid-run is dropped; the others go on

    def guarded(provider: str, runner: ModelRunner) -> Callable[[], None]:
        def call() -> None:
            if provider not in broken:
                try:
                    runner()
                except Exception as exc:
                    broken[provider] = exc
        return call

    timings = time_interleaved({p: guarded(p, r) for p, r in runners.items()}, warmup=warmup, rounds=rounds,
                               device=device) if runners else {}
    for provider, exc in broken.items():
        results[provider] = _failed(pair, provider, mode, dname, batch, exc)
        del timings[provider]
    runners.clear()
    _release(device)
    for provider, timing in timings.items():
        metrics = derived_metrics(timing.median_s, device=device, dtype=dtype, flops=flops * batch, images=batch)
        speedups = {ref: ratio_summary(timings[ref].times_s, timing.times_s)
                    for ref in REFERENCE_PROVIDERS if ref in timings and ref != provider}
        results[provider] = Result("model", pair.name, provider, mode, dname, batch, timing.median_s, timing.iqr_s,
                                   timing.rounds, metrics["images_per_s"], metrics["tflops"], None,
                                   metrics["peak_fraction"], diffs[provider],
                                   group=f"{pair.input_size}x{pair.input_size}", note=notes[provider],
                                   times_s=timing.times_s, speedups=speedups)
    return [results[p] for p in providers if p in results]


def _failed(pair: ModelPair, provider: str, mode: str, dname: str, batch: int, exc: Exception) -> Result:
    msg = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
    return Result("model", pair.name, provider, mode, dname, batch, note=f"failed: {msg}")


def dtype_name(dtype: torch.dtype) -> str:
    return next(k for k, v in DTYPES.items() if v == dtype)
