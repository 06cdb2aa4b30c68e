"""Convolution backward as implicit GEMMs over strided (NHWC-fast) tensors: dgrad and split-K wgrad.

dgrad: M = N*H*W input pixels, N = C, reduction over (R, S, K-blocks); a tap reads the output pixel
((h + pad - r) / stride, ...), and strided layers run one grid column per stride phase so that only the
taps that divide exactly are visited. wgrad: M = K, N = C, one (r, s) per grid column, reduction over
N*OH*OW pixels split into a shape-determined number of chunks written to an fp32 buffer and summed in a
fixed order (deterministic, no atomics). Same block-size limits as the forward (tl.dot needs >= 16 per dimension).
"""

import triton
import triton.language as tl

from . import INTERPRETED, configs
from ._common import acc_dtype, dot_acc, grouped_tiles, pixel_coords, pixel_offset, pixel_tile_ptrs, tile_offsets

# Pixels per wgrad split are a multiple of this (every config's BLOCK_K divides it).
MAX_BLOCK_P = 256
GPU_SUM_BLOCK = 256
# The interpreter pays per program, not per element: large blocks (a wide wgrad is millions of elements).
SUM_BLOCK = 16384 if INTERPRETED else GPU_SUM_BLOCK


@triton.jit
def _conv_bwd_dx_kernel(
    dy_ptr, w_ptr, dx_ptr,
    N, C, H, W, K, OH, OW,
    stride_dyn, stride_dyk, stride_dyh, stride_dyw,
    stride_wk, stride_wc, stride_wr, stride_ws,
    stride_dxn, stride_dxc, stride_dxh, stride_dxw,
    R: tl.constexpr, S: tl.constexpr,
    STRIDE_H: tl.constexpr, STRIDE_W: tl.constexpr,
    PAD_H: tl.constexpr, PAD_W: tl.constexpr,
    INPUT_PRECISION: tl.constexpr, DOT_FP32: tl.constexpr, ACC_FP64: tl.constexpr, USE_INT64: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):
    """dx[n, c, h, w] = sum over (r, s, k) of dy[n, k, oh, ow] * w[k, c, r, s], oh*STRIDE_H = h + PAD_H - r.

    Grid axis 1 is the stride phase (h % STRIDE_H, w % STRIDE_W): the pixels of one phase receive
    gradient only from the taps r = r0 (mod STRIDE_H), s = s0 (mod STRIDE_W), so a program loops over
    those taps alone (a 3x3 stride-2 layer runs 1 to 4 taps per pixel, not 9 masked ones).
    """
    pid = tl.program_id(0)
    phase = tl.program_id(1)
    ph = phase // STRIDE_W
    pw = phase - ph * STRIDE_W
    hp = (H - ph + STRIDE_H - 1) // STRIDE_H  # pixels of this phase per column / row
    wp = (W - pw + STRIDE_W - 1) // STRIDE_W
    M = N * hp * wp
    # Every phase decodes pid over the largest phase's tile count (phase 0), masking its own extent.
    num_pid_m = tl.cdiv(N * ((H + STRIDE_H - 1) // STRIDE_H) * ((W + STRIDE_W - 1) // STRIDE_W), BLOCK_M)
    num_pid_n = tl.cdiv(C, BLOCK_N)
    pid_m, pid_n = grouped_tiles(pid, num_pid_m, num_pid_n, GROUP_M)
    offs_m, offs_n, mask_m, mask_n = tile_offsets(pid_m, pid_n, M, C, USE_INT64, BLOCK_M, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    n_idx, row, col = pixel_coords(offs_m, hp, wp)  # position within this phase's pixel grid
    ih = ph + row * STRIDE_H
    iw = pw + col * STRIDE_W
    dy_rows = dy_ptr + n_idx * stride_dyn
    w_cols = w_ptr + offs_n * stride_wc
    r0 = (ph + PAD_H) % STRIDE_H
    s0 = (pw + PAD_W) % STRIDE_W
    taps_r = (R - r0 + STRIDE_H - 1) // STRIDE_H
    taps_s = (S - s0 + STRIDE_W - 1) // STRIDE_W

    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=acc_dtype(ACC_FP64))
    num_kb = tl.cdiv(K, BLOCK_K)
    for step in range(0, taps_r * taps_s * num_kb):
        if R == 1 and S == 1:
            # the one tap (0, 0) as constants (a phase it misses runs no step), as in the forward: aligned loads
            r = 0
            s = 0
            k0 = step * BLOCK_K
        else:
            rs = step // num_kb
            k0 = (step - rs * num_kb) * BLOCK_K
            tr = rs // taps_s
            r = r0 + tr * STRIDE_H
            s = s0 + (rs - tr * taps_s) * STRIDE_W
        oh = (ih + PAD_H - r) // STRIDE_H  # an exact division: r was chosen so
        ow = (iw + PAD_W - s) // STRIDE_W
        ok = mask_m & (ih + PAD_H - r >= 0) & (iw + PAD_W - s >= 0) & (oh < OH) & (ow < OW)
        kk = k0 + offs_k
        k_ok = kk < K
        a = tl.load(dy_rows[:, None] + oh[:, None] * stride_dyh + ow[:, None] * stride_dyw + kk[None, :] * stride_dyk,
                    mask=ok[:, None] & k_ok[None, :], other=0.0)
        b = tl.load(w_cols[None, :] + (r * stride_wr + s * stride_ws) + kk[:, None] * stride_wk,
                    mask=k_ok[:, None] & mask_n[None, :], other=0.0)
        acc = dot_acc(a, b, acc, INPUT_PRECISION, DOT_FP32)

    tl.store(pixel_tile_ptrs(dx_ptr, n_idx, ih, iw, offs_n, stride_dxn, stride_dxc, stride_dxh, stride_dxw),
             acc.to(dx_ptr.dtype.element_ty), mask=mask_m[:, None] & mask_n[None, :])


@triton.jit
def _conv_bwd_dw_kernel(
    dy_ptr, x_ptr, part_ptr,
    N, C, H, W, K, OH, OW, P_PER_SPLIT,
    stride_dyn, stride_dyk, stride_dyh, stride_dyw,
    stride_xn, stride_xc, stride_xh, stride_xw,
    stride_pk, stride_pr, stride_ps, stride_pc, stride_psplit,
    R: tl.constexpr, S: tl.constexpr,
    STRIDE_H: tl.constexpr, STRIDE_W: tl.constexpr,
    PAD_H: tl.constexpr, PAD_W: tl.constexpr,
    INPUT_PRECISION: tl.constexpr, DOT_FP32: tl.constexpr, ACC_FP64: tl.constexpr, USE_INT64: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):
    """part[split, k, r, s, c] = sum over this split's pixels p of dy[p, k] * x[pixel under tap (r, s) of p, c]."""
    P = N * OH * OW
    pid = tl.program_id(0)
    rs = tl.program_id(1)
    split = tl.program_id(2)
    num_pid_n = tl.cdiv(C, BLOCK_N)
    # rows are output channels, columns input channels: int32 (the pixel loop below is the int64 part)
    offs_m, offs_n, mask_m, mask_n = tile_offsets(pid // num_pid_n, pid % num_pid_n, K, C, False, BLOCK_M, BLOCK_N)
    r = rs // S
    s = rs - r * S
    if USE_INT64:
        p_start = split.to(tl.int64) * P_PER_SPLIT
    else:
        p_start = split * P_PER_SPLIT
    p_end = tl.minimum(p_start + P_PER_SPLIT, P)

    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=acc_dtype(ACC_FP64))
    for p0 in range(0, P_PER_SPLIT, BLOCK_K):
        offs_p = p_start + p0 + tl.arange(0, BLOCK_K)
        p_ok = offs_p < p_end
        n_idx, oh, ow = pixel_coords(offs_p, OH, OW)
        ih = oh * STRIDE_H - PAD_H + r
        iw = ow * STRIDE_W - PAD_W + s
        x_ok = p_ok & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)
        dy_pix = pixel_offset(n_idx, oh, ow, stride_dyn, stride_dyh, stride_dyw)
        a = tl.load(dy_ptr + dy_pix[None, :] + offs_m[:, None] * stride_dyk,
                    mask=mask_m[:, None] & p_ok[None, :], other=0.0)
        x_pix = pixel_offset(n_idx, ih, iw, stride_xn, stride_xh, stride_xw)
        b = tl.load(x_ptr + x_pix[:, None] + offs_n[None, :] * stride_xc,
                    mask=x_ok[:, None] & mask_n[None, :], other=0.0)
        acc = dot_acc(a, b, acc, INPUT_PRECISION, DOT_FP32)

    out = part_ptr + split * stride_psplit + r * stride_pr + s * stride_ps
    tl.store(out + offs_m[:, None] * stride_pk + offs_n[None, :] * stride_pc, acc,
             mask=mask_m[:, None] & mask_n[None, :])


@triton.jit
def _sum_splits_kernel(
    part_ptr, dw_ptr, SPLITS, TOTAL, C, R, S, stride_psplit,
    stride_dwk, stride_dwc, stride_dwr, stride_dws,
    BLOCK: tl.constexpr,
):
    """dw = sum of the wgrad splits in split order (part is (SPLITS, K, R, S, C) contiguous), cast to dw's dtype."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < TOTAL
    acc = tl.load(part_ptr + offs, mask=mask, other=0.0)
    for i in range(1, SPLITS):
        acc += tl.load(part_ptr + i * stride_psplit + offs, mask=mask, other=0.0)
    c = offs % C
    rest = offs // C
    s = rest % S
    rest = rest // S
    r = rest % R
    k = rest // R
    tl.store(dw_ptr + k * stride_dwk + c * stride_dwc + r * stride_dwr + s * stride_dws,
             acc.to(dw_ptr.dtype.element_ty), mask=mask)


_KEY = ["N", "C", "H", "W", "K", "OH", "OW", "R", "S", "STRIDE_H", "STRIDE_W", "PAD_H", "PAD_W"]
conv_bwd_dx_kernel = triton.autotune(configs=configs.CONFIGS["conv_bwd_dx"], key=_KEY,
                                     prune_configs_by={"early_config_prune": configs.prune_conv_bwd_dx}
                                     )(_conv_bwd_dx_kernel)
# Pure writes of a fresh buffer: autotuning needs no restore_value.
conv_bwd_dw_kernel = triton.autotune(configs=configs.CONFIGS["conv_bwd_dw"], key=[*_KEY, "P_PER_SPLIT"],
                                     prune_configs_by={"early_config_prune": configs.prune_conv_bwd_dw}
                                     )(_conv_bwd_dw_kernel)
