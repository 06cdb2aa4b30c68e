"""``inception-core check`` and ``info``: a bad setting exits with status 2 and one line naming it (no
traceback, nothing run); a check that ran nothing never exits 0."""

import pytest
import torch

import inception_core.backends
import inception_core.check
from inception_core.cli import main

# keeps any run that does start (it should not) to a handful of interpreted cases
SMALL = ["--models", "googlenet", "--dtypes", "fp32"]


def _usage_error(capsys, argv) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    out = capsys.readouterr()
    assert "Traceback" not in out.err and "passed" not in out.out  # refused before the check ran
    return out.err


@pytest.mark.parametrize("ops", ["foo", "", ",", "conv,foo"])
def test_check_unknown_or_empty_ops(capsys, ops):
    err = _usage_error(capsys, ["check", *SMALL, "--ops", ops])
    assert f"--ops: expected a comma list of {', '.join(inception_core.check.OP_KINDS)}; got {ops!r}" in err


@pytest.mark.parametrize("flag, value", [("--dtypes", "fp8"), ("--models", "resnet50")])
def test_check_unknown_dtypes_and_models(capsys, flag, value):
    assert f"{flag}: expected a comma list of" in _usage_error(capsys, ["check", flag, value, "--ops", "pool"])


@pytest.mark.parametrize("batch", ["0", "-1"])
def test_check_batch_size_below_one(capsys, batch):
    err = _usage_error(capsys, ["check", *SMALL, "--ops", "pool", "--batch-size", batch])
    assert f"--batch-size: expected >= 1, got {batch}" in err


def test_check_unknown_device(capsys):
    err = _usage_error(capsys, ["check", *SMALL, "--ops", "pool", "--device", "tpu"])
    assert "--device: expected cpu or cuda[:i], got 'tpu'" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_check_cuda_without_cuda(capsys):
    err = _usage_error(capsys, ["check", *SMALL, "--ops", "pool", "--device", "cuda"])
    assert "--device cuda: CUDA is not available on this machine" in err


def test_check_that_ran_nothing_fails(capsys, monkeypatch):
    monkeypatch.setattr(inception_core.check, "cases", lambda *args, **kwargs: [])
    assert main(["check", *SMALL, "--ops", "pool"]) == 1
    assert "nothing was checked" in capsys.readouterr().out


def test_run_check_rejects_what_it_cannot_run():
    for kwargs, name in ((dict(op_kinds=("foo",)), "op_kinds"), (dict(op_kinds=()), "op_kinds"),
                         (dict(dtypes=("fp8",)), "dtypes"), (dict(batch=0), "batch")):
        with pytest.raises(ValueError, match=f"^{name}: expected"):
            inception_core.check.run_check("cpu", **kwargs)


def test_info_with_a_bad_backend_variable(capsys, monkeypatch):
    monkeypatch.setenv("INCEPTION_CORE_BACKEND", "bogus")
    monkeypatch.setattr(inception_core.backends, "_configured", None)  # a fresh process: no set_backend()
    err = _usage_error(capsys, ["info"])
    assert "environment variable INCEPTION_CORE_BACKEND: expected one of" in err and "'bogus'" in err
