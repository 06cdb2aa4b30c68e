"""The gradients shared by both fused convolution ops, ``conv_bn_act`` (folded BN) and ``conv_bn_act_train``
(their backward custom ops live in ``conv_bn_act_backward.py`` and ``conv_bn_act_train_backward.py``).

Two steps, each on the triton or the torch backend:

1. Pointwise backward of ``y = act(residual + res_scale * (xhat * coef + bias))`` where ``xhat`` is the
   convolution output ``c`` (folded BN: coef = scale) or ``(c - mean) * invstd`` (batch statistics: coef =
   gamma): the activation mask, the residual gradient, the per-channel gradients of coef and bias, and the
   gradient of ``c`` (for batch statistics, BN's training backward). Per-channel sums are split
   reductions written to a buffer and summed in a fixed order: same input, same bits.
2. Convolution gradients of ``c``: dgrad (input) and wgrad (weight) as implicit GEMMs over NHWC.

The torch backend composes stock ops (``aten.convolution_backward`` for step 2).
"""

from __future__ import annotations

import torch
from torch import Tensor

from inception_core.ops._launch_common import acc_dtype, device_context, empty, input_precision, needs_int64

__all__ = [
    "conv_grads",
    "conv_grads_ref",
    "grad_weight_like",
    "launch_conv_grads_triton",
    "launch_pointwise_backward_triton",
    "pointwise_backward",
    "pointwise_backward_ref",
    "wgrad_splits",
]


def pointwise_backward_ref(grad_y: Tensor, y: Tensor | None, conv_out: Tensor | None, coef: Tensor | None,
                           mean: Tensor | None, invstd: Tensor | None, act: str, res_scale: float,
                           need_coef_bias: bool, need_residual: bool):
    """Torch version of step 1. Returns (grad_c in grad_y's dtype, grad_coef, grad_bias, grad_residual).

    ``mean``/``invstd`` given: BN in training mode (``coef`` = gamma or None for 1), else folded BN
    (``coef`` = scale or None). ``conv_out`` is needed for training mode or ``need_coef_bias``.
    Per-channel results are in the accumulation dtype (fp32, fp64 for fp64); absent ones are None.
    """
    acc = acc_dtype(grad_y)
    g = grad_y.to(acc)
    if act == "relu":
        g = torch.where(y > 0, g, torch.zeros((), dtype=acc, device=g.device))
    grad_res = _channels_last_copy(g, grad_y.dtype) if need_residual else None
    train = mean is not None
    k = grad_y.shape[1]
    coef_v = coef.to(acc) if coef is not None else torch.ones(k, dtype=acc, device=g.device)
    grad_coef = grad_bias = None
    if train or need_coef_bias:
        c = conv_out.to(acc)
        xhat = (c - mean.view(1, -1, 1, 1)) * invstd.view(1, -1, 1, 1) if train else c
        sum_g = g.sum((0, 2, 3))
        sum_gx = (g * xhat).sum((0, 2, 3))
        grad_bias, grad_coef = res_scale * sum_g, res_scale * sum_gx
    if train:
        count = grad_y.numel() // k
        a = res_scale * coef_v * invstd
        gc = a.view(1, -1, 1, 1) * (g - (sum_g / count).view(1, -1, 1, 1) - xhat * (sum_gx / count).view(1, -1, 1, 1))
    else:
        gc = g * (res_scale * coef_v).view(1, -1, 1, 1)
    return _channels_last_copy(gc, grad_y.dtype), grad_coef, grad_bias, grad_res


def _channels_last_copy(t: Tensor, dtype: torch.dtype) -> Tensor:
    """A fresh channels_last tensor (custom ops may not return an alias of an input)."""
    return torch.empty(t.shape, dtype=dtype, device=t.device, memory_format=torch.channels_last).copy_(t)


def grad_weight_like(weight: Tensor) -> Tensor:
    """Uninitialised weight gradient with the weight's strides when dense, else channels_last."""
    gw = torch.empty_like(weight, memory_format=torch.preserve_format)
    if not (gw.is_contiguous() or gw.is_contiguous(memory_format=torch.channels_last)):
        gw = torch.empty_like(weight, memory_format=torch.channels_last)
    return gw


def fake_conv_grads(x: Tensor, weight: Tensor, y: Tensor, vec: torch.dtype, output_mask) -> tuple[Tensor, ...]:
    """The backward ops' fake results (grad_x, grad_weight, grad of the per-channel gain and shift, grad of the
    residual): uninitialised, with the shapes and layouts the real kernels return; a 0-element placeholder
    where ``output_mask`` (five bools, in that order) skips the result."""
    need_x, need_w, need_gain, need_shift, need_res = output_mask
    k = weight.shape[0]
    cl = torch.channels_last
    return (torch.empty(x.shape, dtype=x.dtype, device=x.device, memory_format=cl) if need_x else empty(x),
            grad_weight_like(weight) if need_w else empty(weight),
            torch.empty(k, dtype=vec, device=x.device) if need_gain else empty(x, vec),
            torch.empty(k, dtype=vec, device=x.device) if need_shift else empty(x, vec),
            torch.empty(y.shape, dtype=x.dtype, device=x.device, memory_format=cl) if need_res else empty(x))


def conv_grads_ref(grad_c: Tensor, x: Tensor, weight: Tensor, stride, padding, need_x: bool, need_w: bool):
    """Torch version of step 2: (grad_x or None, grad_weight or None) of ``c = conv2d(x, weight)``."""
    if not (need_x or need_w):
        return None, None
    gx, gw, _ = torch.ops.aten.convolution_backward(
        grad_c, x, weight, None, list(stride), list(padding), [1, 1], False, [0, 0], 1, [need_x, need_w, False])
    # the layouts the fake implementations promise: channels_last grad_x, grad_weight like weight
    if gx is not None:
        gx = gx.contiguous(memory_format=torch.channels_last)
    if gw is not None:
        gw = grad_weight_like(weight).copy_(gw)
    return gx, gw


def launch_pointwise_backward_triton(grad_y: Tensor, y: Tensor | None, conv_out: Tensor | None,
                                     coef: Tensor | None, mean: Tensor | None, invstd: Tensor | None, act: str,
                                     res_scale: float, need_coef_bias: bool, need_residual: bool):
    """Triton version of step 1 (same contract as ``pointwise_backward_ref``)."""
    from triton import cdiv

    from inception_core.kernels import batch_norm as kmod
    from inception_core.launch import launch_fixed

    n, k, oh, ow = grad_y.shape
    acc = acc_dtype(grad_y)
    dev = grad_y.device
    train = mean is not None
    p = n * oh * ow
    dummy = torch.empty(1, dtype=acc, device=dev)
    big = needs_int64(grad_y, y, conv_out)
    gc = torch.empty_like(grad_y, memory_format=torch.channels_last)
    grad_res = torch.empty_like(grad_y, memory_format=torch.channels_last) if need_residual else None
    y_t = y if y is not None else grad_y
    c_t = conv_out if conv_out is not None else grad_y
    g_t = grad_res if grad_res is not None else gc
    tensors = (grad_y, y_t, c_t, g_t)
    strides = [s for t in tensors for s in t.stride()]
    common = dict(ACT_RELU=act == "relu", TRAIN=train, ACC_FP64=acc == torch.float64, USE_INT64=big)
    grad_coef = grad_bias = None
    with device_context(grad_y):
        if train or need_coef_bias or need_residual:
            block_p, block_c = kmod.REDUCE_BLOCK_P, kmod.REDUCE_BLOCK_C
            rows = cdiv(p, block_p)
            psum = torch.empty((rows, k), dtype=acc, device=dev)
            psumx = torch.empty((rows, k), dtype=acc, device=dev)
            launch_fixed("bn_bwd_reduce", kmod._bn_bwd_reduce_kernel, (rows, cdiv(k, block_c)),
                         (grad_y, y_t, c_t, mean if train else dummy, invstd if train else dummy, g_t, psum, psumx,
                          n, k, oh, ow, *strides),
                         dict(NEED_SUMS=train or need_coef_bias, STORE_G=need_residual, **common,
                              BLOCK_P=block_p, BLOCK_C=block_c), dev)
        a = torch.empty(k, dtype=acc, device=dev)
        b = torch.empty(k, dtype=acc, device=dev)
        d = torch.empty(k, dtype=acc, device=dev)
        if train or need_coef_bias:
            grad_coef = torch.empty(k, dtype=acc, device=dev)
            grad_bias = torch.empty(k, dtype=acc, device=dev)
        fin_c = kmod.FINALIZE_BLOCK_C
        launch_fixed("bn_bwd_finalize", kmod._bn_bwd_finalize_kernel, (cdiv(k, fin_c),),
                     (psum if (train or need_coef_bias) else dummy, psumx if (train or need_coef_bias) else dummy,
                      coef if coef is not None else dummy, invstd if train else dummy,
                      grad_coef if grad_coef is not None else dummy, grad_bias if grad_bias is not None else dummy,
                      a, b, d, cdiv(p, kmod.REDUCE_BLOCK_P), k, p, float(res_scale)),
                     dict(HAS_SUMS=train or need_coef_bias, HAS_COEF=coef is not None, TRAIN=train,
                          ACC_FP64=acc == torch.float64, BLOCK_T=kmod.FINALIZE_BLOCK_T, BLOCK_C=fin_c), dev)
        block_p, block_c = kmod.APPLY_BLOCK_P, kmod.APPLY_BLOCK_C
        launch_fixed("bn_bwd_apply", kmod._bn_bwd_apply_kernel, (cdiv(p, block_p), cdiv(k, block_c)),
                     (grad_y, y_t, c_t, mean if train else dummy, invstd if train else dummy, a, b, d, gc,
                      n, k, oh, ow, *[s for t in (grad_y, y_t, c_t, gc) for s in t.stride()]),
                     dict(**common, BLOCK_P=block_p, BLOCK_C=block_c), dev)
    return gc, grad_coef, grad_bias, grad_res


def wgrad_splits(p: int, k: int, c: int, rs: int) -> int:
    """Split count of the wgrad reduction over the P = N*OH*OW pixels: enough programs to fill a GPU
    (about 4 waves of 132 SMs at 64x64 tiles), each split at least 2048 pixels. Depends on the shape
    only, so the fixed-order sum of the splits gives the same bits every run."""
    from triton import cdiv

    tiles = cdiv(k, 64) * cdiv(c, 64) * rs
    return max(1, min(64, cdiv(528, tiles), p // 2048))


def launch_conv_grads_triton(grad_c: Tensor, x: Tensor, weight: Tensor, stride, padding, need_x: bool,
                             need_w: bool, *, dx_config=None, dw_config=None):
    """Triton version of step 2: dgrad and wgrad kernels (``*_config`` runs one config, for tests)."""
    from triton import cdiv

    from inception_core.kernels import INTERPRETED
    from inception_core.kernels import conv_bwd as kmod
    from inception_core.launch import launch, launch_fixed

    n, c, h, w = x.shape
    k, _, r, s = weight.shape
    oh, ow = grad_c.shape[2], grad_c.shape[3]
    precision = input_precision(x)
    big = needs_int64(x, grad_c)
    geometry = dict(R=r, S=s, STRIDE_H=stride[0], STRIDE_W=stride[1], PAD_H=padding[0], PAD_W=padding[1],
                    INPUT_PRECISION=precision, DOT_FP32=INTERPRETED and x.dtype == torch.bfloat16,
                    ACC_FP64=x.dtype == torch.float64, USE_INT64=big)
    gx = gw = None
    with device_context(x):
        if need_x:
            gx = torch.empty(x.shape, dtype=x.dtype, device=x.device, memory_format=torch.channels_last)
            args = (grad_c, weight, gx, n, c, h, w, k, oh, ow, *grad_c.stride(), *weight.stride(), *gx.stride())
            m = n * cdiv(h, stride[0]) * cdiv(w, stride[1])  # pixels of the largest stride phase

            def grid_dx(meta):
                return (cdiv(m, meta["BLOCK_M"]) * cdiv(c, meta["BLOCK_N"]), stride[0] * stride[1])

            launch("conv_bwd_dx", grid_dx, args, geometry, x.device, config=dx_config)
        if need_w:
            p = n * oh * ow
            splits = wgrad_splits(p, k, c, r * s)
            # per split: a multiple of every config's pixel block, so splits tile the pixels exactly
            per_split = cdiv(cdiv(p, splits), kmod.MAX_BLOCK_P) * kmod.MAX_BLOCK_P
            splits = cdiv(p, per_split)
            acc = acc_dtype(x)
            part = torch.empty((splits, k, r, s, c), dtype=acc, device=x.device)
            args = (grad_c, x, part, n, c, h, w, k, oh, ow, per_split, *grad_c.stride(), *x.stride(),
                    *part.stride()[1:], part.stride(0))

            def grid_dw(meta):
                return (cdiv(k, meta["BLOCK_M"]) * cdiv(c, meta["BLOCK_N"]), r * s, splits)

            launch("conv_bwd_dw", grid_dw, args, geometry, x.device, config=dw_config)
            gw = grad_weight_like(weight)
            total = k * c * r * s
            launch_fixed("sum_splits", kmod._sum_splits_kernel, (cdiv(total, kmod.SUM_BLOCK),),
                         (part, gw, splits, total, c, r, s, part.stride(0), *gw.stride()),
                         dict(BLOCK=kmod.SUM_BLOCK), x.device)
    return gx, gw


def pointwise_backward(backend: str, *args):
    """Step 1 on ``backend`` ("triton" or "torch")."""
    if backend == "triton":
        return launch_pointwise_backward_triton(*args)
    return pointwise_backward_ref(*args)


def conv_grads(backend: str, grad_c, x, weight, stride, padding, need_x: bool, need_w: bool):
    """Step 2 on ``backend`` ("triton" or "torch")."""
    if not (need_x or need_w):
        return None, None
    if backend == "triton":
        return launch_conv_grads_triton(grad_c, x, weight, stride, padding, need_x, need_w)
    return conv_grads_ref(grad_c, x, weight, stride, padding, need_x, need_w)
