"""Backend selection: set_backend, the context manager, the environment variable, auto rules."""

import warnings

import pytest
import torch

import inception_core
from inception_core import backends
from inception_core.kernels import INTERPRETED


def test_default_is_auto_and_set_backend_round_trips(monkeypatch):
    monkeypatch.delenv(backends.ENV_VAR, raising=False)
    assert inception_core.get_backend() == "auto"
    inception_core.set_backend("torch")
    assert inception_core.get_backend() == "torch"
    inception_core.set_backend("TRITON")
    assert inception_core.get_backend() == "triton"


def test_context_manager_nests_and_restores():
    inception_core.set_backend("auto")
    with inception_core.backend("torch"):
        assert inception_core.get_backend() == "torch"
        with inception_core.backend("triton"):
            assert inception_core.get_backend() == "triton"
        assert inception_core.get_backend() == "torch"
    assert inception_core.get_backend() == "auto"


def test_environment_variable(monkeypatch):
    backends._configured = None
    monkeypatch.setenv(backends.ENV_VAR, "torch")
    assert inception_core.get_backend() == "torch"
    monkeypatch.setenv(backends.ENV_VAR, "bogus")
    with pytest.raises(ValueError, match=backends.ENV_VAR):
        inception_core.get_backend()


@pytest.mark.parametrize("name", ["bogus", "", None, "cudnn"])
def test_unknown_backend_is_rejected(name):
    with pytest.raises(ValueError, match="set_backend"):
        inception_core.set_backend(name)


def test_cuda_backend_is_named_and_refuses_cpu_tensors():
    assert backends.AVAILABLE_BACKENDS == ("triton", "cuda", "torch")
    inception_core.set_backend("CUDA")
    assert inception_core.get_backend() == "cuda"
    with pytest.raises(backends.BackendUnavailableError, match="backend 'cuda' cannot run op on cpu: .*CUDA tensors"):
        backends.resolve_backend(torch.device("cpu"), "op")


def test_forced_cuda_backend_says_why_it_cannot_run(monkeypatch):
    monkeypatch.setattr(backends, "cuda_status", lambda device: "the extension was not built")
    with inception_core.backend("cuda"), pytest.raises(backends.BackendUnavailableError, match="not built"):
        backends.resolve_backend(torch.device("cuda"), "op")
    monkeypatch.setattr(backends, "cuda_status", lambda device: None)
    with inception_core.backend("cuda"):
        assert backends.resolve_backend(torch.device("cuda"), "op") == "cuda"


def test_auto_on_cuda_prefers_triton_then_cuda_then_torch(monkeypatch):
    monkeypatch.setattr(backends, "_warned", set())
    monkeypatch.setattr(backends, "cuda_status", lambda device: None)
    monkeypatch.setattr(backends, "triton_status", lambda device: None)
    assert backends.resolve_backend(torch.device("cuda"), "op") == "triton"
    monkeypatch.setattr(backends, "triton_status", lambda device: "triton is broken here")
    with pytest.warns(RuntimeWarning, match="triton is broken here.*cuda backend"):
        assert backends.resolve_backend(torch.device("cuda"), "op") == "cuda"
    monkeypatch.setattr(backends, "cuda_status", lambda device: "no prebuilt extension")
    with pytest.warns(RuntimeWarning, match="no prebuilt extension.*torch reference"):
        assert backends.resolve_backend(torch.device("cuda"), "op") == "torch"


def test_float64_is_refused_by_the_cuda_backend(monkeypatch):
    monkeypatch.setattr(backends, "resolve_backend", lambda device, op: "cuda")
    with pytest.raises(TypeError, match="^x: float64 is not supported by the cuda backend"):
        backends.backend_for(torch.randn(1, 1, 2, 2, dtype=torch.float64), "op")


def test_backend_status_by_name():
    cpu = torch.device("cpu")
    assert backends.backend_status("torch", cpu) is None
    assert backends.backend_status("cuda", cpu) is not None
    assert backends.backend_status("triton", cpu) == backends.triton_status(cpu)
    with pytest.raises(ValueError, match="^name: "):
        backends.backend_status("auto", cpu)


def test_auto_on_cpu():
    expected = "triton" if INTERPRETED else "torch"
    assert backends.resolve_backend(torch.device("cpu"), "op") == expected


def test_auto_on_cuda_falls_back_with_one_warning(monkeypatch):
    monkeypatch.setattr(backends, "triton_status", lambda device: "triton is broken here")
    monkeypatch.setattr(backends, "_warned", set())
    with pytest.warns(RuntimeWarning, match="triton is broken here"):
        assert backends.resolve_backend(torch.device("cuda"), "op") == "torch"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert backends.resolve_backend(torch.device("cuda"), "op") == "torch"  # no second warning
    with inception_core.backend("triton"), pytest.raises(backends.BackendUnavailableError, match="broken"):
        backends.resolve_backend(torch.device("cuda"), "op")


def test_triton_on_cpu_without_interpreter_says_why():
    if INTERPRETED:
        pytest.skip("the kernels were imported under the interpreter, which runs on CPU tensors")
    reason = backends.triton_status(torch.device("cpu"))
    assert reason is not None and "CUDA" in reason


def test_backend_context_does_not_reach_new_threads():
    """Documented behaviour: ``backend()`` is per thread (a context variable); set_backend is per process."""
    import threading

    seen = {}
    inception_core.set_backend("auto")
    with inception_core.backend("torch"):
        thread = threading.Thread(target=lambda: seen.setdefault("backend", inception_core.get_backend()))
        thread.start()
        thread.join()
    assert seen["backend"] == "auto"
    assert "thread" in backends.backend.__doc__


@pytest.mark.skipif(not INTERPRETED, reason="the lock serialises Triton's CPU interpreter only")
def test_interpreted_launches_from_several_threads():
    """The interpreter keeps a launch's state in module globals: without the lock, two threads launching
    at once fail with InterpreterError or compute wrong values."""
    import threading

    from inception_core.ops import conv_bn_act, conv_bn_act_ref, max_pool2d, max_pool2d_ref

    x = torch.randn(1, 16, 4, 4)
    w = torch.randn(16, 16, 3, 3)
    expected = (conv_bn_act_ref(x, w, padding=1), max_pool2d_ref(x, 3, 1, 1))
    errors, results = [], []
    start = threading.Barrier(4)

    def work():
        try:
            start.wait()
            with inception_core.backend("triton"):
                results.append((conv_bn_act(x, w, padding=1), max_pool2d(x, 3, 1, 1)))
        except Exception as exc:  # collected: an exception in a thread would not fail the test
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(results) == 4
    for conv, pool in results:
        torch.testing.assert_close(conv, expected[0], rtol=1e-5, atol=1e-4)
        torch.testing.assert_close(pool, expected[1])


def test_backend_status_is_computed_once_per_device(monkeypatch):
    calls = []
    monkeypatch.setattr(backends, "_status_cache", {})
    monkeypatch.setitem(backends._STATUS, "cuda", lambda device, _: calls.append(device) or "no extension")
    for index in (1, 1, 0, 1):
        assert backends.cuda_status(torch.device("cuda", index)) == "no extension"
    assert calls == [torch.device("cuda", 1), torch.device("cuda", 0)]
