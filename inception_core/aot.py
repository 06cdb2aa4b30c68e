"""Ahead-of-time compilation of the Triton kernels for sm_80 / sm_90, with or without a GPU: the engine.

``triton.compile`` with an explicit ``GPUTarget`` runs the whole pipeline (TTIR -> TTGIR -> LLVM IR ->
PTX -> cubin through the ptxas that ships with Triton) without touching a CUDA driver, so a CPU
machine gets the same PTX, cubin and shared-memory figure a GPU would launch with. Registers come from
the cubin (``cuobjdump -res-usage``), spills from Triton's own ``ptxas -v`` log (on a Triton cache hit,
from ``ptxas -v`` re-run on the PTX with Triton's flags).

A *variant* (``KernelVariant``) is one compilation unit: a raw kernel, the argument types and
specializations the launcher produces at run time, its constexprs, and the launch options of one
config; ``launch_signature`` derives the types and specializations from a launch's real arguments.
The catalogue of variants CI compiles is ``inception_core/aot_variants.py``; the resource report is
``tools/resource_report.py``. Under ``TRITON_INTERPRET=1`` every ``@triton.jit`` function (Triton's own
``tl.cdiv``, ``tl.zeros`` too) is an ``InterpretedFunction`` the code generator cannot compile, so
compilation then happens in a worker process started without the interpreter, which imports the same
kernel module (and hits the same Triton cache entries as a GPU process would).
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
from collections.abc import Iterable, Sequence
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
    "as_jit_function",
    "compile_kernel",
    "compile_variant",
    "full_signature",
    "launch_signature",
    "source_sha256",
    "tensor_core_instructions",
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

_TRITON_TYPES = {"torch.float32": "fp32", "torch.float16": "fp16", "torch.bfloat16": "bf16", "torch.float64": "fp64",
                 "torch.int8": "i8", "torch.int32": "i32", "torch.int64": "i64", "torch.uint8": "u8",
                 "torch.bool": "i1"}


def launch_signature(fn, args: Sequence[Any], constexprs: dict[str, Any]
                     ) -> tuple[dict[str, str], dict[str, Any], list[str]]:
    """(signature, constexprs, aligned) of a launch of ``fn`` with run-time ``args`` (in order, tensors as
    ``launch.TensorSpec``) and ``constexprs``: what Triton's launcher specializes on. Pointers get their
    dtype and are aligned when 16-byte aligned; integers equal to 1 become constants, multiples of 16
    are aligned, and are i32 or i64 by value; floats are fp32, bools u1."""
    from inception_core.launch import TensorSpec

    fn = as_jit_function(fn)
    runtime = [n for n in fn.arg_names if n not in constexprs]
    signature, constexprs, aligned = {}, dict(constexprs), []
    for name, value in zip(runtime, args, strict=True):
        if isinstance(value, TensorSpec):
            signature[name] = "*" + _TRITON_TYPES[str(value.dtype)]
            if value.aligned:
                aligned.append(name)
        elif isinstance(value, bool):
            signature[name] = "u1"
        elif isinstance(value, int):
            if value == 1:
                constexprs[name] = 1
            else:
                signature[name] = "i32" if -2**31 <= value < 2**31 else "i64"
                if value % 16 == 0:
                    aligned.append(name)
        elif isinstance(value, float):
            signature[name] = "fp32"
        else:
            raise TypeError(f"{fn.__name__}: argument {name} of type {type(value).__name__} has no Triton type")
    return signature, constexprs, aligned


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


def full_signature(fn, signature: dict[str, str], constexprs: dict[str, Any]) -> dict[str, str]:
    """``triton.compile``'s signature of ``fn``: every argument's type, or "constexpr"."""
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

    sig = full_signature(fn, signature, constexprs)
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
