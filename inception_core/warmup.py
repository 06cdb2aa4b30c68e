"""``inception-core warmup``: compile ahead, in a process pool, exactly the Triton variants the named
networks' first steps will launch, into Triton's own cache (where the launch looks them up).

The variants come from ``inception_core.plan`` (each network's forward, and backward with ``--mode
train``, recorded without running a kernel). Each is turned into a ``triton.compile`` request with the
signature and specialization Triton's launcher derives from the same arguments (pointer dtypes and
16-byte alignment; integers equal to 1 as constants, multiples of 16 as aligned; i32 or i64) and
compiled for the target (``--target sm_90``, or the local GPU's) by worker processes started without
the interpreter, so a machine without a GPU can compile for one. A compile whose cache entry (the
compiled kernel's hash, a folder of Triton's cache) existed before is counted as a cache hit.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

__all__ = ["add_warmup_arguments", "compile_all", "compile_requests", "main_warmup"]


def compile_requests(records, arch: int) -> list[dict[str, Any]]:
    """One compile request per distinct variant of ``records`` (``LaunchRecord`` s)."""
    from inception_core.aot import as_jit_function, launch_signature
    from inception_core.plan import distinct_variants

    out = []
    for rec in distinct_variants(records):
        fn = as_jit_function(rec.fn)
        signature, constexprs, aligned = launch_signature(fn, rec.args, rec.constexprs)
        out.append({"kernel": rec.kernel, "module": fn.fn.__module__, "qualname": fn.fn.__qualname__,
                    "signature": signature, "constexprs": constexprs, "aligned": aligned, "arch": arch,
                    "num_warps": rec.num_warps, "num_stages": rec.num_stages if rec.num_stages is not None else 3})
    return out


def _init_worker() -> None:
    os.environ.pop("TRITON_INTERPRET", None)


def _triton_cache_dir() -> str:
    try:
        from triton import knobs

        d = knobs.cache.dir
    except (ImportError, AttributeError):
        d = None
    return d or os.environ.get("TRITON_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".triton", "cache")


def _compile_one(request: dict[str, Any]) -> tuple[str, float, str | None, bool]:
    """``triton.compile`` of one request into Triton's cache (no resource analysis: see inception_core.aot).
    Returns (kernel, seconds, error, hit); a hit: the compiled kernel's cache entry existed before."""
    import importlib

    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from inception_core.aot import as_jit_function, full_signature

    kernel = request["kernel"]
    fn = importlib.import_module(request["module"])
    for part in request["qualname"].split("."):
        fn = getattr(fn, part)
    cache = _triton_cache_dir()
    before = set(os.listdir(cache)) if os.path.isdir(cache) else set()
    start = time.perf_counter()
    try:
        fn = as_jit_function(fn)
        sig = full_signature(fn, request["signature"], request["constexprs"])
        attrs = {(fn.arg_names.index(n),): [["tt.divisibility", 16]] for n in request["aligned"]}
        src = ASTSource(fn=fn, signature=sig, constexprs=dict(request["constexprs"]), attrs=attrs)
        compiled = triton.compile(src, target=GPUTarget("cuda", request["arch"], 32),
                                  options={"num_warps": request["num_warps"], "num_stages": request["num_stages"]})
    except Exception as e:  # reported per variant; the others still compile
        return kernel, time.perf_counter() - start, f"{type(e).__name__}: {str(e).splitlines()[0][:300]}", False
    names = {getattr(compiled, "hash", None)}
    try:  # Triton names the cache folder by the base32 form of the kernel's hash
        from triton.runtime.cache import _base32

        names.add(_base32(compiled.hash))
    except (ImportError, AttributeError):
        pass
    return kernel, time.perf_counter() - start, None, bool(names & before)


def compile_all(requests, jobs: int, log=print) -> dict[str, Any]:
    """Compile ``requests`` in ``jobs`` worker processes; per kernel: variants, seconds, hits, errors."""
    import multiprocessing

    per: dict[str, dict[str, Any]] = {}
    start = time.perf_counter()
    saved = os.environ.pop("TRITON_INTERPRET", None)  # the spawned workers must compile, not interpret
    try:
        with ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_init_worker) as pool:
            futures = [pool.submit(_compile_one, r) for r in requests]
            if saved is not None:
                os.environ["TRITON_INTERPRET"] = saved
                saved = None
            for f in as_completed(futures):
                kernel, seconds, error, hit = f.result()
                k = per.setdefault(kernel, {"variants": 0, "seconds": 0.0, "hits": 0, "errors": 0})
                k["variants"] += 1
                k["seconds"] += seconds
                k["hits"] += hit
                if error:
                    k["errors"] += 1
                    log(f"warmup: {kernel}: {error}")
    finally:
        if saved is not None:
            os.environ["TRITON_INTERPRET"] = saved
    total = {"variants": sum(k["variants"] for k in per.values()), "hits": sum(k["hits"] for k in per.values()),
             "errors": sum(k["errors"] for k in per.values()), "compile_s": sum(k["seconds"] for k in per.values()),
             "wall_s": time.perf_counter() - start, "per_kernel": per}
    return total


def add_warmup_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", default="inception_v3", help="comma list of networks (default inception_v3)")
    p.add_argument("--dtype", default="bf16", help="comma list of fp32, fp16, bf16 (default bf16)")
    p.add_argument("--batch-size", default="256", help="comma list of batch sizes (default 256)")
    p.add_argument("--image-size", type=int, default=None, help="input size (default: each network's native)")
    p.add_argument("--mode", default="infer", help="comma list of infer, train (default infer)")
    p.add_argument("--target", default=None, help="sm_80 or sm_90 (default: the local GPU's; required without one)")
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: the CPU count)")
    p.add_argument("--list", action="store_true", help="print the variants and compile nothing")


def main_warmup(args: argparse.Namespace) -> int:
    import torch

    parser = args.parser
    if not torch.cuda.is_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")  # plan on the CPU (before the kernels are imported)
    from inception_core.models import list_models
    from inception_core.plan import DTYPES, distinct_variants, plan_launches

    models = [m for m in args.models.split(",") if m]
    unknown = sorted(set(models) - set(list_models()))
    if unknown or not models:
        parser.error(f"--models: unknown {unknown or 'empty list'}; expected some of {', '.join(list_models())}")
    dtypes = [d for d in args.dtype.split(",") if d]
    if not dtypes or any(d not in DTYPES for d in dtypes):
        parser.error(f"--dtype: expected a comma list of {', '.join(DTYPES)}, got {args.dtype!r}")
    modes = [m for m in args.mode.split(",") if m]
    if not modes or any(m not in ("infer", "train") for m in modes):
        parser.error(f"--mode: expected a comma list of infer, train, got {args.mode!r}")
    try:
        batches = [int(b) for b in args.batch_size.split(",") if b]
    except ValueError:
        batches = []
    if not batches or min(batches) < 1:
        parser.error(f"--batch-size: expected a comma list of integers >= 1, got {args.batch_size!r}")
    if args.target:
        if args.target not in ("sm_80", "sm_90"):
            parser.error(f"--target: expected sm_80 or sm_90, got {args.target!r}")
        arch = int(args.target[3:])
    elif torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability()
        arch = major * 10 + minor
    else:
        parser.error("--target: required on a machine without a CUDA device (sm_80 or sm_90)")
    on_gpu = torch.cuda.is_available()
    device = torch.device("cuda" if on_gpu else "cpu")
    start = time.perf_counter()
    records = []
    for dtype in dtypes:
        for mode in modes:
            for batch in batches:
                records += plan_launches(models, dtype=dtype, batch_size=batch, mode=mode, device=device,
                                         image_size=args.image_size, gpu=not on_gpu)
    plan_s = time.perf_counter() - start
    requests = compile_requests(records, arch)
    print(f"warmup: {len(records)} launches, {len(distinct_variants(records))} variants of "
          f"{', '.join(models)} ({'/'.join(modes)}, {'/'.join(dtypes)}, batch {'/'.join(map(str, batches))}) "
          f"for sm_{arch}; planned in {plan_s:.1f} s", flush=True)
    if args.list:
        for r in requests:
            print(f"  {r['kernel']:18s} warps={r['num_warps']} stages={r['num_stages']} "
                  f"{ {k: v for k, v in r['constexprs'].items() if k.startswith('BLOCK')} }")
        return 0
    result = compile_all(requests, args.jobs or os.cpu_count() or 1)
    for kernel, k in sorted(result["per_kernel"].items()):
        print(f"  {kernel:18s} {k['variants']:4d} variants  {k['seconds']:7.1f} s  {k['hits']:4d} cache hits"
              + (f"  {k['errors']} errors" if k["errors"] else ""))
    print(f"warmup: {result['variants']} variants, {result['hits']} Triton cache hits, {result['errors']} errors; "
          f"{result['compile_s']:.1f} s of compiling in {result['wall_s']:.1f} s on {args.jobs or os.cpu_count()} "
          "processes", flush=True)
    return 1 if result["errors"] else 0


if __name__ == "__main__":  # python -m inception_core.warmup: the same as `inception-core warmup`
    from inception_core.cli import main

    sys.exit(main(["warmup", *sys.argv[1:]]))
