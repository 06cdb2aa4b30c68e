"""Training data: a generated, learnable dataset (``synthetic``) or an ImageFolder directory, and the
resumable sampling order (a DistributedSampler, optionally skipping the batches already done)."""

from __future__ import annotations

import hashlib
import itertools
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

__all__ = ["Datasets", "SkipSampler", "SyntheticImages", "UnreadableImageError", "build_datasets",
           "make_train_loader", "make_val_loader", "steps_per_epoch"]

DEFAULT_SYNTHETIC_CLASSES = 10
INCEPTION_MEAN_STD = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))  # the TF-ported Inception networks' normalisation


class SyntheticImages(Dataset):
    """A learnable image classification set, generated on the fly and deterministic from ``seed``.

    Each class owns a low-frequency colour pattern (a random 4x4x3 grid, upsampled bilinearly to the
    image size). An image is its class pattern with a random contrast in [0.5, 1.5), a random circular
    shift of up to a quarter of the image, plus Gaussian noise of std ``noise``. Item ``i`` of a split
    depends only on (seed, split, i): the same at any time, in any process, in any order.

    Returns ``(image, label)``: a float32 (3, size, size) tensor and an int.
    """

    def __init__(self, num_samples: int, num_classes: int, image_size: int, *, seed: int = 0,
                 split: str = "train", noise: float = 1.0) -> None:
        if split not in ("train", "val"):
            raise ValueError(f"split: expected 'train' or 'val', got {split!r}")
        self.num_samples, self.num_classes, self.image_size = num_samples, num_classes, image_size
        self.seed, self.noise = seed, noise
        self.split = split
        gen = torch.Generator().manual_seed(seed)
        grids = torch.randn(num_classes, 3, 4, 4, generator=gen)
        self.patterns = F.interpolate(grids, size=(image_size, image_size), mode="bilinear", align_corners=False)

    def __len__(self) -> int:
        return self.num_samples

    def _item_seed(self, index: int) -> int:
        # torch's CPU generator keeps 32 bits of a seed: hash (seed, split, index) into them
        key = f"{self.seed}/{self.split}/{index}".encode()
        return int.from_bytes(hashlib.blake2b(key, digest_size=4).digest(), "little")

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if not 0 <= index < self.num_samples:
            raise IndexError(f"index {index} out of range for {self.num_samples} samples")
        gen = torch.Generator().manual_seed(self._item_seed(index))
        label = int(torch.randint(self.num_classes, (), generator=gen))
        contrast = 0.5 + torch.rand((), generator=gen)
        max_shift = max(1, self.image_size // 4)
        dy, dx = (int(v) for v in torch.randint(-max_shift, max_shift + 1, (2,), generator=gen))
        image = torch.roll(self.patterns[label] * contrast, shifts=(dy, dx), dims=(1, 2))
        image = image + self.noise * torch.randn(image.shape, generator=gen)
        return image, label


@dataclass
class Datasets:
    train: Dataset
    val: Dataset
    num_classes: int


class UnreadableImageError(RuntimeError):
    """An image file of ``--data`` that PIL cannot read (truncated, corrupt, not an image)."""


def _read_rgb(path: str):
    """The image at ``path`` as an RGB PIL image, fully decoded; UnreadableImageError names the file."""
    from PIL import Image

    try:
        with open(path, "rb") as f:
            image = Image.open(f)
            return image.convert("RGB")  # decodes every pixel: a truncated file fails here, not later
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise UnreadableImageError(f"--data: cannot read image {path}: {type(exc).__name__}: {exc} "
                                   "(--skip-bad-images skips such files and counts them)") from exc


def _image_folder_class():
    from torchvision import datasets

    class CheckedImageFolder(datasets.ImageFolder):
        """ImageFolder whose unreadable files raise UnreadableImageError naming the file; with
        ``skip_bad`` such a file's slot takes the next readable image of the split instead (the same
        one every epoch, on every rank), and the item is ``(image, label, files_skipped)``."""

        def __init__(self, root: str, transform, skip_bad: bool) -> None:
            super().__init__(root, transform=transform, loader=_read_rgb)
            self.skip_bad = skip_bad

        def __getitem__(self, index: int):
            if not self.skip_bad:
                return super().__getitem__(index)
            for skipped in range(len(self.samples)):
                i = (index + skipped) % len(self.samples)
                try:
                    image, label = super().__getitem__(i)
                except UnreadableImageError as exc:
                    print(f"--skip-bad-images: {exc}", file=sys.stderr, flush=True)
                    continue
                return image, label, skipped
            raise UnreadableImageError(f"--data: no readable image in {self.root}")

    return CheckedImageFolder


def build_datasets(data: str, *, image_size: int, num_classes: int | None, train_samples: int, val_samples: int,
                   seed: int, skip_bad_images: bool = False) -> Datasets:
    """``data`` is ``"synthetic"`` or a directory with ``train/`` and ``val/`` ImageFolder trees. An image
    that cannot be read raises UnreadableImageError naming the file when the loader reaches it, unless
    ``skip_bad_images`` (then items are ``(image, label, files_skipped)``)."""
    if data == "synthetic":
        classes = num_classes or DEFAULT_SYNTHETIC_CLASSES
        return Datasets(SyntheticImages(train_samples, classes, image_size, seed=seed, split="train"),
                        SyntheticImages(val_samples, classes, image_size, seed=seed, split="val"), classes)
    return _image_folder(data, image_size=image_size, num_classes=num_classes, skip_bad=skip_bad_images)


def _image_folder(root: str, *, image_size: int, num_classes: int | None, skip_bad: bool) -> Datasets:
    if not os.path.isdir(root):
        raise FileNotFoundError(f"--data: {root!r} is not a directory (expected 'synthetic' or an ImageFolder "
                                "directory holding train/ and val/)")
    missing = [s for s in ("train", "val") if not os.path.isdir(os.path.join(root, s))]
    if missing:
        raise FileNotFoundError(f"--data: {root!r} has no {' or '.join(missing)}/ subdirectory (expected "
                                "train/<class>/<image> and val/<class>/<image>)")
    try:
        from torchvision import transforms
    except ImportError as exc:
        raise ImportError("--data DIR: reading an ImageFolder needs torchvision (pip install torchvision); "
                          "--data synthetic needs nothing") from exc
    mean, std = INCEPTION_MEAN_STD
    train_tf = transforms.Compose([transforms.RandomResizedCrop(image_size), transforms.RandomHorizontalFlip(),
                                   transforms.ToTensor(), transforms.Normalize(mean, std)])
    val_tf = transforms.Compose([transforms.Resize(int(round(image_size / 0.875))), transforms.CenterCrop(image_size),
                                 transforms.ToTensor(), transforms.Normalize(mean, std)])
    folder = _image_folder_class()
    train = folder(os.path.join(root, "train"), train_tf, skip_bad)
    val = folder(os.path.join(root, "val"), val_tf, skip_bad)
    if train.classes != val.classes:
        only_train = _some(sorted(set(train.classes) - set(val.classes)))
        only_val = _some(sorted(set(val.classes) - set(train.classes)))
        raise ValueError(f"--data: train/ and val/ of {root!r} hold different classes "
                         f"({len(train.classes)} vs {len(val.classes)}): only in train/: {only_train}; "
                         f"only in val/: {only_val}")
    if num_classes is not None and num_classes != len(train.classes):
        raise ValueError(f"--num-classes: {num_classes}, but {root!r} holds {len(train.classes)} classes")
    return Datasets(train, val, len(train.classes))


def _some(names: list[str], limit: int = 10) -> str:
    """At most ``limit`` names, then how many more."""
    if not names:
        return "none"
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


class SkipSampler(Sampler[int]):
    """The indices of ``sampler`` without the first ``skip``: resuming in the middle of an epoch."""

    def __init__(self, sampler: Sampler[int], skip: int) -> None:
        self.sampler, self.skip = sampler, skip

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(iter(self.sampler), self.skip, None)

    def __len__(self) -> int:
        return max(0, len(self.sampler) - self.skip)


def make_train_loader(dataset: Dataset, *, batch_size: int, epoch: int, skip_batches: int, rank: int,
                      world_size: int, seed: int, workers: int, pin_memory: bool) -> DataLoader:
    """Epoch ``epoch``'s batches for this rank: a shuffle fixed by (seed, epoch), each rank its own
    shard, incomplete last batches dropped, the first ``skip_batches`` left out. The loader draws from
    its own generator (not the global RNG), so building it leaves the training RNG state untouched."""
    sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed,
                                 drop_last=True)
    sampler.set_epoch(epoch)
    order: Sampler[int] = SkipSampler(sampler, skip_batches * batch_size) if skip_batches else sampler
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return DataLoader(dataset, batch_size=batch_size, sampler=order, drop_last=True, num_workers=workers,
                      pin_memory=pin_memory, generator=gen, persistent_workers=False)


def make_val_loader(dataset: Dataset, *, batch_size: int, rank: int, world_size: int, workers: int,
                    pin_memory: bool) -> DataLoader:
    """The held-out split, sharded over ranks without shuffling (DistributedSampler pads the last shard
    with repeats when the split does not divide evenly)."""
    sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=False)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, pin_memory=pin_memory,
                      generator=torch.Generator().manual_seed(0))


def steps_per_epoch(dataset: Dataset, *, batch_size: int, world_size: int) -> int:
    return (len(dataset) // world_size) // batch_size
