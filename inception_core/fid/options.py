"""The names the FID tools accept (presets, precisions, feature taps) and the flags of ``inception-core fid``
and ``isc`` built from them; torch-free, so the command line's ``--help`` answers without importing torch."""

from __future__ import annotations

import argparse

__all__ = ["DESCRIPTION", "DIMS", "PRECISIONS", "PRESETS", "add_fid_arguments", "add_isc_arguments"]

DESCRIPTION = """\
``inception-core fid PATH1 PATH2`` and ``inception-core isc PATH``: FID (and KID) between two folders of
images or ``.npz`` stats files, and the Inception Score of a folder, on the fused FID network.

Under ``torchrun`` every process reads its share of the files (rank::world_size), and the statistics are
reduced so every process holds the totals; rank 0 prints."""

PRESETS = ("pytorch-fid", "torch-fidelity", "clean-fid", "torchmetrics")
PRECISIONS = ("exact", "fast")
DIMS = (64, 192, 768, 2048)


def _common(p: argparse.ArgumentParser, default_preset: str) -> None:
    p.add_argument("--preset", choices=PRESETS, default=default_preset,
                   help=f"preprocessing of the tool to match (default {default_preset})")
    p.add_argument("--batch-size", type=int, default=50, help="images per forward (default 50)")
    p.add_argument("--device", help="cpu or cuda[:i] (default: cuda when available; LOCAL_RANK's under torchrun)")
    p.add_argument("--workers", type=int, default=None, help="data loading processes (default min(8, cpus))")
    p.add_argument("--weights", help="FID Inception weights file (pytorch-fid's pt_inception-2015-12-05-6726825d.pth "
                                     "or torch-fidelity's); default: torch.hub's cache, downloaded when possible")
    p.add_argument("--no-download", action="store_true", help="never download the weights")
    p.add_argument("--precision", choices=PRECISIONS, default="exact",
                   help="exact: fp32 without TF32, batch-invariant features; fast: bf16 autocast")
    p.add_argument("--skip-bad-images", action="store_true",
                   help="skip files that do not decode (counted in the output) instead of stopping")
    p.add_argument("--backend", choices=("auto", "triton", "cuda", "torch"), default="auto",
                   help="inception_core backend (auto: triton on CUDA, torch on a CPU, where Triton runs only "
                        "through its far slower interpreter)")
    p.add_argument("--image-size", type=int, default=299,
                   help="network input size (299 for comparable numbers; smaller only for quick experiments)")


def add_fid_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", nargs=2, help="two folders of images or .npz stats files (with --save-stats: a folder "
                                         "and the .npz file to write)")
    _common(p, "pytorch-fid")
    p.add_argument("--dims", type=int, choices=DIMS, default=2048,
                   help="feature tap: 64, 192, 768 (spatial means of earlier layers) or 2048 (pool3, default)")
    p.add_argument("--save-stats", action="store_true", help="write the stats of the first path to the second")
    p.add_argument("--kid", action="store_true", help="also print KID (torch-fidelity's: 100 subsets)")
    p.add_argument("--kid-subset-size", type=int, default=1000, help="KID subset size (default 1000)")


def add_isc_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="a folder of images")
    _common(p, "torch-fidelity")
    p.add_argument("--splits", type=int, default=10, help="Inception Score splits (default 10)")
