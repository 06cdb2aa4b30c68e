"""Test setup: the Triton interpreter on CPU-only machines, seeded fresh random inputs.

TRITON_INTERPRET is read when ``@triton.jit`` decorates, so it is set here, before anything imports
inception_core.kernels. On a CUDA machine the kernels compile for the GPU and tests run on "cuda".
"""

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import inception_core  # noqa: E402
from inception_core import kernels  # noqa: E402,F401  (decorate the kernels under the setting above)

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"

# fp32 comparisons use full fp32 on the GPU (torch's convs and ours follow this flag); the TF32 path has
# its own test with its own tolerance.
torch.backends.cudnn.allow_tf32 = False
torch.backends.cuda.matmul.allow_tf32 = False


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture(autouse=True)
def _default_backend():
    inception_core.set_backend("auto")
    yield
    inception_core.set_backend("auto")


@pytest.fixture
def device() -> str:
    return DEVICE


@pytest.fixture
def slow_selected(request: pytest.FixtureRequest) -> bool:
    """Whether ``-m`` selects the ``slow`` tests: on a CPU they skip (with the reason) unless it does."""
    expr = request.config.getoption("markexpr") or ""
    return "slow" in expr and "not slow" not in expr
