"""Training checkpoints: written atomically, read back with every mismatch named.

A checkpoint is a dict: ``format``, ``model_name``, ``config`` (the run's TrainConfig), ``epoch`` and
``step_in_epoch`` (where the next step starts), ``global_step``, and the state of ``model`` (the bare
network's state_dict, keys as ``inception_core.models.<name>`` has them), ``optimizer``,
``scheduler``, ``scaler``, ``ema`` and ``rng`` (per rank: torch CPU, CUDA, python ``random``; the
trainer draws nothing from numpy), and ``run_id``: the identity of the run (drawn when it starts, kept by
every resume; checkpoints written before it existed lack it).
"""

from __future__ import annotations

import glob
import os
import tempfile

import torch

__all__ = ["FORMAT", "CheckpointError", "check_compatible", "check_resume_target", "load_checkpoint",
           "remove_stale_temporaries", "save_checkpoint"]

FORMAT = "inception_core.train/1"
_REQUIRED = ("format", "model_name", "config", "epoch", "step_in_epoch", "global_step", "model", "optimizer",
             "scheduler", "scaler", "ema", "rng")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be resumed from: unreadable, not ours, or of another run."""


def _temp_prefix(path: str) -> str:
    return ".tmp-" + os.path.basename(path) + "-"


def _umask() -> int:
    """The process's umask, read without changing it where /proc says it (os.umask can only swap it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def remove_stale_temporaries(path: str | os.PathLike) -> list[str]:
    """Delete the temporary files that an interrupted :func:`save_checkpoint` of ``path`` left in its
    directory (a process killed mid-write, SIGKILL included, cannot clean up itself). Call it before the
    run writes ``path`` again, never while another process writes it. Returns the files removed."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    removed = []
    for tmp in glob.glob(os.path.join(glob.escape(directory), glob.escape(_temp_prefix(path)) + "*")):
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            continue
        removed.append(tmp)
    return removed


def save_checkpoint(state: dict, path: str | os.PathLike) -> None:
    """Write ``state`` to ``path`` atomically: a temporary file in the same directory, flushed and
    fsynced, then ``os.replace`` over ``path``. A crash leaves the old file or the new one, never half
    (a killed process may leave its temporary ``.tmp-<name>-*``: :func:`remove_stale_temporaries`).
    The file gets the mode a plain ``open`` would give (0666 less the umask), not mkstemp's 0600."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), dir=directory)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
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
    if os.path.getsize(path) == 0:
        raise CheckpointError(f"--resume {path}: the file is empty (0 bytes), not a checkpoint; a write that "
                              "never finished? Resume from another checkpoint or start a new --output")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first_line = (str(exc).splitlines() or ["no message"])[0][:200]
        raise CheckpointError(f"--resume {path}: cannot read the checkpoint, the file is corrupt or not a torch "
                              f"checkpoint ({type(exc).__name__}: {first_line})") from exc
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


def _recorded_run_id(path: str) -> str | None:
    """The ``run_id`` of the checkpoint at ``path``, None when it records none; raises CheckpointError
    when the file cannot be read as a checkpoint."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:
        raise CheckpointError(f"cannot read it ({type(exc).__name__})") from exc
    return state.get("run_id") if isinstance(state, dict) else None


def check_resume_target(resume: str, output: str, checkpoint_name: str, metrics_name: str, state: dict) -> None:
    """Raise CheckpointError unless resuming ``resume`` (loaded as ``state``) may write into ``output``:
    ``output`` is the resumed checkpoint's own folder, holds no run (no checkpoint, no metrics), or holds
    a checkpoint of the same run (the same recorded ``run_id``). The message names both paths."""
    if not os.path.isdir(output):
        return
    if os.path.samefile(os.path.dirname(os.path.abspath(resume)), output):
        return
    target = os.path.join(output, checkpoint_name)
    metrics = os.path.join(output, metrics_name)
    if os.path.exists(target):
        try:
            found = _recorded_run_id(target)
        except CheckpointError as exc:
            found, why = None, f"holds a checkpoint {target} that cannot be read ({exc})"
        else:
            why = f"holds a checkpoint of another run ({target})"
        if found is not None and found == state.get("run_id"):
            return
    elif os.path.exists(metrics):
        why = f"holds the metrics of another run ({metrics}) and no checkpoint of the resumed one"
    else:
        return
    raise CheckpointError(f"--resume {resume} --output {output}: {output} {why}; resuming would overwrite it. "
                          f"Resume into the run's own folder (--output {os.path.dirname(os.path.abspath(resume))}), "
                          "an empty directory, or move the other run away")
