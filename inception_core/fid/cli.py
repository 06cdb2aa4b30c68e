"""Running ``inception-core fid`` and ``isc`` (what each does: ``inception_core.fid.options.DESCRIPTION``;
their flags are defined there, without torch)."""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

__all__ = ["main_fid", "main_isc", "run_fid", "run_isc"]

def _distributed() -> tuple[int, int]:
    """(rank, world size); initialises the default process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), world


def _device(args) -> torch.device:
    if args.device:
        device = torch.device(args.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            args.parser.error(f"--device {args.device}: CUDA is not available on this machine")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def _check_args(args) -> None:
    if args.batch_size < 1:
        args.parser.error(f"--batch-size: expected >= 1, got {args.batch_size}")
    if args.workers is not None and args.workers < 0:
        args.parser.error(f"--workers: expected >= 0, got {args.workers}")
    if args.image_size < 75:
        args.parser.error(f"--image-size: the network needs at least 75, got {args.image_size}")


def _extractor(args, features, device):
    from inception_core.fid.extractor import InceptionFeatureExtractor
    from inception_core.fid.weights import fid_weights_state_dict
    from inception_core.models.fid_inception_v3 import FIDInception3

    state = fid_weights_state_dict(args.weights, download=not args.no_download)
    net = FIDInception3()
    net.load_state_dict(state, strict=True)
    return InceptionFeatureExtractor(features, preset=args.preset, precision=args.precision,
                                     net=net.to(device), image_size=args.image_size)


class _Run:
    """Feature extraction over one folder: statistics and, on request, the kept features."""

    def __init__(self, folder: str, extractor, args, device, rank: int, world: int, keep: bool) -> None:
        from inception_core.fid.data import ImageFiles, collate_images, list_images

        self.files = list_images(folder)
        mine = list(range(rank, len(self.files), world))
        workers = args.workers if args.workers is not None else min(8, os.cpu_count() or 1)
        dataset = ImageFiles([self.files[i] for i in mine], args.preset, args.image_size, args.skip_bad_images)
        self.loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, shuffle=False,
                                                  num_workers=workers, collate_fn=_collate_indexed)
        self.mine, self.folder, self.extractor, self.device = mine, folder, extractor, device
        self.rank, self.keep, self.collate = rank, keep, collate_images

    def run(self, stats):
        from inception_core.fid.presets import normalize

        try:
            from tqdm import tqdm
        except ImportError:
            tqdm = None
        bar = None
        if tqdm is not None and self.rank == 0:
            bar = tqdm(total=len(self.mine), desc=os.path.basename(os.path.normpath(self.folder)), unit="img",
                       file=sys.stderr, leave=False, dynamic_ncols=True)
        kept, skipped, done = [], 0, 0
        start = time.perf_counter()
        for _, items in self.loader:
            images, bad = self.collate(items)
            skipped += bad
            if images:
                if self.extractor.preset == "clean-fid":
                    x = normalize(torch.stack(images).to(self.device), "clean-fid")
                elif all(img.shape == images[0].shape for img in images):
                    x = self.extractor.preprocess(torch.stack(images).to(self.device))
                else:  # mixed sizes: each image resized on its own (the resize is per image anyway)
                    x = torch.cat([self.extractor.preprocess(img[None].to(self.device)) for img in images])
                feats = self.extractor.embed(x)
                stats.update(feats)
                if self.keep:
                    good = [self.mine[i] for i, img in items if img is not None]
                    kept.append((torch.tensor(good), feats.cpu()))
            done += len(items)
            if bar is not None:
                bar.update(len(items))
        if bar is not None:
            bar.close()
        return kept, skipped, done, time.perf_counter() - start


def _collate_indexed(items):
    return [i for i, _ in items], items


def _reduce_run(stats, kept, skipped, done, world):
    """Totals over the processes: stats merged, skipped and done summed, kept features in file order."""
    stats.all_reduce()
    if world > 1:
        import torch.distributed as dist

        parts = [None] * world
        dist.all_gather_object(parts, (kept, skipped, done))
        kept = [k for part in parts for k in part[0]]
        skipped, done = sum(p[1] for p in parts), sum(p[2] for p in parts)
    features = None
    if kept:
        order = torch.cat([i for i, _ in kept]).argsort()
        features = torch.cat([f for _, f in kept])[order]
    return features, skipped, done


def _folder_stats(folder, extractor, args, device, rank, world, dims, keep=False):
    from inception_core.fid.stats import FeatureStats

    run = _Run(folder, extractor, args, device, rank, world, keep)
    stats = FeatureStats(dims, device)
    kept, skipped, done, seconds = run.run(stats)
    features, skipped, done = _reduce_run(stats, kept, skipped, done, world)
    if stats.count < 2:
        raise ValueError(f"{folder}: {stats.count} readable image(s); FID needs at least 2")
    if rank == 0:
        note = f", {skipped} unreadable skipped" if skipped else ""
        print(f"{folder}: {stats.count} images{note}, {done / max(seconds, 1e-9):.1f} images/s"
              + (f" ({world} processes)" if world > 1 else ""), file=sys.stderr)
    return stats, features


def run_fid(args: argparse.Namespace) -> int:
    from inception_core.fid.metrics import frechet_distance, kernel_inception_distance
    from inception_core.fid.stats import load_stats, save_stats

    _check_args(args)
    rank, world = _distributed()
    device = _device(args)
    p1, p2 = args.path
    if args.save_stats:
        if p1.endswith(".npz") or not os.path.isdir(p1):
            args.parser.error(f"--save-stats: the first path must be a folder of images, got {p1}")
        if os.path.exists(p2):
            args.parser.error(f"--save-stats: {p2} exists; not overwriting it")
    if args.kid and any(p.endswith(".npz") for p in args.path):
        args.parser.error("--kid: needs two folders of images (KID uses the features, not stats)")
    for p in ([p1] if args.save_stats else args.path):
        if not os.path.exists(p):
            args.parser.error(f"path: {p} does not exist")
    extractor = None
    stats, features = [], []
    for p in ([p1] if args.save_stats else args.path):
        if p.endswith(".npz"):
            mu, sigma = load_stats(p)
            if mu.shape[0] != args.dims:
                args.parser.error(f"{p}: {mu.shape[0]}-dimensional stats, but --dims is {args.dims}")
            stats.append((mu, sigma))
            features.append(None)
            continue
        if extractor is None:
            extractor = _extractor(args, str(args.dims), device)
        s, f = _folder_stats(p, extractor, args, device, rank, world, args.dims, keep=args.kid)
        stats.append((s.mean, s.covariance()))
        features.append(f)
    if args.save_stats:
        if rank == 0:
            save_stats(p2, *stats[0])
            print(f"wrote {p2}")
        return 0
    fid = frechet_distance(*stats[0], *stats[1], device=device)
    if rank == 0:
        print(f"FID: {fid}")
        if args.kid:
            n = min(len(features[0]), len(features[1]), args.kid_subset_size)
            mean, std = kernel_inception_distance(features[0].to(device), features[1].to(device), subset_size=n)
            print(f"KID: {mean} ± {std} (100 subsets of {n})")
    return 0


def run_isc(args: argparse.Namespace) -> int:
    from inception_core.fid.metrics import inception_score
    from inception_core.fid.stats import FeatureStats

    _check_args(args)
    rank, world = _distributed()
    device = _device(args)
    if not os.path.exists(args.path):
        args.parser.error(f"path: {args.path} does not exist")
    extractor = _extractor(args, "logits_unbiased", device)
    run = _Run(args.path, extractor, args, device, rank, world, keep=True)
    stats = FeatureStats(1008, device)
    kept, skipped, done, seconds = run.run(stats)
    logits, skipped, done = _reduce_run(stats, kept, skipped, done, world)
    if rank == 0:
        note = f", {skipped} unreadable skipped" if skipped else ""
        print(f"{args.path}: {stats.count} images{note}, {done / max(seconds, 1e-9):.1f} images/s", file=sys.stderr)
        if logits is None or len(logits) < args.splits:
            raise ValueError(f"{args.path}: {stats.count} readable image(s); --splits {args.splits} needs at least "
                             f"{args.splits}")
        mean, std = inception_score(logits.to(device), splits=args.splits)
        print(f"Inception Score: {mean} ± {std}")
    return 0


def _reporting(run, args: argparse.Namespace) -> int:
    """Run a command on the chosen backend; the errors a user can fix (missing weights, no images, an
    unreadable image or stats file) end it with their message and exit status 1 instead of a traceback."""
    import inception_core
    from inception_core.fid.data import BadImageError
    from inception_core.fid.weights import WeightsNotFoundError

    backend = args.backend
    if backend == "auto" and _device(args).type == "cpu":
        backend = "torch"
    try:
        with inception_core.backend(backend):
            return run(args)
    except (WeightsNotFoundError, BadImageError, FileNotFoundError, ValueError) as exc:
        message = str(exc)
        if "Original Traceback" in message:  # raised in a DataLoader worker: its last line is the error itself
            message = message.strip().splitlines()[-1].split(": ", 1)[-1]
        print(f"inception-core {args.command}: error: {message}", file=sys.stderr)
        return 1


def main_fid(args: argparse.Namespace) -> int:
    return _reporting(run_fid, args)


def main_isc(args: argparse.Namespace) -> int:
    return _reporting(run_isc, args)
