"""``inception-core tune``: time every shipped config of every distinct problem of the named networks and
write the fastest per problem to a tuned table (format: ``inception_core/tuned_tables.py``), which the
launch path then uses before its heuristic.

Problems come from ``inception_core.plan`` (each network's first step, forward, and backward with
``--mode train``). Each problem is rebuilt from the recorded argument shapes and strides with fresh
random data and timed per config (on CUDA ``triton.testing.do_bench``, median; on a CPU the
interpreter and a wall clock, for testing the path); the heuristic's config is always among those
timed, so the printed speed-up (heuristic time over tuned time, per kernel) is measured, not assumed.
On a CPU the device name is ``$INCEPTION_CORE_DEVICE_NAME`` or ``--device-name`` (a named fake device).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["add_tune_arguments", "main_tune", "tune_records"]


def _rebuild(arg, device):
    import torch

    from inception_core.launch import TensorSpec

    if not isinstance(arg, TensorSpec):
        return arg
    t = torch.empty_strided(arg.shape, arg.stride, dtype=arg.dtype, device=device)
    if t.dtype.is_floating_point:
        t.normal_()
    else:
        t.zero_()
    return t


def _candidates(record, args, gpu: bool):
    from inception_core.launch import _SPECS, _module, shipped_configs

    spec = _SPECS[record.kernel]
    autotuner = getattr(_module(spec), spec.autotuned)
    configs = shipped_configs(record.kernel, gpu=gpu)
    prune = getattr(autotuner, "early_config_prune", None)
    if prune:
        named = dict(zip(autotuner.arg_names, args, strict=False))
        configs = list(prune(configs, named, **record.meta))
    return configs


def _timer(device: torch.device, repeats: int):
    if device.type == "cuda":
        from triton.testing import do_bench

        return lambda fn: do_bench(fn, warmup=10, rep=40, return_mode="median")

    def wall(fn):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(times)

    return wall


def tune_records(records, *, device: torch.device, gpu: bool, max_configs: int | None = None,
                 deadline: float | None = None, repeats: int = 3, log=print, on_entry=None) -> list[dict[str, Any]]:
    """Time the configs of each distinct problem in ``records``; one table entry per problem tuned
    (problems left when ``deadline``, a ``time.monotonic()`` value, passes are skipped).
    ``on_entry(entries)`` is called after each problem (``tune`` rewrites its table then)."""
    from inception_core.plan import distinct_problems
    from inception_core.tuned_tables import config_dict

    timer = _timer(device, repeats)
    entries = []
    problems = distinct_problems(records)
    for i, rec in enumerate(problems):
        if deadline is not None and time.monotonic() > deadline:
            log(f"tune: time is up after {i} of {len(problems)} problems")
            break
        args = [_rebuild(a, device) for a in rec.args]
        configs = _candidates(rec, args, gpu)
        heuristic = {k: rec.constexprs[k] for k in configs[0].kwargs} if configs else {}
        first = [c for c in configs if c.kwargs == heuristic and c.num_warps == rec.num_warps]
        rest = [c for c in configs if c not in first]
        timed = first + (rest[: max(0, max_configs - len(first))] if max_configs else rest)
        results = []
        for c in timed:
            constexprs = {**rec.meta, **c.kwargs}
            grid = rec.grid_fn(constexprs) if callable(rec.grid_fn) else rec.grid

            def run(fn=rec.fn, args=args, c=c, constexprs=constexprs, grid=grid):
                fn[grid](*args, **constexprs, num_warps=c.num_warps, num_stages=c.num_stages)

            try:
                results.append((timer(run), c))
            except Exception as e:  # a config that fails to compile or launch here is not a candidate
                log(f"tune: {rec.kernel} {config_dict(c)} failed: {type(e).__name__}: {e}")
        if not results:
            continue
        best_ms, best = min(results, key=lambda r: r[0])
        heuristic_ms = next((ms for ms, c in results if c in first), math.nan)
        elem = next(a for a in rec.args if hasattr(a, "dtype"))
        entries.append({"kernel": rec.kernel, "shape": rec.problem, "dtype": str(elem.dtype), "flags": rec.meta,
                        "config": config_dict(best), "tuned_ms": round(best_ms, 5),
                        "heuristic_ms": round(heuristic_ms, 5), "configs_timed": len(results)})
        if on_entry is not None:
            on_entry(entries)
    return entries


def speedups(entries) -> dict[str, dict[str, float]]:
    """Per kernel: problems, geometric-mean and total-time speed-up of tuned over heuristic."""
    out: dict[str, dict[str, float]] = {}
    for kernel in sorted({e["kernel"] for e in entries}):
        es = [e for e in entries if e["kernel"] == kernel and e["heuristic_ms"] == e["heuristic_ms"]]
        if not es:
            continue
        ratios = [e["heuristic_ms"] / e["tuned_ms"] for e in es if e["tuned_ms"] > 0]
        out[kernel] = {"problems": len(es),
                       "geomean": math.exp(sum(map(math.log, ratios)) / len(ratios)) if ratios else math.nan,
                       "total": sum(e["heuristic_ms"] for e in es) / max(1e-12, sum(e["tuned_ms"] for e in es))}
    return out


def add_tune_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", default="inception_v3", help="comma list of networks (default inception_v3)")
    p.add_argument("--dtype", choices=["fp32", "fp16", "bf16"], default="bf16")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--image-size", type=int, default=None, help="input size (default: each network's native)")
    p.add_argument("--mode", choices=["infer", "train"], default="infer",
                   help="infer: forward kernels; train: training forward and backward kernels too")
    p.add_argument("--output", default=None,
                   help="table file or folder (default: inception_core/tuned/, the shipped tables)")
    p.add_argument("--device", default=None, help="cuda[:i] (default), or cpu with the interpreter (testing)")
    p.add_argument("--device-name", default=None, help="name the table is for (default: the device's name)")
    p.add_argument("--max-problems", type=int, default=None, help="tune only the first N distinct problems")
    p.add_argument("--max-configs", type=int, default=None, help="time at most N configs per problem")
    p.add_argument("--time-limit", type=float, default=None, help="stop starting problems after S seconds")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per config on a CPU (median; CUDA: do_bench)")


def main_tune(args: argparse.Namespace) -> int:
    import torch

    from inception_core import tuned_tables
    from inception_core.plan import distinct_problems, plan_launches

    parser = args.parser
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available on this machine")
    if device.type == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
        parser.error("--device cpu: tuning on a CPU runs the Triton interpreter: set TRITON_INTERPRET=1")
    if args.batch_size < 1:
        parser.error(f"--batch-size: expected >= 1, got {args.batch_size}")
    from inception_core.models import list_models

    models = [m for m in args.models.split(",") if m]
    unknown = sorted(set(models) - set(list_models()))
    if unknown or not models:
        parser.error(f"--models: unknown {unknown or 'empty list'}; expected some of {', '.join(list_models())}")
    if args.device_name:
        os.environ[tuned_tables.DEVICE_NAME_ENV] = args.device_name
    name = tuned_tables.device_name(device)
    start = time.monotonic()
    records = plan_launches(models, dtype=args.dtype, batch_size=args.batch_size, mode=args.mode, device=device,
                            image_size=args.image_size, gpu=True, tables=False)
    problems = distinct_problems(records)
    if args.max_problems is not None:
        problems = problems[: args.max_problems]
    print(f"tune: {name}: {len(problems)} problems from {len(records)} launches of {', '.join(models)} "
          f"({args.mode}, {args.dtype}, batch {args.batch_size})", flush=True)
    deadline = start + args.time_limit if args.time_limit else None
    target = Path(args.output) if args.output else tuned_tables.SHIPPED_DIR
    entries = tune_records(problems, device=device, gpu=True, max_configs=args.max_configs,
                           deadline=deadline, repeats=max(1, args.repeats),
                           on_entry=lambda es: tuned_tables.write_table(target, name, es))  # kept if killed
    path = tuned_tables.write_table(target, name, entries)
    for kernel, s in speedups(entries).items():
        print(f"  {kernel:18s} {s['problems']:4d} problems  tuned vs heuristic: x{s['geomean']:.3f} geomean, "
              f"x{s['total']:.3f} total time")
    print(f"tune: {len(entries)} entries in {path} ({time.monotonic() - start:.1f} s)")
    return 0 if entries else 1


if __name__ == "__main__":  # python -m inception_core.tune: the same as `inception-core tune`
    from inception_core.cli import main

    sys.exit(main(["tune", *sys.argv[1:]]))
