"""``inception-core --help`` and every subcommand's ``--help`` answer without importing torch or triton
(a fresh interpreter each, as a user's shell starts one)."""

import json
import subprocess
import sys

from inception_core.cli import build_parser

# runs in a fresh interpreter: each --help through main(), then which heavy modules got imported
_PROBE = """
import json, sys
from inception_core.cli import main
helps = {}
for argv in json.loads(sys.argv[1]):
    try:
        main(argv)
    except SystemExit as exc:
        helps[" ".join(argv)] = exc.code
print(json.dumps({"exit": helps, "imported": [m for m in ("torch", "triton") if m in sys.modules]}))
"""


def _subcommands() -> list[str]:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return list(sub.choices)


def test_every_help_without_torch():
    commands = _subcommands()
    assert {"bench", "check", "info", "train", "fid", "isc", "tune", "warmup"} <= set(commands)
    argvs = [["--help"]] + [[c, "--help"] for c in commands]
    done = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(argvs)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["exit"] == {" ".join(a): 0 for a in argvs}
    assert report["imported"] == []


def _imported_modules(importtime_stderr: str) -> set[str]:
    return {line.rsplit("|", 1)[-1].strip() for line in importtime_stderr.splitlines()
            if line.startswith("import time:")}


def test_module_entry_help_lists_the_subcommands():
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "inception_core", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for command in _subcommands():
        assert command in done.stdout
    imported = _imported_modules(done.stderr)
    assert "torch" not in imported and "triton" not in imported


def test_train_module_entry_help_without_torch():
    """``python -m inception_core.train`` (what torchrun runs) parses its flags before importing torch."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "inception_core.train", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--model" in done.stdout and "--resume" in done.stdout
    imported = _imported_modules(done.stderr)
    assert "torch" not in imported and "triton" not in imported
