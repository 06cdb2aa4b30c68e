"""Functional forms of the fused layers, over torch modules (so checkpoints keep torch's keys).

Every call runs ``inception_core.ops`` on the configured backend; what it runs depends on the mode:
  eval, no gradient: BatchNorm folded into the conv's epilogue (cached), one fused kernel that can write
      straight into a channel slice of a block output.
  eval with gradients (fine-tuning with frozen BatchNorm): the same fused op, differentiable, with the
      folded scale/shift computed from the BatchNorm parameters inside the autograd graph.
  training (BatchNorm with batch statistics): ``ops.conv_bn_act_train``, which computes the batch
      statistics in the conv's epilogue and updates ``running_mean``/``running_var``/``num_batches_tracked``
      exactly as ``torch.nn.BatchNorm2d`` does; on the torch backend (without autocast) torch's own conv and
      BatchNorm modules, its fastest correct training step on a CPU.
The stock modules also run where no fused op applies (grouped or dilated convs, SyncBatchNorm or another
normalisation layer, eval-mode BatchNorm without running statistics).
"""

from __future__ import annotations

import operator
import threading
import weakref

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules import module as nn_module

from inception_core import ops
from inception_core.ops._cpu_direct import FrozenConv, cpu_backend
from inception_core.ops.conv_torch import allow_prepack

__all__ = [
    "InputDtypeError",
    "avg_pool2d",
    "check_network_input",
    "compute_dtype",
    "conv_bn_act",
    "dense",
    "fold_bn",
    "freeze_folding",
    "max_pool2d",
    "needs_autograd",
    "sibling_conv_bn_act",
    "siblings_fusable",
]

_ACTS = ("relu", "none")


def needs_autograd(x: Tensor, module: nn.Module | None = None) -> bool:
    """Whether this call must record an autograd graph (then no slice write into a shared buffer)."""
    if not torch.is_grad_enabled():
        return False
    if x.requires_grad:
        return True
    return module is not None and any(p.requires_grad for p in module.parameters())


class InputDtypeError(TypeError, RuntimeError):
    """An input whose dtype the network cannot take (a TypeError; also a RuntimeError, what torch's own
    modules raise for it, so code written against them keeps catching it)."""


def check_network_input(x: object, model: nn.Module, channels: int | None = None) -> Tensor:
    """The entry check of a network: ``x`` must be an (N, C, H, W) floating tensor of the model's
    parameter dtype (under ``torch.autocast``: float32 / float16 / bfloat16, which autocast casts), as
    torch's convolutions require; ``channels``, when given, is C."""
    if not isinstance(x, Tensor):
        raise TypeError(f"x: expected a torch.Tensor image batch, got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"x: expected a 4-D (N, C, H, W) image batch, got a {x.dim()}-D tensor of shape "
                         f"{tuple(x.shape)}" + (" (add the batch dimension: x.unsqueeze(0))" if x.dim() == 3 else ""))
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"x: expected {channels} channels (N, {channels}, H, W), got shape {tuple(x.shape)}")
    param = next(model.parameters(), None)
    if param is None or x.dtype == param.dtype:
        return x
    if torch.is_autocast_enabled(x.device.type) and x.dtype in (torch.float32, torch.float16, torch.bfloat16):
        return x
    raise InputDtypeError(f"x: expected dtype {param.dtype} (the model's parameters), got {x.dtype}; convert the "
                          f"input (x.to({param.dtype})) or the model (model.to({x.dtype})), or run under "
                          "torch.autocast for float16 / bfloat16")


def compute_dtype(x: Tensor) -> torch.dtype:
    """The dtype a fused layer computes in: autocast's for x's device when autocast is on, else x's."""
    if x.dtype in (torch.float32, torch.float16, torch.bfloat16) and torch.is_autocast_enabled(x.device.type):
        return torch.get_autocast_dtype(x.device.type)
    return x.dtype


def fold_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d | None) -> tuple[Tensor | None, Tensor | None]:
    """Per-output-channel (scale, shift) equal to eval-mode ``bn(conv(x))`` minus the convolution:
    scale = gamma / sqrt(running_var + eps), shift = beta - running_mean * scale (+ conv bias * scale).
    float32 (float64 for float64 parameters)."""
    dtype = torch.float64 if conv.weight.dtype == torch.float64 else torch.float32
    if bn is None:
        return None, None if conv.bias is None else conv.bias.detach().to(dtype)
    var = bn.running_var.detach().to(dtype)
    mean = bn.running_mean.detach().to(dtype)
    scale = torch.rsqrt(var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight.detach().to(dtype)
    shift = -mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias.detach().to(dtype)
    if conv.bias is not None:
        shift = shift + conv.bias.detach().to(dtype) * scale
    return scale, shift


def _stamp(tensors) -> tuple:
    """Identity and version of tensors: changes on in-place updates (optimizer steps, load_state_dict,
    fill_) and on replacement (.to(), assigning a new Parameter); NOT on writes through ``.data``."""
    return tuple((t.data_ptr(), t._version, t.dtype, t.device) if t is not None else None for t in tensors)


_FROZEN = "_ic_frozen_folds"


def freeze_folding(model: nn.Module, frozen: bool = True) -> nn.Module:
    """Cache the BatchNorm folds of ``model``'s fused layers (True) or recompute them on every eval
    forward (False, the default of every module). Returns ``model``.

    Unfrozen (default): every eval forward folds BatchNorm again from the current parameters and buffers,
    so any edit is seen by the next call, writes through ``.data`` included; on the CPU this costs about
    one pass over the weights per call. Frozen: the folded weights (on the CPU's torch backend with the
    BatchNorm scale and the residual scale multiplied into them) are computed once and reused; they are
    rebuilt when a source tensor is replaced or changed in place through autograd's version counter
    (optimizer steps, ``load_state_dict``, ``copy_`` under ``torch.no_grad()``), but NOT after a write
    through ``.data``: freeze again after such edits. ``optimize_for_inference`` freezes its copy.

    On a CPU's torch backend (float32, no autograd graph) a frozen layer also keeps its prepared call: the
    weight prepacked for oneDNN and every argument of the convolution, checked on each call against the
    layer's modules, configuration and source tensors by the same rule (a few microseconds, where the fold
    lookup and the op's full argument checks cost about a hundred).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    for m in model.modules():
        if frozen:
            m.__dict__[_FROZEN] = True
        else:
            m.__dict__.pop(_FROZEN, None)
        for key in ("_ic_fold_cache", "_ic_sibling_cache", _PLAN, _SIBLING_PLAN):
            m.__dict__.pop(key, None)
    return model


def _weights_take_scale(x: Tensor, dtype: torch.dtype) -> bool:
    """Whether the conv runs on the torch backend's oneDNN path, where a folded scale is cheapest in
    the weights (the Triton and CUDA kernels apply it in their epilogue for free)."""
    from inception_core.ops.conv_torch import onednn_fusable

    return dtype == torch.float32 and onednn_fusable(x) and cpu_backend("conv_bn_act") == "torch"


def dense_block_outputs(x: Tensor) -> bool:
    """Whether blocks on ``x`` keep their outputs dense (no scratch channels in front): on the torch backend,
    whose convolutions and pools copy a strided input to a dense one before they read it."""
    if x.is_cpu:
        return cpu_backend("conv_bn_act") == "torch"
    from inception_core.backends import backend_for

    return backend_for(x, "conv_bn_act") == "torch"


# Per-thread scratch for the weights an unfrozen fold scales on every call (reused: no allocation, no
# page faults per call; per thread: two threads running one model never share one).
_SCRATCH = threading.local()


def _scratch(owner: nn.Module, shape, dtype: torch.dtype, device: torch.device) -> Tensor:
    """A channels_last tensor of ``shape`` owned by (this thread, ``owner``), reused across calls."""
    table = getattr(_SCRATCH, "table", None)
    if table is None:
        table = _SCRATCH.table = weakref.WeakKeyDictionary()
    buf = table.get(owner)
    if buf is None or tuple(buf.shape) != tuple(shape) or buf.dtype != dtype or buf.device != device:
        buf = torch.empty(shape, dtype=dtype, device=device, memory_format=torch.channels_last)
        table[owner] = buf
    return buf


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d | None, dtype: torch.dtype, gain: float | None,
          into: Tensor | None = None):
    """(weight in ``dtype`` and channels_last, scale, shift); with ``gain`` (a float): the weight times
    scale times gain (written into ``into`` when given), None, shift times gain."""
    weight = conv.weight.detach()
    scale, shift = fold_bn(conv, bn)
    if gain is None:
        if weight.dtype != dtype or not weight.is_contiguous(memory_format=torch.channels_last):
            weight = weight.to(dtype).contiguous(memory_format=torch.channels_last)
        return weight, scale, shift
    k = weight.shape[0]
    factor = torch.full((k,), gain, dtype=torch.float32, device=weight.device)
    if scale is not None:
        factor = factor * scale
    scaled = into if into is not None else torch.empty(weight.shape, dtype=dtype, device=weight.device,
                                                       memory_format=torch.channels_last)
    torch.mul(weight, factor.view(-1, 1, 1, 1).to(dtype), out=scaled)
    return scaled, None, None if shift is None else shift * gain


def _folded(conv: nn.Conv2d, bn: nn.BatchNorm2d | None, dtype: torch.dtype, gain: float | None = None):
    """``_fold`` of ``conv`` and ``bn``: recomputed on every call, or, once ``freeze_folding`` marked the
    conv, cached on it and rebuilt whenever a source tensor is replaced or its version changes."""
    if torch.compiler.is_compiling():  # traced graphs recompute it (and constant-fold it when frozen)
        return _fold(conv, bn, dtype, gain)
    if not conv.__dict__.get(_FROZEN):
        into = None if gain is None else _scratch(conv, conv.weight.shape, dtype, conv.weight.device)
        return _fold(conv, bn, dtype, gain, into)
    sources = (conv.weight, conv.bias) + ((bn.weight, bn.bias, bn.running_mean, bn.running_var) if bn else ())
    try:
        stamp = (_stamp(sources), dtype, bn.eps if bn is not None else None, gain)
    except RuntimeError:  # inference tensors carry no version counter: no caching for them
        return _fold(conv, bn, dtype, gain)
    cache = conv.__dict__.get("_ic_fold_cache")
    if cache is not None and cache[0] == stamp:
        return cache[1]
    value = _fold(conv, bn, dtype, gain)
    if gain is not None:  # the scaled copy belongs to the cache: oneDNN may keep it prepacked
        allow_prepack(value[0])
    conv.__dict__["_ic_fold_cache"] = (stamp, value)
    return value


# The prepared call of a frozen layer (``_cpu_direct.FrozenConv``), on the conv (one layer) or on the owner of
# horizontally fused siblings: a frozen eval call then costs a few attribute reads on top of the convolution.
_PLAN = "_ic_frozen_plan"
_SIBLING_PLAN = "_ic_frozen_sibling_plan"
_NO_RESIDUAL = (False, 1.0)  # a plan's ``extra``: (has a residual, the gain in its weights)


def _sources(conv: nn.Conv2d, bn: nn.BatchNorm2d | None) -> tuple:
    """The tensors a fold reads, from the modules' parameter and buffer tables (what attribute access returns
    for a plain module, at a tenth of its cost)."""
    p = conv._parameters
    if bn is None:
        return p.get("weight"), p.get("bias")
    q, b = bn._parameters, bn._buffers
    return p.get("weight"), p.get("bias"), q.get("weight"), q.get("bias"), b.get("running_mean"), b.get("running_var")


_version = operator.attrgetter("_version")


def _layer_config(conv: nn.Conv2d, bn: nn.BatchNorm2d | None, act: str) -> tuple:
    return (act, conv.stride, conv.padding, conv.dilation, conv.groups, conv.padding_mode,
            None if bn is None else bn.eps)


class _FrozenPlan:
    """A ``FrozenConv`` with what it was built from: the layers (conv, bn, act), their configuration, and the
    identity, version and address of every source tensor (the rule of ``_folded``'s cache). The plan holds
    the storages it saw, so no other tensor can take an address it compares with while it lives."""

    __slots__ = ("parts", "configs", "extra", "sources", "present", "versions", "addresses", "alive", "call")

    def __init__(self, parts, extra, call: FrozenConv) -> None:
        self.parts = tuple(parts)
        self.configs = tuple(_layer_config(*p) for p in self.parts)
        self.extra = extra
        self.sources = tuple(t for conv, bn, _ in self.parts for t in _sources(conv, bn))
        self.present = tuple(t for t in self.sources if t is not None)
        self.versions = tuple(map(_version, self.present))  # RuntimeError for inference tensors
        self.addresses = tuple(map(Tensor.data_ptr, self.present))
        self.alive = tuple(t.detach() for t in self.present)
        self.call = call

    def current(self, parts, extra) -> bool:
        """Whether ``parts`` (with ``extra``: the residual's presence and gain) are the layers the plan was built
        from, unchanged: same modules and configuration, eval-mode BatchNorm, same source tensors, same versions."""
        if extra != self.extra or len(parts) != len(self.parts):
            return False
        now = ()
        for (conv, bn, act), (conv0, bn0, _), config in zip(parts, self.parts, self.configs, strict=True):
            if (conv is not conv0 or bn is not bn0 or (bn is not None and bn.training)
                    or _layer_config(conv, bn, act) != config):
                return False
            now += _sources(conv, bn)
        # the same tensors (so ``present`` are today's), at the same versions and addresses
        return (all(map(operator.is_, now, self.sources)) and tuple(map(_version, self.present)) == self.versions
                and tuple(map(Tensor.data_ptr, self.present)) == self.addresses)


def _run_plan(home: nn.Module, key: str, parts, extra, x: Tensor, residual: Tensor | None, out: Tensor | None,
              out_offset: int) -> Tensor | None:
    """The result of the plan stored on ``home`` under ``key`` when it is current and takes this call; else None
    (a plan that is no longer current is dropped, with the storages it kept)."""
    plan = home.__dict__.get(key)
    if plan is None:
        return None
    if not plan.current(parts, extra):
        home.__dict__.pop(key, None)
        return None
    return plan.call(x, residual, out, out_offset)


def _remember_plan(home: nn.Module, key: str, parts, extra, weight: Tensor, shift: Tensor | None, act: str,
                   stride, padding) -> None:
    """Store a plan for these frozen layers, whose fold (``weight`` with the scale and gain in it, ``shift``)
    just ran on the torch backend's oneDNN path; nothing when a source is not what attribute access returns
    (a parametrized weight) or has no version counter (an inference tensor), or when ``home`` holds a plan
    already (it is current: ``_run_plan`` drops a stale one; this call was one the plan leaves to the checked
    path, such as a call with gradients enabled)."""
    if key in home.__dict__ or torch.compiler.is_compiling() or weight.dtype != torch.float32 or (
            shift is not None and shift.dtype != torch.float32):
        return
    for conv, bn, _ in parts:
        plain = (conv.weight, conv.bias) + ((bn.weight, bn.bias, bn.running_mean, bn.running_var) if bn else ())
        if any(a is not b for a, b in zip(_sources(conv, bn), plain, strict=True)):
            return
    try:
        home.__dict__[key] = _FrozenPlan(parts, extra, FrozenConv(weight, shift, stride, padding, act))
    except RuntimeError:  # inference tensors carry no version counter
        return


def _conv_supported(conv: nn.Conv2d) -> bool:
    return (conv.groups == 1 and conv.dilation == (1, 1) and conv.padding_mode == "zeros"
            and not isinstance(conv.padding, str))


def _can_fuse_conv(conv: nn.Conv2d, bn: nn.BatchNorm2d | None) -> bool:
    """Whether eval-mode ``bn(conv(x))`` folds into one fused conv (running statistics present)."""
    if not _conv_supported(conv):
        return False
    return bn is None or (isinstance(bn, nn.BatchNorm2d) and bn.track_running_stats and bn.running_mean is not None)


def _stock(x: Tensor, conv: nn.Conv2d, bn: nn.Module | None, act: str, residual: Tensor | None, res_scale: float,
           out: Tensor | None, out_offset: int) -> Tensor:
    y = conv(x)
    if bn is not None:
        y = bn(y)
    if residual is not None:
        y = y * res_scale + residual
    if act == "relu":
        # in place where y is this call's own tensor whose backward does not read it (the sum's, BatchNorm's)
        y = F.relu(y, inplace=residual is not None or isinstance(bn, nn.BatchNorm2d))
    if out is not None:
        return out.narrow(1, out_offset, y.shape[1]).copy_(y)
    return y


def _plain_conv(conv: nn.Module) -> bool:
    """Whether ``conv(x)`` is exactly ``F.conv2d`` with its parameters: a plain ``nn.Conv2d`` with zero padding
    and no forward hooks (its own or global ones)."""
    return (type(conv) is nn.Conv2d and conv.padding_mode == "zeros" and not conv._forward_hooks
            and not conv._forward_pre_hooks and not nn_module._global_forward_hooks
            and not nn_module._global_forward_pre_hooks)


def _stock_residual(x: Tensor, conv: nn.Conv2d, act: str, residual: Tensor, res_scale: float, out: Tensor | None,
                    out_offset: int) -> Tensor:
    """``act(residual + res_scale * conv(x))`` of a plain conv (``_plain_conv``) in torch's autograd, with the
    scale in the weights and bias (a pass over the small weights in place of one over the activation, each way)
    and the sum taken in place on the conv's own output (its backward does not read it): the stock modules'
    ``conv(x) * scale + residual`` with one activation pass fewer forward and backward and two activation-sized
    allocations fewer (IR-v2 block35 at batch 8: 0.66x its time, forward and backward)."""
    weight, bias = conv.weight, conv.bias
    if res_scale != 1.0:
        weight, bias = weight * res_scale, None if bias is None else bias * res_scale
    y = F.conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups).add_(residual)
    if act == "relu":
        y = y.relu_()
    if out is not None:
        return out.narrow(1, out_offset, y.shape[1]).copy_(y)
    return y


def _momentum_factor(bn: nn.BatchNorm2d) -> float:
    """The running-statistics factor of this training step, with ``num_batches_tracked`` incremented, exactly
    as ``torch.nn.BatchNorm2d.forward`` computes it."""
    factor = 0.0 if bn.momentum is None else bn.momentum
    if bn.track_running_stats and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
        if bn.momentum is None:  # cumulative moving average
            factor = 1.0 / float(bn.num_batches_tracked)
    return factor


def _backend(x: Tensor, op: str) -> str:
    """``backends.backend_for(x, op)``; on a CPU tensor ``cpu_backend``'s remembered answer (a few microseconds
    fewer per layer call, the same choice)."""
    if x.is_cpu:
        return cpu_backend(op)
    from inception_core.backends import backend_for

    return backend_for(x, op)


_STOCK_TRAINING = True  # False: the fused training op on every backend (to measure one against the other)


def _stock_training(x: Tensor) -> bool:
    """Whether a training-mode layer runs torch's own modules: on the torch backend without autocast, where
    they are the fastest correct choice (oneDNN convolutions and BatchNorm kernels with their backward)."""
    return (_STOCK_TRAINING and not torch.is_autocast_enabled(x.device.type)
            and _backend(x, "conv_bn_act_train") == "torch")


def _conv_bn_train(x: Tensor, conv: nn.Conv2d, bn: nn.BatchNorm2d, act: str, residual: Tensor | None,
                   res_scale: float, dtype: torch.dtype) -> Tensor:
    """Training-mode BatchNorm (batch statistics) on the fused training op; differentiable."""
    factor = _momentum_factor(bn)
    running = bn.track_running_stats and bn.running_mean is not None
    beta = bn.bias
    if conv.bias is not None:
        # batch statistics cancel a conv bias in the output; only running_mean sees it (below). The bias joins
        # the graph through beta with weight 0, so it gets the (zero) gradient stock BatchNorm gives it.
        beta = (bn.bias if bn.bias is not None else 0.0) + conv.bias * 0.0
    y = ops.conv_bn_act_train(x.to(dtype), conv.weight.to(dtype), bn.weight, beta,
                              bn.running_mean if running else None, bn.running_var if running else None,
                              momentum_factor=factor, eps=bn.eps, stride=conv.stride, padding=conv.padding,
                              act=act, residual=None if residual is None else residual.to(dtype),
                              res_scale=res_scale)
    if running and conv.bias is not None:
        with torch.no_grad():
            bn.running_mean.add_(conv.bias.detach().to(bn.running_mean.dtype), alpha=factor)
    return y


def _fold_bn_differentiable(conv: nn.Conv2d, bn: nn.BatchNorm2d | None) -> tuple[Tensor | None, Tensor | None]:
    """``fold_bn`` inside the autograd graph: gradients reach gamma, beta and the conv bias."""
    dtype = torch.float64 if conv.weight.dtype == torch.float64 else torch.float32
    if bn is None:
        return None, None if conv.bias is None else conv.bias.to(dtype)
    scale = torch.rsqrt(bn.running_var.to(dtype) + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight.to(dtype)
    shift = -bn.running_mean.to(dtype) * scale
    if bn.bias is not None:
        shift = shift + bn.bias.to(dtype)
    if conv.bias is not None:
        shift = shift + conv.bias.to(dtype) * scale
    return scale, shift


def conv_bn_act(x: Tensor, conv: nn.Conv2d, bn: nn.BatchNorm2d | None = None, act: str = "relu", *,
                residual: Tensor | None = None, res_scale: float = 1.0, out: Tensor | None = None,
                out_offset: int = 0) -> Tensor:
    """``act(residual + res_scale * bn(conv(x)))`` with the parameters of ``conv`` and ``bn``.

    Eval without gradients: one fused kernel (BN folded, cached). Eval with gradients: the same op,
    differentiable. BatchNorm in training mode: ``ops.conv_bn_act_train`` (batch statistics, running
    statistics updated as torch does). ``out``/``out_offset`` write the result into a channel slice of a
    channels_last buffer and return the slice (with gradients: a differentiable copy into the slice).
    Result: (N, K, OH, OW), channels_last on the fused ops, dtype ``compute_dtype(x)``.
    """
    if act not in _ACTS:
        raise ValueError(f"act: expected one of {list(_ACTS)}, got {act!r}")
    extra = (residual is not None, 1.0 if residual is None else res_scale)
    if _PLAN in conv.__dict__ and not torch.compiler.is_compiling():  # a frozen layer's prepared call
        y = _run_plan(conv, _PLAN, ((conv, bn, act),), extra, x, residual, out, out_offset)
        if y is not None:
            return y
    batch_stats = bn is not None and (bn.training or bn.running_mean is None)
    if not _conv_supported(conv) or (bn is not None and not isinstance(bn, nn.BatchNorm2d)) or (
            batch_stats and not bn.training):
        return _stock(x, conv, bn, act, residual, res_scale, out, out_offset)
    dtype = compute_dtype(x)
    if batch_stats and _stock_training(x):
        return _stock(x, conv, bn, act, residual, res_scale, out, out_offset)
    if batch_stats:
        y = _conv_bn_train(x, conv, bn, act, residual, res_scale, dtype)
        return y if out is None else out.narrow(1, out_offset, y.shape[1]).copy_(y)
    if residual is not None:
        residual = residual.to(dtype)
    if needs_autograd(x, conv) or (bn is not None and needs_autograd(x, bn)) or (
            residual is not None and torch.is_grad_enabled() and residual.requires_grad):
        if conv.training and _stock_training(x):  # a training layer without batch statistics (no BatchNorm, as the
            # residual up-projection, or one in eval mode): torch's modules, eager's math; their backward copies less
            if bn is None and residual is not None and _plain_conv(conv):
                return _stock_residual(x, conv, act, residual, res_scale, out, out_offset)
            return _stock(x, conv, bn, act, residual, res_scale, out, out_offset)
        scale, shift = _fold_bn_differentiable(conv, bn)
        y = ops.conv_bn_act(x.to(dtype), conv.weight.to(dtype), scale, shift, stride=conv.stride,
                            padding=conv.padding, act=act, residual=residual, res_scale=res_scale)
        return y if out is None else out.narrow(1, out_offset, y.shape[1]).copy_(y)
    x = x.to(dtype)
    if not _weights_take_scale(x, dtype):
        weight, scale, shift = _folded(conv, bn, dtype)
        return ops.conv_bn_act(x, weight, scale, shift, stride=conv.stride, padding=conv.padding, act=act,
                               residual=residual, res_scale=res_scale, out=out, out_offset=out_offset)
    weight, scale, shift = _folded(conv, bn, dtype, extra[1])
    y = ops.conv_bn_act(x, weight, scale, shift, stride=conv.stride, padding=conv.padding, act=act,
                        residual=residual, res_scale=1.0, out=out, out_offset=out_offset)
    cache = conv.__dict__.get("_ic_fold_cache")
    if cache is not None and cache[1][0] is weight:  # a frozen fold: the next calls take the prepared one
        _remember_plan(conv, _PLAN, ((conv, bn, act),), extra, weight, shift, act, conv.stride, conv.padding)
    return y


def _stock_pooling(x: Tensor) -> bool:
    """Whether a pool that records an autograd graph runs torch's own op: on the torch backend, where the
    fused op's forward writes a copy and its backward computes the argmax again (torch's keeps the
    indices of its forward)."""
    return _STOCK_TRAINING and _backend(x, "max_pool2d") == "torch"


def _into(y: Tensor, out: Tensor | None, out_offset: int) -> Tensor:
    return y if out is None else out.narrow(1, out_offset, y.shape[1]).copy_(y)


def max_pool2d(x: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False, *, out: Tensor | None = None,
               out_offset: int = 0) -> Tensor:
    """``torch.nn.functional.max_pool2d`` on the fused op (differentiable; with gradients on the torch
    backend torch's own op, see ``_stock_pooling``); writes into a channel slice of ``out`` when given
    (directly without gradients, by a differentiable copy with them)."""
    if needs_autograd(x):
        if _stock_pooling(x):
            return _into(F.max_pool2d(x, kernel_size, stride, padding, ceil_mode=ceil_mode), out, out_offset)
        return _into(ops.max_pool2d(x, kernel_size, stride, padding, ceil_mode), out, out_offset)
    return ops.max_pool2d(x, kernel_size, stride, padding, ceil_mode, out=out, out_offset=out_offset)


def avg_pool2d(x: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, *, out: Tensor | None = None, out_offset: int = 0) -> Tensor:
    """``torch.nn.functional.avg_pool2d`` on the fused op (differentiable; with gradients on the torch
    backend torch's own op, see ``_stock_pooling``); writes into a channel slice of ``out`` when given
    (directly without gradients, by a differentiable copy with them)."""
    if needs_autograd(x):
        if _stock_pooling(x):
            return _into(F.avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad), out,
                         out_offset)
        return _into(ops.avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad), out, out_offset)
    return ops.avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad, out=out,
                          out_offset=out_offset)


def _unit(u) -> tuple[nn.Conv2d, nn.BatchNorm2d | None, str]:
    """(conv, bn, act) of a BasicConv2d-like module (``.conv``, ``.bn``, ``.act``) or a (conv, bn[, act]) tuple."""
    if isinstance(u, tuple):
        return (u[0], u[1], u[2] if len(u) > 2 else "relu")
    return u.conv, u.bn, getattr(u, "act", "relu")


def _is_pointwise(conv: nn.Conv2d) -> bool:
    return conv.kernel_size == (1, 1) and conv.stride == (1, 1) and conv.padding in ((0, 0), 0)


def siblings_fusable(units) -> bool:
    """Whether 1x1 convolutions reading the same input can run as one GEMM (same act, all 1x1 stride 1)."""
    try:
        parts = [_unit(u) for u in units]
    except AttributeError:  # a custom conv block without .conv/.bn: run the convs one by one
        return False
    return (len(parts) > 1 and len({act for _, _, act in parts}) == 1
            and all(_is_pointwise(c) and _can_fuse_conv(c, b) for c, b, _ in parts))


def _stacked(parts, dtype: torch.dtype, owner: nn.Module, scaled: bool):
    """Weights, scales and shifts of several convs stacked along the output channels (``scaled``: the
    scales multiplied into the weights, scale None). Recomputed on every call, or, once
    ``freeze_folding`` marked ``owner``, cached on it and rebuilt when any unit's cached fold was."""
    frozen = bool(owner.__dict__.get(_FROZEN)) and not torch.compiler.is_compiling()
    gain = 1.0 if scaled else None
    if frozen:
        folded = [_folded(conv, bn, dtype, gain) for conv, bn, _ in parts]
        key = (tuple(id(t) for f in folded for t in f), scaled)
        cache = owner.__dict__.get("_ic_sibling_cache")
        if cache is not None and cache[0] == key:
            return cache[2]
    k_total = sum(conv.out_channels for conv, _, _ in parts)
    w0 = parts[0][0].weight
    shape = (k_total, *w0.shape[1:])
    reuse = not frozen and not torch.compiler.is_compiling()
    weight = (_scratch(owner, shape, dtype, w0.device) if reuse
              else torch.empty(shape, dtype=dtype, device=w0.device, memory_format=torch.channels_last))
    acc_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    scale = None if scaled else torch.ones(k_total, dtype=acc_dtype, device=w0.device)
    shift = torch.zeros(k_total, dtype=acc_dtype, device=w0.device)
    k = 0
    for i, (conv, bn, _) in enumerate(parts):  # filled by slices, not torch.cat: the fused path stays free of cat
        n = conv.out_channels
        if frozen:
            w, s, b = folded[i]
            weight[k:k + n].copy_(w)
        else:  # straight from the parameters: one pass over the weights
            s, b = fold_bn(conv, bn)
            w = conv.weight.detach()
            if scaled and s is not None:
                torch.mul(w, s.view(-1, 1, 1, 1).to(dtype), out=weight[k:k + n])
            else:
                weight[k:k + n].copy_(w)
        if s is not None and scale is not None:
            scale[k:k + n].copy_(s)
        if b is not None:
            shift[k:k + n].copy_(b)
        k += n
    value = (weight, scale, shift)
    if frozen:
        if scaled:
            allow_prepack(weight)
        owner.__dict__["_ic_sibling_cache"] = (key, folded, value)  # folded kept alive: ids stay unique
    return value


def sibling_conv_bn_act(x: Tensor, units, owner: nn.Module, *, out: Tensor | None, out_offset: int = 0) -> list[Tensor]:
    """Horizontal fusion: the 1x1 convolutions ``units`` (BasicConv2d modules or (conv, bn) pairs) that read
    the same ``x`` run as ONE fused conv with stacked weights, writing channels
    ``[out_offset, out_offset + sum(K_i))`` of ``out``; returns each unit's channel slice, in order.

    Callers place the slices so that each lands where it is needed: the last unit's slice can be a
    block-output slot and the others a scratch region right before it (see ``ChannelSlots.siblings``).
    No state_dict key changes: the stacked parameters are a cache, rebuilt whenever a unit changes.
    ``out=None``: the slices of one fresh (N, sum(K_i), H, W) channels_last tensor.
    """
    parts = tuple(_unit(u) for u in units)
    y = None
    if _SIBLING_PLAN in owner.__dict__ and not torch.compiler.is_compiling():  # frozen: the prepared call
        y = _run_plan(owner, _SIBLING_PLAN, parts, _NO_RESIDUAL, x, None, out, out_offset)
    if y is None:
        dtype = compute_dtype(x)
        x = x.to(dtype)
        scaled = _weights_take_scale(x, dtype)
        weight, scale, shift = _stacked(parts, dtype, owner, scaled)
        y = ops.conv_bn_act(x, weight, scale, shift, act=parts[0][2], out=out, out_offset=out_offset)
        cache = owner.__dict__.get("_ic_sibling_cache")
        if scaled and cache is not None and cache[2][0] is weight:
            _remember_plan(owner, _SIBLING_PLAN, parts, _NO_RESIDUAL, weight, shift, parts[0][2], (1, 1), (0, 0))
    if out is None:
        out, out_offset = y, 0
    slices, k = [], out_offset
    for conv, _, _ in parts:
        slices.append(out.narrow(1, k, conv.out_channels))
        k += conv.out_channels
    return slices


def dense(x: Tensor) -> Tensor:
    """x itself when it is dense (NCHW- or channels_last-contiguous), else a channels_last copy.

    Fused block outputs with horizontally fused 1x1 convs are views behind their scratch channels;
    a network hands its feature map to callers through this.
    """
    if x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last):
        return x
    return x.contiguous(memory_format=torch.channels_last)
