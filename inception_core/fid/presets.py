"""Preprocessing presets: each FID tool's resize and normalisation, reproduced exactly.

Every preset maps uint8 RGB images (N, 3, H, W) to the network's float32 input (N, 3, size, size) in
[-1, 1]:
  ``pytorch-fid``: x / 255 (torchvision's ``ToTensor``), ``F.interpolate(..., mode="bilinear",
      align_corners=False)`` to size, then 2x - 1; on the images' device.
  ``torch-fidelity``: float(x), TensorFlow 1.x bilinear resize (``align_corners=False``: source pixel
      = destination pixel x in/out, no half-pixel offset, edge clamped), then (x - 128) / 128; on the
      images' device.
  ``torchmetrics``: float(x), ``F.interpolate(..., mode="bilinear", align_corners=False, antialias=True)``
      (torchmetrics' own network since its ``antialias=True`` default), then (x - 128) / 128; on the device.
  ``clean-fid``: PIL bicubic resize of each channel as a float32 ("F" mode) image, clipped to [0, 255],
      then (x - 128) / 128; the resize runs in PIL on the CPU, as clean-fid's does (``resize_clean``,
      called per image by the data loader), the normalisation on the device.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from inception_core.fid.options import PRESETS  # torch-free: the command line's choices

__all__ = ["PRESETS", "normalize", "preprocess", "resize_clean", "resize_tf1_bilinear"]


def _check_preset(preset: str) -> None:
    if preset not in PRESETS:
        raise ValueError(f"preset: expected one of {list(PRESETS)}, got {preset!r}")


def resize_tf1_bilinear(x: Tensor, size: int) -> Tensor:
    """TensorFlow 1.x ``resize_bilinear`` with ``align_corners=False`` on float (N, C, H, W) -> (N, C, size, size),
    in x's dtype, with torch-fidelity's operation order (its bit-exact "slow" method)."""
    out = []
    for n_in in (x.shape[3], x.shape[2]):  # x (width) first, then y, as torch-fidelity
        grid = torch.arange(0, size, 1, dtype=x.dtype, device=x.device)
        grid = grid * torch.tensor(n_in / size, dtype=torch.float32)
        lo = grid.long()
        hi = (lo + 1).clamp_max(n_in - 1)
        out.append((lo, hi, grid - lo.float()))
    (x_lo, x_hi, dx), (y_lo, y_hi, dy) = out
    rows_lo, rows_hi = x[:, :, y_lo, :], x[:, :, y_hi, :]
    in_00, in_01 = rows_lo[:, :, :, x_lo], rows_lo[:, :, :, x_hi]
    in_10, in_11 = rows_hi[:, :, :, x_lo], rows_hi[:, :, :, x_hi]
    in_0 = in_00 + (in_01 - in_00) * dx.view(1, 1, 1, size)
    in_1 = in_10 + (in_11 - in_10) * dx.view(1, 1, 1, size)
    return in_0 + (in_1 - in_0) * dy.view(1, 1, size, 1)


def resize_clean(image: np.ndarray, size: int = 299) -> np.ndarray:
    """clean-fid's "clean" resize of one (H, W, 3) uint8 image: PIL bicubic on each channel as a float32
    image, clipped to [0, 255] -> (size, size, 3) float32 (not quantised)."""
    from PIL import Image

    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image: expected an (H, W, 3) array, got shape {tuple(image.shape)}")
    channels = []
    for c in range(3):
        img = Image.fromarray(image[:, :, c].astype(np.float32), mode="F")
        img = img.resize((size, size), resample=Image.BICUBIC)
        channels.append(np.asarray(img).clip(0, 255).reshape(size, size, 1))
    return np.concatenate(channels, axis=2).astype(np.float32)


def normalize(x: Tensor, preset: str) -> Tensor:
    """Scale images already at the network's size to [-1, 1] as the preset does: 2 * (x / 255) - 1 for
    pytorch-fid (x uint8, or float already divided by 255), (x - 128) / 128 for the others (x in [0, 255])."""
    _check_preset(preset)
    if preset == "pytorch-fid":
        x = x.float().div(255) if x.dtype == torch.uint8 else x
        return 2 * x - 1
    return (x.float() - 128) / 128


def preprocess(images: Tensor, preset: str, size: int = 299) -> Tensor:
    """uint8 (N, 3, H, W) RGB images -> float32 (N, 3, size, size) network input, on the images' device.

    For ``clean-fid`` the images must already be ``resize_clean``'s float32 output in [0, 255] at
    (size, size) (the data loader resizes each image in PIL), unless they are uint8, which are resized
    here through PIL on the CPU.
    """
    _check_preset(preset)
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images: expected (N, 3, H, W), got shape {tuple(images.shape)}")
    if preset == "clean-fid":
        if images.dtype == torch.uint8:
            arrays = images.permute(0, 2, 3, 1).cpu().numpy()
            resized = np.stack([resize_clean(a, size) for a in arrays])
            images = torch.from_numpy(resized).permute(0, 3, 1, 2).to(images.device)
        elif images.shape[2:] != (size, size):
            raise ValueError(f"images: clean-fid float input must be resize_clean output at {size}x{size}, "
                             f"got {tuple(images.shape[2:])}")
        return normalize(images, preset)
    if images.dtype != torch.uint8:
        raise ValueError(f"images: expected uint8 for the {preset} preset, got {images.dtype}")
    if preset == "pytorch-fid":
        x = images.float().div(255)
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        return 2 * x - 1
    if preset == "torchmetrics":
        x = F.interpolate(images.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    else:
        x = resize_tf1_bilinear(images.float(), size)
    return (x - 128) / 128
