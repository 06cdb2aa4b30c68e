"""conv_bn_act_train: convolution + BatchNorm in training mode (batch statistics) + residual + activation.

    y = act(residual + res_scale * batch_norm_train(conv2d(x, weight), gamma, beta))

This module holds the torch reference (``conv_bn_act_train_ref``, stock modules' functional ops), the
Triton launcher (conv with per-channel statistics in its epilogue, a finalize kernel, a normalize + act
pass), the functional custom op ``inception_core::conv_bn_act_train`` with its fake, and the public
function, which writes the running statistics back in place. Its backward: ``conv_bn_act_train_backward.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from inception_core.ops import _checks, _dispatch
from inception_core.ops._checks import conv_result_shape
from inception_core.ops._launch_common import acc_dtype, device_context, needs_int64
from inception_core.ops._launch_common import empty as _empty

__all__ = ["conv_bn_act_train", "conv_bn_act_train_ref", "launch_conv_bn_act_train_triton"]


def conv_bn_act_train_ref(x: Tensor, weight: Tensor, gamma: Tensor | None, beta: Tensor | None,
                          running_mean: Tensor | None, running_var: Tensor | None, *, momentum_factor: float,
                          eps: float, stride=1, padding=0, act: str = "relu", residual: Tensor | None = None,
                          res_scale: float = 1.0) -> Tensor:
    """The oracle: ``F.conv2d`` -> ``F.batch_norm(training=True)`` -> residual -> act, autograd by torch.

    Updates running_mean / running_var in place as ``torch.nn.BatchNorm2d`` does with momentum
    ``momentum_factor``. Result in x's dtype, channels_last.
    """
    c = F.conv2d(x, weight, stride=stride, padding=padding)
    y = F.batch_norm(c, running_mean, running_var, gamma, beta, training=True, momentum=momentum_factor, eps=eps)
    if residual is not None:
        y = residual + res_scale * y
    if act == "relu":
        y = torch.relu(y)
    return y.contiguous(memory_format=torch.channels_last)


def _native_bn(t: Tensor) -> bool:
    """Whether the torch backend runs BatchNorm as torch's own fused kernel (float32 / float64, where its
    statistics are in the tensor's dtype, as this op's contract has them)."""
    return t.dtype in (torch.float32, torch.float64)


def _forward_native(x, weight, gamma, beta, running_mean, running_var, residual, stride, padding, act, res_scale,
                    factor, eps):
    """``_forward_torch`` with torch's fused BatchNorm kernel (statistics and normalisation in two passes,
    running statistics updated by its own formula on copies) and the epilogue in place."""
    c = F.conv2d(x, weight, stride=stride, padding=padding).contiguous(memory_format=torch.channels_last)
    new_mean = running_mean.clone() if running_mean is not None else None
    new_var = running_var.clone() if running_var is not None else None
    y, mean, invstd = torch.native_batch_norm(c, gamma, beta, new_mean, new_var, True, factor, eps)
    y = y.contiguous(memory_format=torch.channels_last)
    if residual is not None:
        y = (torch.add(residual, y, alpha=res_scale) if res_scale != 1.0 else y.add_(residual)).contiguous(
            memory_format=torch.channels_last)
    if act == "relu":
        y = y.relu_()
    if new_mean is None:
        acc = acc_dtype(x)
        return y, c, mean, invstd, _empty(x, acc), _empty(x, acc)
    return y, c, mean, invstd, new_mean, new_var


def _forward_torch(x, weight, gamma, beta, running_mean, running_var, residual, stride, padding, act, res_scale,
                   factor, eps):
    """Torch backend of the functional op: (y, conv_out, mean, invstd, new_running_mean, new_running_var)."""
    if _native_bn(x):
        return _forward_native(x, weight, gamma, beta, running_mean, running_var, residual, stride, padding, act,
                               res_scale, factor, eps)
    acc = acc_dtype(x)
    c = F.conv2d(x, weight, stride=stride, padding=padding).contiguous(memory_format=torch.channels_last)
    cf = c.to(acc)
    var, mean = torch.var_mean(cf, dim=(0, 2, 3), correction=0)
    invstd = torch.rsqrt(var + eps)
    scale = invstd if gamma is None else gamma.to(acc) * invstd
    shift = -mean * scale if beta is None else beta.to(acc) - mean * scale
    z = cf * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1)
    if residual is not None:
        z = residual.to(acc) + res_scale * z
    if act == "relu":
        z = torch.relu(z)
    y = z.to(x.dtype).contiguous(memory_format=torch.channels_last)
    if running_mean is None:
        return y, c, mean, invstd, _empty(x, acc), _empty(x, acc)
    count = c.numel() // c.shape[1]
    unbiased = var * (count / (count - 1))
    new_mean = (factor * mean + (1 - factor) * running_mean.to(acc)).to(running_mean.dtype)
    new_var = (factor * unbiased + (1 - factor) * running_var.to(acc)).to(running_var.dtype)
    return y, c, mean, invstd, new_mean, new_var


def launch_conv_bn_act_train_triton(x, weight, gamma, beta, running_mean, running_var, residual, stride, padding,
                                    act, res_scale, factor, eps, *, config=None):
    """Triton forward: conv kernel with the STATS epilogue (raw conv output + per-32-row partial sums and
    centred sums of squares), the finalize kernel (Chan's combine in a fixed order: mean, invstd, folded
    scale/shift, new running stats), then the normalize + residual + act pass.
    Returns the functional op's six tensors."""
    from triton import cdiv

    from inception_core.kernels import batch_norm as bn_kmod
    from inception_core.kernels import conv_bn_act as conv_kmod
    from inception_core.launch import launch_fixed
    from inception_core.ops.conv_bn_act import launch_conv_bn_act_triton

    acc = acc_dtype(x)
    dev = x.device
    n, _, oh, ow = shape = conv_result_shape(x, weight, stride, padding)
    k = shape[1]
    m = n * oh * ow
    rows = conv_kmod.STATS_ROWS
    groups = cdiv(m, rows)
    c = torch.empty(shape, dtype=x.dtype, device=dev, memory_format=torch.channels_last)
    psum = torch.empty((groups, k), dtype=acc, device=dev)
    pm2 = torch.empty((groups, k), dtype=acc, device=dev)
    launch_conv_bn_act_triton(x, weight, None, None, None, tuple(stride), tuple(padding), "none", 1.0, c,
                              config=config, stats=(psum, pm2))
    mean = torch.empty(k, dtype=acc, device=dev)
    invstd = torch.empty(k, dtype=acc, device=dev)
    scale = torch.empty(k, dtype=acc, device=dev)
    shift = torch.empty(k, dtype=acc, device=dev)
    has_running = running_mean is not None
    new_mean = torch.empty_like(running_mean) if has_running else _empty(x, acc)
    new_var = torch.empty_like(running_var) if has_running else _empty(x, acc)
    dummy = mean
    y = torch.empty(shape, dtype=x.dtype, device=dev, memory_format=torch.channels_last)
    with device_context(x):
        launch_fixed("bn_stats_finalize", bn_kmod._bn_stats_finalize_kernel, (cdiv(k, bn_kmod.FINALIZE_BLOCK_C),),
                     (psum, pm2, gamma if gamma is not None else dummy, beta if beta is not None else dummy,
                      running_mean if has_running else dummy, running_var if has_running else dummy,
                      mean, invstd, scale, shift, new_mean if has_running else dummy,
                      new_var if has_running else dummy, groups, k, m, float(factor), float(eps)),
                     dict(ROWS=rows, HAS_GAMMA=gamma is not None, HAS_BETA=beta is not None, HAS_RUNNING=has_running,
                          ACC_FP64=acc == torch.float64, BLOCK_T=bn_kmod.FINALIZE_BLOCK_T,
                          BLOCK_C=bn_kmod.FINALIZE_BLOCK_C), dev)
        res = residual if residual is not None else y
        rstr = residual.stride() if residual is not None else (0, 0, 0, 0)
        big = needs_int64(c, y, res)
        block_p, block_c = bn_kmod.APPLY_BLOCK_P, bn_kmod.APPLY_BLOCK_C
        launch_fixed("affine_act", bn_kmod._affine_act_kernel, (cdiv(m, block_p), cdiv(k, block_c)),
                     (c, scale, shift, res, y, n, k, oh, ow, *c.stride(), *rstr, *y.stride(), float(res_scale)),
                     dict(HAS_RESIDUAL=residual is not None, ACT_RELU=act == "relu", ACC_FP64=acc == torch.float64,
                          USE_INT64=big, BLOCK_P=block_p, BLOCK_C=block_c), dev)
    return y, c, mean, invstd, new_mean, new_var


_FORWARD = {"triton": launch_conv_bn_act_train_triton, "torch": _forward_torch}  # csrc/ has no training kernels


@torch.library.custom_op("inception_core::conv_bn_act_train", mutates_args=())
def _conv_bn_act_train_op(x: Tensor, weight: Tensor, gamma: Tensor | None, beta: Tensor | None,
                          running_mean: Tensor | None, running_var: Tensor | None, residual: Tensor | None,
                          stride: Sequence[int], padding: Sequence[int], act: str, res_scale: float,
                          momentum_factor: float, eps: float
                          ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    args = (x, weight, gamma, beta, running_mean, running_var, residual, tuple(stride), tuple(padding), act,
            res_scale, momentum_factor, eps)
    with _dispatch.no_autocast(x):
        return _dispatch.run("conv_bn_act_train", x, _FORWARD, *args)


@_conv_bn_act_train_op.register_fake
def _(x, weight, gamma, beta, running_mean, running_var, residual, stride, padding, act, res_scale,
      momentum_factor, eps):
    shape = conv_result_shape(x, weight, stride, padding)
    acc = acc_dtype(x)
    k = shape[1]

    def act_like():
        return torch.empty(shape, dtype=x.dtype, device=x.device, memory_format=torch.channels_last)

    vec = [torch.empty(k, dtype=acc, device=x.device) for _ in range(2)]
    run = ([torch.empty_like(running_mean), torch.empty_like(running_var)] if running_mean is not None
           else [_empty(x, acc), _empty(x, acc)])
    return act_like(), act_like(), *vec, *run


def _running_stat(t: object, name: str, k: int, x: Tensor) -> Tensor | None:
    if t is None:
        return None
    if not isinstance(t, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor or None, got {type(t).__name__}")
    if t.shape != (k,):
        raise ValueError(f"{name}: expected shape ({k},) (one value per output channel), got {tuple(t.shape)}")
    if not t.is_floating_point() or t.device != x.device or not t.is_contiguous():
        raise ValueError(f"{name}: expected a contiguous floating tensor on {x.device}, got {t.dtype} on {t.device}")
    return t


def conv_bn_act_train(x: Tensor, weight: Tensor, gamma: Tensor | None, beta: Tensor | None,
                      running_mean: Tensor | None, running_var: Tensor | None, *, momentum_factor: float,
                      eps: float, stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0,
                      act: str = "relu", residual: Tensor | None = None, res_scale: float = 1.0) -> Tensor:
    """Fused convolution + BatchNorm in training mode (batch statistics) + scaled residual + activation.

    ``y = act(residual + res_scale * ((c - mean) * invstd * gamma + beta))``, ``c = conv2d(x, weight)``,
    mean and biased variance over (N, OH, OW) per channel, ``invstd = 1 / sqrt(var + eps)``.
    Differentiable wrt x, weight, gamma, beta and residual (BN's training backward).

    Args:
        x: (N, C, H, W), float32 / float16 / bfloat16 (float64 on the torch backend and the interpreter),
            any memory format.
        weight: (K, C, R, S), x's dtype and device.
        gamma, beta: (K,) float32 (float64 for float64 x), or None (``affine=False``: 1 and 0).
        running_mean, running_var: (K,) contiguous floating buffers, or both None
            (``track_running_stats=False``). Updated in place as ``torch.nn.BatchNorm2d`` in training
            mode: ``running = (1 - f) * running + f * batch_stat`` with the unbiased variance for
            running_var, ``f = momentum_factor``. The caller computes f as ``BatchNorm2d.forward`` does
            (momentum, or ``1 / num_batches_tracked`` when momentum is None) and increments
            ``num_batches_tracked`` itself.
        momentum_factor: f above, in [0, 1].
        eps: added to the variance.
        stride, padding, act ("relu" or "none"), residual ((N, K, OH, OW), x's dtype), res_scale: as in
            ``conv_bn_act``. No ``out=`` slice write: training layers concatenate with torch.cat.

    Returns:
        (N, K, OH, OW) channels_last, x's dtype; statistics and normalisation in fp32 (fp64 for fp64).
        Under ``torch.autocast`` the op computes in x's dtype (layers cast their inputs first);
        gradients come back in each input's dtype.
    """
    stride, padding, shape = _checks.conv_arguments(x, weight, stride, padding, act)
    k = shape[1]
    res_scale = _checks.real_number(res_scale, "res_scale")
    momentum_factor = _checks.real_number(momentum_factor, "momentum_factor")
    eps = _checks.real_number(eps, "eps")
    if not 0.0 <= momentum_factor <= 1.0:
        raise ValueError(f"momentum_factor: expected a value in [0, 1], got {momentum_factor}")
    if not eps > 0:  # torch.nn.BatchNorm2d's rule; NaN fails too
        raise ValueError(f"eps: expected a value > 0 (as torch's BatchNorm), got {eps}")
    if shape[0] * shape[2] * shape[3] <= 1:
        raise ValueError(f"x: expected more than 1 value per channel when training, got output shape {shape}")
    gamma = _checks.channel_vector(gamma, "gamma", k, x)
    beta = _checks.channel_vector(beta, "beta", k, x)
    running_mean = _running_stat(running_mean, "running_mean", k, x)
    running_var = _running_stat(running_var, "running_var", k, x)
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean, running_var: expected both tensors or both None")
    _checks.residual_argument(residual, x, shape)
    if not torch.compiler.is_compiling():
        _checks.written_apart(dict(running_mean=running_mean, running_var=running_var),
                              dict(x=x, weight=weight, gamma=gamma, beta=beta, residual=residual))

    y, _, _, _, new_mean, new_var = _conv_bn_act_train_op(
        x, weight, gamma, beta, running_mean, running_var, residual, list(stride), list(padding), act,
        res_scale, momentum_factor, eps)
    if running_mean is not None:
        with torch.no_grad():
            running_mean.copy_(new_mean)
            running_var.copy_(new_var)
    return y
