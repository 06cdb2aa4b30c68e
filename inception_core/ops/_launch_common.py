"""Facts the host launchers of every op derive the same way: index width, matmul precision,
accumulation dtype, the device context. Kept free of triton imports (the torch backend must work
without triton installed).
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor

__all__ = ["INT32_LIMIT", "acc_dtype", "device_context", "empty", "input_precision", "needs_int64"]

INT32_LIMIT = 2**31 - 1  # past this many elements a storage's offsets need int64 arithmetic


def storage_elems(t: Tensor) -> int:
    """Elements of ``t``'s storage (a slice or strided view reaches past its own numel)."""
    return max(t.numel(), t.untyped_storage().nbytes() // t.element_size())


def needs_int64(*tensors: Tensor | None) -> bool:
    """Whether a kernel indexing these tensors (None skipped) needs int64 offsets (``USE_INT64``)."""
    return max(storage_elems(t) for t in tensors if t is not None) > INT32_LIMIT


def input_precision(x: Tensor) -> str:
    """``INPUT_PRECISION`` of the conv kernels: fp32 inputs follow cuDNN's flag, as torch's own
    convolutions do (default: TF32 allowed); other dtypes multiply exactly."""
    return "tf32" if (x.dtype == torch.float32 and torch.backends.cudnn.allow_tf32) else "ieee"


def acc_dtype(t: Tensor) -> torch.dtype:
    """Accumulation dtype for ``t``: float64 for float64, else float32."""
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def device_context(t: Tensor):
    """``t``'s CUDA device made current (kernels launch there), a no-op context on the CPU."""
    return torch.cuda.device(t.device) if t.device.type == "cuda" else contextlib.nullcontext()


def empty(t: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    """A 0-element tensor on ``t``'s device: the placeholder a custom op returns for a result it skips."""
    return torch.empty(0, dtype=dtype or t.dtype, device=t.device)
