"""README.md's ``python`` code blocks run as written, on this machine.

Each block runs in a fresh namespace on the backend ``auto`` picks for a user (torch on a CPU: the suite
itself turns Triton's interpreter on, which a user's CPU session does not); nothing is skipped.
"""

import re
from pathlib import Path

import pytest
import torch

import inception_core

README = Path(__file__).resolve().parents[1] / "README.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _blocks() -> list:
    text = README.read_text(encoding="utf-8")
    params = []
    for match in _BLOCK.finditer(text):
        before = text[:match.start()]
        headings = re.findall(r"^#+ (.+)$", before, re.M)
        params.append(pytest.param(match.group(1), id=f"line {before.count(chr(10)) + 1}: {headings[-1]}"))
    return params


BLOCKS = _blocks()


def test_readme_has_its_python_blocks():
    assert len(BLOCKS) >= 3  # the ops, models and optimize_for_inference examples at least


@pytest.mark.parametrize("code", BLOCKS)
def test_readme_block_runs(code):
    with inception_core.backend("auto" if torch.cuda.is_available() else "torch"):
        exec(compile(code, str(README), "exec"), {"__name__": "__readme__"})
