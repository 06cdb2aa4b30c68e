"""inception_core.ops._dispatch: one backend per call, the cuda backend's slice contract, and the ops
without cuda kernels."""

import warnings

import pytest
import torch

import inception_core
from inception_core import _cuda_ext, backends
from inception_core.ops import _dispatch, avg_pool2d, conv_bn_act, max_pool2d

CL = torch.channels_last


class _RecordingCudaOps:
    """Stands in for torch.ops.inception_core_cuda: records what each op receives."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda *args: self.calls.append((name, tuple(args[-2].shape), args[-1]))


@pytest.fixture
def cuda_ops(monkeypatch):
    fake = _RecordingCudaOps()
    monkeypatch.setattr(backends, "cuda_status", lambda device: None)
    monkeypatch.setattr(_cuda_ext, "ops", lambda: fake)
    return fake


def test_cuda_backend_gets_the_whole_out_and_its_offset(cuda_ops):
    x = torch.randn(1, 3, 4, 4)
    out = torch.empty(1, 12, 4, 4).contiguous(memory_format=CL)
    with inception_core.backend("cuda"):
        conv_bn_act(x, torch.randn(4, 3, 1, 1), out=out, out_offset=5)
        max_pool2d(x, 3, 1, 1, out=out, out_offset=2)
        avg_pool2d(x, 3, 1, 1, out=out, out_offset=9)
        conv_bn_act(x, torch.randn(4, 3, 1, 1))  # a result of its own: offset 0 of a fresh tensor
    assert cuda_ops.calls == [("conv_bn_act_out", (1, 12, 4, 4), 5), ("max_pool2d_out", (1, 12, 4, 4), 2),
                              ("avg_pool2d_out", (1, 12, 4, 4), 9), ("conv_bn_act_out", (1, 4, 4, 4), 0)]


def test_run_picks_the_resolved_backend_once(monkeypatch):
    seen = []
    monkeypatch.setattr(_dispatch, "backend_for", lambda x, op: seen.append(op) or "triton")
    impls = {"triton": lambda v: ("triton", v), "torch": lambda v: ("torch", v)}
    assert _dispatch.run("some_op", torch.zeros(1), impls, 7) == ("triton", 7)
    assert seen == ["some_op"]


def test_an_op_without_cuda_kernels_runs_on_torch_and_says_so_once(monkeypatch):
    monkeypatch.setattr(_dispatch, "backend_for", lambda x, op: "cuda")
    monkeypatch.setattr(_dispatch, "_warned_no_cuda", set())
    impls = {"triton": lambda: "triton", "torch": lambda: "torch"}
    with pytest.warns(RuntimeWarning, match="the cuda backend has no train_op kernel"):
        assert _dispatch.run("train_op", torch.zeros(1), impls) == "torch"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _dispatch.run("train_op", torch.zeros(1), impls) == "torch"
    assert _dispatch.resolve(torch.zeros(1), "train_op") == "cuda"  # an op with cuda kernels keeps it
