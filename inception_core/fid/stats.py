"""Feature statistics for FID: mean and covariance accumulated in float64 as batches stream in, and
pytorch-fid's ``.npz`` stats files (``mu``, ``sigma``).

Batches are merged with Chan et al.'s pairwise update (count, mean, sum of squared deviations), so no
feature buffer is kept, the result does not suffer the cancellation of sum-of-products formulas, and
statistics from several processes merge exactly the same way (``merge``).
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import Tensor

__all__ = ["FeatureStats", "load_stats", "save_stats"]


class FeatureStats:
    """Running count, mean and scatter matrix of D-dimensional features, in float64 on ``device``.

    ``update(features)`` takes (N, D) features of any float dtype; ``mean`` is (D,), ``covariance()`` the
    unbiased (D, D) covariance (``numpy.cov``'s, ddof 1).
    """

    def __init__(self, dims: int, device: torch.device | str = "cpu") -> None:
        if dims < 1:
            raise ValueError(f"dims: expected >= 1, got {dims}")
        self.dims = dims
        self.count = 0
        self.mean = torch.zeros(dims, dtype=torch.float64, device=device)
        self.scatter = torch.zeros(dims, dims, dtype=torch.float64, device=device)

    def update(self, features: Tensor) -> None:
        """Add a batch of (N, D) features."""
        if features.dim() != 2 or features.shape[1] != self.dims:
            raise ValueError(f"features: expected (N, {self.dims}), got shape {tuple(features.shape)}")
        if features.shape[0] == 0:
            return
        f = features.detach().to(device=self.mean.device, dtype=torch.float64)
        mean = f.mean(0)
        centred = f - mean
        self._merge(f.shape[0], mean, centred.T @ centred)

    def _merge(self, n: int, mean: Tensor, scatter: Tensor) -> None:
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.scatter = self.scatter + scatter + torch.outer(delta, delta) * (self.count * n / total)
        self.count = total

    def merge(self, other: FeatureStats) -> None:
        """Fold another accumulator (e.g. another process's) into this one."""
        if other.dims != self.dims:
            raise ValueError(f"other: expected {self.dims}-dimensional statistics, got {other.dims}")
        if other.count:
            self._merge(other.count, other.mean.to(self.mean.device), other.scatter.to(self.mean.device))

    def covariance(self) -> Tensor:
        """Unbiased (D, D) covariance, float64; needs at least two samples."""
        if self.count < 2:
            raise ValueError(f"covariance: needs at least 2 images, got {self.count}")
        return self.scatter / (self.count - 1)

    def all_reduce(self) -> None:
        """Merge the statistics of every process of the default ``torch.distributed`` group, in rank
        order, so every process ends with the same values (a no-op without a process group)."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return
        packed = torch.cat([torch.tensor([float(self.count)], dtype=torch.float64, device=self.mean.device),
                            self.mean, self.scatter.flatten()])
        gathered = [torch.empty_like(packed) for _ in range(dist.get_world_size())]
        dist.all_gather(gathered, packed)
        merged = FeatureStats(self.dims, self.mean.device)
        for p in gathered:
            part = FeatureStats(self.dims, self.mean.device)
            part.count = int(p[0].item())
            part.mean = p[1:1 + self.dims]
            part.scatter = p[1 + self.dims:].view(self.dims, self.dims)
            merged.merge(part)
        self.count, self.mean, self.scatter = merged.count, merged.mean, merged.scatter


def save_stats(path: str | os.PathLike, mu, sigma) -> None:
    """Write pytorch-fid's stats file: ``numpy.savez_compressed(path, mu=mu, sigma=sigma)`` in float64."""
    mu = mu.detach().cpu().double().numpy() if isinstance(mu, Tensor) else np.asarray(mu, dtype=np.float64)
    sigma = sigma.detach().cpu().double().numpy() if isinstance(sigma, Tensor) else np.asarray(sigma, np.float64)
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(f"mu, sigma: expected (D,) and (D, D), got {mu.shape} and {sigma.shape}")
    np.savez_compressed(path, mu=mu, sigma=sigma)


def load_stats(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a pytorch-fid (or clean-fid) ``.npz`` stats file -> (mu (D,), sigma (D, D)) float64 arrays."""
    try:
        with np.load(path) as f:
            arrays = {name: f[name][:] for name in f.files}
    except (OSError, EOFError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read the stats file ({exc})") from exc
    if "mu" not in arrays or "sigma" not in arrays:
        raise ValueError(f"{path}: not an FID stats file (expected arrays 'mu' and 'sigma', found {sorted(arrays)})")
    mu, sigma = arrays["mu"], arrays["sigma"]
    mu, sigma = np.atleast_1d(mu).astype(np.float64), np.atleast_2d(sigma).astype(np.float64)
    if sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(f"{path}: mu has shape {mu.shape} but sigma {sigma.shape}")
    return mu, sigma
