"""Packaging: the Triton kernels are the subpackage inception_core.kernels, never a top-level ``kernels``."""

import os
import subprocess
import sys
import tempfile


def _run_outside_repo(code: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([sys.executable, "-c", code], cwd=tmp, env=env, capture_output=True, text=True,
                              timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_kernels_installed_under_the_package_only():
    out = _run_outside_repo(
        "import importlib.util as u, inception_core.kernels as k; "
        "print(u.find_spec('kernels') is None, k.__name__, hasattr(k, 'conv_bn_act'))"
    )
    assert out == "True inception_core.kernels True"


def test_import_does_not_import_triton_kernels():
    """Importing the package leaves TRITON_INTERPRET decisions to the caller (kernels load lazily)."""
    out = _run_outside_repo("import sys, inception_core; print('inception_core.kernels' in sys.modules)")
    assert out == "False"


def test_import_is_lazy_convert_stays_the_function_and_info_runs():
    """``import inception_core`` imports no torch; ``inception_core.convert`` is the function even after
    an import of the submodule of the same name has bound the module on the package; ``info`` runs (one
    fresh interpreter for the three: each pays for importing torch)."""
    out = _run_outside_repo(
        "import sys, inception_core as ic; heavy = [m for m in ('torch', 'triton') if m in sys.modules]; "
        "import inception_core.convert; "
        "f = ic.convert; ic.convert = len; assigned = ic.convert is len; ic.convert = f; "  # as monkeypatch does
        "print(heavy, callable(ic.convert), ic.convert.__name__, ic.set_backend.__name__, 'ops' in dir(ic), "
        "assigned, ic.convert is f); "
        "from inception_core.cli import main; main(['info'])"
    )
    lazy, info = out.split("\n", 1)
    assert lazy == "[] True convert set_backend True True True"
    assert "inception_core" in info and "cpu" in info
