"""``inception-core check`` (inception_core/check.py): every op kind, forward and backward, runs through
the check and passes on every backend here; a wrong gradient fails its row; the printout is a summary
unless verbose. Tiny geometries stand in for the catalogue's (the check's machinery is under test)."""

import io
from types import SimpleNamespace

import pytest
import torch

from inception_core import backends, check
from inception_core.cli import build_parser
from inception_core.ops import _conv_grad

BACKENDS = [b for b in backends.AVAILABLE_BACKENDS if backends.backend_status(b, torch.device("cpu")) is None]
# a residual up-projection (bias, Inception-ResNet): the residual path of both conv ops is checked too
CONV = SimpleNamespace(model="inception_resnet_v2", layer="block.conv2d", in_channels=8, out_channels=16,
                       kernel=(3, 3), stride=(2, 2), padding=(1, 1), in_hw=(5, 5), bias=True)
POOL = SimpleNamespace(model="inception_v4", layer="mixed.pool", kind="avg", channels=8, kernel=(3, 3), stride=(1, 1),
                       padding=(1, 1), ceil_mode=False, count_include_pad=False, in_hw=(5, 5))


def _tiny_case(kind: str) -> check.Case:
    shapes, make_case = check._CASE_MAKERS[kind]
    return make_case(POOL if "pool" in kind else CONV, torch.device("cpu"), 2, True)


@pytest.mark.parametrize("kind", check.OP_KINDS)
def test_every_op_kind_passes_on_every_backend(kind):
    rows = list(check._run_one(_tiny_case(kind), torch.float32, BACKENDS, seed=0))
    assert sorted(r.backend for r in rows) == sorted(BACKENDS)
    assert all(r.ok for r in rows), rows
    assert rows[0].op.endswith(".backward") == kind.endswith("_backward")


def test_a_wrong_weight_gradient_fails_its_row(monkeypatch):
    if "triton" not in BACKENDS:
        pytest.skip("needs a second backend besides the torch oracle")
    launch = _conv_grad.launch_conv_grads_triton

    def off_by_one_percent(*args, **kwargs):
        gx, gw = launch(*args, **kwargs)
        return gx, None if gw is None else gw * 1.01

    monkeypatch.setattr(_conv_grad, "launch_conv_grads_triton", off_by_one_percent)
    rows = {r.backend: r for r in check._run_one(_tiny_case("conv_backward"), torch.float32, BACKENDS, seed=0)}
    assert rows["torch"].ok and not rows["triton"].ok
    assert rows["triton"].note == "results 1"  # the weight gradient (x, weight, scale, shift, residual)


def test_summary_by_default_every_row_with_verbose(monkeypatch):
    monkeypatch.setattr(check, "cases", lambda *args, **kwargs: [_tiny_case("pool"), _tiny_case("pool_backward")])
    printed = {}
    for verbose in (False, True):
        stream = io.StringIO()
        assert check.run_check("cpu", dtypes=("fp32",), backend_names=["torch"], verbose=verbose, stream=stream) == 0
        printed[verbose] = stream.getvalue()
    shape = _tiny_case("pool").shape
    assert shape not in printed[False] and printed[True].count(shape) == 2
    for text in printed.values():
        assert f"{'avg_pool2d':<26} torch   fp32      1      0" in text
        assert f"{'avg_pool2d.backward':<26} torch   fp32      1      0" in text
        assert "2 passed, 0 failed" in text


def test_the_command_checks_every_op_kind_by_default():
    args = build_parser().parse_args(["check"])
    assert tuple(args.ops.split(",")) == check.OP_KINDS and args.verbose is False
