"""Shape-class heuristic: the config a Triton launch runs when no tuned table names one (one compile per
shape class, no timing).

GEMM-shaped kernels (conv forward, dgrad, wgrad), over the configs that fit the problem (the kernel
file's own rule: shared memory, warps, registers, tile not larger than the problem):

1. padding waste: keep the configs whose tiles waste at most ``MAX_WASTE`` of the computed outputs
   (``1 - m*n / (padded m * padded n)``), or the least wasteful ones when none does;
2. occupancy: of those, keep the configs whose grid fills ``sms`` processors at least once (one full
   wave), or the ones with the most programs when none does;
3. reuse: of those, the largest output tile (``BLOCK_M * BLOCK_N``: fewest loads per multiply-add),
   then the ``BLOCK_K`` nearest to the reduction length (up to 64), then the first in the kernel's list.

Pooling forward (memory bound, every config a 4096-element tile): the widest channel block that
divides C's largest power-of-two factor (coalesced, unmasked channel vectors; 16 at least), then the
first in the list.

Every function takes the candidate configs (the kernel file's list for this process, or the GPU list
for a plan made on a CPU) and returns one of them; the result depends on the shape class only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["DEFAULT_SMS", "MAX_WASTE", "conv_bwd_dw", "conv_bwd_dx", "conv_fwd", "gemm_pick", "pool2d_fwd"]

# Streaming multiprocessors assumed when the device has none to ask (a CPU plan): an H100/H200 SXM.
DEFAULT_SMS = 132
MAX_WASTE = 0.25


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _kw(c) -> dict[str, Any]:
    return c.kwargs


def gemm_pick(configs: Sequence[Any], *, m: int, n: int, red: int, grid_factor: int = 1,
              sms: int = DEFAULT_SMS):
    """Rules 1-3 of the module docstring over ``configs`` (already pruned to those that fit) for an
    ``m x n`` output with a reduction of ``red``; ``grid_factor`` multiplies the program count (grid
    dimensions beyond the output tiles: stride phases, taps, splits)."""
    if not configs:
        raise ValueError("gemm_pick: no candidate configs")

    def padded(c):
        return _cdiv(m, _kw(c)["BLOCK_M"]) * _kw(c)["BLOCK_M"] * _cdiv(n, _kw(c)["BLOCK_N"]) * _kw(c)["BLOCK_N"]

    def waste(c):
        return 1.0 - (m * n) / padded(c)

    def programs(c):
        return _cdiv(m, _kw(c)["BLOCK_M"]) * _cdiv(n, _kw(c)["BLOCK_N"]) * grid_factor

    pool = [c for c in configs if waste(c) <= MAX_WASTE]
    if not pool:
        least = min(waste(c) for c in configs)
        pool = [c for c in configs if waste(c) <= least + 1e-9]
    full = [c for c in pool if programs(c) >= sms]
    if not full:
        most = max(programs(c) for c in pool)
        full = [c for c in pool if programs(c) == most]
    want_k = min(64, max(16, 1 << max(int(red) - 1, 0).bit_length()))
    order = {id(c): i for i, c in enumerate(configs)}
    return min(full, key=lambda c: (-_kw(c)["BLOCK_M"] * _kw(c)["BLOCK_N"], abs(_kw(c)["BLOCK_K"] - want_k),
                                    order[id(c)]))


def conv_fwd(configs: Sequence[Any], *, N: int, C: int, K: int, OH: int, OW: int, R: int, S: int, elem_size: int,
             stats: bool, residual: bool = False, sms: int = DEFAULT_SMS, **_):
    """Config of ``_conv_bn_act_fwd_kernel`` for one problem (autotune key values as keywords)."""
    from inception_core.kernels.configs import conv_fwd_fits, smallest_gemm_config

    m = N * OH * OW
    fitting = [c for c in configs if conv_fwd_fits(c, M=m, C=C, K=K, R=R, S=S, elem_size=elem_size, stats=stats,
                                                 residual=residual)]
    return gemm_pick(fitting or [smallest_gemm_config(configs)], m=m, n=K, red=C * R * S, sms=sms)


def conv_bwd_dx(configs: Sequence[Any], *, N: int, C: int, H: int, W: int, K: int, R: int, S: int,
                STRIDE_H: int, STRIDE_W: int, elem_size: int, sms: int = DEFAULT_SMS, **_):
    """Config of ``_conv_bwd_dx_kernel``: M = the pixels of one stride phase, N = C, one grid column per phase."""
    from inception_core.kernels.configs import gemm_fits, smallest_gemm_config

    m = N * _cdiv(H, STRIDE_H) * _cdiv(W, STRIDE_W)
    fitting = [c for c in configs if gemm_fits(c, m=m, n=C, k=K, elem_size=elem_size)]
    taps = _cdiv(R, STRIDE_H) * _cdiv(S, STRIDE_W)
    return gemm_pick(fitting or [smallest_gemm_config(configs)], m=m, n=C, red=K * taps,
                     grid_factor=STRIDE_H * STRIDE_W, sms=sms)


def conv_bwd_dw(configs: Sequence[Any], *, N: int, C: int, K: int, OH: int, OW: int, R: int, S: int,
                P_PER_SPLIT: int, elem_size: int, sms: int = DEFAULT_SMS, **_):
    """Config of ``_conv_bwd_dw_kernel``: M = K, N = C, one grid column per tap and per pixel split."""
    from inception_core.kernels.configs import gemm_fits, smallest_gemm_config

    p = N * OH * OW
    fitting = [c for c in configs if gemm_fits(c, m=K, n=C, k=p, elem_size=elem_size)]
    splits = _cdiv(p, max(1, P_PER_SPLIT))
    return gemm_pick(fitting or [smallest_gemm_config(configs)], m=K, n=C, red=min(p, P_PER_SPLIT),
                     grid_factor=R * S * splits, sms=sms)


def pool2d_fwd(configs: Sequence[Any], *, N: int, C: int, OH: int, OW: int, **_):
    """Config of ``_pool2d_fwd_kernel``: the widest channel block dividing C's power-of-two factor."""
    from inception_core.kernels.configs import pool2d_fwd_fits

    fitting = ([c for c in configs if pool2d_fwd_fits(c, C=C, P=N * OH * OW)]
               or [min(configs, key=lambda c: _kw(c)["BLOCK_C"])])
    factor = max(16, C & -C) if C > 0 else 16
    dividing = [c for c in fitting if _kw(c)["BLOCK_C"] <= factor]
    pool = dividing or fitting
    widest = max(_kw(c)["BLOCK_C"] for c in pool)
    return next(c for c in pool if _kw(c)["BLOCK_C"] == widest)
