"""2-D max and average pooling (forward) over strided input, one kernel with constexpr switches.

Tile = [BLOCK_P output pixels (flattened N*OH*OW), BLOCK_C channels]; the KH x KW window is unrolled
and each step loads one channel vector per pixel (contiguous in NHWC; NCHW works through the strides,
slower). Values are cast to fp32 (fp64 for fp64) right after the load, so bf16 is right under the
interpreter too. Limits: no dilation, no indices (no return_indices, no backward here).
"""

import triton
import triton.language as tl

from . import configs
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


@triton.jit
def _pool2d_fwd_kernel(
    x_ptr, y_ptr,
    N, C, H, W, OH, OW,
    stride_xn, stride_xc, stride_xh, stride_xw,
    stride_yn, stride_yc, stride_yh, stride_yw,
    KH: tl.constexpr, KW: tl.constexpr,
    STRIDE_H: tl.constexpr, STRIDE_W: tl.constexpr,
    PAD_H: tl.constexpr, PAD_W: tl.constexpr,
    IS_MAX: tl.constexpr,             # max pool, else average pool
    COUNT_INCLUDE_PAD: tl.constexpr,  # average pool divisor rule (torch's)
    ACC_FP64: tl.constexpr,           # fp64 compute for fp64 inputs (interpreter / torch parity)
    USE_INT64: tl.constexpr,          # int64 offsets when a tensor has >= 2**31 elements
    BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr,
):
    offs_p, offs_c, mask_p, mask_c = pixel_channel_tile(N, OH, OW, C, USE_INT64, BLOCK_P, BLOCK_C)
    n_idx, oh, ow = pixel_coords(offs_p, OH, OW)
    hstart, wstart = window_origin(oh, ow, STRIDE_H, STRIDE_W, PAD_H, PAD_W)
    x_pix = x_ptr + pixel_offset(n_idx, hstart, wstart, stride_xn, stride_xh, stride_xw)
    x_ch = offs_c * stride_xc

    acc = tl.zeros((BLOCK_P, BLOCK_C), dtype=acc_dtype(ACC_FP64))
    if IS_MAX:
        acc = acc - float("inf")

    for kh in tl.static_range(KH):
        for kw in tl.static_range(KW):
            v, ok = window_tap(x_pix, hstart, wstart, kh, kw, H, W, mask_p, x_ch, mask_c, stride_xh, stride_xw)
            # Cast before any arithmetic: the interpreter computes bf16 arithmetic on raw bits.
            v = v.to(acc.dtype)
            if IS_MAX:
                # Padded / out-of-range taps are -inf; NaN propagates as in torch.
                v = tl.where(ok[:, None], v, float("-inf"))
                acc = tl.maximum(acc, v, propagate_nan=tl.PropagateNan.ALL)
            else:
                acc += v

    if not IS_MAX:
        count = avg_pool_divisor(hstart, wstart, H, W, KH, KW, PAD_H, PAD_W, COUNT_INCLUDE_PAD)
        acc = acc / count.to(acc.dtype)[:, None]

    tl.store(pixel_tile_ptrs(y_ptr, n_idx, oh, ow, offs_c, stride_yn, stride_yc, stride_yh, stride_yw),
             acc.to(y_ptr.dtype.element_ty), mask=mask_p[:, None] & mask_c[None, :])


# Pure write of y (no accumulation into it), so autotuning needs no restore_value.
pool2d_fwd_kernel = triton.autotune(
    configs=configs.CONFIGS["pool2d_fwd"],
    key=["N", "C", "H", "W", "OH", "OW", "stride_xc", "KH", "KW", "STRIDE_H", "STRIDE_W", "PAD_H", "PAD_W",
         "IS_MAX"],
    prune_configs_by={"early_config_prune": configs.prune_pool2d_fwd},
)(_pool2d_fwd_kernel)
