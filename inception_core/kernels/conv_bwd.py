"""Convolution backward as implicit GEMMs over strided (NHWC-fast) tensors: dgrad and split-K wgrad.

dgrad: M = N*H*W input pixels, N = C, reduction over (R, S, K-blocks); a tap reads the output pixel
((h + pad - r) / stride, ...), and strided layers run one grid column per stride phase so that only the
taps that divide exactly are visited. wgrad: M = K, N = C, one (r, s) per grid column, reduction over
N*OH*OW pixels split into a shape-determined number of chunks written to an fp32 buffer and summed in a
fixed order (deterministic, no atomics). Same block-size limits as the forward (tl.dot needs >= 16 per dimension).
"""

import triton
import triton.language as tl

from . import INTERPRETED
from .conv_bn_act import SMEM_LIMIT_BYTES


def _config(bm, bn, bk, stages, warps):
    return triton.Config({"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk, "GROUP_M": 8},
                         num_stages=stages, num_warps=warps)


# num_warps <= 4 throughout (flattened (r, s, block) loops, see the forward's header).
DX_GPU_CONFIGS = [
    _config(128, 64, 32, 4, 4),
    _config(64, 128, 32, 4, 4),
    _config(64, 64, 64, 3, 4),
    _config(128, 32, 32, 4, 4),
    _config(32, 64, 32, 4, 2),     # BLOCK_K 64 spilled on sm_90 (bf16 3x3s2: 4 bytes; with 4 warps 1x1/1x7: 8)
]
# wgrad: BLOCK_M output channels x BLOCK_N input channels, BLOCK_K pixels per step.
DW_GPU_CONFIGS = [
    _config(64, 64, 64, 3, 4),
    _config(128, 64, 32, 4, 4),
    _config(64, 128, 32, 4, 4),
    _config(32, 32, 64, 4, 2),
]
# The interpreter runs programs one by one: one config of big tiles each.
DX_INTERPRETER_CONFIGS = [_config(64, 64, 64, 1, 4)]
DW_INTERPRETER_CONFIGS = [_config(64, 64, 64, 1, 4)]
DX_CONFIGS = DX_INTERPRETER_CONFIGS if INTERPRETED else DX_GPU_CONFIGS
DW_CONFIGS = DW_INTERPRETER_CONFIGS if INTERPRETED else DW_GPU_CONFIGS
# Pixels per wgrad split are a multiple of this (every config's BLOCK_K divides it).
MAX_BLOCK_P = 256
GPU_SUM_BLOCK = 256
SUM_BLOCK = 1024 if INTERPRETED else GPU_SUM_BLOCK


def _next_pow2(v):
    return 1 << max(int(v) - 1, 0).bit_length()


def _fits(config, *, m, n, k, elem_size):
    kw = config.kwargs
    smem = config.num_stages * (kw["BLOCK_M"] * kw["BLOCK_K"] + kw["BLOCK_K"] * kw["BLOCK_N"]) * elem_size
    if smem > SMEM_LIMIT_BYTES:
        return False
    if elem_size == 4 and kw["BLOCK_M"] * kw["BLOCK_N"] > 64 * 32 * config.num_warps:
        return False
    return (kw["BLOCK_M"] <= max(32, _next_pow2(m)) and kw["BLOCK_N"] <= max(32, _next_pow2(n))
            and kw["BLOCK_K"] <= max(16, _next_pow2(k)))


def _prune(configs, m, n, k, elem_size):
    kept = [c for c in configs if _fits(c, m=m, n=n, k=k, elem_size=elem_size)]
    return kept or [min(configs, key=lambda c: c.kwargs["BLOCK_M"] * c.kwargs["BLOCK_N"] * c.num_stages)]


def _prune_dx(configs, named_args, **kwargs):
    a = {**named_args, **kwargs}
    return _prune(configs, a["N"] * a["H"] * a["W"], a["C"], a["K"], a["dy_ptr"].element_size())


def _prune_dw(configs, named_args, **kwargs):
    a = {**named_args, **kwargs}
    return _prune(configs, a["K"], a["C"], a["N"] * a["OH"] * a["OW"], a["dy_ptr"].element_size())


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
    mask_n = offs_n < C
    hwp = hp * wp
    n_idx = offs_m // hwp
    pix = offs_m % hwp
    ih = ph + (pix // wp) * STRIDE_H
    iw = pw + (pix % wp) * STRIDE_W
    dy_rows = dy_ptr + n_idx * stride_dyn
    w_cols = w_ptr + offs_n * stride_wc
    r0 = (ph + PAD_H) % STRIDE_H
    s0 = (pw + PAD_W) % STRIDE_W
    taps_r = (R - r0 + STRIDE_H - 1) // STRIDE_H
    taps_s = (S - s0 + STRIDE_W - 1) // STRIDE_W

    if ACC_FP64:
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float64)
    else:
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    num_kb = tl.cdiv(K, BLOCK_K)
    for step in range(0, taps_r * taps_s * num_kb):
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
        if DOT_FP32:
            a = a.to(tl.float32)
            b = b.to(tl.float32)
        acc = tl.dot(a, b, acc, input_precision=INPUT_PRECISION)

    dx_rows = n_idx * stride_dxn + ih * stride_dxh + iw * stride_dxw
    tl.store(dx_ptr + dx_rows[:, None] + offs_n[None, :] * stride_dxc, acc.to(dx_ptr.dtype.element_ty),
             mask=mask_m[:, None] & mask_n[None, :])


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
    pid_m = pid // num_pid_n
    pid_n = pid % num_pid_n
    r = rs // S
    s = rs - r * S
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_m = offs_m < K
    mask_n = offs_n < C
    if USE_INT64:
        p_start = split.to(tl.int64) * P_PER_SPLIT
    else:
        p_start = split * P_PER_SPLIT
    p_end = tl.minimum(p_start + P_PER_SPLIT, P)
    ohw = OH * OW

    if ACC_FP64:
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float64)
    else:
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for p0 in range(0, P_PER_SPLIT, BLOCK_K):
        offs_p = p_start + p0 + tl.arange(0, BLOCK_K)
        p_ok = offs_p < p_end
        n_idx = offs_p // ohw
        pix = offs_p % ohw
        oh = pix // OW
        ow = pix % OW
        ih = oh * STRIDE_H - PAD_H + r
        iw = ow * STRIDE_W - PAD_W + s
        x_ok = p_ok & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)
        dy_pix = n_idx * stride_dyn + oh * stride_dyh + ow * stride_dyw
        a = tl.load(dy_ptr + dy_pix[None, :] + offs_m[:, None] * stride_dyk,
                    mask=mask_m[:, None] & p_ok[None, :], other=0.0)
        x_pix = n_idx * stride_xn + ih * stride_xh + iw * stride_xw
        b = tl.load(x_ptr + x_pix[:, None] + offs_n[None, :] * stride_xc,
                    mask=x_ok[:, None] & mask_n[None, :], other=0.0)
        if DOT_FP32:
            a = a.to(tl.float32)
            b = b.to(tl.float32)
        acc = tl.dot(a, b, acc, input_precision=INPUT_PRECISION)

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
conv_bwd_dx_kernel = triton.autotune(configs=DX_CONFIGS, key=_KEY,
                                     prune_configs_by={"early_config_prune": _prune_dx})(_conv_bwd_dx_kernel)
# Pure writes of a fresh buffer: autotuning needs no restore_value.
conv_bwd_dw_kernel = triton.autotune(configs=DW_CONFIGS, key=[*_KEY, "P_PER_SPLIT"],
                                     prune_configs_by={"early_config_prune": _prune_dw})(_conv_bwd_dw_kernel)
