"""Build script for inception_core.

The CUDA C++ backend (``csrc/``) is built as the extension ``inception_core._C`` when a CUDA toolkit and
a CUDA build of torch are present, or when ``FORCE_CUDA=1`` (then a failed build fails the install);
``INCEPTION_CORE_SKIP_CUDA_BUILD=1`` skips it. Architectures: ``TORCH_CUDA_ARCH_LIST`` (default
"8.0;9.0"); parallel compile jobs: ``MAX_JOBS``. torch must be importable at build time, so install
with ``pip install --no-build-isolation -e .`` to get the extension. Without it the package still
works (triton and torch backends; the cuda backend then compiles the same sources at first use on a
CUDA machine, see ``inception_core/_cuda_ext.py``).
"""

import importlib.util
import os
import re

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

CSRC = "csrc"


def _load_build_helpers():
    """inception_core/_csrc_build.py, loaded by path (importing the package would need torch)."""
    spec = importlib.util.spec_from_file_location("_csrc_build", os.path.join("inception_core", "_csrc_build.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "0").strip().lower() in ("1", "true", "yes", "on")


def _cuda_extension() -> tuple[list, dict]:
    """(ext_modules, cmdclass) building inception_core._C, or ([], {}) when it is not to be built."""
    force = _env_flag("FORCE_CUDA")
    if _env_flag("INCEPTION_CORE_SKIP_CUDA_BUILD"):
        print("inception_core: INCEPTION_CORE_SKIP_CUDA_BUILD=1, not building the CUDA extension")
        return [], {}
    try:
        import torch
    except ImportError:
        if force:
            raise SystemExit(
                "FORCE_CUDA=1: torch must be importable at build time; install torch first and build with "
                "pip install --no-build-isolation ..."
            ) from None
        print("inception_core: torch is not importable at build time, not building the CUDA extension")
        return [], {}
    helpers = _load_build_helpers()
    helpers.set_cuda_home()
    from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CUDAExtension

    missing = []
    if torch.version.cuda is None:
        missing.append("torch is not a CUDA build")
    if CUDA_HOME is None:
        missing.append("no CUDA toolkit found (set CUDA_HOME)")
    if missing:
        if force:
            raise SystemExit("FORCE_CUDA=1 but " + "; ".join(missing))
        print("inception_core: not building the CUDA extension: " + "; ".join(missing))
        return [], {}
    os.environ.setdefault("TORCH_CUDA_ARCH_LIST", helpers.DEFAULT_ARCH_LIST)
    ext = CUDAExtension(
        name="inception_core._C",
        sources=helpers.csrc_sources(CSRC),
        include_dirs=[os.path.abspath(CSRC)],
        extra_compile_args={"cxx": helpers.cxx_flags(), "nvcc": helpers.NVCC_FLAGS},
    )
    return [ext], {"build_ext": BuildExtension}


class BuildPyWithCsrc(build_py):
    """Also copy csrc/ to inception_core/csrc/ in the build, so an install without the prebuilt
    extension can still compile the cuda backend at first use."""

    def run(self):
        super().run()
        if not self.editable_mode:  # an editable install reads csrc/ from the checkout
            self.copy_tree(CSRC, os.path.join(self.build_lib, "inception_core", CSRC))


def _version() -> str:
    """__version__ from inception_core/_version.py, read as text (importing the package would need torch)."""
    with open(os.path.join("inception_core", "_version.py"), encoding="utf-8") as f:
        match = re.search(r'^__version__ = "([^"]+)"$', f.read(), re.MULTILINE)
    if match is None:
        raise SystemExit("inception_core/_version.py: no line __version__ = \"...\"")
    return match.group(1)


EXT_MODULES, CMDCLASS = _cuda_extension()

PACKAGES = find_packages(include=["inception_core", "inception_core.*"])

setup(
    name="inception_core",
    version=_version(),
    description="Fused Triton kernels, drop-in layers and models for the Inception family of networks",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=PACKAGES,
    package_data={"inception_core.tuned": ["*.json"]},  # tuned config tables (inception_core/tuned_tables.py)
    install_requires=[
        # supported range (README, "Supported versions"): triton 3.6 is the oldest one CI compiles every
        # kernel with (tools/compile_each_kernel.py), torch 2.11 the one the GPU first light targets
        "torch>=2.11",
        "triton>=3.6; platform_system == 'Linux'",
        "numpy",
        "packaging",
    ],
    extras_require={
        "dev": ["pytest>=7", "pytest-benchmark>=4", "ruff"],
        # reference implementations the tests compare against; pretrainedmodels and facenet-pytorch
        # pin an old torch, so install them separately with --no-deps (see .ci/run)
        "test": ["torchvision", "timm>=1.0", "six", "requests", "tqdm", "munch",
                 # the FID tools inception_core.fid is compared against (tests read their internals: pinned)
                 "pytorch-fid==0.3.0", "torch-fidelity==0.4.0", "clean-fid==0.1.35", "torchmetrics==1.9.0",
                 "scipy"],
        # `inception-core fid` / `isc` and inception_core.fid: image decoding, stats files, progress bar
        "fid": ["pillow", "numpy", "tqdm"],
        # `inception-core bench --plot`
        "plot": ["matplotlib"],
    },
    entry_points={"console_scripts": ["inception-core=inception_core.cli:main"]},
    ext_modules=EXT_MODULES,
    cmdclass={"build_py": BuildPyWithCsrc, **CMDCLASS},
)
