"""Build script for inception_core.

The Triton kernels live in the top-level folder ``kernels/`` and are installed as the subpackage
``inception_core.kernels`` (no top-level ``kernels`` module is installed).
"""

from setuptools import find_packages, setup

PACKAGES = find_packages(include=["inception_core", "inception_core.*"]) + ["inception_core.kernels"]

setup(
    name="inception_core",
    version="0.1.0",
    description="Fused Triton kernels, drop-in layers and models for the Inception family of networks",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=PACKAGES,
    package_dir={"inception_core.kernels": "kernels"},
    install_requires=[
        "torch>=2.4",
        "triton>=3.0; platform_system == 'Linux'",
        "numpy",
        "packaging",
    ],
    extras_require={
        "dev": ["pytest>=7", "pytest-benchmark>=4", "ruff"],
        # reference implementations the tests compare against; pretrainedmodels and facenet-pytorch
        # pin an old torch, so install them separately with --no-deps (see .ci/run)
        "test": ["torchvision", "timm>=1.0", "six", "requests", "tqdm", "munch"],
        # `inception-core bench --plot`
        "plot": ["matplotlib"],
    },
    entry_points={"console_scripts": ["inception-core=inception_core.cli:main"]},
)
