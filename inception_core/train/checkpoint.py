"""Training checkpoints: written atomically, read back with every mismatch named.

A checkpoint is a dict: ``format``, ``model_name``, ``config`` (the run's TrainConfig), ``epoch`` and
``step_in_epoch`` (where the next step starts), ``global_step``, and the state of ``model`` (the bare
network's state_dict, keys as ``inception_core.models.<name>`` has them), ``optimizer``,
``scheduler``, ``scaler``, ``ema`` and ``rng`` (per rank: torch CPU, CUDA, python ``random``; the
trainer draws nothing from numpy).
"""

from __future__ import annotations

import os
import tempfile

import torch

__all__ = ["FORMAT", "CheckpointError", "check_compatible", "load_checkpoint", "save_checkpoint"]

FORMAT = "inception_core.train/1"
_REQUIRED = ("format", "model_name", "config", "epoch", "step_in_epoch", "global_step", "model", "optimizer",
             "scheduler", "scaler", "ema", "rng")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be resumed from: unreadable, not ours, or of another run."""


def save_checkpoint(state: dict, path: str | os.PathLike) -> None:
    """Write ``state`` to ``path`` atomically: a temporary file in the same directory, flushed and
    fsynced, then ``os.replace`` over ``path``. A crash leaves the old file or the new one, never half."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-" + os.path.basename(path) + "-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors on the CPU). Raises
    CheckpointError when the file is missing, unreadable or not a training checkpoint of this trainer."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"--resume {path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"--resume {path}: cannot read the checkpoint, the file is corrupt or not a torch "
                              f"checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"--resume {path}: not an inception_core training checkpoint (format {found!r}, "
                              f"expected {FORMAT!r}); a bare state_dict cannot be resumed from")
    missing = [k for k in _REQUIRED if k not in state]
    if missing:
        raise CheckpointError(f"--resume {path}: incomplete checkpoint, missing {missing}")
    return state


def check_compatible(state: dict, config: dict, must_match: tuple[str, ...], path: str) -> None:
    """Raise CheckpointError unless the checkpoint is of ``config['model']`` and every field in
    ``must_match`` equals the checkpoint's; the message names each difference."""
    if state["model_name"] != config["model"]:
        raise CheckpointError(f"--resume {path}: the checkpoint is of network {state['model_name']!r}, "
                              f"but --model is {config['model']!r}")
    saved = state["config"]
    diffs = [f"{k}: checkpoint {saved.get(k)!r}, now {config.get(k)!r}" for k in must_match
             if saved.get(k) != config.get(k)]
    if diffs:
        raise CheckpointError(f"--resume {path}: the run's configuration differs from the checkpoint's ("
                              + "; ".join(diffs) + "); resume with the same settings or start a new --output")
