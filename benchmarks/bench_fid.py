"""FID feature extraction (uint8 images -> pool3 features, preprocessing included): inception_core's
``InceptionFeatureExtractor`` (pytorch-fid preset, exact and fast precision) against pytorch-fid's own
``InceptionV3`` on the same random weights, providers alternated round by round (interleaved), images/s
and the ratio to pytorch-fid in ``extra_info``.

On a GPU: batch 128 of 64x64 images resized to 299 (a typical generator output), fp32 without TF32 for
exact and pytorch-fid, bf16 autocast for fast. On a CPU: batch 1, the torch backend, exact only (bf16
autocast on a CPU is no speed case), 2 rounds; with ``--benchmark-disable`` (CI) one call of each provider
and the feature comparison only: a smoke test.
"""

from __future__ import annotations

import statistics
import time
from unittest import mock

import pytest
import torch

import inception_core
from inception_core.fid import InceptionFeatureExtractor, precision_mode
from inception_core.models.fid_inception_v3 import FIDInception3
from inception_core.testing import randomize_for_equivalence, rel_err

ON_GPU = torch.cuda.is_available()
BATCH, ROUNDS = (128, 10) if ON_GPU else (1, 2)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@pytest.mark.parametrize("precision", ["exact", "fast"])
def test_fid_feature_extraction(benchmark, precision):
    pfi = pytest.importorskip("pytorch_fid.inception", reason="pytorch-fid is a test extra")
    if precision == "fast" and not ON_GPU:
        pytest.skip("bf16 autocast on a CPU is no speed case (and takes minutes at 299)")
    device = torch.device("cuda" if ON_GPU else "cpu")
    net = randomize_for_equivalence(FIDInception3(), seed=1).eval()
    with mock.patch.object(pfi, "load_state_dict_from_url", lambda *a, **k: net.state_dict()):
        theirs = pfi.InceptionV3([3]).eval().to(device)  # no download: our random weights
    ours = InceptionFeatureExtractor("2048", preset="pytorch-fid", precision=precision, net=net.to(device))
    images = torch.randint(0, 256, (BATCH, 3, 64, 64), dtype=torch.uint8, device=device)

    def run_ours():
        return ours(images)

    def run_theirs():
        with torch.no_grad(), precision_mode("exact", device):
            return theirs(images.float() / 255)[0].flatten(1)

    backend = "auto" if ON_GPU else "torch"
    times = {"inception_core": [], "pytorch_fid": []}
    with inception_core.backend(backend):
        diff = rel_err(run_ours(), run_theirs())  # warm-up of both (autotune / first-call costs)
        for _ in range(0 if benchmark.disabled else ROUNDS):  # interleaved: one round of each provider in turn
            for name, fn in (("inception_core", run_ours), ("pytorch_fid", run_theirs)):
                _synchronize(device)
                start = time.perf_counter()
                fn()
                _synchronize(device)
                times[name].append(time.perf_counter() - start)
        median = {k: statistics.median(v) if v else float("nan") for k, v in times.items()}
        benchmark.group = "fid/features"
        benchmark.extra_info.update(
            precision=precision, batch=BATCH, input="64x64 uint8 -> 299", device=str(device), backend=backend,
            images_per_s={k: BATCH / v for k, v in median.items()},
            speedup_vs_pytorch_fid=median["pytorch_fid"] / median["inception_core"],
            max_rel_diff_vs_pytorch_fid=diff)
        benchmark.pedantic(run_ours, rounds=1, iterations=1)
    assert diff <= (1e-4 if precision == "exact" else 5e-2), f"features differ from pytorch-fid's by {diff:.3g}"
