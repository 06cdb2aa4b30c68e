"""BatchNorm in training mode around the fused conv: statistics finalize, normalize + act, and backward.

Forward: the conv kernel's STATS epilogue leaves, per 32-row group of output pixels, the channel sum
and centred sum of squares; ``_bn_stats_finalize_kernel`` merges the groups in a fixed order (Chan's
parallel variance, stable when |mean| >> std). Backward: ``_bn_bwd_reduce_kernel`` writes per-tile
partial sums, ``_bn_bwd_finalize_kernel`` merges them in order, ``_bn_bwd_apply_kernel`` forms the
gradient of the conv output. Fixed tile sizes (no autotune): the partial layouts depend on them.
"""

import triton
import triton.language as tl

from . import INTERPRETED
from ._common import acc_dtype, pixel_channel_tile, pixel_coords, pixel_tile_ptrs

# Tile sizes on a GPU (kernels.configs.fixed_gpu_tiles) and under the interpreter (few big programs).
GPU_BLOCKS = dict(REDUCE_BLOCK_P=64, REDUCE_BLOCK_C=64, APPLY_BLOCK_P=64, APPLY_BLOCK_C=64, FINALIZE_BLOCK_T=32,
                  FINALIZE_BLOCK_C=32)
INTERPRETER_BLOCKS = dict(REDUCE_BLOCK_P=128, REDUCE_BLOCK_C=128, APPLY_BLOCK_P=128, APPLY_BLOCK_C=128,
                          FINALIZE_BLOCK_T=64, FINALIZE_BLOCK_C=128)
_BLOCKS = INTERPRETER_BLOCKS if INTERPRETED else GPU_BLOCKS
REDUCE_BLOCK_P = _BLOCKS["REDUCE_BLOCK_P"]
REDUCE_BLOCK_C = _BLOCKS["REDUCE_BLOCK_C"]
APPLY_BLOCK_P = _BLOCKS["APPLY_BLOCK_P"]
APPLY_BLOCK_C = _BLOCKS["APPLY_BLOCK_C"]
FINALIZE_BLOCK_T = _BLOCKS["FINALIZE_BLOCK_T"]
FINALIZE_BLOCK_C = _BLOCKS["FINALIZE_BLOCK_C"]


@triton.jit
def _bn_stats_finalize_kernel(
    sum_ptr, m2_ptr, gamma_ptr, beta_ptr, rm_ptr, rv_ptr,
    mean_ptr, invstd_ptr, scale_ptr, shift_ptr, rm_out_ptr, rv_out_ptr,
    GROUPS, K, COUNT, factor, eps,
    ROWS: tl.constexpr, HAS_GAMMA: tl.constexpr, HAS_BETA: tl.constexpr, HAS_RUNNING: tl.constexpr,
    ACC_FP64: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """sum/m2: (GROUPS, K), group g covering conv-output rows [g*ROWS, min((g+1)*ROWS, COUNT)).
    Writes mean, invstd = 1/sqrt(var + eps) (biased var), the folded scale = gamma*invstd and
    shift = beta - mean*scale, and the new running stats (unbiased var) when HAS_RUNNING."""
    dt = acc_dtype(ACC_FP64)
    offs_c = tl.program_id(0) * BLOCK_C + tl.arange(0, BLOCK_C)
    mask_c = offs_c < K
    n_a = tl.zeros((BLOCK_C,), dtype=dt)
    mean_a = tl.zeros((BLOCK_C,), dtype=dt)
    m2_a = tl.zeros((BLOCK_C,), dtype=dt)
    for t0 in range(0, GROUPS, BLOCK_T):
        t = t0 + tl.arange(0, BLOCK_T)
        t_ok = t < GROUPS
        cnt = tl.minimum(tl.maximum(COUNT - t * ROWS, 0), ROWS).to(dt)
        ptrs = t[:, None] * K + offs_c[None, :]
        mask = t_ok[:, None] & mask_c[None, :]
        s = tl.load(sum_ptr + ptrs, mask=mask, other=0.0).to(dt)
        q = tl.load(m2_ptr + ptrs, mask=mask, other=0.0).to(dt)
        n_b = tl.sum(cnt, axis=0)
        mean_b = tl.sum(s, axis=0) / n_b
        mean_t = s / tl.maximum(cnt, 1.0)[:, None]
        dev = tl.where(mask, mean_t - mean_b[None, :], 0.0)
        m2_b = tl.sum(q, axis=0) + tl.sum(cnt[:, None] * dev * dev, axis=0)
        n = n_a + n_b
        delta = mean_b - mean_a
        mean_a = mean_a + delta * (n_b / n)
        m2_a = m2_a + m2_b + delta * delta * (n_a * n_b / n)
        n_a = n
    var = m2_a / COUNT
    if ACC_FP64:
        invstd = 1.0 / tl.sqrt(var + eps)
    else:
        invstd = 1.0 / tl.sqrt_rn(var + eps)  # IEEE sqrt: tl.sqrt may be approximate in fp32
    tl.store(mean_ptr + offs_c, mean_a, mask=mask_c)
    tl.store(invstd_ptr + offs_c, invstd, mask=mask_c)
    scale = invstd
    if HAS_GAMMA:
        scale = scale * tl.load(gamma_ptr + offs_c, mask=mask_c, other=0.0).to(dt)
    shift = -mean_a * scale
    if HAS_BETA:
        shift = shift + tl.load(beta_ptr + offs_c, mask=mask_c, other=0.0).to(dt)
    tl.store(scale_ptr + offs_c, scale, mask=mask_c)
    tl.store(shift_ptr + offs_c, shift, mask=mask_c)
    if HAS_RUNNING:
        unbiased = m2_a / (COUNT - 1)
        rm = tl.load(rm_ptr + offs_c, mask=mask_c, other=0.0).to(dt)
        rv = tl.load(rv_ptr + offs_c, mask=mask_c, other=0.0).to(dt)
        tl.store(rm_out_ptr + offs_c, (factor * mean_a + (1 - factor) * rm).to(rm_out_ptr.dtype.element_ty),
                 mask=mask_c)
        tl.store(rv_out_ptr + offs_c, (factor * unbiased + (1 - factor) * rv).to(rv_out_ptr.dtype.element_ty),
                 mask=mask_c)


@triton.jit
def _affine_act_kernel(
    c_ptr, scale_ptr, shift_ptr, res_ptr, y_ptr,
    N, K, OH, OW,
    stride_cn, stride_ck, stride_ch, stride_cw,
    stride_rn, stride_rk, stride_rh, stride_rw,
    stride_yn, stride_yk, stride_yh, stride_yw,
    res_scale,
    HAS_RESIDUAL: tl.constexpr, ACT_RELU: tl.constexpr, ACC_FP64: tl.constexpr, USE_INT64: tl.constexpr,
    BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """y = act(residual + res_scale * (c * scale + shift)) over (N*OH*OW) x K tiles, math in fp32 / fp64."""
    dt = acc_dtype(ACC_FP64)
    offs_p, offs_c, mask_p, mask_c = pixel_channel_tile(N, OH, OW, K, USE_INT64, BLOCK_P, BLOCK_C)
    mask = mask_p[:, None] & mask_c[None, :]
    n_idx, oh, ow = pixel_coords(offs_p, OH, OW)
    c = tl.load(pixel_tile_ptrs(c_ptr, n_idx, oh, ow, offs_c, stride_cn, stride_ck, stride_ch, stride_cw),
                mask=mask, other=0.0).to(dt)
    scale = tl.load(scale_ptr + offs_c, mask=mask_c, other=0.0).to(dt)
    shift = tl.load(shift_ptr + offs_c, mask=mask_c, other=0.0).to(dt)
    v = c * scale[None, :] + shift[None, :]
    if HAS_RESIDUAL:
        res = tl.load(pixel_tile_ptrs(res_ptr, n_idx, oh, ow, offs_c, stride_rn, stride_rk, stride_rh, stride_rw),
                      mask=mask, other=0.0).to(dt)
        v = res + res_scale * v
    if ACT_RELU:
        v = tl.where(v < 0.0, 0.0, v)  # keeps NaN, as torch.relu does
    tl.store(pixel_tile_ptrs(y_ptr, n_idx, oh, ow, offs_c, stride_yn, stride_yk, stride_yh, stride_yw),
             v.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _masked_grad(dy_ptr, y_ptr, n_idx, oh, ow, offs_c, mask,
                 stride_dyn, stride_dyk, stride_dyh, stride_dyw,
                 stride_yn, stride_yk, stride_yh, stride_yw,
                 ACT_RELU: tl.constexpr, dt: tl.constexpr):
    """g = dy * act'(y) over the tile, in ``dt``."""
    g = tl.load(pixel_tile_ptrs(dy_ptr, n_idx, oh, ow, offs_c, stride_dyn, stride_dyk, stride_dyh, stride_dyw),
                mask=mask, other=0.0).to(dt)
    if ACT_RELU:
        y = tl.load(pixel_tile_ptrs(y_ptr, n_idx, oh, ow, offs_c, stride_yn, stride_yk, stride_yh, stride_yw),
                    mask=mask, other=0.0).to(dt)
        g = tl.where(y > 0.0, g, 0.0)
    return g


@triton.jit
def _xhat(c_ptr, mean_ptr, invstd_ptr, n_idx, oh, ow, offs_c, mask, mask_c,
          stride_cn, stride_ck, stride_ch, stride_cw, TRAIN: tl.constexpr, dt: tl.constexpr):
    """The conv output c over the tile in ``dt``, normalized, (c - mean) * invstd, when ``TRAIN``."""
    xhat = tl.load(pixel_tile_ptrs(c_ptr, n_idx, oh, ow, offs_c, stride_cn, stride_ck, stride_ch, stride_cw),
                   mask=mask, other=0.0).to(dt)
    if TRAIN:
        mean = tl.load(mean_ptr + offs_c, mask=mask_c, other=0.0)
        invstd = tl.load(invstd_ptr + offs_c, mask=mask_c, other=0.0)
        xhat = (xhat - mean[None, :]) * invstd[None, :]
    return xhat


@triton.jit
def _bn_bwd_reduce_kernel(
    dy_ptr, y_ptr, c_ptr, mean_ptr, invstd_ptr, g_ptr, psum_ptr, psumx_ptr,
    N, K, OH, OW,
    stride_dyn, stride_dyk, stride_dyh, stride_dyw,
    stride_yn, stride_yk, stride_yh, stride_yw,
    stride_cn, stride_ck, stride_ch, stride_cw,
    stride_gn, stride_gk, stride_gh, stride_gw,
    NEED_SUMS: tl.constexpr, STORE_G: tl.constexpr, ACT_RELU: tl.constexpr, TRAIN: tl.constexpr,
    ACC_FP64: tl.constexpr, USE_INT64: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """g = dy * act'(y); optionally stores g (the residual's gradient); psum[tile] = sum g and
    psumx[tile] = sum g * xhat per channel, xhat = (c - mean) * invstd (TRAIN) or c."""
    dt = acc_dtype(ACC_FP64)
    offs_p, offs_c, mask_p, mask_c = pixel_channel_tile(N, OH, OW, K, USE_INT64, BLOCK_P, BLOCK_C)
    mask = mask_p[:, None] & mask_c[None, :]
    n_idx, oh, ow = pixel_coords(offs_p, OH, OW)
    g = _masked_grad(dy_ptr, y_ptr, n_idx, oh, ow, offs_c, mask, stride_dyn, stride_dyk, stride_dyh, stride_dyw,
                     stride_yn, stride_yk, stride_yh, stride_yw, ACT_RELU, dt)
    if STORE_G:
        tl.store(pixel_tile_ptrs(g_ptr, n_idx, oh, ow, offs_c, stride_gn, stride_gk, stride_gh, stride_gw),
                 g.to(g_ptr.dtype.element_ty), mask=mask)
    if NEED_SUMS:
        xhat = _xhat(c_ptr, mean_ptr, invstd_ptr, n_idx, oh, ow, offs_c, mask, mask_c,
                     stride_cn, stride_ck, stride_ch, stride_cw, TRAIN, dt)
        out = tl.program_id(0).to(offs_p.dtype) * K + offs_c  # this pixel tile's row of the partials
        tl.store(psum_ptr + out, tl.sum(g, axis=0), mask=mask_c)
        tl.store(psumx_ptr + out, tl.sum(g * xhat, axis=0), mask=mask_c)


@triton.jit
def _bn_bwd_finalize_kernel(
    psum_ptr, psumx_ptr, coef_ptr, invstd_ptr, gcoef_ptr, gbias_ptr, a_ptr, b_ptr, d_ptr,
    ROWS, K, COUNT, res_scale,
    HAS_SUMS: tl.constexpr, HAS_COEF: tl.constexpr, TRAIN: tl.constexpr, ACC_FP64: tl.constexpr,
    BLOCK_T: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """Sums the partials in row order; grad_coef = res_scale * sum(g * xhat), grad_bias = res_scale * sum(g);
    coefficients of grad_c = A * g + B + D * xhat: A = res_scale * coef (* invstd when TRAIN) and, for
    TRAIN, B = -A * sum(g) / COUNT, D = -A * sum(g * xhat) / COUNT (BN's training backward)."""
    dt = acc_dtype(ACC_FP64)
    offs_c = tl.program_id(0) * BLOCK_C + tl.arange(0, BLOCK_C)
    mask_c = offs_c < K
    sg = tl.zeros((BLOCK_C,), dtype=dt)
    sgx = tl.zeros((BLOCK_C,), dtype=dt)
    if HAS_SUMS:
        for t0 in range(0, ROWS, BLOCK_T):
            t = t0 + tl.arange(0, BLOCK_T)
            ptrs = t[:, None] * K + offs_c[None, :]
            mask = (t < ROWS)[:, None] & mask_c[None, :]
            sg += tl.sum(tl.load(psum_ptr + ptrs, mask=mask, other=0.0), axis=0)
            sgx += tl.sum(tl.load(psumx_ptr + ptrs, mask=mask, other=0.0), axis=0)
        tl.store(gcoef_ptr + offs_c, res_scale * sgx, mask=mask_c)
        tl.store(gbias_ptr + offs_c, res_scale * sg, mask=mask_c)
    a = tl.zeros((BLOCK_C,), dtype=dt) + res_scale
    if HAS_COEF:
        a = a * tl.load(coef_ptr + offs_c, mask=mask_c, other=0.0).to(dt)
    if TRAIN:
        a = a * tl.load(invstd_ptr + offs_c, mask=mask_c, other=0.0).to(dt)
        b = -a * sg / COUNT
        d = -a * sgx / COUNT
    else:
        b = tl.zeros((BLOCK_C,), dtype=dt)
        d = tl.zeros((BLOCK_C,), dtype=dt)
    tl.store(a_ptr + offs_c, a, mask=mask_c)
    tl.store(b_ptr + offs_c, b, mask=mask_c)
    tl.store(d_ptr + offs_c, d, mask=mask_c)


@triton.jit
def _bn_bwd_apply_kernel(
    dy_ptr, y_ptr, c_ptr, mean_ptr, invstd_ptr, a_ptr, b_ptr, d_ptr, gc_ptr,
    N, K, OH, OW,
    stride_dyn, stride_dyk, stride_dyh, stride_dyw,
    stride_yn, stride_yk, stride_yh, stride_yw,
    stride_cn, stride_ck, stride_ch, stride_cw,
    stride_gn, stride_gk, stride_gh, stride_gw,
    ACT_RELU: tl.constexpr, TRAIN: tl.constexpr, ACC_FP64: tl.constexpr, USE_INT64: tl.constexpr,
    BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """grad_c = A * g + B + D * xhat (TRAIN) or A * g, g = dy * act'(y), stored in gc's dtype."""
    dt = acc_dtype(ACC_FP64)
    offs_p, offs_c, mask_p, mask_c = pixel_channel_tile(N, OH, OW, K, USE_INT64, BLOCK_P, BLOCK_C)
    mask = mask_p[:, None] & mask_c[None, :]
    n_idx, oh, ow = pixel_coords(offs_p, OH, OW)
    g = _masked_grad(dy_ptr, y_ptr, n_idx, oh, ow, offs_c, mask, stride_dyn, stride_dyk, stride_dyh, stride_dyw,
                     stride_yn, stride_yk, stride_yh, stride_yw, ACT_RELU, dt)
    a = tl.load(a_ptr + offs_c, mask=mask_c, other=0.0)
    gc = a[None, :] * g
    if TRAIN:
        xhat = _xhat(c_ptr, mean_ptr, invstd_ptr, n_idx, oh, ow, offs_c, mask, mask_c,
                     stride_cn, stride_ck, stride_ch, stride_cw, True, dt)
        b = tl.load(b_ptr + offs_c, mask=mask_c, other=0.0)
        d = tl.load(d_ptr + offs_c, mask=mask_c, other=0.0)
        gc = gc + b[None, :] + d[None, :] * xhat
    tl.store(pixel_tile_ptrs(gc_ptr, n_idx, oh, ow, offs_c, stride_gn, stride_gk, stride_gh, stride_gw),
             gc.to(gc_ptr.dtype.element_ty), mask=mask)
