"""What the op benchmarks share: a case names one layer of a real network (its first layer of that geometry
in ``inception_core.shapes``) and where the layer's output goes; the input size a case runs at (native on a
GPU, reduced on a CPU: channels and kernel geometry kept); the concat buffer a layer writes its slice of;
which providers are ours."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from inception_core import backends
from inception_core.bench import DTYPES
from inception_core.testing import reduced_hw

OURS = ("triton", "cuda", "torch")  # inception_core's backends; the other providers are the references


@dataclass(frozen=True)
class LayerCase:
    label: str
    model: str
    layer: str                       # first layer of that geometry in inception_core.shapes
    cat: tuple[int, int] | None      # (concat width, channel offset) when the output goes into the concat
    res_scale: float | None = None   # Inception-ResNet up-projection: residual add with this scale

    def shape_in(self, catalogue):
        """This layer's record in ``catalogue`` (``CONV_SHAPES`` or ``POOL_SHAPES``)."""
        return next(s for s in catalogue if s.model == self.model and s.layer == self.layer)

    @property
    def offset(self) -> int:
        """The output's first channel in the concat buffer (0 without one)."""
        return self.cat[1] if self.cat else 0


def case_ids(cases) -> list[str]:
    return [c.label.replace(" ", "_") for c in cases]


def input_hw(shape, on_gpu: bool) -> tuple[int, int]:
    """The layer's input size: native on a GPU, ``reduced_hw`` on a CPU."""
    return shape.in_hw if on_gpu else reduced_hw(shape)


def concat_buffer(case: LayerCase, n: int, out_hw, dtype: torch.dtype, device) -> torch.Tensor | None:
    """The block's NaN-filled channels_last concat buffer the layer writes its slice of, or None."""
    if case.cat is None:
        return None
    out = torch.full((n, case.cat[0], *out_hw), float("nan"), device=device, dtype=dtype)
    return out.contiguous(memory_format=torch.channels_last)


def start_case(provider: str, dtype_name: str, require_provider) -> tuple[torch.dtype, bool, bool]:
    """(dtype, ours, interpreted) of a case: its dtype, whether ``provider`` is one of our backends, and
    whether it is Triton under the interpreter (timings meaningless: one round). Skips the case (through
    conftest's ``require_provider``) when our backend cannot run on this device."""
    require_provider(provider)
    return DTYPES[dtype_name], provider in OURS, provider == "triton" and backends.interpreter_enabled()
