"""The FID Inception weights: the public files pytorch-fid and torch-fidelity use, from a path, torch.hub's
cache, or a download through torch.hub when the network allows."""

from __future__ import annotations

import os

import torch

__all__ = ["WEIGHT_FILES", "WeightsNotFoundError", "fid_weights_state_dict"]

# file name -> URL it is published at (the same 2015-12-05 graph; torch-fidelity's file has no
# num_batches_tracked). The first is the one downloaded.
WEIGHT_FILES = {
    "pt_inception-2015-12-05-6726825d.pth":
        "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
    "weights-inception-2015-12-05-6726825d.pth":
        "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth",
}


class WeightsNotFoundError(FileNotFoundError):
    """No FID weights file was given, cached or downloadable."""


def _hub_checkpoints() -> str:
    return os.path.join(torch.hub.get_dir(), "checkpoints")


def _load(path: str) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated download, an HTML error page saved as .pth, ...
        raise ValueError(f"{path}: not a readable PyTorch weights file ({type(exc).__name__}: {exc})") from exc
    if not isinstance(state, dict) or "Conv2d_1a_3x3.conv.weight" not in state:
        raise ValueError(f"{path}: not an FID Inception state_dict (no 'Conv2d_1a_3x3.conv.weight' key)")
    return state


def fid_weights_state_dict(path: str | os.PathLike | None = None, download: bool = True) -> dict:
    """The FID Inception state_dict (torchvision's key names, 1008-class ``fc``).

    ``path`` given: that file. Else the first of ``WEIGHT_FILES`` found in torch.hub's cache
    (``$TORCH_HOME/hub/checkpoints``), else (``download``) pytorch-fid's file fetched into that cache.

    Raises:
        WeightsNotFoundError: no file, nothing cached and the download failed or was not allowed; the
            message names the file to place and where.
        ValueError: the file is not an FID Inception state_dict.
    """
    if path is not None:
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise WeightsNotFoundError(f"--weights {path}: no such file")
        return _load(path)
    cache = _hub_checkpoints()
    for name in WEIGHT_FILES:
        cached = os.path.join(cache, name)
        if os.path.isfile(cached):
            return _load(cached)
    name, url = next(iter(WEIGHT_FILES.items()))
    reason = "downloading is off"
    if download:
        try:
            os.makedirs(cache, exist_ok=True)
            torch.hub.download_url_to_file(url, os.path.join(cache, name), progress=True)
            return _load(os.path.join(cache, name))
        except (OSError, RuntimeError) as exc:  # URLError is an OSError
            reason = f"the download failed ({type(exc).__name__}: {exc})"
    raise WeightsNotFoundError(
        f"FID Inception weights not found and {reason}. Place {name} (from {url}) or "
        f"{list(WEIGHT_FILES)[1]} in {cache}, or pass --weights FILE (weights=... in Python)")
