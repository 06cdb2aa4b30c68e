"""Backward of 2-D max and average pooling over strided (NHWC-fast) tensors, gather form (no atomics).

``_max_pool2d_argmax_kernel`` recomputes each output's window position of its first maximum (torch's
rule: strictly greater, or NaN) as int8; ``_pool2d_bwd_kernel`` walks, for each input pixel, the
windows that cover it in a fixed (kh, kw) order and sums their gradients: same bits every run.
Limits: no dilation; kernel_size[0] * kernel_size[1] <= 127 (int8 window positions).
"""

import triton
import triton.language as tl

from . import INTERPRETED
from ._common import (
    acc_dtype,
    avg_pool_divisor,
    pixel_channel_tile,
    pixel_coords,
    pixel_offset,
    pixel_tile_ptrs,
    window_origin,
    window_tap,
)

GPU_BLOCK_P, GPU_BLOCK_C = 32, 128  # what a GPU launches (kernels.configs.fixed_gpu_tiles)
BLOCK_P = 64 if INTERPRETED else GPU_BLOCK_P
BLOCK_C = 256 if INTERPRETED else GPU_BLOCK_C


@triton.jit
def _max_pool2d_argmax_kernel(
    x_ptr, idx_ptr,
    N, C, H, W, OH, OW,
    stride_xn, stride_xc, stride_xh, stride_xw,
    stride_in, stride_ic, stride_ih, stride_iw,
    KH: tl.constexpr, KW: tl.constexpr, STRIDE_H: tl.constexpr, STRIDE_W: tl.constexpr,
    PAD_H: tl.constexpr, PAD_W: tl.constexpr, ACC_FP64: tl.constexpr, USE_INT64: tl.constexpr,
    BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """idx[n, c, oh, ow] = kh * KW + kw of the window's first maximum (first in-bounds tap if all -inf)."""
    dt = acc_dtype(ACC_FP64)
    offs_p, offs_c, mask_p, mask_c = pixel_channel_tile(N, OH, OW, C, USE_INT64, BLOCK_P, BLOCK_C)
    n_idx, oh, ow = pixel_coords(offs_p, OH, OW)
    hstart, wstart = window_origin(oh, ow, STRIDE_H, STRIDE_W, PAD_H, PAD_W)
    x_pix = x_ptr + pixel_offset(n_idx, hstart, wstart, stride_xn, stride_xh, stride_xw)
    best = tl.zeros((BLOCK_P, BLOCK_C), dtype=dt) - float("inf")
    idx = tl.zeros((BLOCK_P, BLOCK_C), dtype=tl.int32) - 1
    x_ch = offs_c * stride_xc
    for kh in tl.static_range(KH):
        for kw in tl.static_range(KW):
            v, tap_ok = window_tap(x_pix, hstart, wstart, kh, kw, H, W, mask_p, x_ch, mask_c, stride_xh, stride_xw)
            v = v.to(dt)
            ok = tap_ok[:, None] & mask_c[None, :]
            take = ok & ((idx < 0) | (v > best) | (v != v))
            best = tl.where(take, v, best)
            idx = tl.where(take, kh * KW + kw, idx)
    tl.store(pixel_tile_ptrs(idx_ptr, n_idx, oh, ow, offs_c, stride_in, stride_ic, stride_ih, stride_iw),
             idx.to(tl.int8), mask=mask_p[:, None] & mask_c[None, :])


@triton.jit
def _pool2d_bwd_kernel(
    dy_ptr, idx_ptr, dx_ptr,
    N, C, H, W, OH, OW,
    stride_dyn, stride_dyc, stride_dyh, stride_dyw,
    stride_in, stride_ic, stride_ih, stride_iw,
    stride_dxn, stride_dxc, stride_dxh, stride_dxw,
    KH: tl.constexpr, KW: tl.constexpr, STRIDE_H: tl.constexpr, STRIDE_W: tl.constexpr,
    PAD_H: tl.constexpr, PAD_W: tl.constexpr,
    IS_MAX: tl.constexpr, COUNT_INCLUDE_PAD: tl.constexpr, ACC_FP64: tl.constexpr, USE_INT64: tl.constexpr,
    BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """dx[n, c, h, w] = sum over the windows (oh, ow) covering (h, w) of dy[n, c, oh, ow] times
    [this tap is the window's argmax] (IS_MAX) or 1 / divisor(oh, ow) (average, torch's divisor)."""
    dt = acc_dtype(ACC_FP64)
    offs_p, offs_c, mask_p, mask_c = pixel_channel_tile(N, H, W, C, USE_INT64, BLOCK_P, BLOCK_C)  # input pixels
    n_idx, ih, iw = pixel_coords(offs_p, H, W)
    acc = tl.zeros((BLOCK_P, BLOCK_C), dtype=dt)
    for kh in tl.static_range(KH):
        th = ih + PAD_H - kh
        oh = th // STRIDE_H
        h_ok = mask_p & (th >= 0) & (th - oh * STRIDE_H == 0) & (oh < OH)
        for kw in tl.static_range(KW):
            tw = iw + PAD_W - kw
            ow = tw // STRIDE_W
            ok = h_ok & (tw >= 0) & (tw - ow * STRIDE_W == 0) & (ow < OW)
            ok2 = ok[:, None] & mask_c[None, :]
            g = tl.load(pixel_tile_ptrs(dy_ptr, n_idx, oh, ow, offs_c, stride_dyn, stride_dyc, stride_dyh, stride_dyw),
                        mask=ok2, other=0.0).to(dt)
            if IS_MAX:
                win = tl.load(pixel_tile_ptrs(idx_ptr, n_idx, oh, ow, offs_c, stride_in, stride_ic, stride_ih,
                                              stride_iw), mask=ok2, other=-1)
                acc += tl.where(win.to(tl.int32) == kh * KW + kw, g, 0.0)
            else:
                hstart, wstart = window_origin(oh, ow, STRIDE_H, STRIDE_W, PAD_H, PAD_W)
                count = avg_pool_divisor(hstart, wstart, H, W, KH, KW, PAD_H, PAD_W, COUNT_INCLUDE_PAD)
                count = tl.where(ok, count, 1)
                acc += g / count.to(dt)[:, None]
    tl.store(pixel_tile_ptrs(dx_ptr, n_idx, ih, iw, offs_c, stride_dxn, stride_dxc, stride_dxh, stride_dxw),
             acc.to(dx_ptr.dtype.element_ty), mask=mask_p[:, None] & mask_c[None, :])
