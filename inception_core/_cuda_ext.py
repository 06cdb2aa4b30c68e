"""Loading the CUDA C++ backend: the ops of csrc/ in ``torch.ops.inception_core_cuda``.

Two ways in, one registration and one launch path: the extension ``inception_core._C`` that setup.py
built, or, where it was not built and a CUDA device is present, the same sources (csrc/ of the
checkout, or the copy installed as ``inception_core/csrc``) compiled at first use by
``torch.utils.cpp_extension.load`` and cached on disk (``TORCH_EXTENSIONS_DIR``, by default
``~/.cache/torch_extensions``). Whichever loads, the ops and their CUDA kernels are the same.
"""

from __future__ import annotations

import functools
import importlib
import os
import threading
import warnings
from pathlib import Path

import torch

from inception_core import _csrc_build

__all__ = ["NAMESPACE", "OP_NAMES", "cuda_status", "csrc_dir", "load_error", "ops", "prebuilt_error"]

NAMESPACE = "inception_core_cuda"
OP_NAMES = ("conv_bn_act_out", "max_pool2d_out", "avg_pool2d_out")
_JIT_NAME = "inception_core_cuda_jit"
_jit_lock = threading.Lock()  # one compile and one registration per process, whichever thread asks first


@functools.lru_cache(maxsize=1)
def prebuilt_error() -> str | None:
    """None when the extension built by setup.py loaded (its ops are then registered), else why not."""
    try:
        importlib.import_module("inception_core._C")
    except ModuleNotFoundError:
        return "the extension inception_core._C was not built (install with FORCE_CUDA=1, see README)"
    except (ImportError, OSError) as exc:  # built, but its library does not load against this torch
        return f"loading inception_core._C failed: {exc}"
    return None


def csrc_dir() -> Path | None:
    """The csrc folder: the installed copy, else the checkout's (editable installs)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "csrc", here.parent / "csrc"):
        if (candidate / "ops.cpp").is_file():
            return candidate
    return None


def _jit_error() -> str | None:
    """Compile csrc/ with torch's JIT loader (once per process; cached on disk across processes)."""
    with _jit_lock:
        return _jit_compile_once()


@functools.lru_cache(maxsize=1)
def _jit_compile_once() -> str | None:
    if torch.version.cuda is None:
        return "torch is not a CUDA build"
    root = csrc_dir()
    if root is None:
        return "the csrc sources are not installed with this package"
    _csrc_build.set_cuda_home()
    from torch.utils import cpp_extension

    if os.environ.get("CUDA_HOME") and cpp_extension.CUDA_HOME != os.environ["CUDA_HOME"]:
        cpp_extension.CUDA_HOME = os.environ["CUDA_HOME"]  # the module was imported before set_cuda_home ran
    if cpp_extension.CUDA_HOME is None:
        return "no CUDA toolkit found to compile csrc/ at first use (set CUDA_HOME)"
    warnings.warn("inception_core: the extension inception_core._C was not built; compiling the cuda backend's "
                  "sources now (once: the result is cached on disk)", RuntimeWarning, stacklevel=2)
    try:
        cpp_extension.load(
            name=_JIT_NAME,
            sources=_csrc_build.csrc_sources(str(root)),
            extra_include_paths=[str(root)],
            extra_cflags=_csrc_build.cxx_flags(),
            extra_cuda_cflags=list(_csrc_build.NVCC_FLAGS),
            is_python_module=False,
            verbose=os.environ.get("INCEPTION_CORE_VERBOSE_BUILD", "0") == "1",
        )
    except Exception as exc:  # a failed compile must leave the other backends working
        return f"compiling csrc/ at first use failed: {exc}"
    return None


def load_error(*, compile_if_missing: bool) -> str | None:
    """None when the ops are registered (prebuilt, or compiled now when ``compile_if_missing``), else
    the reason they are not."""
    err = prebuilt_error()
    if err is None or not compile_if_missing:
        return err
    jit_err = _jit_error()
    return None if jit_err is None else f"{err}; {jit_err}"


def cuda_status(device: torch.device) -> str | None:
    """None when the cuda backend can run on ``device``, else the reason it cannot. Compiles csrc/ at
    first use only on a CUDA device with no prebuilt extension."""
    if device.type != "cuda":
        return f"the CUDA C++ kernels run on CUDA tensors, got a tensor on {device.type}"
    if not torch.cuda.is_available():
        return "CUDA is not available (no CUDA device or driver)"
    return load_error(compile_if_missing=True)


def ops():
    """``torch.ops.inception_core_cuda`` (call after cuda_status returned None)."""
    return getattr(torch.ops, NAMESPACE)
