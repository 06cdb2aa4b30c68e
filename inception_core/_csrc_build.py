"""How csrc/ is compiled: sources, flags and toolkit discovery, shared by setup.py (the prebuilt
``inception_core._C``) and the first-use compile in ``inception_core._cuda_ext``.

Standard library only: setup.py loads this file by path, before torch may be importable.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil

DEFAULT_ARCH_LIST = "8.0;9.0"
NVCC_FLAGS = ["-O3", "-lineinfo"]


def csrc_sources(root: str) -> list[str]:
    """Every .cpp and .cu file under ``root`` (the csrc folder), sorted."""
    found = glob.glob(os.path.join(root, "**", "*.cpp"), recursive=True)
    found += glob.glob(os.path.join(root, "**", "*.cu"), recursive=True)
    return sorted(found)


def set_cuda_home() -> None:
    """Set CUDA_HOME when nvcc on PATH is a wrapper outside the toolkit: torch would otherwise take the
    wrapper's parent folder, which holds no CUDA headers. Call before importing torch.utils.cpp_extension."""
    if os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH"):
        return
    nvcc = shutil.which("nvcc")
    if nvcc and os.path.exists(os.path.join(os.path.dirname(os.path.dirname(nvcc)), "include", "cuda_runtime.h")):
        return
    for candidate in ("/usr/local/cuda", *sorted(glob.glob("/usr/local/cuda-*"), reverse=True)):
        if os.path.exists(os.path.join(candidate, "bin", "nvcc")):
            os.environ["CUDA_HOME"] = candidate
            return


def nvidia_wheel_includes() -> list[str]:
    """Include folders of the nvidia-* wheels that CUDA builds of torch install: the cuBLAS / cuSPARSE
    headers that torch's CUDA headers include and a bare toolkit may lack."""
    spec = importlib.util.find_spec("nvidia")
    if spec is None or not spec.submodule_search_locations:
        return []
    found: list[str] = []
    for root in spec.submodule_search_locations:
        found += sorted(d for d in glob.glob(os.path.join(root, "*", "include")) if os.path.isdir(d))
    return found


def cxx_flags() -> list[str]:
    """Host compiler flags: the wheel headers as system includes for the C++ files only (nvcc keeps its
    own toolkit's headers for the .cu files); torch adds its own -std."""
    flags = ["-O3"]
    for inc in nvidia_wheel_includes():
        flags += ["-isystem", inc]
    return flags
