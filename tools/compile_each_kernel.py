"""Compile one variant of every Triton kernel for a GPU target with the triton that is importable (no GPU
needed): the check that the kernels build under the oldest supported triton.

Each kernel's first unit of ``inception_core.aot_variants.all_variants(full=False)`` goes through
``triton.compile`` (``ASTSource`` + ``GPUTarget``) only, none of the resource analysis of
``inception_core.aot``, whose helpers may use newer triton APIs. CI runs it under triton 3.6 installed
into a separate folder:

    pip install --no-deps --target /tmp/triton36 triton==3.6.0
    PYTHONPATH=/tmp/triton36 python tools/compile_each_kernel.py --arch 90

Exit status 1 when any kernel fails to compile (each failure printed).
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", type=int, default=90, help="compute capability (default 90)")
    a = p.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET") == "1":
        p.error("run without TRITON_INTERPRET=1 (the interpreter's functions cannot be compiled)")
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from inception_core import aot, aot_variants

    firsts = {}
    for v in aot_variants.all_variants(full=False):
        firsts.setdefault(aot.as_jit_function(v.fn).__name__, v)
    failed = 0
    print(f"triton {triton.__version__} ({triton.__file__}), sm_{a.arch}: {len(firsts)} kernels", flush=True)
    for name, v in firsts.items():
        fn = aot.as_jit_function(v.fn)
        start = time.perf_counter()
        try:
            sig = aot.full_signature(fn, v.signature, v.constexprs)
            attrs = {(fn.arg_names.index(n),): [["tt.divisibility", 16]] for n in v.aligned}
            compiled = triton.compile(ASTSource(fn=fn, signature=sig, constexprs=dict(v.constexprs), attrs=attrs),
                                      target=GPUTarget("cuda", a.arch, 32),
                                      options={"num_warps": v.num_warps, "num_stages": v.num_stages})
            mma = aot.tensor_core_instructions(compiled.asm["ptx"])
            ok = bool(compiled.asm.get("cubin")) and (bool(mma) or not v.uses_dot)
            print(f"  {'ok  ' if ok else 'FAIL'} {name:32s} {v.label:48s} {time.perf_counter() - start:5.1f} s "
                  f"{mma[0] if mma else ''}", flush=True)
            failed += not ok
        except Exception as e:
            failed += 1
            print(f"  FAIL {name:32s} {v.label}: {type(e).__name__}: {str(e).splitlines()[0][:300]}", flush=True)
    print(f"{len(firsts) - failed} of {len(firsts)} kernels compiled for sm_{a.arch} with triton {triton.__version__}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
