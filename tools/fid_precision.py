"""FID of fast (bf16 autocast) against exact (fp32) features on a synthetic pair of image sets, and the
batch invariance of exact features: the figures of the README's FID section.

Random FID weights (He init, random BatchNorm statistics), random uint8 images (two sets with shifted
pixel distributions), the torch-fidelity preset, the torch backend on the CPU (or --device cuda:
the triton backend).

    python tools/fid_precision.py --images 128 --size 75
"""

from __future__ import annotations

import argparse
import time

import torch

import inception_core
from inception_core.fid import FeatureStats, InceptionFeatureExtractor, frechet_distance
from inception_core.models.fid_inception_v3 import FIDInception3
from inception_core.testing import randomize_for_equivalence, rel_err


def _images(n: int, size: int, seed: int, shift: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 200, (n, 3, size, size), generator=g) + shift).clamp(0, 255).to(torch.uint8)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=128, help="images per set")
    p.add_argument("--size", type=int, default=75, help="image and network input size")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    device = torch.device(args.device)
    backend = "torch" if device.type == "cpu" else "auto"
    net = randomize_for_equivalence(FIDInception3(), seed=1).eval().to(device)
    sets = [_images(args.images, args.size, 1, 0), _images(args.images, args.size, 2, 40)]
    fids, feats = {}, {}
    with inception_core.backend(backend):
        for precision in ("exact", "fast"):
            ex = InceptionFeatureExtractor("2048", preset="torch-fidelity", precision=precision, net=net,
                                           image_size=args.size)
            start = time.perf_counter()
            stats = []
            for i, images in enumerate(sets):
                s = FeatureStats(2048, device)
                out = [ex(b.to(device)) for b in images.split(args.batch_size)]
                feats[precision, i] = torch.cat(out)
                for f in out:
                    s.update(f)
                stats.append((s.mean, s.covariance()))
            fids[precision] = frechet_distance(*stats[0], *stats[1])
            print(f"{precision}: FID {fids[precision]:.6f} ({time.perf_counter() - start:.1f} s)")
        ex = InceptionFeatureExtractor("2048", preset="torch-fidelity", net=net, image_size=args.size)
        one = torch.cat([ex(img[None].to(device)) for img in sets[0][:8]])
    delta = fids["fast"] - fids["exact"]
    print(f"fast - exact: {delta:+.6f} ({delta / fids['exact']:+.2e} relative)")
    print(f"feature rel err fast vs exact: {rel_err(feats['fast', 0], feats['exact', 0]):.2e}")
    print(f"exact features, batch 1 vs batch {args.batch_size}: {rel_err(one, feats['exact', 0][:8]):.2e}")


if __name__ == "__main__":
    main()
