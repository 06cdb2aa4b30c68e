"""FID, Inception Score and KID from features or statistics, in float64 on the tensors' device.

FID = |mu1 - mu2|^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^(1/2)). The trace of the square root is the sum of
the square roots of the eigenvalues of S1^(1/2) S2 S1^(1/2), a symmetric positive semi-definite matrix
with the same eigenvalues as S1 S2: two symmetric eigen-decompositions (``torch.linalg.eigh``) replace
scipy's ``sqrtm`` of the non-symmetric product, and run on the GPU. Eigenvalues that rounding makes
slightly negative count as 0 (scipy and numpy give them a tiny imaginary root whose real part is dropped).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["frechet_distance", "inception_score", "kernel_inception_distance"]


def _as64(a, device) -> Tensor:
    t = a if isinstance(a, Tensor) else torch.from_numpy(np.asarray(a))
    return t.detach().to(device=device, dtype=torch.float64)


def _sqrt_psd(s: Tensor) -> Tensor:
    values, vectors = torch.linalg.eigh(s)
    return (vectors * values.clamp_min(0).sqrt()) @ vectors.T


def frechet_distance(mu1, sigma1, mu2, sigma2, device: torch.device | str | None = None) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (tensors or arrays: (D,) and (D, D)),
    computed in float64 on ``device`` (default: mu1's device, CPU for arrays)."""
    if device is None:
        device = mu1.device if isinstance(mu1, Tensor) else "cpu"
    mu1, mu2, sigma1, sigma2 = (_as64(a, device) for a in (mu1, mu2, sigma1, sigma2))
    d = mu1.shape[0]
    for name, mu, sigma in (("1", mu1, sigma1), ("2", mu2, sigma2)):
        if mu.dim() != 1 or sigma.shape != (d, d):
            raise ValueError(f"mu{name}, sigma{name}: expected ({d},) and ({d}, {d}), got {tuple(mu.shape)} and "
                             f"{tuple(sigma.shape)}")
    sigma1 = (sigma1 + sigma1.T) / 2  # exact symmetry for eigh (the covariances are symmetric up to rounding)
    sigma2 = (sigma2 + sigma2.T) / 2
    root1 = _sqrt_psd(sigma1)
    inner = root1 @ sigma2 @ root1
    tr_covmean = torch.linalg.eigvalsh((inner + inner.T) / 2).clamp_min(0).sqrt().sum()
    diff = mu1 - mu2
    return float(diff.dot(diff) + sigma1.trace() + sigma2.trace() - 2 * tr_covmean)


def inception_score(logits: Tensor, splits: int = 10, shuffle: bool = True, rng_seed: int = 2020
                    ) -> tuple[float, float]:
    """Inception Score of (N, C) logits as torch-fidelity computes it: rows shuffled by
    ``numpy.random.RandomState(rng_seed).permutation`` (when ``shuffle``), float64, ``splits`` parts
    ``[i N // splits, (i + 1) N // splits)``, exp(mean KL(p(y|x) || p(y))) per part -> (mean, std) over parts
    (population std, numpy's default)."""
    if logits.dim() != 2:
        raise ValueError(f"logits: expected (N, C), got shape {tuple(logits.shape)}")
    n = logits.shape[0]
    if splits < 1 or n < splits:
        raise ValueError(f"splits: expected 1 <= splits <= number of images ({n}), got {splits}")
    if shuffle:
        order = torch.from_numpy(np.random.RandomState(rng_seed).permutation(n)).to(logits.device)
        logits = logits[order]
    logits = logits.double()
    p, log_p = logits.softmax(dim=1), logits.log_softmax(dim=1)
    scores = []
    for i in range(splits):
        part = slice(i * n // splits, (i + 1) * n // splits)
        q = p[part].mean(dim=0, keepdim=True)
        scores.append((p[part] * (log_p[part] - q.log())).sum(dim=1).mean().exp())
    scores = torch.stack(scores)
    return float(scores.mean()), float(scores.std(unbiased=False))


def _poly_kernel(x: Tensor, y: Tensor, degree: int, gamma: float, coef0: float) -> Tensor:
    return (x @ y.T * gamma + coef0) ** degree


def kernel_inception_distance(features1: Tensor, features2: Tensor, subsets: int = 100, subset_size: int = 1000,
                              degree: int = 3, gamma: float | None = None, coef0: float = 1.0,
                              rng_seed: int = 2020) -> tuple[float, float]:
    """KID as torch-fidelity computes it: for each of ``subsets`` rounds, ``subset_size`` rows of each set
    drawn without replacement by one ``numpy.random.RandomState(rng_seed)`` (set 1, then set 2), the
    unbiased MMD^2 with the polynomial kernel (x.y * gamma + coef0)^degree (gamma = 1 / D by default)
    -> (mean, std) over rounds. float64 on the features' device (torch-fidelity computes in the features'
    dtype, float32 for its extractor)."""
    if features1.dim() != 2 or features2.dim() != 2 or features1.shape[1] != features2.shape[1]:
        raise ValueError(f"features1, features2: expected (N1, D) and (N2, D), got {tuple(features1.shape)} and "
                         f"{tuple(features2.shape)}")
    n1, n2 = features1.shape[0], features2.shape[0]
    if subset_size < 2 or n1 < subset_size or n2 < subset_size:
        raise ValueError(f"subset_size: expected 2 <= subset_size <= the number of images in each set "
                         f"({n1}, {n2}), got {subset_size}")
    gamma = 1.0 / features1.shape[1] if gamma is None else gamma
    f1, f2 = features1.double(), features2.double()
    rng = np.random.RandomState(rng_seed)
    m = subset_size
    mmds = []
    for _ in range(subsets):
        x = f1[torch.from_numpy(rng.choice(n1, m, replace=False)).to(f1.device)]
        y = f2[torch.from_numpy(rng.choice(n2, m, replace=False)).to(f2.device)]
        k_xx, k_yy = _poly_kernel(x, x, degree, gamma, coef0), _poly_kernel(y, y, degree, gamma, coef0)
        k_xy = _poly_kernel(x, y, degree, gamma, coef0)
        mmd = ((k_xx.sum() - k_xx.diagonal().sum()) + (k_yy.sum() - k_yy.diagonal().sum())) / (m * (m - 1))
        mmds.append(mmd - 2 * k_xy.sum() / (m * m))
    mmds = torch.stack(mmds)
    return float(mmds.mean()), float(mmds.std(unbiased=False))
