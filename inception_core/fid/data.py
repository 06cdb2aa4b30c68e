"""Image folders for the FID commands: the files pytorch-fid reads, decoded with PIL, a bad image named or
skipped, and the file list split over the processes of a ``torchrun`` job."""

from __future__ import annotations

import os
import pathlib

import numpy as np
import torch
from torch import Tensor

from inception_core.fid.presets import resize_clean

__all__ = ["IMAGE_EXTENSIONS", "BadImageError", "ImageFiles", "collate_images", "list_images"]

# pytorch-fid's extensions, in lower and upper case
IMAGE_EXTENSIONS = ("bmp", "jpg", "jpeg", "pgm", "png", "ppm", "tif", "tiff", "webp")


class BadImageError(ValueError):
    """An image file that PIL cannot decode."""


def list_images(folder: str | os.PathLike) -> list[str]:
    """The image files directly in ``folder`` (by extension, any case), sorted by path.

    Raises:
        FileNotFoundError: no such folder.
        ValueError: the folder holds no image file.
    """
    path = pathlib.Path(folder)
    if not path.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder (expected a folder of images or an .npz stats file)")
    files = sorted(str(p) for p in path.iterdir()
                   if p.is_file() and p.suffix[1:].lower() in IMAGE_EXTENSIONS)
    if not files:
        raise ValueError(f"{folder}: no image files (looked for {', '.join(IMAGE_EXTENSIONS)})")
    return files


class ImageFiles(torch.utils.data.Dataset):
    """Decodes one file per item -> (index, image) with image (3, H, W) uint8 RGB, or for the clean-fid
    preset the (3, size, size) float32 output of its PIL resize; (index, None) for a file that does not
    decode when ``skip_bad`` (else ``BadImageError`` naming the file)."""

    def __init__(self, files: list[str], preset: str, size: int = 299, skip_bad: bool = False) -> None:
        self.files, self.preset, self.size, self.skip_bad = files, preset, size, skip_bad

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[int, Tensor | None]:
        from PIL import Image

        path = self.files[i]
        try:
            with Image.open(path) as img:
                array = np.array(img.convert("RGB"))
        except (OSError, ValueError, SyntaxError) as exc:  # PIL's errors for truncated / unknown files
            if self.skip_bad:
                return i, None
            raise BadImageError(f"{path}: cannot read the image ({type(exc).__name__}: {exc}); "
                                f"--skip-bad-images skips such files") from exc
        if self.preset == "clean-fid":
            array = resize_clean(array, self.size)
        return i, torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def collate_images(items: list[tuple[int, Tensor | None]]) -> tuple[list[Tensor], int]:
    """A batch -> (the decoded images, the number of skipped files)."""
    images = [img for _, img in items if img is not None]
    return images, len(items) - len(images)
