"""2-D max and average pooling (forward) over strided input, one kernel with constexpr switches.

Tile = [BLOCK_P output pixels (flattened N*OH*OW), BLOCK_C channels]; the KH x KW window is unrolled
and each step loads one channel vector per pixel (contiguous in NHWC; NCHW works through the strides,
slower). Values are cast to fp32 (fp64 for fp64) right after the load, so bf16 is right under the
interpreter too. Limits: no dilation, no indices (no return_indices, no backward here).
"""

import triton
import triton.language as tl

from . import INTERPRETED


def _config(bp, bc, warps):
    # No loop is pipelined (the window is unrolled), so stages do not matter: 1 keeps it explicit.
    return triton.Config({"BLOCK_P": bp, "BLOCK_C": bc}, num_stages=1, num_warps=warps)


# Pooling is memory bound: tiles of 4096 elements, channel-wide first (coalesced NHWC loads).
GPU_CONFIGS = [
    _config(32, 128, 4),
    _config(64, 64, 4),
    _config(128, 32, 4),   # 32-channel multiples (288, 480) and small C
    _config(256, 16, 4),   # very few channels
]
# The interpreter runs programs one by one through numpy: one config of big tiles.
INTERPRETER_CONFIGS = [_config(64, 256, 4)]

CONFIGS = INTERPRETER_CONFIGS if INTERPRETED else GPU_CONFIGS


def _next_pow2(v):
    return 1 << max(int(v) - 1, 0).bit_length()


def config_fits(config, *, C, P):
    """Whether a config is worth trying: its channel block does not dwarf C, its pixel block P."""
    kw = config.kwargs
    return kw["BLOCK_C"] <= max(16, _next_pow2(C)) and kw["BLOCK_P"] <= max(32, _next_pow2(P))


def _prune_configs(configs, named_args, **kwargs):
    args = {**named_args, **kwargs}
    P = args["N"] * args["OH"] * args["OW"]
    kept = [c for c in configs if config_fits(c, C=args["C"], P=P)]
    if kept:
        return kept
    return [min(configs, key=lambda c: c.kwargs["BLOCK_C"])]


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
    pid_p = tl.program_id(0)
    pid_c = tl.program_id(1)
    if USE_INT64:
        offs_p = pid_p.to(tl.int64) * BLOCK_P + tl.arange(0, BLOCK_P)
        num_p = N.to(tl.int64) * OH * OW
    else:
        offs_p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
        num_p = N * OH * OW
    offs_c = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)
    mask_p = offs_p < num_p
    mask_c = offs_c < C

    ohw = OH * OW
    n_idx = offs_p // ohw
    pix = offs_p % ohw
    oh = pix // OW
    ow = pix % OW
    hstart = oh * STRIDE_H - PAD_H
    wstart = ow * STRIDE_W - PAD_W
    x_pix = x_ptr + (n_idx * stride_xn + hstart * stride_xh + wstart * stride_xw)
    x_ch = offs_c * stride_xc

    if ACC_FP64:
        acc = tl.zeros((BLOCK_P, BLOCK_C), dtype=tl.float64)
    else:
        acc = tl.zeros((BLOCK_P, BLOCK_C), dtype=tl.float32)
    if IS_MAX:
        acc = acc - float("inf")

    for kh in tl.static_range(KH):
        ih = hstart + kh
        h_ok = mask_p & (ih >= 0) & (ih < H)
        for kw in tl.static_range(KW):
            iw = wstart + kw
            ok = h_ok & (iw >= 0) & (iw < W)
            v = tl.load(x_pix[:, None] + (kh * stride_xh + kw * stride_xw) + x_ch[None, :],
                        mask=ok[:, None] & mask_c[None, :], other=0.0)
            # Cast before any arithmetic: the interpreter computes bf16 arithmetic on raw bits.
            v = v.to(acc.dtype)
            if IS_MAX:
                # Padded / out-of-range taps are -inf; NaN propagates as in torch.
                v = tl.where(ok[:, None], v, float("-inf"))
                acc = tl.maximum(acc, v, propagate_nan=tl.PropagateNan.ALL)
            else:
                acc += v

    if not IS_MAX:
        # torch's divisor: the window clipped to the padded input, then (unless counting the
        # padding) clipped to the input itself.
        hend = tl.minimum(hstart + KH, H + PAD_H)
        wend = tl.minimum(wstart + KW, W + PAD_W)
        if COUNT_INCLUDE_PAD:
            count = (hend - hstart) * (wend - wstart)
        else:
            count = ((tl.minimum(hend, H) - tl.maximum(hstart, 0))
                     * (tl.minimum(wend, W) - tl.maximum(wstart, 0)))
        acc = acc / count.to(acc.dtype)[:, None]

    y_pix = n_idx * stride_yn + oh * stride_yh + ow * stride_yw
    tl.store(y_ptr + y_pix[:, None] + offs_c[None, :] * stride_yc, acc.to(y_ptr.dtype.element_ty),
             mask=mask_p[:, None] & mask_c[None, :])


# Pure write of y (no accumulation into it), so autotuning needs no restore_value.
pool2d_fwd_kernel = triton.autotune(
    configs=CONFIGS,
    key=["N", "C", "H", "W", "OH", "OW", "stride_xc", "KH", "KW", "STRIDE_H", "STRIDE_W", "PAD_H", "PAD_W",
         "IS_MAX"],
    prune_configs_by={"early_config_prune": _prune_configs},
)(_pool2d_fwd_kernel)
