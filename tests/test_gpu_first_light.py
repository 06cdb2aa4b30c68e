"""benchmarks/gpu_first_light.py: the op tests its correctness stage runs still exist (a renamed test made
pytest collect nothing, exit 5, and failed the stage only on the GPU machine or in CI's dry run)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _first_light():
    spec = importlib.util.spec_from_file_location("gpu_first_light", ROOT / "benchmarks" / "gpu_first_light.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("selection", ["DRY_RUN_OP_TESTS", "GPU_OP_TESTS"])
def test_stage_b_selects_op_tests(selection):
    args = getattr(_first_light(), selection)
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    selected = [line for line in done.stdout.splitlines() if "::" in line]
    assert selected, done.stdout[-2000:]
    if selection == "DRY_RUN_OP_TESTS":
        assert len(selected) == 1 and selected[0].endswith("-triton]"), selected
