"""Implicit-GEMM convolution with a fused BatchNorm / residual / activation epilogue (forward).

GEMM view: M = N*OH*OW output pixels, N = K output channels, reduction over (R, S, C-blocks) in one
flattened loop so the pipeliner sees every step. Every tensor is addressed through its strides
(NHWC is the fast layout: channel vectors are contiguous; NCHW works without a copy, slower).
Limits: tl.dot needs each block dimension >= 16, so channel counts below BLOCK_K (the 3-channel stem)
are masked up to it; num_warps stays <= 4 for kernels other than 1x1 (Triton #1254 class bugs).
STATS (BatchNorm training): per STATS_ROWS-row group of output pixels, the channel sum and centred sum
of squares of the fp32 accumulator, for batch_norm.py to merge; groups align to the same rows
whatever BLOCK_M is.
"""

import triton
import triton.language as tl

from . import configs
from ._common import (
    acc_dtype,
    dot_acc,
    grouped_tiles,
    pixel_coords,
    pixel_offset,
    pixel_tile_ptrs,
    tile_offsets,
    window_origin,
)

# Output pixels per group of the STATS epilogue's partial statistics (divides every BLOCK_M).
STATS_ROWS = 32
_STATS_ROWS = tl.constexpr(STATS_ROWS)  # the form a @triton.jit function may read


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
    pid_m, pid_n = grouped_tiles(pid, num_pid_m, num_pid_n, GROUP_M)
    offs_m, offs_n, mask_m, mask_n = tile_offsets(pid_m, pid_n, M, K, USE_INT64, BLOCK_M, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)

    n_idx, oh, ow = pixel_coords(offs_m, OH, OW)
    ih0, iw0 = window_origin(oh, ow, STRIDE_H, STRIDE_W, PAD_H, PAD_W)
    x_rows = x_ptr + pixel_offset(n_idx, ih0, iw0, stride_xn, stride_xh, stride_xw)
    w_cols = w_ptr + offs_n * stride_wk

    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=acc_dtype(ACC_FP64))
    num_cb = tl.cdiv(C, BLOCK_K)
    for step in range(0, R * S * num_cb):
        if R == 1 and S == 1:
            # r = s = 0 as constants: the tap offsets vanish and the loads keep their pointers' alignment
            # (a 1x1 weight's tap strides are 1, which would make r * stride_wr of unknown alignment)
            r = 0
            s = 0
            c0 = step * BLOCK_K
        else:
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
        acc = dot_acc(a, b, acc, INPUT_PRECISION, DOT_FP32)

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
        res = tl.load(pixel_tile_ptrs(res_ptr, n_idx, oh, ow, offs_n, stride_rn, stride_rc, stride_rh, stride_rw),
                      mask=out_mask, other=0.0)
        acc = res.to(acc.dtype) + res_scale * acc
    if ACT_RELU:
        acc = tl.where(acc < 0.0, 0.0, acc)  # keeps NaN, as torch.relu does
    tl.store(pixel_tile_ptrs(y_ptr, n_idx, oh, ow, offs_n, stride_yn, stride_yc, stride_yh, stride_yw),
             acc.to(y_ptr.dtype.element_ty), mask=out_mask)


conv_bn_act_fwd_kernel = triton.autotune(
    configs=configs.CONFIGS["conv_bn_act_fwd"],
    key=["N", "C", "H", "W", "K", "OH", "OW", "R", "S", "STRIDE_H", "STRIDE_W", "PAD_H", "PAD_W"],
    prune_configs_by={"early_config_prune": configs.prune_conv_fwd},
)(_conv_bn_act_fwd_kernel)
