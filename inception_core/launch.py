"""The one launch path of every Triton kernel: which config a launch runs, and what the choice cost.

A launch of a kernel with a config list (conv forward, dgrad, wgrad, pooling forward) takes its
config, in this order, from:

1. ``config=`` (tests run every shipped config through it);
2. the choice this process already made for the same problem (shape, dtypes, flags);
3. the tuned table shipped for the device model (``inception_core/tuned/<device>.json``, written by
   ``inception-core tune``; format in ``inception_core/tuned_tables.py``);
4. autotuning, only when asked (``INCEPTION_CORE_AUTOTUNE=1``), through the persistent disk cache
   (``inception_core/autotune_cache.py``);
5. the shape-class heuristic (``inception_core/heuristics.py``): one compile per shape class.

Fixed-tile kernels (the BatchNorm kernels, pooling backward, the wgrad split sum) have one config; they
go through ``launch_fixed`` so that their compiles are counted too.

Counters (``inception_core.launch_stats()``): per kernel, launches, ``variants`` (distinct compile units
first launched in this process: each one a JIT compile, or a load from Triton's own cache),
``compile_s`` (wall seconds of those first launches, device synchronized), and where the configs came
from (``table_hits``, ``heuristic_hits``, ``fixed_hits``, ``explicit_hits``; ``tuned``/``disk_hits``
when autotuning; ``memory_hits`` for problems already resolved here).

``recording()`` collects the launches a piece of code would make (kernel, config, constexprs, argument
types) without running any kernel: ``inception-core warmup`` and ``tune`` plan from it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from inception_core import autotune_cache as _ac
from inception_core import heuristics

__all__ = ["AUTOTUNE_ENV", "LaunchRecord", "TensorSpec", "autotune_requested", "kernel_names", "launch",
           "launch_fixed", "launch_stats", "recording", "reset_launch_stats", "shipped_configs"]

AUTOTUNE_ENV = "INCEPTION_CORE_AUTOTUNE"


@dataclasses.dataclass(frozen=True)
class _Spec:
    module: str            # inception_core.kernels.<module>
    raw: str               # the @triton.jit kernel
    autotuned: str         # its triton.autotune wrapper (its configs: kernels/configs.py, under this kernel's name)
    heuristic: Callable[..., Any]
    elem_arg: str          # tensor argument whose element size the config rules use


_SPECS = {
    "conv_bn_act_fwd": _Spec("conv_bn_act", "_conv_bn_act_fwd_kernel", "conv_bn_act_fwd_kernel",
                             heuristics.conv_fwd, "x_ptr"),
    "conv_bwd_dx": _Spec("conv_bwd", "_conv_bwd_dx_kernel", "conv_bwd_dx_kernel",
                         heuristics.conv_bwd_dx, "dy_ptr"),
    "conv_bwd_dw": _Spec("conv_bwd", "_conv_bwd_dw_kernel", "conv_bwd_dw_kernel",
                         heuristics.conv_bwd_dw, "dy_ptr"),
    "pool2d_fwd": _Spec("pool2d", "_pool2d_fwd_kernel", "pool2d_fwd_kernel",
                        heuristics.pool2d_fwd, "x_ptr"),
}


def kernel_names() -> tuple[str, ...]:
    """The kernels with a config list (the ones a table, the heuristic or autotuning chooses for)."""
    return tuple(_SPECS)


def _module(spec: _Spec):
    import importlib

    return importlib.import_module(f"inception_core.kernels.{spec.module}")


def shipped_configs(kernel: str, *, gpu: bool = False) -> list:
    """The configs ``kernel`` may launch in this process (``gpu``: the GPU list even under the interpreter)."""
    from inception_core.kernels import configs

    if gpu:
        return list(configs.GPU_CONFIGS[kernel])
    return list(getattr(_module(_SPECS[kernel]), _SPECS[kernel].autotuned).configs)


def _all_shipped(kernel: str) -> list:
    from inception_core.kernels import configs

    return list(configs.GPU_CONFIGS[kernel]) + shipped_configs(kernel)


def autotune_requested() -> bool:
    return os.environ.get(AUTOTUNE_ENV, "0").strip().lower() in ("1", "true", "yes", "on")


def launch_stats() -> dict[str, Any]:
    """Compiles and config sources since the process started (same object as ``autotune_stats()``):
    totals, ``per_kernel``, the autotune cache dir."""
    return _ac.autotune_stats()


def reset_launch_stats(*, forget: bool = False) -> None:
    """Zero the counters; ``forget`` also drops this process's config choices and the record of which
    variants were launched (so the next launch of each counts as a first one again)."""
    _ac.reset_autotune_stats(forget=forget)
    if forget:
        _CHOSEN.clear()
        _SEEN.clear()


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """A tensor argument as the compiler sees it: dtype, and shape/strides to rebuild one for timing."""

    shape: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: torch.dtype
    aligned: bool  # data pointer a multiple of 16 bytes (Triton specializes on it)


@dataclasses.dataclass(frozen=True)
class LaunchRecord:
    """One launch as ``recording()`` saw it (no kernel ran)."""

    kernel: str                 # launch-path name ("conv_bn_act_fwd", "bn_bwd_reduce", ...)
    fn: Any                     # the raw @triton.jit kernel
    args: tuple                 # run-time arguments: TensorSpec for tensors, the value otherwise
    constexprs: dict[str, Any]  # every constexpr, config block sizes included
    num_warps: int
    num_stages: int | None      # None: Triton's default
    grid: tuple[int, ...]
    source: str                 # "table", "heuristic", "fixed", "explicit"
    problem: dict[str, Any]     # autotune key values ({} for fixed kernels)
    meta: dict[str, Any]        # the launcher's constexprs, without the config's
    variant: tuple              # the compile unit: equal for two launches that share one compilation
    grid_fn: Any = None         # the launcher's grid (a function of the constexprs, or a tuple)


_RECORDING: list[tuple[list, bool, bool]] = []  # (records, gpu plan, use tables)
_CHOSEN: dict[tuple, tuple[Any, str]] = {}
_SEEN: set[tuple] = set()


@contextlib.contextmanager
def recording(*, gpu: bool = False, tables: bool = True) -> Iterator[list[LaunchRecord]]:
    """Collect launches instead of running them (outputs stay unwritten: shapes only, values garbage).

    ``gpu``: plan for a GPU while running on a CPU (under the interpreter): configs come from the GPU
    config lists and the interpreter's bf16 workaround flag (``DOT_FP32``) is off. Configs are chosen as
    a launch would choose them (table, heuristic), never by autotuning; ``tables=False``: heuristic only.
    """
    records: list[LaunchRecord] = []
    _RECORDING.append((records, gpu, tables))
    try:
        yield records
    finally:
        _RECORDING.pop()


def _arg_spec(v: Any) -> Any:
    if isinstance(v, torch.Tensor):
        return TensorSpec(tuple(v.shape), tuple(v.stride()), v.dtype, v.data_ptr() % 16 == 0)
    return v


def _specialization(v: Any) -> Any:
    """What of an argument Triton's launcher specializes on (dtype and 16-byte alignment of pointers;
    i32/i64, ==1 and multiple-of-16 of integers)."""
    if isinstance(v, torch.Tensor):
        return (str(v.dtype), v.data_ptr() % 16 == 0)
    if isinstance(v, bool):
        return ("u1", v)
    if isinstance(v, int):
        return ("i32" if -2**31 <= v < 2**31 else "i64", v == 1, v % 16 == 0)
    if isinstance(v, float):
        return ("fp32",)
    return (type(v).__name__,)


def _variant_key(fn, constexprs, options, args, device) -> tuple:
    return (getattr(fn, "__name__", str(fn)), id(fn), tuple(sorted(constexprs.items())),
            tuple(sorted(options.items())), tuple(_specialization(a) for a in args), str(device))


def _stats(kernel: str) -> _ac.AutotuneStats:
    return _ac._STATS.setdefault(kernel, _ac.AutotuneStats())


def _device_name(device: torch.device) -> str:
    from inception_core.tuned_tables import device_name

    return device_name(device)


def _sms(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).multi_processor_count
    return heuristics.DEFAULT_SMS


def _run(kernel: str, fn, grid, args, constexprs, options, device, stats, *, source, problem, meta) -> None:
    grid_t = grid(constexprs) if callable(grid) else tuple(grid)
    key = _variant_key(fn, constexprs, options, args, device)
    if _RECORDING:
        records = _RECORDING[-1][0]
        records.append(LaunchRecord(kernel, fn, tuple(_arg_spec(a) for a in args), dict(constexprs),
                                    options["num_warps"], options.get("num_stages"), tuple(grid_t), source,
                                    dict(problem), dict(meta), key, grid))
        return
    first = key not in _SEEN
    cuda = device.type == "cuda" and not torch.cuda.is_current_stream_capturing()
    if first and cuda:
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn[grid_t](*args, **constexprs, **options)
    if first:
        if cuda:
            torch.cuda.synchronize(device)
        stats.variants += 1
        stats.compile_s += time.perf_counter() - start
        _SEEN.add(key)


def launch(kernel: str, grid: Callable[[dict], tuple] | tuple, args: Sequence[Any], meta: dict[str, Any],
           device: torch.device, *, config=None):
    """Launch ``kernel`` (a name of ``kernel_names()``) with the config chosen as the module docstring says.

    Args:
        grid: grid tuple, or a function of the launch constexprs (config block sizes included).
        args: positional run-time arguments of the raw kernel.
        meta: the launcher's constexprs (flags, geometry), without the config's block sizes.
        device: the tensors' device.
        config: a ``triton.Config`` to run as given.

    Returns:
        The ``triton.Config`` launched.
    """
    spec = _SPECS[kernel]
    mod = _module(spec)
    raw = getattr(mod, spec.raw)
    autotuner = getattr(mod, spec.autotuned)
    stats = _stats(kernel) if not _RECORDING else _ac.AutotuneStats()  # a plan counts nothing, keeps nothing
    stats.launches += 1
    named = {**dict(zip(autotuner.arg_names, args, strict=False)), **meta}
    problem = {k: named[k] for k in autotuner.keys}
    source = "explicit"
    plan_gpu = bool(_RECORDING) and _RECORDING[-1][1]
    if plan_gpu and "DOT_FP32" in meta:
        meta = {**meta, "DOT_FP32": False}
    if config is not None:
        stats.explicit_hits += 1
    else:
        dtypes = tuple(str(a.dtype) for a in args if isinstance(a, torch.Tensor))
        fast = (kernel, str(device), plan_gpu, tuple(problem.values()), dtypes, tuple(sorted(meta.items())))
        hit = _CHOSEN.get(fast) if not _RECORDING else None
        if hit is not None:
            config, source = hit
            stats.memory_hits += 1
        else:
            config, source = _choose(kernel, spec, autotuner, grid, args, meta, problem, named, device, plan_gpu)
            if source == "autotune":  # launch_autotuned ran the kernel itself
                _SEEN.add(_variant_key(raw, {**meta, **config.kwargs}, _options(config), args, device))
                stats.variants += 1
                return config
            if not _RECORDING:
                _CHOSEN[fast] = (config, source)
            setattr(stats, f"{source}_hits", getattr(stats, f"{source}_hits") + 1)
    _run(kernel, raw, grid, args, {**meta, **config.kwargs}, _options(config), device, stats, source=source,
         problem=problem, meta=meta)
    return config


def _options(config) -> dict[str, Any]:
    return {"num_warps": config.num_warps, "num_stages": config.num_stages}


def _choose(kernel, spec, autotuner, grid, args, meta, problem, named, device, plan_gpu):
    from inception_core.tuned_tables import table_config

    dtype = str(named[spec.elem_arg].dtype)
    use_tables = not _RECORDING or _RECORDING[-1][2]
    chosen = table_config(_device_name(device), kernel, problem, dtype, meta, _all_shipped(kernel)) if use_tables \
        else None
    if chosen is not None:
        return chosen, "table"
    candidates = shipped_configs(kernel, gpu=plan_gpu)
    if autotune_requested() and not _RECORDING and len(candidates) > 1:
        return _ac.launch_autotuned(kernel, autotuner, grid, args, meta, device), "autotune"
    elem_size = named[spec.elem_arg].element_size()
    config = spec.heuristic(candidates, **problem, elem_size=elem_size, stats=bool(meta.get("STATS", False)),
                            residual=bool(meta.get("HAS_RESIDUAL", False)), sms=_sms(device))
    return config, "heuristic"


def launch_fixed(kernel: str, fn, grid: tuple, args: Sequence[Any], meta: dict[str, Any], device: torch.device,
                 *, num_warps: int = 4, num_stages: int | None = None, explicit: bool = False) -> None:
    """Launch a kernel with one fixed config (its tiles in ``meta``), counting it like the others;
    ``explicit``: the caller chose the tiles (a test's ``config=``). A GPU plan made under the interpreter
    records the GPU tiles (``kernels.configs.fixed_gpu_tiles``), not the interpreter's (the grid stays
    the caller's)."""
    if _RECORDING and _RECORDING[-1][1] and not explicit:
        from inception_core.kernels import INTERPRETED
        from inception_core.kernels.configs import fixed_gpu_tiles

        if INTERPRETED:
            meta = {**meta, **fixed_gpu_tiles(kernel)}
    stats = _stats(kernel) if not _RECORDING else _ac.AutotuneStats()
    stats.launches += 1
    if explicit:
        stats.explicit_hits += 1
    else:
        stats.fixed_hits += 1
    options = {"num_warps": num_warps} if num_stages is None else {"num_warps": num_warps, "num_stages": num_stages}
    _run(kernel, fn, grid, args, dict(meta), options, device, stats, source="explicit" if explicit else "fixed",
         problem={}, meta=meta)
