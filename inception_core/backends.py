"""Backend selection for the fused ops.

Backends:
    ``triton``: the Triton kernels in ``inception_core.kernels`` (CUDA tensors; CPU tensors only when
        ``TRITON_INTERPRET=1`` was set before the kernels were imported).
    ``cuda``: the CUDA C++ kernels of csrc/ (CUDA tensors; float32, float16, bfloat16), from the
        extension setup.py built or compiled at first use (``inception_core._cuda_ext``).
    ``torch``: the same functions composed from stock PyTorch ops; runs anywhere, and is the oracle
        the other backends are tested against.
    ``auto`` (default): CUDA tensors -> triton, then cuda, then torch, with one warning that says why;
        CPU tensors -> torch, or triton when ``TRITON_INTERPRET=1``.

A backend named explicitly that cannot run a call raises ``BackendUnavailableError`` with the reason.

The choice comes, highest first, from the ``backend(name)`` context manager, ``set_backend(name)``,
and the ``INCEPTION_CORE_BACKEND`` environment variable.

Threads: ``backend(name)`` holds its choice in a context variable, so it applies to the thread (or
asyncio task) that entered it; a thread started inside it begins with the process-wide choice
(``set_backend`` / the environment variable). Enter ``backend(name)`` inside the thread, or start the
thread's target through ``contextvars.copy_context().run``. Under Triton's interpreter, launches from
several threads run one at a time (the interpreter keeps a launch's state in module globals).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib.util
import os
import threading
import warnings
from collections.abc import Iterator

import torch

__all__ = [
    "AVAILABLE_BACKENDS",
    "BackendUnavailableError",
    "backend",
    "backend_for",
    "backend_status",
    "cuda_status",
    "get_backend",
    "interpreter_enabled",
    "resolve_backend",
    "set_backend",
    "triton_status",
]

ENV_VAR = "INCEPTION_CORE_BACKEND"
# Backends that exist in this build; "auto" is a policy, not a backend.
AVAILABLE_BACKENDS: tuple[str, ...] = ("triton", "cuda", "torch")
_CHOICES = ("auto", *AVAILABLE_BACKENDS)

_configured: str | None = None  # set_backend(); None -> environment variable, then "auto"
_scoped: contextvars.ContextVar[str | None] = contextvars.ContextVar("inception_core_backend", default=None)
_warned: set[str] = set()
_interpreter_lock = threading.RLock()


class BackendUnavailableError(RuntimeError):
    """A backend that was asked for by name cannot run the call."""


def _validate(name: object, source: str) -> str:
    if not isinstance(name, str) or name.lower() not in _CHOICES:
        raise ValueError(f"{source}: expected one of {list(_CHOICES)}, got {name!r}")
    return name.lower()


def set_backend(name: str) -> None:
    """Select the backend for every later call in this process ("auto", "triton", "cuda" or "torch")."""
    global _configured
    _configured = _validate(name, "set_backend(name)")


def get_backend() -> str:
    """The backend in force: the innermost ``backend()`` context, else ``set_backend``, else the
    ``INCEPTION_CORE_BACKEND`` environment variable, else ``"auto"``."""
    scoped = _scoped.get()
    if scoped is not None:
        return scoped
    if _configured is not None:
        return _configured
    env = os.environ.get(ENV_VAR, "").strip()
    return _validate(env, f"environment variable {ENV_VAR}") if env else "auto"


@contextlib.contextmanager
def backend(name: str) -> Iterator[str]:
    """Context manager that runs its body with the given backend.

    The choice is a context variable: it holds in this thread (and asyncio task) only. A thread
    started inside the ``with`` block does not see it and uses the process-wide choice
    (``set_backend``, else ``INCEPTION_CORE_BACKEND``, else auto); enter ``backend(name)`` in the
    thread itself, or run its target through ``contextvars.copy_context().run``."""
    token = _scoped.set(_validate(name, "backend(name)"))
    try:
        yield _scoped.get()
    finally:
        _scoped.reset(token)


def interpreter_enabled() -> bool:
    """True when ``TRITON_INTERPRET`` asks for Triton's CPU interpreter."""
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "yes", "on")


@functools.lru_cache(maxsize=1)
def _triton_import_error() -> str | None:
    if importlib.util.find_spec("triton") is None:
        return "the triton package is not installed"
    try:
        import triton  # noqa: F401
    except Exception as exc:  # a broken triton install must not break the torch backend
        return f"importing triton failed: {exc}"
    return None


def triton_status(device: torch.device) -> str | None:
    """None when the triton backend can run on ``device``, else the reason it cannot (cached per device
    and interpreter setting: the answer cannot change while the process runs)."""
    return _cached_status("triton", torch.device(device), interpreter_enabled())


def _triton_device_status(device: torch.device, interp_now: bool) -> str | None:
    err = _triton_import_error()
    if err is not None:
        return err
    from inception_core import kernels  # imported here: TRITON_INTERPRET is read at decoration time

    if kernels.INTERPRETED != interp_now:
        return (
            f"TRITON_INTERPRET is {'set' if interp_now else 'unset'} now but was "
            f"{'set' if kernels.INTERPRETED else 'unset'} when inception_core.kernels was imported; "
            "set it before the first import"
        )
    if kernels.INTERPRETED:
        _serialize_interpreted_launches()
        return None  # the interpreter runs on CPU and CUDA tensors alike
    if device.type != "cuda":
        return f"Triton kernels run on CUDA tensors, got a tensor on {device.type} (set TRITON_INTERPRET=1 for CPU)"
    if not torch.cuda.is_available():
        return "CUDA is not available"
    major, _ = torch.cuda.get_device_capability(device)
    if major < 8:
        return f"the kernels need compute capability >= 8.0, device {device} has {major}.x"
    return None


def _serialize_interpreted_launches() -> None:
    """Make every launch through Triton's interpreter hold one process-wide lock.

    The interpreter runs a launch by swapping interpreted versions into ``triton.language`` and keeping
    the grid index in a module global; two threads launching at once see each other's state and fail
    (InterpreterError) or compute wrong values. Installed once, at the first dispatch to the triton
    backend under the interpreter; compiled (GPU) launches are untouched."""
    from triton.runtime import interpreter

    executor = interpreter.GridExecutor
    if getattr(executor.__call__, "_inception_core_serialized", False):
        return
    launch = executor.__call__

    @functools.wraps(launch)
    def serialized(self, *args, **kwargs):
        with _interpreter_lock:
            return launch(self, *args, **kwargs)

    serialized._inception_core_serialized = True
    executor.__call__ = serialized


def cuda_status(device: torch.device) -> str | None:
    """None when the cuda backend (csrc/) can run on ``device``, else the reason it cannot (cached per
    device). On a CUDA device without the prebuilt extension this compiles csrc/ once (cached on disk)."""
    return _cached_status("cuda", torch.device(device), False)


def _cuda_device_status(device: torch.device, _: bool) -> str | None:
    from inception_core import _cuda_ext

    return _cuda_ext.cuda_status(device)


_status_cache: dict[tuple[str, torch.device, bool], str | None] = {}
_STATUS = {"triton": _triton_device_status, "cuda": _cuda_device_status}


def _cached_status(name: str, device: torch.device, interp_now: bool) -> str | None:
    """The status of backend ``name`` on ``device``, computed once per (device, interpreter setting)."""
    key = (name, device, interp_now)
    if key not in _status_cache:
        _status_cache[key] = _STATUS[name](device, interp_now)
    return _status_cache[key]


def backend_status(name: str, device: torch.device) -> str | None:
    """None when backend ``name`` ("triton", "cuda" or "torch") can run on ``device``, else why not."""
    if name == "torch":
        return None
    if name == "triton":
        return triton_status(device)
    if name == "cuda":
        return cuda_status(device)
    raise ValueError(f"name: expected one of {list(AVAILABLE_BACKENDS)}, got {name!r}")


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def resolve_backend(device: torch.device, op: str) -> str:
    """The concrete backend ("triton", "cuda" or "torch") that runs ``op`` on ``device``.

    Raises:
        BackendUnavailableError: a backend forced by name cannot run on this device.
    """
    name = get_backend()
    if name == "torch":
        return "torch"
    if name == "cuda":
        cuda_reason = cuda_status(device)
        if cuda_reason is not None:
            raise BackendUnavailableError(f"backend 'cuda' cannot run {op} on {device}: {cuda_reason}")
        return "cuda"
    reason = triton_status(device)
    if name == "triton":
        if reason is not None:
            raise BackendUnavailableError(f"backend 'triton' cannot run {op} on {device}: {reason}")
        return "triton"
    # auto
    if device.type == "cuda":
        if reason is None:
            return "triton"
        cuda_reason = cuda_status(device)
        if cuda_reason is None:
            _warn_once(f"auto-cuda-{reason}",
                       f"inception_core: triton backend unavailable ({reason}); running on the cuda backend")
            return "cuda"
        _warn_once(
            f"auto-cuda-{reason}-{cuda_reason}",
            f"inception_core: triton backend unavailable ({reason}) and cuda backend unavailable "
            f"({cuda_reason}); running on the torch reference ops",
        )
        return "torch"
    if interpreter_enabled() and reason is None:
        return "triton"
    return "torch"


def backend_for(x: torch.Tensor, op: str) -> str:
    """``resolve_backend`` for an op's input ``x``, plus the dtype rules: float64 runs on the triton
    backend only through the interpreter, and never on the cuda backend.

    Raises:
        BackendUnavailableError: as resolve_backend.
        TypeError: float64 ``x`` on the compiled triton backend or on the cuda backend.
    """
    chosen = resolve_backend(x.device, op)
    if chosen == "cuda" and x.dtype == torch.float64:
        raise TypeError(f"x: float64 is not supported by the cuda backend ({op}); use float32, float16 or "
                        "bfloat16, or the torch backend")
    if chosen == "triton" and x.dtype == torch.float64:
        from inception_core import kernels

        if not kernels.INTERPRETED:
            raise TypeError(f"x: float64 is not supported by the triton backend ({op}); use float32, "
                            "float16 or bfloat16, or the torch backend")
    return chosen
