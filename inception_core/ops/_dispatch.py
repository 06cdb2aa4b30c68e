"""Backend dispatch of the fused ops: each call resolves its backend once (``inception_core.backends``,
whose device status is cached per device) and runs that backend's implementation.

An op gives a table ``{"triton": f, "cuda": g, "torch": h}``. An op without a cuda entry (the training
and backward ops: csrc/ has forward kernels only) runs its torch implementation when the cuda backend
is chosen, with a one-time warning that says so.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import TypeVar

import torch
from torch import Tensor

from inception_core.backends import backend_for

__all__ = ["no_autocast", "resolve", "run"]

T = TypeVar("T")
_warned_no_cuda: set[str] = set()


def resolve(x: Tensor, op: str, *, has_cuda: bool = True) -> str:
    """"triton", "cuda" or "torch": the backend that runs ``op`` on ``x`` (``backends.backend_for``).

    ``has_cuda=False``: the op has no cuda kernel, so a cuda choice runs on "torch" (warned once per op).

    Raises:
        BackendUnavailableError, TypeError: as ``backends.backend_for``.
    """
    chosen = backend_for(x, op)
    if chosen == "cuda" and not has_cuda:
        if op not in _warned_no_cuda:
            _warned_no_cuda.add(op)
            warnings.warn(f"inception_core: the cuda backend has no {op} kernel; running {op} on the torch "
                          "reference ops", RuntimeWarning, stacklevel=3)
        return "torch"
    return chosen


def run(op: str, x: Tensor, impls: Mapping[str, Callable[..., T]], *args) -> T:
    """``impls[backend](*args)`` for the backend ``resolve`` picks for ``op`` on ``x``."""
    return impls[resolve(x, op, has_cuda="cuda" in impls)](*args)


def no_autocast(t: Tensor):
    """Context that turns autocast off: the ops compute in their inputs' dtypes on every backend."""
    return torch.autocast(t.device.type, enabled=False)
