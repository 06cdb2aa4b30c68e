"""The Triton launches a network's forward (and backward) will make, found without running a kernel.

``plan_launches`` runs each network once under ``inception_core.launch.recording()``: every launch is
recorded (kernel, chosen config, constexprs, argument types and specialization) and skipped, so the
outputs are garbage but every shape, and therefore every launch, is the real one. ``inception-core
warmup`` compiles what a plan lists; ``inception-core tune`` times the configs of its problems.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

import torch

__all__ = ["DTYPES", "distinct_problems", "distinct_variants", "plan_launches", "problem_key"]

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def _logits(out):
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)):
        return _logits(out[0])
    return _logits(next(iter(vars(out).values())) if hasattr(out, "__dict__") else out[0])


def plan_launches(models: Sequence[str], *, dtype: str = "bf16", batch_size: int = 256, mode: str = "infer",
                  device: torch.device | str = "cpu", image_size: int | None = None, gpu: bool = False,
                  tables: bool = True) -> list:
    """Record the launches of each network's first step.

    Args:
        models: registry names (``inception_core.models.list_models()``).
        dtype: "fp32", or "fp16" / "bf16" through autocast (the documented way to run them).
        batch_size, image_size: the input (default size: the network's native one).
        mode: "infer" (eval forward, no grad) or "train" (train-mode forward and backward of the summed
            logits).
        device: where the (unused) tensors live; a CPU needs the interpreter (``TRITON_INTERPRET=1``).
        gpu: plan for a GPU from a CPU (GPU config lists; see ``launch.recording``).
        tables: take configs from the tuned tables where they have one (else the heuristic's).

    Returns:
        ``LaunchRecord`` s in launch order, over all networks.
    """
    import inception_core as ic
    from inception_core.launch import recording
    from inception_core.shapes import NATIVE_INPUT

    if mode not in ("infer", "train"):
        raise ValueError(f"mode: expected 'infer' or 'train', got {mode!r}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype: expected one of {sorted(DTYPES)}, got {dtype!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size: expected >= 1, got {batch_size}")
    device = torch.device(device)
    records: list = []
    for name in models:
        with torch.device("meta"):  # no weight init: a plan needs shapes only
            model = ic.models.create_model(name)
        model = model.to_empty(device=device).train(mode == "train")
        size = image_size or NATIVE_INPUT[name]
        x = torch.randn(batch_size, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
        low = dtype != "fp32"
        autocast = torch.autocast(device.type, dtype=DTYPES[dtype]) if low else torch.autocast(device.type,
                                                                                                 enabled=False)
        with ic.backend("triton"), recording(gpu=gpu, tables=tables) as rec:
            if mode == "infer":
                with torch.no_grad(), autocast:
                    model(x)
            else:
                with autocast:
                    loss = _logits(model(x)).float().sum()
                loss.backward()
        records.extend(rec)
        del model
    return records


def problem_key(record) -> tuple:
    """What a tuned table keys a config by: kernel, autotune key values, input dtype, other constexprs."""
    elem = next(a for a in record.args if hasattr(a, "dtype"))
    return (record.kernel, json.dumps(record.problem, sort_keys=True), str(elem.dtype),
            json.dumps(record.meta, sort_keys=True, default=str))


def distinct_problems(records: Iterable) -> list:
    """The first record of each problem with a config choice (fixed-tile kernels left out), in order."""
    seen: dict[tuple, object] = {}
    for r in records:
        if r.problem:
            seen.setdefault(problem_key(r), r)
    return list(seen.values())


def distinct_variants(records: Iterable) -> list:
    """The first record of each compile unit, in order."""
    seen: dict[tuple, object] = {}
    for r in records:
        seen.setdefault(r.variant, r)
    return list(seen.values())
