"""Implicit-GEMM convolution with a fused BatchNorm / residual / activation epilogue (forward).

GEMM view: M = N*OH*OW output pixels, N = K output channels, reduction over (R, S, C-blocks) in one
flattened loop so the pipeliner sees every step. Every tensor is addressed through its strides
(NHWC is the fast layout: channel vectors are contiguous; NCHW works without a copy, slower).
Limits: tl.dot needs each block dimension >= 16, so channel counts below BLOCK_K (the 3-channel stem)
are masked up to it; num_warps stays <= 4 for kernels other than 1x1 (Triton #1254 class bugs).
STATS (BatchNorm training): per STATS_ROWS-row group of output pixels, the channel sum and centred sum
of squares of the fp32 accumulator, for kernels/batch_norm.py to merge; groups align to the same rows
whatever BLOCK_M is.
"""

import triton
import triton.language as tl

from . import INTERPRETED

# Shared-memory budget a config may use per pipeline stage set (bytes); sm_80 allows 163 KiB.
SMEM_LIMIT_BYTES = 160 * 1024
# Output pixels per group of the STATS epilogue's partial statistics (divides every BLOCK_M).
STATS_ROWS = 32
_STATS_ROWS = tl.constexpr(STATS_ROWS)  # the form a @triton.jit function may read


def _config(bm, bn, bk, stages, warps):
    return triton.Config({"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk, "GROUP_M": 8},
                         num_stages=stages, num_warps=warps)


# Every config must compile for sm_80 and sm_90 with tensor-core instructions (tests/kernels).
GPU_CONFIGS = [
    _config(128, 256, 64, 3, 8),   # large 1x1 GEMMs (8 warps: 1x1 only, see pruning)
    _config(128, 128, 64, 3, 8),   # 1x1 only
    _config(128, 128, 32, 4, 4),
    _config(128, 64, 32, 4, 4),
    _config(64, 128, 32, 4, 4),
    _config(64, 64, 64, 3, 4),
    _config(128, 32, 32, 4, 4),    # narrow outputs (32-channel stem convs)
    _config(64, 32, 32, 4, 2),
    _config(32, 64, 64, 4, 2),     # few output pixels (8x8 maps, small batch)
]
# The interpreter runs programs one by one through numpy: few big tiles are fastest, and autotuning
# there would run every config on the CPU, so it gets exactly one.
INTERPRETER_CONFIGS = [_config(64, 64, 64, 1, 4)]

CONFIGS = INTERPRETER_CONFIGS if INTERPRETED else GPU_CONFIGS


def _next_pow2(v):
    return 1 << max(int(v) - 1, 0).bit_length()


def config_fits(config, *, M, C, K, R, S, elem_size, stats=False, residual=False):
    """Whether a config is worth trying for a problem (shared memory, warps, registers, tile size vs problem)."""
    kw = config.kwargs
    smem = config.num_stages * (kw["BLOCK_M"] * kw["BLOCK_K"] + kw["BLOCK_K"] * kw["BLOCK_N"]) * elem_size
    if smem > SMEM_LIMIT_BYTES:
        return False
    if config.num_warps > 4 and R * S != 1:
        return False
    # fp32 (TF32) tiles with more than 64 accumulators per thread run out of registers and spill
    # (ptxas: 128x128 with 4 warps reaches 255 registers and spills on sm_80 and sm_90); so do fp16/bf16
    # tiles with the STATS epilogue (128x128 with 4 warps: 176 bytes of spills on sm_80) or a residual
    # (128x128 with 4 warps: 255 registers and 340 bytes of spills on sm_90; 128x256 with 8 warps: 544).
    if (elem_size == 4 or stats or residual) and kw["BLOCK_M"] * kw["BLOCK_N"] > 64 * 32 * config.num_warps:
        return False
    return (kw["BLOCK_N"] <= max(32, _next_pow2(K)) and kw["BLOCK_K"] <= max(16, _next_pow2(C))
            and kw["BLOCK_M"] <= max(32, _next_pow2(M)))


def _prune_configs(configs, named_args, **kwargs):
    args = {**named_args, **kwargs}
    M = args["N"] * args["OH"] * args["OW"]
    elem_size = args["x_ptr"].element_size()
    kept = [c for c in configs if config_fits(c, M=M, C=args["C"], K=args["K"], R=args["R"], S=args["S"],
                                               elem_size=elem_size, stats=bool(args.get("STATS", False)),
                                               residual=bool(args.get("HAS_RESIDUAL", False)))]
    if kept:
        return kept
    smallest = min(configs, key=lambda c: c.kwargs["BLOCK_M"] * c.kwargs["BLOCK_N"] * c.num_stages)
    return [smallest]


@triton.jit
def _conv_bn_act_fwd_kernel(
    x_ptr, w_ptr, scale_ptr, shift_ptr, res_ptr, y_ptr, stat_sum_ptr, stat_m2_ptr,
    N, C, H, W, K, OH, OW,
    stride_xn, stride_xc, stride_xh, stride_xw,
    stride_wk, stride_wc, stride_wr, stride_ws,
    stride_rn, stride_rc, stride_rh, stride_rw,
    stride_yn, stride_yc, stride_yh, stride_yw,
    res_scale,
    R: tl.constexpr, S: tl.constexpr,
    STRIDE_H: tl.constexpr, STRIDE_W: tl.constexpr,
    PAD_H: tl.constexpr, PAD_W: tl.constexpr,
    HAS_SCALE: tl.constexpr, HAS_SHIFT: tl.constexpr, HAS_RESIDUAL: tl.constexpr,
    ACT_RELU: tl.constexpr,
    STATS: tl.constexpr,            # write per-group channel sums / centred sums of squares (BN training)
    INPUT_PRECISION: tl.constexpr,  # "tf32" or "ieee" for fp32 operands
    DOT_FP32: tl.constexpr,         # cast dot operands to fp32 (bf16 under the interpreter)
    ACC_FP64: tl.constexpr,         # fp64 accumulation for fp64 inputs (interpreter only)
    USE_INT64: tl.constexpr,        # int64 pixel offsets when a tensor has >= 2**31 elements
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):
    M = N * OH * OW
    pid = tl.program_id(0)
    num_pid_m = tl.cdiv(M, BLOCK_M)
    num_pid_n = tl.cdiv(K, BLOCK_N)
    # Grouped ordering: GROUP_M pixel tiles share the weight tiles they read while those sit in L2.
    num_pid_in_group = GROUP_M * num_pid_n
    group_id = pid // num_pid_in_group
    first_pid_m = group_id * GROUP_M
    group_size_m = min(num_pid_m - first_pid_m, GROUP_M)
    pid_m = first_pid_m + ((pid % num_pid_in_group) % group_size_m)
    pid_n = (pid % num_pid_in_group) // group_size_m

    if USE_INT64:
        pid_m = pid_m.to(tl.int64)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    mask_m = offs_m < M
    mask_n = offs_n < K

    ohw = OH * OW
    n_idx = offs_m // ohw
    pix = offs_m % ohw
    oh = pix // OW
    ow = pix % OW
    ih0 = oh * STRIDE_H - PAD_H
    iw0 = ow * STRIDE_W - PAD_W
    x_rows = x_ptr + (n_idx * stride_xn + ih0 * stride_xh + iw0 * stride_xw)
    w_cols = w_ptr + offs_n * stride_wk

    if ACC_FP64:
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float64)
    else:
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    num_cb = tl.cdiv(C, BLOCK_K)
    for step in range(0, R * S * num_cb):
        rs = step // num_cb
        c0 = (step - rs * num_cb) * BLOCK_K
        r = rs // S
        s = rs - r * S
        ih = ih0 + r
        iw = iw0 + s
        if R == 1 and S == 1 and PAD_H == 0 and PAD_W == 0:
            row_ok = mask_m  # unpadded 1x1: every tap is inside the input, no bounds to test
        else:
            row_ok = mask_m & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)
        cc = c0 + offs_k
        c_ok = cc < C
        a = tl.load(x_rows[:, None] + (r * stride_xh + s * stride_xw) + cc[None, :] * stride_xc,
                    mask=row_ok[:, None] & c_ok[None, :], other=0.0)
        b = tl.load(w_cols[None, :] + (r * stride_wr + s * stride_ws) + cc[:, None] * stride_wc,
                    mask=c_ok[:, None] & mask_n[None, :], other=0.0)
        if DOT_FP32:
            a = a.to(tl.float32)
            b = b.to(tl.float32)
        acc = tl.dot(a, b, acc, input_precision=INPUT_PRECISION)

    if STATS:
        # Two-pass within each group of STATS_ROWS rows (mean first, then squared deviations): stable
        # when the channel mean is large compared to its spread.
        G: tl.constexpr = BLOCK_M // _STATS_ROWS
        rows_ok = tl.reshape(mask_m, (G, _STATS_ROWS))
        v = tl.reshape(tl.where(mask_m[:, None], acc, 0.0), (G, _STATS_ROWS, BLOCK_N))
        grp = pid_m * G + tl.arange(0, G)
        cnt = tl.minimum(tl.maximum(M - grp * _STATS_ROWS, 0), _STATS_ROWS)
        gsum = tl.sum(v, axis=1)
        gmean = gsum / tl.maximum(cnt, 1).to(acc.dtype)[:, None]
        dev = tl.where(rows_ok[:, :, None], v - gmean[:, None, :], 0.0)
        gm2 = tl.sum(dev * dev, axis=1)
        stat_off = grp[:, None] * K + offs_n[None, :]
        stat_mask = (cnt > 0)[:, None] & mask_n[None, :]
        tl.store(stat_sum_ptr + stat_off, gsum, mask=stat_mask)
        tl.store(stat_m2_ptr + stat_off, gm2, mask=stat_mask)
    if HAS_SCALE:
        scale = tl.load(scale_ptr + offs_n, mask=mask_n, other=0.0)
        acc = acc * scale[None, :]
    if HAS_SHIFT:
        shift = tl.load(shift_ptr + offs_n, mask=mask_n, other=0.0)
        acc = acc + shift[None, :]
    out_mask = mask_m[:, None] & mask_n[None, :]
    if HAS_RESIDUAL:
        res_rows = n_idx * stride_rn + oh * stride_rh + ow * stride_rw
        res = tl.load(res_ptr + res_rows[:, None] + offs_n[None, :] * stride_rc, mask=out_mask, other=0.0)
        acc = res.to(acc.dtype) + res_scale * acc
    if ACT_RELU:
        acc = tl.where(acc < 0.0, 0.0, acc)  # keeps NaN, as torch.relu does
    y_rows = n_idx * stride_yn + oh * stride_yh + ow * stride_yw
    tl.store(y_ptr + y_rows[:, None] + offs_n[None, :] * stride_yc, acc.to(y_ptr.dtype.element_ty), mask=out_mask)


conv_bn_act_fwd_kernel = triton.autotune(
    configs=CONFIGS,
    key=["N", "C", "H", "W", "K", "OH", "OW", "R", "S", "STRIDE_H", "STRIDE_W", "PAD_H", "PAD_W"],
    prune_configs_by={"early_config_prune": _prune_configs},
)(_conv_bn_act_fwd_kernel)
