"""Ahead-of-time compilation of the Triton kernels for sm_80 / sm_90, with or without a GPU.

``triton.compile`` with an explicit ``GPUTarget`` runs the whole pipeline (TTIR -> TTGIR -> LLVM IR ->
PTX -> cubin through the ptxas that ships with Triton) without touching a CUDA driver, so a CPU
machine gets the same PTX, cubin and shared-memory figure a GPU would launch with. Registers come from
the cubin (``cuobjdump -res-usage``), spills from Triton's own ``ptxas -v`` log (on a Triton cache hit,
from ``ptxas -v`` re-run on the PTX with Triton's flags).

A *variant* is one compilation unit: a raw kernel, the argument types and specializations the launcher
produces at run time, its constexprs, and the launch options of one autotune config. Each kernel file
contributes a ``*_variants()`` generator here; ``all_variants()`` gathers them. Under
``TRITON_INTERPRET=1`` every ``@triton.jit`` function (Triton's own ``tl.cdiv``, ``tl.zeros`` too) is an
``InterpretedFunction`` the code generator cannot compile, so compilation then happens in a worker
process started without the interpreter, which imports the same kernel module (and hits the same
Triton cache entries as a GPU process would).

Run ``python -m inception_core.aot [--full]`` for a resource table of every variant.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ARCHS",
    "CompiledInfo",
    "KernelVariant",
    "MAX_REGS_PER_THREAD",
    "SMEM_PER_BLOCK_OPTIN",
    "SMEM_PER_SM",
    "all_variants",
    "as_jit_function",
    "source_sha256",
    "compile_kernel",
    "compile_variant",
    "config_label",
    "conv_bn_act_variants",
    "pool2d_variants",
    "training_variants",
]

ARCHS = (80, 90)

# Device limits (CUDA Programming Guide, "Technical Specifications per Compute Capability"; the Ampere
# and Hopper tuning guides). The SM's shared memory minus the 1 KiB CUDA reserves per block is what one
# block may opt into (cudaDevAttrMaxSharedMemoryPerBlockOptin, the figure Triton checks a kernel's
# dynamic shared memory against before loading it):
#   sm_80 (A100): 164 KiB per SM, 163 KiB = 166912 bytes per block.
#   sm_90 (H100): 228 KiB per SM, 227 KiB = 232448 bytes per block.
SMEM_PER_SM = {80: 164 * 1024, 90: 228 * 1024}
SMEM_PER_BLOCK_OPTIN = {80: 163 * 1024, 90: 227 * 1024}
MAX_REGS_PER_THREAD = 255

# Representative problem used to prune configs per geometry class: a 17x17x768 stage at batch 32, big
# enough that only shared memory and warp count (not tile-vs-problem size) decide (conv_fwd_fits).
_PRUNE_M, _PRUNE_C, _PRUNE_K = 32 * 17 * 17, 768, 768


@dataclass(frozen=True)
class KernelVariant:
    """One compilation unit of a kernel.

    ``signature`` holds the run-time arguments (name -> Triton type such as ``"*fp16"``, ``"i32"``,
    ``"fp32"``); arguments given in ``constexprs`` are compile-time values (this includes integer
    arguments equal to 1, which Triton's launcher specializes to constants, such as the channel stride
    of a channels_last tensor). ``aligned`` names the arguments the launcher would specialize as
    multiples of 16 (pointers: 16-byte aligned), which is what enables vector loads and cp.async.
    """

    kernel: str
    label: str
    fn: Any
    signature: dict[str, str]
    constexprs: dict[str, Any]
    num_warps: int
    num_stages: int
    aligned: tuple[str, ...] = ()
    uses_dot: bool = False  # tensor-core instructions are expected (tl.dot on fp16/bf16/tf32)
    tags: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CompiledInfo:
    """What one compilation produced for one architecture.

    ``shared`` is the dynamic shared memory Triton launches the kernel with (bytes, compiled metadata);
    ``static_shared`` is the cubin's static shared section (on sm_90 the 1 KiB reserved region, which the
    per-block opt-in limit already excludes). ``num_regs`` and ``local_bytes`` come from the cubin;
    ``spill_stores`` / ``spill_loads`` (bytes) and ``ptxas_regs`` from the ``ptxas -v`` log.
    """

    name: str
    arch: int
    num_warps: int
    num_stages: int
    ptx: str
    cubin_bytes: int
    shared: int
    static_shared: int
    num_regs: int
    local_bytes: int
    spill_stores: int
    spill_loads: int
    ptxas_regs: int  # registers in the ptxas -v log (equal to num_regs: the log is this cubin's)
    mma_instrs: tuple[str, ...]  # distinct tensor-core PTX instructions, e.g. "mma.sync.aligned.m16n8k16..."
    compile_s: float  # 0-ish on a Triton cache hit
    source_sha256: str  # of the kernel source compiled (see source_sha256())

    @property
    def has_cubin(self) -> bool:
        return self.cubin_bytes > 0

    @property
    def has_wgmma(self) -> bool:
        return any(i.startswith("wgmma") for i in self.mma_instrs)

    @property
    def has_mma_sync(self) -> bool:
        return any(i.startswith("mma.sync") for i in self.mma_instrs)

    @property
    def has_mma(self) -> bool:
        """Any tensor-core instruction (mma.sync on sm_80, wgmma or mma.sync on sm_90)."""
        return bool(self.mma_instrs)

    @property
    def spills(self) -> int:
        """Spilled bytes, stores plus loads (0 when the kernel fits in registers)."""
        return self.spill_stores + self.spill_loads

    @property
    def smem_limit(self) -> int:
        return SMEM_PER_BLOCK_OPTIN[self.arch]


# ----------------------------------------------------------------------------------------------------
# Compilation
# ----------------------------------------------------------------------------------------------------

def as_jit_function(fn):
    """The raw kernel behind ``fn``: unwraps ``triton.autotune`` / ``triton.heuristics`` wrappers."""
    from triton.runtime.interpreter import InterpretedFunction
    from triton.runtime.jit import JITFunction

    while not isinstance(fn, (JITFunction, InterpretedFunction)) and hasattr(fn, "fn"):
        fn = fn.fn
    if not isinstance(fn, (JITFunction, InterpretedFunction)):
        raise TypeError(f"expected a @triton.jit function, got {type(fn).__name__}")
    return fn


def source_sha256(fn) -> str:
    """SHA-256 of a kernel's source as Triton hashes it (from ``def``, dedented), for either kind."""
    import hashlib
    import inspect
    import textwrap

    fn = as_jit_function(fn)
    src = textwrap.dedent("".join(inspect.getsourcelines(fn.fn)[0]))
    src = src[re.search(r"^def\s+\w+\s*\(", src, re.MULTILINE).start():]
    return hashlib.sha256(src.encode()).hexdigest()


def _full_signature(fn, signature: dict[str, str], constexprs: dict[str, Any]) -> dict[str, str]:
    sig = {}
    for name in fn.arg_names:
        if name in constexprs:
            sig[name] = "constexpr"
        elif name in signature and signature[name] != "constexpr":
            sig[name] = signature[name]
        else:
            raise ValueError(f"{fn.__name__}: argument {name!r} has neither a type nor a constexpr value")
    unknown = (set(signature) | set(constexprs)) - set(fn.arg_names)
    if unknown:
        raise ValueError(f"{fn.__name__}: unknown arguments {sorted(unknown)}")
    return sig


def compile_kernel(fn, *, signature: dict[str, str], constexprs: dict[str, Any], arch: int, num_warps: int,
                   num_stages: int, aligned: Iterable[str] = ()) -> CompiledInfo:
    """Compile ``fn`` for ``sm_<arch>`` (no GPU needed) and collect its resource usage.

    Under the interpreter (``TRITON_INTERPRET=1`` when triton.language was imported) every
    ``@triton.jit`` function, Triton's own ``tl.cdiv`` / ``tl.zeros`` included, is an
    ``InterpretedFunction`` that the code generator cannot compile; the kernel is then compiled by a
    worker process started without the interpreter, which imports the kernel's module afresh (the same
    source file: ``CompiledInfo.source_sha256`` records the source it compiled).

    Args:
        fn: the raw ``@triton.jit`` kernel (``JITFunction``, ``InterpretedFunction`` or an autotuned
            wrapper, whose ``.fn`` is used); it must be a module-level function.
        signature: run-time argument name -> Triton type (``"*fp16"``, ``"*bf16"``, ``"*fp32"``, ``"i32"``,
            ``"i64"``, ``"fp32"``, ``"u1"``). Arguments named in ``constexprs`` may be left out.
        constexprs: argument name -> compile-time value (``tl.constexpr`` parameters, and integer
            arguments the launcher specializes because they equal 1).
        arch: compute capability as an int (80, 90).
        num_warps, num_stages: the launch options of the config.
        aligned: arguments specialized as multiples of 16 (Triton's ``tt.divisibility = 16``).

    Returns:
        CompiledInfo with the PTX, shared memory, registers, spills and tensor-core instructions.
    """
    from triton.runtime.jit import JITFunction

    fn = as_jit_function(fn)
    request = dict(signature=dict(signature), constexprs=dict(constexprs), arch=arch, num_warps=num_warps,
                   num_stages=num_stages, aligned=list(aligned))
    if isinstance(fn, JITFunction):
        return _compile_here(fn, **request)
    return _worker().compile(fn.fn.__module__, fn.fn.__qualname__, request)


def _compile_here(fn, *, signature, constexprs, arch, num_warps, num_stages, aligned) -> CompiledInfo:
    import triton
    from triton import knobs
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    sig = _full_signature(fn, signature, constexprs)
    for name in aligned:
        if sig.get(name, "constexpr") == "constexpr":
            raise ValueError(f"aligned: {name!r} is not a run-time argument")
    attrs = {(fn.arg_names.index(name),): [["tt.divisibility", 16]] for name in aligned}
    src = ASTSource(fn=fn, signature=sig, constexprs=dict(constexprs), attrs=attrs)
    t0 = time.perf_counter()
    # Triton prints its own `ptxas -v` log when asked (not part of the cache key): read the spills from
    # it; on a cache hit there is no ptxas run, so ptxas is re-run on the PTX with Triton's flags.
    log = io.StringIO()
    with knobs.nvidia.scope(), contextlib.redirect_stdout(log):
        knobs.nvidia.dump_ptxas_log = True
        compiled = triton.compile(src, target=GPUTarget("cuda", arch, 32),
                                  options={"num_warps": num_warps, "num_stages": num_stages})
    elapsed = time.perf_counter() - t0
    ptx = compiled.asm["ptx"]
    cubin = compiled.asm.get("cubin", b"")
    usage = _cubin_resource_usage(cubin, compiled.metadata.name) if cubin else {}
    stats = _parse_ptxas_log(log.getvalue()) or _ptxas_stats(ptx, arch, compiled.metadata)
    return CompiledInfo(
        name=compiled.metadata.name, arch=arch, num_warps=num_warps, num_stages=num_stages, ptx=ptx,
        cubin_bytes=len(cubin), shared=int(compiled.metadata.shared),
        static_shared=usage.get("SHARED", 0), num_regs=usage.get("REG", stats["regs"]),
        local_bytes=usage.get("LOCAL", 0), spill_stores=stats["spill_stores"], spill_loads=stats["spill_loads"],
        ptxas_regs=stats["regs"], mma_instrs=tensor_core_instructions(ptx), compile_s=elapsed,
        source_sha256=source_sha256(fn))


class _Worker:
    """A child Python without the interpreter, compiling requests sent as JSON lines on its stdin."""

    def __init__(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
        self.pid = os.getpid()
        self.proc = subprocess.Popen([sys.executable, "-c", "from inception_core.aot import _serve; _serve()"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)

    def compile(self, module: str, qualname: str, request: dict) -> CompiledInfo:
        self.proc.stdin.write(json.dumps(dict(request, module=module, qualname=qualname)) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the compile worker exited (code {self.proc.wait()})")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"compiling {qualname} in the worker failed:\n{reply['error']}")
        reply["mma_instrs"] = tuple(reply["mma_instrs"])
        return CompiledInfo(**reply)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait()


_WORKERS: list[_Worker] = []


def _worker() -> _Worker:
    if not _WORKERS or _WORKERS[0].pid != os.getpid() or _WORKERS[0].proc.poll() is not None:
        _WORKERS[:] = [_Worker()]  # (a forked process starts its own)
        atexit.register(_WORKERS[0].close)
    return _WORKERS[0]


def _serve() -> None:
    """Worker loop: one JSON request per stdin line, one JSON CompiledInfo (or error) per stdout line."""
    import importlib
    import traceback

    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # whatever Triton or ptxas print goes to stderr, not into the replies
    sys.stdout = sys.stderr
    for line in sys.stdin:
        request = json.loads(line)
        try:
            fn = importlib.import_module(request.pop("module"))
            for part in request.pop("qualname").split("."):
                fn = getattr(fn, part)
            reply = dataclasses.asdict(_compile_here(as_jit_function(fn), **request))
        except Exception:
            reply = {"error": traceback.format_exc()}
        out.write(json.dumps(reply) + "\n")
        out.flush()


def compile_variant(variant: KernelVariant, arch: int) -> CompiledInfo:
    return compile_kernel(variant.fn, signature=variant.signature, constexprs=variant.constexprs, arch=arch,
                          num_warps=variant.num_warps, num_stages=variant.num_stages, aligned=variant.aligned)


_MMA_RE = re.compile(r"^\s*((?:wgmma\.mma_async|mma\.sync)\.[\w.]+)", re.MULTILINE)


def tensor_core_instructions(ptx: str) -> tuple[str, ...]:
    """Distinct ``mma.sync`` / ``wgmma.mma_async`` instructions in a PTX text, sorted."""
    return tuple(sorted(set(_MMA_RE.findall(ptx))))


def _cubin_resource_usage(cubin: bytes, name: str) -> dict[str, int]:
    """REG / SHARED / LOCAL / STACK of the kernel in a cubin (cuobjdump, no driver needed)."""
    from triton import knobs

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "kernel.cubin"
        path.write_bytes(cubin)
        out = subprocess.run([knobs.nvidia.cuobjdump.path, "-res-usage", str(path)], check=True,
                             capture_output=True, text=True).stdout
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == f"Function {name}:" and i + 1 < len(lines):
            return {k: int(v) for k, v in re.findall(r"(REG|SHARED|LOCAL|STACK):(\d+)", lines[i + 1])}
    raise RuntimeError(f"cuobjdump found no function {name!r}:\n{out}")


def _ptxas_stats(ptx: str, arch: int, metadata) -> dict[str, int]:
    """Registers and spill bytes from ``ptxas -v`` run with the flags Triton's make_cubin uses."""
    from triton.backends.nvidia.compiler import get_ptxas, sm_arch_from_capability

    cmd = [get_ptxas(arch).path, "-lineinfo", "-v", "--regAllocOptLevel=2"]
    if not metadata.enable_fp_fusion:
        cmd.append("--fmad=false")
    if metadata.ptx_options:
        cmd += metadata.ptx_options.split(" ")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "kernel.ptx"
        src.write_text(ptx)
        cmd += [f"--gpu-name={sm_arch_from_capability(arch)}", str(src), "-o", str(Path(tmp) / "kernel.o")]
        log = subprocess.run(cmd, check=True, capture_output=True, text=True).stderr
    stats = _parse_ptxas_log(log)
    if stats is None:
        raise RuntimeError(f"unexpected ptxas -v output:\n{log}")
    return stats


def _parse_ptxas_log(log: str) -> dict[str, int] | None:
    spill = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", log)
    regs = re.search(r"Used (\d+) registers", log)
    if spill is None or regs is None:
        return None
    return {"regs": int(regs.group(1)), "spill_stores": int(spill.group(1)), "spill_loads": int(spill.group(2))}


# ----------------------------------------------------------------------------------------------------
# Variants
# ----------------------------------------------------------------------------------------------------

_DTYPES = {"fp32": 4, "fp16": 2, "bf16": 2}


def config_label(config) -> str:
    kw = config.kwargs
    tile = "x".join(str(kw[k]) for k in kw if k.startswith("BLOCK_"))
    return f"{tile}-w{config.num_warps}s{config.num_stages}"


# kernel geometry class -> (R, S, (STRIDE_H, STRIDE_W), (PAD_H, PAD_W))
CONV_GEOMETRIES = {
    "1x1": (1, 1, (1, 1), (0, 0)),
    "3x3s2": (3, 3, (2, 2), (0, 0)),   # stride-2 'valid' reductions
    "1x7": (1, 7, (1, 1), (0, 3)),     # factorized 7x7, 17x17 stages
    "7x1": (7, 1, (1, 1), (3, 0)),
}
_CONV_TENSORS = {"x": "nchw", "w": "kcrs", "r": "nchw", "y": "nchw"}


def _conv_variant(fn, config, dtype: str, geometry: str, *, residual: bool, precision: str, int64: bool,
                  layout: str, fits: bool) -> KernelVariant:
    """The compilation unit the launcher would produce for these choices.

    layout "nhwc": channels_last tensors, C and K multiples of 16 (every Inception layer but the RGB
    stem): channel strides are 1 (constexpr), the other strides, C, K and the pointers are aligned.
    layout "nchw": the stem as torch hands it over: contiguous NCHW x (and residual) and KCRS weight with
    C = 3, so their width strides are 1 and nothing else of theirs is aligned; y is channels_last as the
    op allocates it, K a multiple of 16.
    """
    r, s, stride, pad = CONV_GEOMETRIES[geometry]
    ptr = "*" + dtype
    signature = {"x_ptr": ptr, "w_ptr": ptr, "scale_ptr": "*fp32", "shift_ptr": "*fp32", "res_ptr": ptr,
                 "y_ptr": ptr, "stat_sum_ptr": "*fp32", "stat_m2_ptr": "*fp32", "res_scale": "fp32"}
    signature.update({n: "i32" for n in ("N", "C", "H", "W", "K", "OH", "OW")})
    constexprs: dict[str, Any] = {}
    aligned = ["x_ptr", "w_ptr", "scale_ptr", "shift_ptr", "res_ptr", "y_ptr", "K"]
    for t, dims in _CONV_TENSORS.items():
        channels_last = layout == "nhwc" or t == "y"
        for i, d in enumerate(dims):
            name = f"stride_{t}{d}"
            unit_stride = i == 1 if channels_last else i == 3
            if t == "r" and not residual:
                signature[name] = "i32"  # the launcher passes zeros
                aligned.append(name)
            elif unit_stride:
                constexprs[name] = 1
            else:
                signature[name] = "i32"
                if channels_last:
                    aligned.append(name)
    if layout == "nhwc":
        aligned.append("C")
    constexprs.update(
        R=r, S=s, STRIDE_H=stride[0], STRIDE_W=stride[1], PAD_H=pad[0], PAD_W=pad[1],
        HAS_SCALE=True, HAS_SHIFT=True, HAS_RESIDUAL=residual, ACT_RELU=True, STATS=False,
        INPUT_PRECISION=precision,
        DOT_FP32=False, ACC_FP64=False, USE_INT64=int64, **config.kwargs)
    cfg = config_label(config)
    parts = [cfg, dtype, geometry + ("+res" if residual else "")]
    if dtype == "fp32" and precision != "tf32":
        parts.append(precision)
    if int64:
        parts.append("int64")
    if layout != "nhwc":
        parts.append(layout)
    return KernelVariant(
        kernel="conv_bn_act", label="conv_bn_act/" + "/".join(parts), fn=fn, signature=signature,
        constexprs=constexprs, num_warps=config.num_warps, num_stages=config.num_stages,
        aligned=tuple(aligned), uses_dot=precision != "ieee" or dtype != "fp32",
        tags=dict(config=cfg, dtype=dtype, geometry=geometry, residual=residual, precision=precision,
                  int64=int64, layout=layout, fits=fits))


def conv_bn_act_variants(full: bool = True, include_rejected: bool = False) -> Iterator[KernelVariant]:
    """Compilation units of ``_conv_bn_act_fwd_kernel`` over its GPU autotune configs.

    Every config of ``GPU_CONFIGS["conv_bn_act_fwd"]`` (even under the interpreter) x fp32 / fp16 / bf16 x
    the geometry classes it can be chosen for (``conv_fwd_fits``: 8-warp configs only for 1x1, shared-memory budget),
    with ReLU, folded BN, and the launcher's precision (fp32: "tf32", fp16 / bf16: "ieee", which the
    dot ignores for 16-bit operands). Extras per dtype: one ``USE_INT64`` unit and one NCHW / unaligned
    (stem-like) unit, and for fp32 two "ieee" units.

    Args:
        full: every geometry class with and without residual. False gives the CI set: each config on
            1x1 with residual (without, for a config the residual rule of ``conv_fwd_fits`` rejects) and on
            one spatial class without (cycling 3x3s2, 1x7, 7x1), plus the extras.
        include_rejected: also yield (tags["fits"] False) the units conv_fwd_fits prunes, to see what they
            would compile to.
    """
    from inception_core import heuristics
    from inception_core.kernels import configs
    from inception_core.kernels import conv_bn_act as kmod

    def fits(config, geometry, elem_size, residual=False):
        r, s = CONV_GEOMETRIES[geometry][:2]
        return configs.conv_fwd_fits(config, M=_PRUNE_M, C=_PRUNE_C, K=_PRUNE_K, R=r, S=s, elem_size=elem_size,
                                residual=residual)

    fn = kmod._conv_bn_act_fwd_kernel
    spatial = [g for g in CONV_GEOMETRIES if g != "1x1"]
    for dtype, elem_size in _DTYPES.items():
        precision = "tf32" if dtype == "fp32" else "ieee"
        for ci, config in enumerate(configs.GPU_CONFIGS["conv_bn_act_fwd"]):
            if full:
                units = [(g, res) for g in CONV_GEOMETRIES for res in (False, True)]
            else:
                units = [("1x1", fits(config, "1x1", elem_size, True)), (spatial[ci % len(spatial)], False)]
            for geometry, residual in units:
                ok = fits(config, geometry, elem_size, residual)
                if ok or include_rejected:
                    yield _conv_variant(fn, config, dtype, geometry, residual=residual, precision=precision,
                                        int64=False, layout="nhwc", fits=ok)
        # The extras use a config every geometry may pick, preferring a 64-channel-wide tile.
        usable = [c for c in configs.GPU_CONFIGS["conv_bn_act_fwd"] if fits(c, "3x3s2", elem_size, True)]
        extra = next((c for c in usable if c.kwargs["BLOCK_N"] == 64), usable[0])
        yield _conv_variant(fn, extra, dtype, "3x3s2", residual=True, precision=precision, int64=True,
                            layout="nhwc", fits=True)
        # the RGB stem (C = 3): no config's channel block fits, so the launch takes what the heuristic does
        stem = heuristics.conv_fwd(configs.GPU_CONFIGS["conv_bn_act_fwd"], N=32, C=3, K=32, OH=149, OW=149, R=3, S=3,
                                   elem_size=elem_size, stats=False)
        yield _conv_variant(fn, stem, dtype, "3x3s2", residual=False, precision=precision, int64=False,
                            layout="nchw", fits=True)
        if dtype == "fp32":
            for geometry in ("1x1", "3x3s2"):
                yield _conv_variant(fn, extra, dtype, geometry, residual=False, precision="ieee", int64=False,
                                    layout="nhwc", fits=True)


def pool2d_variants(full: bool = True) -> Iterator[KernelVariant]:
    """Compilation units of ``_pool2d_fwd_kernel`` (kernels/pool2d.py).

    Every config of ``GPU_CONFIGS["pool2d_fwd"]`` x fp32 / fp16 / bf16 x {3x3 stride-2 max pool (valid), 3x3
    stride-1 pad-1 average pool counting the padding (torchvision's Inception)}, channels_last with C a
    multiple of 16. ``full`` adds the average pool without counting the padding and an int64 unit per
    dtype; without it each config gets one of the two pools (alternating).
    """
    from inception_core.kernels import configs
    from inception_core.kernels import pool2d as kmod
    fn = kmod._pool2d_fwd_kernel
    pools = [("max3x3s2", 3, (2, 2), (0, 0), True, False), ("avg3x3p1", 3, (1, 1), (1, 1), False, True)]
    if full:
        pools.append(("avg3x3p1-excl", 3, (1, 1), (1, 1), False, False))
    for dtype in _DTYPES:
        ptr = "*" + dtype
        for ci, config in enumerate(configs.GPU_CONFIGS["pool2d_fwd"]):
            for name, k, stride, pad, is_max, include_pad in pools if full else [pools[ci % 2]]:
                for int64 in (False, True) if full and ci == 0 else (False,):
                    signature = {"x_ptr": ptr, "y_ptr": ptr}
                    signature.update({n: "i32" for n in ("N", "C", "H", "W", "OH", "OW")})
                    strides = [f"stride_{t}{d}" for t in "xy" for d in "nhw"]
                    signature.update({n: "i32" for n in strides})
                    constexprs = dict(stride_xc=1, stride_yc=1, KH=k, KW=k, STRIDE_H=stride[0],
                                      STRIDE_W=stride[1], PAD_H=pad[0], PAD_W=pad[1], IS_MAX=is_max,
                                      COUNT_INCLUDE_PAD=include_pad, ACC_FP64=False, USE_INT64=int64,
                                      **config.kwargs)
                    cfg = config_label(config)
                    label = f"pool2d/{cfg}/{dtype}/{name}" + ("/int64" if int64 else "")
                    yield KernelVariant(
                        kernel="pool2d", label=label, fn=fn, signature=signature, constexprs=constexprs,
                        num_warps=config.num_warps, num_stages=config.num_stages,
                        aligned=("x_ptr", "y_ptr", "C", *strides), uses_dot=False,
                        tags=dict(config=cfg, dtype=dtype, geometry=name, int64=int64, fits=True))


def _strided(signature: dict, constexprs: dict, aligned: list, prefix: str, dims: str, unit: str) -> None:
    """Stride arguments of a channels_last tensor: the ``unit`` one is the constant 1, the others aligned."""
    for d in dims:
        name = f"stride_{prefix}{d}"
        if d == unit:
            constexprs[name] = 1
        else:
            signature[name] = "i32"
            aligned.append(name)


def _training_variant(kernel: str, name: str, fn, signature: dict, constexprs: dict, aligned: list, config,
                      dtype: str, uses_dot: bool, **tags) -> KernelVariant:
    cfg = config_label(config) if config is not None else "fixed"
    label = f"{kernel}/{cfg}/{dtype}/{name}"
    return KernelVariant(
        kernel=kernel, label=label, fn=fn, signature=signature, constexprs=constexprs,
        num_warps=config.num_warps if config is not None else 4,
        num_stages=config.num_stages if config is not None else 1, aligned=tuple(aligned), uses_dot=uses_dot,
        tags=dict(config=cfg, dtype=dtype, geometry=name, fits=True, **tags))


def training_variants(full: bool = True) -> Iterator[KernelVariant]:
    """Compilation units of the training kernels: the conv forward with its STATS epilogue (BN batch
    statistics), dgrad / wgrad (kernels/conv_bwd.py, every GPU config), the BatchNorm and pooling
    backward kernels (fixed tiles). channels_last tensors, C and K multiples of 16. ``full`` gives every
    dgrad / wgrad config every dtype and geometry class and the fixed-tile kernels every dtype; the CI set
    cycles dtype and geometry over the configs and compiles the fixed-tile kernels in bf16."""
    from inception_core.kernels import batch_norm as bn
    from inception_core.kernels import configs, conv_bwd, pool2d_bwd
    from inception_core.kernels import conv_bn_act as fwd

    dtypes = list(_DTYPES)
    tiles = bn.GPU_BLOCKS
    # conv forward + STATS: a 1x1 and a spatial unit per dtype, on a config every geometry may pick
    for dtype, elem_size in _DTYPES.items():
        precision = "tf32" if dtype == "fp32" else "ieee"
        usable = [c for c in configs.GPU_CONFIGS["conv_bn_act_fwd"]
                  if configs.conv_fwd_fits(c, M=_PRUNE_M, C=_PRUNE_C, K=_PRUNE_K, R=3, S=3, elem_size=elem_size,
                                           stats=True)]
        for geometry, config in (("1x1", usable[0]), ("3x3s2", usable[-1])):
            v = _conv_variant(fwd._conv_bn_act_fwd_kernel, config, dtype, geometry, residual=False,
                              precision=precision, int64=False, layout="nhwc", fits=True)
            constexprs = dict(v.constexprs, STATS=True, HAS_SCALE=False, HAS_SHIFT=False, ACT_RELU=False)
            yield dataclasses.replace(v, kernel="conv_bn_act_stats", label=v.label.replace("conv_bn_act/",
                                      "conv_bn_act_stats/"), constexprs=constexprs,
                                      aligned=(*v.aligned, "stat_sum_ptr", "stat_m2_ptr"))
    # dgrad and wgrad
    for kernel, fn, config_list, tensors in (
            ("conv_bwd_dx", conv_bwd._conv_bwd_dx_kernel, configs.GPU_CONFIGS["conv_bwd_dx"],
             (("dy", "nkhw", "k"), ("w", "kcrs", "c"), ("dx", "nchw", "c"))),
            ("conv_bwd_dw", conv_bwd._conv_bwd_dw_kernel, configs.GPU_CONFIGS["conv_bwd_dw"],
             (("dy", "nkhw", "k"), ("x", "nchw", "c"), ("p", "krsc", "c")))):
        for ci, config in enumerate(config_list):
            units = [(d, g) for d in dtypes for g in CONV_GEOMETRIES] if full else \
                [(dtypes[ci % 3], list(CONV_GEOMETRIES)[ci % len(CONV_GEOMETRIES)])]
            for dtype, geometry in units:
                r, s, stride, pad = CONV_GEOMETRIES[geometry]
                ptr = "*" + dtype
                out = "*fp32" if kernel == "conv_bwd_dw" else ptr
                names = ("dy_ptr", "w_ptr", "dx_ptr") if kernel == "conv_bwd_dx" else ("dy_ptr", "x_ptr", "part_ptr")
                signature = dict(zip(names, (ptr, ptr, out), strict=True))
                signature.update({n: "i32" for n in ("N", "C", "H", "W", "K", "OH", "OW")})
                aligned = [*names, "C", "K"]
                constexprs: dict[str, Any] = {}
                for prefix, dims, unit in tensors:
                    _strided(signature, constexprs, aligned, prefix, dims, unit)
                if kernel == "conv_bwd_dw":
                    signature.update(P_PER_SPLIT="i32", stride_psplit="i32")
                    aligned += ["P_PER_SPLIT", "stride_psplit"]
                constexprs.update(R=r, S=s, STRIDE_H=stride[0], STRIDE_W=stride[1], PAD_H=pad[0], PAD_W=pad[1],
                                  INPUT_PRECISION="tf32" if dtype == "fp32" else "ieee", DOT_FP32=False,
                                  ACC_FP64=False, USE_INT64=False, **config.kwargs)
                yield _training_variant(kernel, geometry, fn, signature, constexprs, aligned, config, dtype, True)
    # pointwise and reduction kernels (fixed tiles, no tensor cores)
    for dtype in dtypes if full else ["bf16"]:
        ptr = "*" + dtype
        f32 = "*fp32"
        sig = {"part_ptr": f32, "dw_ptr": ptr, **{n: "i32" for n in ("SPLITS", "TOTAL", "C", "R", "S",
                                                                    "stride_psplit")}}
        ce: dict[str, Any] = {"BLOCK": conv_bwd.GPU_SUM_BLOCK}
        al = ["part_ptr", "dw_ptr", "C"]
        _strided(sig, ce, al, "dw", "kcrs", "c")
        yield _training_variant("conv_bwd_sum", "splits", conv_bwd._sum_splits_kernel, sig, ce, al, None, dtype,
                                False)
        pointers = {"c_ptr": ptr, "scale_ptr": f32, "shift_ptr": f32, "res_ptr": ptr, "y_ptr": ptr}
        sig = {**pointers, **{n: "i32" for n in ("N", "K", "OH", "OW")}, "res_scale": "fp32"}
        ce = dict(HAS_RESIDUAL=True, ACT_RELU=True, ACC_FP64=False, USE_INT64=False, BLOCK_P=tiles["APPLY_BLOCK_P"],
                  BLOCK_C=tiles["APPLY_BLOCK_C"])
        al = [*pointers, "K"]
        for prefix in "cry":
            _strided(sig, ce, al, prefix, "nkhw", "k")
        yield _training_variant("batch_norm", "affine_act", bn._affine_act_kernel, sig, ce, al, None, dtype, False)
        for name, fn, out in (("bwd_reduce", bn._bn_bwd_reduce_kernel, ("g_ptr", "psum_ptr", "psumx_ptr")),
                              ("bwd_apply", bn._bn_bwd_apply_kernel, ("a_ptr", "b_ptr", "d_ptr", "gc_ptr"))):
            pointers = {"dy_ptr": ptr, "y_ptr": ptr, "c_ptr": ptr, "mean_ptr": f32, "invstd_ptr": f32,
                        **{o: (ptr if o in ("g_ptr", "gc_ptr") else f32) for o in out}}
            sig = {**pointers, **{n: "i32" for n in ("N", "K", "OH", "OW")}}
            ce = dict(ACT_RELU=True, TRAIN=True, ACC_FP64=False, USE_INT64=False, BLOCK_P=tiles["REDUCE_BLOCK_P"],
                      BLOCK_C=tiles["REDUCE_BLOCK_C"])
            if name == "bwd_reduce":
                ce.update(NEED_SUMS=True, STORE_G=True)
            else:
                ce.update(BLOCK_P=tiles["APPLY_BLOCK_P"], BLOCK_C=tiles["APPLY_BLOCK_C"])
            al = [*pointers, "K"]
            for prefix in ("dy", "y", "c", "g"):
                _strided(sig, ce, al, prefix, "nkhw", "k")
            yield _training_variant("batch_norm", name, fn, sig, ce, al, None, dtype, False)
        for name, is_max, k, stride, pad in (("max3x3s2", True, 3, 2, 0), ("avg3x3p1", False, 3, 1, 1)):
            geometry = dict(KH=k, KW=k, STRIDE_H=stride, STRIDE_W=stride, PAD_H=pad, PAD_W=pad, ACC_FP64=False,
                            USE_INT64=False, BLOCK_P=pool2d_bwd.GPU_BLOCK_P, BLOCK_C=pool2d_bwd.GPU_BLOCK_C)
            sig = {"dy_ptr": ptr, "idx_ptr": "*i8", "dx_ptr": ptr,
                   **{n: "i32" for n in ("N", "C", "H", "W", "OH", "OW")}}
            ce = dict(geometry, IS_MAX=is_max, COUNT_INCLUDE_PAD=True)
            al = ["dy_ptr", "idx_ptr", "dx_ptr", "C"]
            for prefix in ("dy", "i", "dx"):
                _strided(sig, ce, al, prefix, "nchw", "c")
            yield _training_variant("pool2d_bwd", name, pool2d_bwd._pool2d_bwd_kernel, sig, ce, al, None, dtype,
                                    False)
            if is_max:
                sig = {"x_ptr": ptr, "idx_ptr": "*i8", **{n: "i32" for n in ("N", "C", "H", "W", "OH", "OW")}}
                ce = dict(geometry)
                al = ["x_ptr", "idx_ptr", "C"]
                for prefix in ("x", "i"):
                    _strided(sig, ce, al, prefix, "nchw", "c")
                yield _training_variant("pool2d_bwd", "argmax", pool2d_bwd._max_pool2d_argmax_kernel, sig, ce, al,
                                        None, dtype, False)
    for name, fn in (("stats_finalize", bn._bn_stats_finalize_kernel), ("bwd_finalize", bn._bn_bwd_finalize_kernel)):
        if name == "stats_finalize":
            pointers = ("sum_ptr", "m2_ptr", "gamma_ptr", "beta_ptr", "rm_ptr", "rv_ptr", "mean_ptr", "invstd_ptr",
                        "scale_ptr", "shift_ptr", "rm_out_ptr", "rv_out_ptr")
            sig = {**{p: "*fp32" for p in pointers}, "GROUPS": "i32", "K": "i32", "COUNT": "i32", "factor": "fp32",
                   "eps": "fp32"}
            ce = dict(ROWS=fwd.STATS_ROWS, HAS_GAMMA=True, HAS_BETA=True, HAS_RUNNING=True, ACC_FP64=False,
                      BLOCK_T=tiles["FINALIZE_BLOCK_T"], BLOCK_C=tiles["FINALIZE_BLOCK_C"])
        else:
            pointers = ("psum_ptr", "psumx_ptr", "coef_ptr", "invstd_ptr", "gcoef_ptr", "gbias_ptr", "a_ptr",
                        "b_ptr", "d_ptr")
            sig = {**{p: "*fp32" for p in pointers}, "ROWS": "i32", "K": "i32", "COUNT": "i32",
                   "res_scale": "fp32"}
            ce = dict(HAS_SUMS=True, HAS_COEF=True, TRAIN=True, ACC_FP64=False, BLOCK_T=tiles["FINALIZE_BLOCK_T"],
                      BLOCK_C=tiles["FINALIZE_BLOCK_C"])
        yield _training_variant("batch_norm", name, fn, sig, ce, [*pointers, "K"], None, "fp32", False)


VARIANT_SOURCES = {"conv_bn_act": conv_bn_act_variants, "pool2d": pool2d_variants, "training": training_variants}


def all_variants(full: bool = True) -> list[KernelVariant]:
    """Every kernel's variants (see VARIANT_SOURCES; a kernel file adds its generator there)."""
    return [v for source in VARIANT_SOURCES.values() for v in source(full)]


# ----------------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------------

def _row(variant: KernelVariant, info: CompiledInfo) -> str:
    tc = ",".join(sorted({i.split(".")[0] if i.startswith("wgmma") else "mma" for i in info.mma_instrs})) or "-"
    kinds = ",".join(sorted({".".join(i.split(".")[3:]) if i.startswith("mma") else
                             ".".join(i.split(".")[4:]) for i in info.mma_instrs}))
    fits = "" if variant.tags.get("fits", True) else " (pruned)"
    over = " OVER" if info.shared > info.smem_limit else ""
    return (f"| {variant.label}{fits} | sm_{info.arch} | {info.shared}{over} | {info.num_regs} | "
            f"{info.spill_stores}/{info.spill_loads} | {tc} {kinds} | {info.compile_s:.1f} |")


def _report_jobs(kernels: tuple[str, ...], full: bool, rejected: bool, archs: tuple[int, ...]):
    variants = []
    for kernel in kernels:
        kw = {"include_rejected": True} if rejected and kernel == "conv_bn_act" else {}
        variants += list(VARIANT_SOURCES[kernel](full, **kw))
    return [(v, a) for v in variants for a in archs]


_WORKER_JOBS: dict[tuple, list] = {}


def _compile_row(key: tuple, index: int) -> str:
    # Kernels do not pickle: each worker process rebuilds the (deterministic) job list once.
    if key not in _WORKER_JOBS:
        _WORKER_JOBS[key] = _report_jobs(*key)
    variant, arch = _WORKER_JOBS[key][index]
    try:
        return _row(variant, compile_variant(variant, arch))
    except Exception as e:  # a report lists failures instead of stopping at the first
        return f"| {variant.label} | sm_{arch} | FAILED: {type(e).__name__}: {str(e).splitlines()[0][:80]} |||||"


def main(argv=None) -> None:
    import argparse
    import os
    from concurrent.futures import ProcessPoolExecutor

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="every geometry x residual (default: CI set)")
    parser.add_argument("--rejected", action="store_true", help="also configs conv_fwd_fits prunes")
    parser.add_argument("--arch", type=int, nargs="+", default=list(ARCHS))
    parser.add_argument("--kernel", nargs="+", default=list(VARIANT_SOURCES))
    parser.add_argument("--jobs", type=int, default=os.cpu_count())
    args = parser.parse_args(argv)
    key = (tuple(args.kernel), args.full, args.rejected, tuple(args.arch))
    n = len(_report_jobs(*key))
    print("| variant | arch | shared B | regs | spill st/ld B | tensor cores | compile s |")
    print("|---|---|---|---|---|---|---|")
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for row in pool.map(_compile_row, [key] * n, range(n)):
            print(row, flush=True)


if __name__ == "__main__":
    main()

