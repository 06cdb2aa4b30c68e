"""The autotune configs of every Triton kernel that has a config list, their fit rules and pruning.

One naming scheme: ``GPU_CONFIGS[kernel]`` and ``INTERPRETER_CONFIGS[kernel]``, keyed by the launch-path
name (``inception_core.launch.kernel_names()``); ``CONFIGS[kernel]`` is the list this process launches
(the interpreter's under ``TRITON_INTERPRET=1``). The interpreter runs programs one by one through
numpy: few big tiles are fastest, and autotuning there would run every config on the CPU, so each
kernel gets exactly one there. Every GPU config must compile for sm_80 and sm_90 (tests/kernels), with
tensor-core instructions for the GEMM kernels.

Fixed-tile kernels (no autotune: the BatchNorm partial-sum layouts depend on the tiles) keep their tile
constants in their own modules; ``fixed_gpu_tiles(kernel)`` gives the ones a GPU launch uses, for plans
made under the interpreter.

Fit rules say whether a config is worth trying for a problem; the ``prune_*`` functions are the
autotuners' ``early_config_prune`` hooks over them (the smallest config when none fits).
"""

import triton

from . import INTERPRETED

__all__ = ["CONFIGS", "GPU_CONFIGS", "INTERPRETER_CONFIGS", "SMEM_LIMIT_BYTES", "conv_fwd_fits", "gemm_config",
           "gemm_fits", "pool_config", "pool2d_fwd_fits", "prune_conv_bwd_dw", "prune_conv_bwd_dx",
           "prune_conv_fwd", "prune_pool2d_fwd", "smallest_gemm_config", "fixed_gpu_tiles"]

# Shared-memory budget a config may use per pipeline stage set (bytes); sm_80 allows 163 KiB.
SMEM_LIMIT_BYTES = 160 * 1024


def gemm_config(bm, bn, bk, stages, warps):
    """A config of the implicit-GEMM kernels (conv forward, dgrad, wgrad)."""
    return triton.Config({"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk, "GROUP_M": 8},
                         num_stages=stages, num_warps=warps)


def pool_config(bp, bc, warps):
    """A config of the pooling forward; no loop is pipelined (the window is unrolled), so one stage."""
    return triton.Config({"BLOCK_P": bp, "BLOCK_C": bc}, num_stages=1, num_warps=warps)


GPU_CONFIGS = {
    "conv_bn_act_fwd": [
        gemm_config(128, 256, 64, 3, 8),   # large 1x1 GEMMs (8 warps: 1x1 only, see conv_fwd_fits)
        gemm_config(128, 128, 64, 3, 8),   # 1x1 only
        gemm_config(128, 128, 32, 4, 4),
        gemm_config(128, 64, 32, 4, 4),
        gemm_config(64, 128, 32, 4, 4),
        gemm_config(64, 64, 64, 3, 4),
        gemm_config(128, 32, 32, 4, 4),    # narrow outputs (32-channel stem convs)
        gemm_config(64, 32, 32, 4, 2),
        gemm_config(32, 64, 64, 4, 2),     # few output pixels (8x8 maps, small batch)
    ],
    # num_warps <= 4 throughout (flattened (r, s, block) loops, see the forward kernel's header).
    "conv_bwd_dx": [
        gemm_config(128, 64, 32, 4, 4),
        gemm_config(64, 128, 32, 4, 4),
        gemm_config(64, 64, 64, 3, 4),
        gemm_config(128, 32, 32, 4, 4),
        gemm_config(32, 64, 32, 4, 2),     # BLOCK_K 64 spilled on sm_90 (bf16 3x3s2: 4 bytes; with 4 warps 1x1/1x7: 8)
    ],
    # wgrad: BLOCK_M output channels x BLOCK_N input channels, BLOCK_K pixels per step.
    "conv_bwd_dw": [
        gemm_config(64, 64, 64, 3, 4),
        gemm_config(128, 64, 32, 4, 4),
        gemm_config(64, 128, 32, 4, 4),
        gemm_config(32, 32, 64, 4, 2),
    ],
    # Pooling is memory bound: tiles of 4096 elements, channel-wide first (coalesced NHWC loads).
    "pool2d_fwd": [
        pool_config(32, 128, 4),
        pool_config(64, 64, 4),
        pool_config(128, 32, 4),   # 32-channel multiples (288, 480) and small C
        pool_config(256, 16, 4),   # very few channels
    ],
}
# Under the interpreter a step of a GEMM loop costs about the same whatever its tile (Python overhead per
# op, not numpy work), so the conv kernels take large tiles. The forward's 256x128x128: the interpreted
# network checks 54/39/25 s -> 33/20/19 s (channel tails still masked above 128 channels). The backward's
# 256x256x256, measured (CPU time, float64, against 64x64x64): 0.19-0.34x on Inception-ResNet-v2 layers at
# 3x3 and 17x17 (80-1088 channels) and 0.78-0.85x on the 35x35 stem. The wgrad's BLOCK_K must divide
# conv_bwd.MAX_BLOCK_P (256). Tests still get multi-step loops and masked tails from these (taps x channel
# blocks, channels > 256, partial tiles) and from the GPU configs they run through config=.
INTERPRETER_CONFIGS = {
    "conv_bn_act_fwd": [gemm_config(256, 128, 128, 1, 4)],
    "conv_bwd_dx": [gemm_config(256, 256, 256, 1, 4)],
    "conv_bwd_dw": [gemm_config(256, 256, 256, 1, 4)],
    "pool2d_fwd": [pool_config(64, 256, 4)],
}
CONFIGS = INTERPRETER_CONFIGS if INTERPRETED else GPU_CONFIGS


def gemm_fits(config, *, m, n, k, elem_size):
    """Whether a GEMM config suits an ``m x n`` output reduced over ``k``: its stages fit the shared-memory
    budget, an fp32 tile keeps at most 64 accumulators per thread, and no block is much larger than the
    problem."""
    kw = config.kwargs
    smem = config.num_stages * (kw["BLOCK_M"] * kw["BLOCK_K"] + kw["BLOCK_K"] * kw["BLOCK_N"]) * elem_size
    if smem > SMEM_LIMIT_BYTES:
        return False
    if elem_size == 4 and kw["BLOCK_M"] * kw["BLOCK_N"] > 64 * 32 * config.num_warps:
        return False
    return (kw["BLOCK_M"] <= max(32, triton.next_power_of_2(m)) and kw["BLOCK_N"] <= max(32, triton.next_power_of_2(n))
            and kw["BLOCK_K"] <= max(16, triton.next_power_of_2(k)))


def conv_fwd_fits(config, *, M, C, K, R, S, elem_size, stats=False, residual=False):
    """``gemm_fits`` for the conv forward (m = M pixels, n = K, k = C), plus: more than 4 warps only for
    1x1 kernels, and the 64-accumulators rule for fp16/bf16 too with the STATS epilogue or a residual."""
    if config.num_warps > 4 and R * S != 1:
        return False
    # fp32 (TF32) tiles with more than 64 accumulators per thread run out of registers and spill
    # (ptxas: 128x128 with 4 warps reaches 255 registers and spills on sm_80 and sm_90); so do fp16/bf16
    # tiles with the STATS epilogue (128x128 with 4 warps: 176 bytes of spills on sm_80) or a residual
    # (128x128 with 4 warps: 255 registers and 340 bytes of spills on sm_90; 128x256 with 8 warps: 544).
    kw = config.kwargs
    if (stats or residual) and kw["BLOCK_M"] * kw["BLOCK_N"] > 64 * 32 * config.num_warps:
        return False
    return gemm_fits(config, m=M, n=K, k=C, elem_size=elem_size)


def pool2d_fwd_fits(config, *, C, P):
    """Whether a pooling config is worth trying: its channel block does not dwarf C, its pixel block P."""
    kw = config.kwargs
    return kw["BLOCK_C"] <= max(16, triton.next_power_of_2(C)) and kw["BLOCK_P"] <= max(32, triton.next_power_of_2(P))


def smallest_gemm_config(configs):
    """The config of least tile area times stages (the fallback when none fits)."""
    return min(configs, key=lambda c: c.kwargs["BLOCK_M"] * c.kwargs["BLOCK_N"] * c.num_stages)


def _prune_gemm(configs, fits, **problem):
    return [c for c in configs if fits(c, **problem)] or [smallest_gemm_config(configs)]


def prune_conv_fwd(configs, named_args, **kwargs):
    a = {**named_args, **kwargs}
    return _prune_gemm(configs, conv_fwd_fits, M=a["N"] * a["OH"] * a["OW"], C=a["C"], K=a["K"], R=a["R"],
                       S=a["S"], elem_size=a["x_ptr"].element_size(), stats=bool(a.get("STATS", False)),
                       residual=bool(a.get("HAS_RESIDUAL", False)))


def prune_conv_bwd_dx(configs, named_args, **kwargs):
    a = {**named_args, **kwargs}
    return _prune_gemm(configs, gemm_fits, m=a["N"] * a["H"] * a["W"], n=a["C"], k=a["K"],
                       elem_size=a["dy_ptr"].element_size())


def prune_conv_bwd_dw(configs, named_args, **kwargs):
    a = {**named_args, **kwargs}
    return _prune_gemm(configs, gemm_fits, m=a["K"], n=a["C"], k=a["N"] * a["OH"] * a["OW"],
                       elem_size=a["dy_ptr"].element_size())


def prune_pool2d_fwd(configs, named_args, **kwargs):
    a = {**named_args, **kwargs}
    kept = [c for c in configs if pool2d_fwd_fits(c, C=a["C"], P=a["N"] * a["OH"] * a["OW"])]
    return kept or [min(configs, key=lambda c: c.kwargs["BLOCK_C"])]


def fixed_gpu_tiles(kernel: str) -> dict[str, int]:
    """The tile constexprs fixed-tile ``kernel`` (a ``launch_fixed`` name) is launched with on a GPU."""
    from . import batch_norm, conv_bwd, pool2d_bwd

    g = batch_norm.GPU_BLOCKS
    finalize = dict(BLOCK_T=g["FINALIZE_BLOCK_T"], BLOCK_C=g["FINALIZE_BLOCK_C"])
    apply = dict(BLOCK_P=g["APPLY_BLOCK_P"], BLOCK_C=g["APPLY_BLOCK_C"])
    pool = dict(BLOCK_P=pool2d_bwd.GPU_BLOCK_P, BLOCK_C=pool2d_bwd.GPU_BLOCK_C)
    tiles = {"bn_stats_finalize": finalize, "bn_bwd_finalize": finalize, "affine_act": apply, "bn_bwd_apply": apply,
             "bn_bwd_reduce": dict(BLOCK_P=g["REDUCE_BLOCK_P"], BLOCK_C=g["REDUCE_BLOCK_C"]),
             "sum_splits": dict(BLOCK=conv_bwd.GPU_SUM_BLOCK), "max_pool2d_argmax": pool, "pool2d_bwd": pool}
    if kernel not in tiles:
        raise KeyError(f"fixed_gpu_tiles: unknown fixed-tile kernel {kernel!r} (known: {sorted(tiles)})")
    return dict(tiles[kernel])
