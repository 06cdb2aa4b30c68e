"""``optimize_for_inference``: a frozen, fixed-shape copy of a network for serving.

What it does to a copy of the model (the original is never touched):
  0. A torchvision / timm / pretrainedmodels / facenet-pytorch Inception network is first converted to
     inception_core's (``inception_core.convert``: same weights), so the steps below and the fused kernels
     apply to it; one whose layers were modified runs as it is, with a RuntimeWarning saying so.
  1. Folds the input normalisation into the first convolution: torchvision's ``transform_input``
     (GoogLeNet, Inception-v3) and an explicit ``normalize=(mean, std)`` for raw [0, 1] pixels. A
     per-channel affine input ``a * x + b`` folds into the convolution as weights ``w * a`` and a bias
     ``sum(w * b)`` exactly when the convolution has no padding (Inception-v3, v4, both Inception-ResNets:
     'valid' 3x3 stride-2 stems). With zero padding (GoogLeNet's and BN-Inception's 7x7 stems) the
     padded taps hold 0, not ``b``, so the bias is wrong on the border; for a ``BasicConv2d`` stem
     (GoogLeNet) the difference is precomputed for the fixed input size and added in the conv's
     epilogue as a batch-broadcast residual (exact); otherwise (BN-Inception's flat conv) the affine
     stays a separate op in front of the network.
  2. BatchNorm is already folded by the fused layers in eval mode (their fold caches fill on the first
     call: the CUDA warm-up, or the first call on CPU).
  3. Freezes the layout: parameters channels_last; a float32 / float64 example converts the copy to
     that dtype; a float16 / bfloat16 example runs the copy under ``torch.autocast`` of that dtype (the
     way the benchmarks run), with conv and linear weights pre-cast (norm layers stay float32: they are
     folded in float32).
  4. On CUDA (``cuda_graph=True``) warms up on a side stream, so autotuning and compilation never run
     during capture, then captures the forward in a CUDA graph with static input and output buffers.

Fixed shapes: a call with another shape, dtype or device raises ``ValueError`` naming the expected
ones, on every device (the border term and the graph are built for that shape).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from inception_core.convert import convert, convertible
from inception_core.models._cfg import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from inception_core.nn import BasicConv2d
from inception_core.nn import functional as icf

__all__ = ["InferenceModule", "optimize_for_inference"]

_WARMUP_CALLS = 3


def _stem_name(model: nn.Module) -> str | None:
    """Module path of the layer that reads the input of one of inception_core's networks, from its
    ``pretrained_cfg["first_conv"]``: the ``BasicConv2d`` around that convolution, or the flat
    ``nn.Conv2d`` itself; None for any other model (its own metadata is not trusted to fold into)."""
    cfg = getattr(model, "pretrained_cfg", None)
    if not type(model).__module__.startswith("inception_core.models.") or not isinstance(cfg, dict):
        return None
    first_conv = cfg["first_conv"]
    parent, _, name = first_conv.rpartition(".")
    if parent and name == "conv" and isinstance(model.get_submodule(parent), BasicConv2d):
        return parent
    return first_conv


def _stem_conv(stem: nn.Module) -> nn.Conv2d:
    return stem if isinstance(stem, nn.Conv2d) else stem.conv


def _set_submodule(model: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, name = path.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, name, module)


def _channel_vector(value, name: str, channels: int) -> Tensor:
    try:
        t = torch.as_tensor(value, dtype=torch.float64).flatten().cpu()
    except (TypeError, ValueError, RuntimeError) as e:
        raise TypeError(f"normalize: {name} must be a sequence of {channels} numbers, got {value!r}") from e
    if t.numel() != channels:
        raise ValueError(f"normalize: {name} must have {channels} values (one per input channel), got {t.numel()}")
    if not torch.isfinite(t).all():
        raise ValueError(f"normalize: {name} must be finite, got {t.tolist()}")
    return t


class _BorderCorrectedStem(nn.Module):
    """A ``BasicConv2d`` stem whose convolution absorbed a per-channel input affine ``a * x + b``.

    With zero padding the original conv saw zeros on the padded taps where the folded one adds ``b``'s
    share through its bias; ``border`` (1, K, OH, OW), channels_last, BN scale applied, zero inside,
    removes that share again. It is built for one input size and added in the fused conv's epilogue
    (``residual`` broadcast over the batch: no extra pass over the activation).
    """

    def __init__(self, stem: nn.Module, border: Tensor, input_hw: tuple[int, int]) -> None:
        super().__init__()
        self.conv, self.bn, self.act = stem.conv, stem.bn, stem.act
        self.register_buffer("border", border, persistent=False)
        self.input_hw = input_hw

    def forward(self, x: Tensor, *, out: Tensor | None = None, out_offset: int = 0) -> Tensor:
        if tuple(x.shape[2:]) != self.input_hw:
            raise ValueError(f"x: this stem was folded for {self.input_hw[0]}x{self.input_hw[1]} input, "
                             f"got {tuple(x.shape[2:])}")
        residual = self.border.to(icf.compute_dtype(x)).expand(x.shape[0], -1, -1, -1)
        return icf.conv_bn_act(x, self.conv, self.bn, self.act, residual=residual, out=out, out_offset=out_offset)

    def extra_repr(self) -> str:
        return f"input_hw={self.input_hw}, border=residual"


def _fold_affine(model: nn.Module, stem_path: str, a: Tensor, b: Tensor, input_hw: tuple[int, int],
                 compute_dtype: torch.dtype) -> str:
    """Fold ``a * x + b`` (per channel, float64) into the stem of ``model`` in place; returns how."""
    stem = model.get_submodule(stem_path)
    conv = _stem_conv(stem)
    w64 = conv.weight.detach().to(torch.float64, copy=True).cpu()  # the conv weight is overwritten below
    # Interior: conv(a*x + b, w) = conv(x, w*a) + sum over (c, r, s) of w*b.
    interior = (w64 * b.view(1, -1, 1, 1)).sum(dim=(1, 2, 3))
    bias = conv.bias.detach().to(torch.float64).cpu() if conv.bias is not None else torch.zeros(conv.out_channels,
                                                                                             dtype=torch.float64)
    padded = any(p != 0 for p in conv.padding)
    if padded and not (hasattr(stem, "bn") and hasattr(stem, "act") and hasattr(stem, "conv")):
        return "separate"
    with torch.no_grad():
        conv.weight.copy_((w64 * a.view(1, -1, 1, 1)).to(conv.weight))
        # float32 for half-precision weights: the fused layers fold the bias into the shift in float32
        bias_dtype = conv.bias.dtype if conv.bias is not None else (
            torch.float32 if conv.weight.dtype in (torch.float16, torch.bfloat16) else conv.weight.dtype)
        new_bias = (bias + interior).to(device=conv.weight.device, dtype=bias_dtype)
        if conv.bias is None:
            conv.bias = nn.Parameter(new_bias, requires_grad=False)
        else:
            conv.bias.copy_(new_bias)
    if not padded:
        return "weights"
    # Border: the padded taps contributed 0 to the original, b's share to the folded conv.
    b_image = b.view(1, -1, 1, 1).expand(1, conv.in_channels, *input_hw)
    share = torch.nn.functional.conv2d(b_image, w64, stride=conv.stride, padding=conv.padding)
    bn_scale = torch.ones(conv.out_channels, dtype=torch.float64)
    if stem.bn is not None:
        bn_scale = torch.rsqrt(stem.bn.running_var.detach().to(torch.float64).cpu() + stem.bn.eps)
        if stem.bn.weight is not None:
            bn_scale = bn_scale * stem.bn.weight.detach().to(torch.float64).cpu()
    border = (share - interior.view(1, -1, 1, 1)) * bn_scale.view(1, -1, 1, 1)
    border = border.to(device=conv.weight.device, dtype=compute_dtype).contiguous(memory_format=torch.channels_last)
    _set_submodule(model, stem_path, _BorderCorrectedStem(stem, border, input_hw))
    return "weights+border"


def _freeze_dtype(model: nn.Module, dtype: torch.dtype) -> None:
    """float32/float64: the whole copy in that dtype. float16/bfloat16: conv weights and linear layers
    pre-cast (what autocast would cast them to on every call); conv biases and norm layers stay float32,
    since the fused layers fold them in float32."""
    if dtype in (torch.float32, torch.float64):
        model.to(dtype)
        return
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            m.weight.data = m.weight.data.to(dtype)
        elif isinstance(m, nn.Linear):
            m.to(dtype)


class InferenceModule(nn.Module):
    """A frozen network for inputs of one shape, dtype and device (see ``optimize_for_inference``).

    Attributes:
        model: the prepared copy (eval mode, no gradients, input affine folded where exact).
        input_shape, dtype, device: what ``forward`` accepts.
        folding: how the input normalisation was handled: "none" (there was none), "weights" (folded into
            the first conv's weights and bias), "weights+border" (plus an exact border term in the conv's
            epilogue) or "separate" (kept as one elementwise op in front of the network).
        graph: the captured ``torch.cuda.CUDAGraph``, or None (CPU, or ``cuda_graph=False``).
        converted_from: the reference class (``"torchvision.models.inception.Inception3"``) that the model
            was converted from with ``inception_core.convert``, or None (it was one of ours, or another model).
    """

    def __init__(self, model: nn.Module, example: Tensor, input_affine: tuple[Tensor, Tensor] | None,
                 folding: str, converted_from: str | None = None) -> None:
        super().__init__()
        self.model = model
        self.converted_from = converted_from
        self.input_shape = tuple(example.shape)
        self.dtype = example.dtype
        self.device = example.device
        self.folding = folding
        if input_affine is not None:
            a, b = (t.to(device=example.device, dtype=example.dtype).view(1, -1, 1, 1) for t in input_affine)
            self.register_buffer("input_scale", a, persistent=False)
            self.register_buffer("input_shift", b, persistent=False)
        else:
            self.input_scale = self.input_shift = None
        self.graph: torch.cuda.CUDAGraph | None = None
        self._static_in: Tensor | None = None
        self._static_out: Tensor | None = None

    def _run(self, x: Tensor) -> Tensor:
        autocast = self.dtype in (torch.float16, torch.bfloat16)
        with torch.no_grad(), torch.autocast(self.device.type, dtype=self.dtype, enabled=autocast):
            if self.input_scale is not None:
                x = x * self.input_scale + self.input_shift
            return self.model(x)

    def _check(self, x: Tensor) -> None:
        if not isinstance(x, Tensor):
            raise TypeError(f"x: expected a Tensor, got {type(x).__name__}")
        if tuple(x.shape) != self.input_shape or x.dtype != self.dtype or x.device != self.device:
            raise ValueError(f"x: this module was optimized for input of shape {self.input_shape}, {self.dtype}, "
                             f"on {self.device}; got shape {tuple(x.shape)}, {x.dtype}, on {x.device} (call "
                             "optimize_for_inference again for another shape)")

    def capture(self, example: Tensor) -> None:
        """Warm up on a side stream (autotuning, compilation, fold caches), then capture a CUDA graph."""
        self._static_in = torch.empty_like(example)
        self._static_in.copy_(example)
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(_WARMUP_CALLS):
                self._run(self._static_in)
        torch.cuda.current_stream(self.device).wait_stream(side)
        torch.cuda.synchronize(self.device)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = self._run(self._static_in)
        if not isinstance(out, Tensor):
            raise TypeError(f"model: a CUDA graph needs a Tensor output, got {type(out).__name__}")
        self._static_out = out
        self.graph = graph

    def forward(self, x: Tensor) -> Tensor:
        """x: exactly ``input_shape``, ``dtype``, ``device`` -> the model's output (a fresh tensor)."""
        self._check(x)
        if self.graph is None:
            return self._run(x)
        self._static_in.copy_(x)
        self.graph.replay()
        return self._static_out.clone()  # the static buffer is overwritten by the next replay

    def train(self, mode: bool = True) -> InferenceModule:
        if mode:
            raise RuntimeError("InferenceModule is inference-only; optimize the original model again after "
                               "training it")
        return super().train(False)

    def extra_repr(self) -> str:
        return (f"input_shape={self.input_shape}, dtype={self.dtype}, device={self.device}, "
                f"folding={self.folding!r}, cuda_graph={self.graph is not None}")


def optimize_for_inference(model: nn.Module, example_input: Tensor, *,
                           normalize: tuple[Sequence[float], Sequence[float]] | None = None,
                           cuda_graph: bool = True) -> InferenceModule:
    """A frozen copy of ``model`` computing ``model.eval()(x)`` for inputs shaped like ``example_input``.

    Args:
        model: a network. inception_core's six fold their input normalisation; a reference network that
            ``inception_core.convert`` takes (torchvision, timm, pretrainedmodels, facenet-pytorch) is
            converted to ours first (same weights; ``converted_from`` says so), or kept as it is with a
            RuntimeWarning when its layers were modified; any other module gets the layout, dtype and graph
            steps, and ``normalize`` as a separate op. Left untouched.
        example_input: (N, C, H, W) floating tensor on the model's device; fixes the shape, dtype and
            device of every later call. float16 / bfloat16 mean autocast semantics (weights float32 in
            the model, computation in the example's dtype).
        normalize: optional ``(mean, std)``, C values each: the returned module takes raw pixels x and
            computes ``model((x - mean) / std)`` (applied before ``transform_input`` when the model has it).
        cuda_graph: on CUDA, capture the forward in a CUDA graph (ignored on CPU).

    Returns:
        InferenceModule; ``module.folding`` says how the normalisation was handled.

    Raises:
        TypeError / ValueError: bad arguments, named, before anything runs; ValueError naming
        ``example_input`` when the network cannot run on its shape (too small an image, for one): one image
        of it is run here, before anything is returned.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(example_input, Tensor):
        raise TypeError(f"example_input: expected a Tensor, got {type(example_input).__name__}")
    if example_input.dim() != 4 or example_input.numel() == 0:
        raise ValueError(f"example_input: expected a non-empty (N, C, H, W) tensor, got shape "
                         f"{tuple(example_input.shape)}")
    if example_input.dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        raise TypeError(f"example_input: expected float16, bfloat16, float32 or float64, got {example_input.dtype}")
    if not isinstance(cuda_graph, bool):
        raise TypeError(f"cuda_graph: expected a bool, got {type(cuda_graph).__name__}")
    converted_from = None
    if convertible(model):  # a torchvision / timm / ... network: ours computes the same with the fused kernels
        name = f"{type(model).__module__}.{type(model).__name__}"
        try:
            model = convert(model)
        except (TypeError, ValueError) as exc:
            warnings.warn(f"model: this {name} differs from the reference network, so it is not converted to "
                          f"inception_core's ({exc}); it runs as it is, without inception_core's kernels and with "
                          "the input normalisation as a separate op. Convert the unmodified network with "
                          "inception_core.convert and modify the result instead", RuntimeWarning, stacklevel=2)
        else:
            converted_from = name
    devices = {p.device for p in model.parameters()}
    if devices and devices != {example_input.device}:
        raise ValueError(f"example_input: is on {example_input.device}, the model's parameters on "
                         f"{sorted(map(str, devices))}; move one of them")
    channels = example_input.shape[1]
    stem_path = _stem_name(model)
    if stem_path is not None:
        stem_in = _stem_conv(model.get_submodule(stem_path)).in_channels
        if stem_in != channels:
            raise ValueError(f"example_input: the model's first convolution takes {stem_in} channels, "
                             f"the example has {channels}")

    a = torch.ones(channels, dtype=torch.float64)
    b = torch.zeros(channels, dtype=torch.float64)
    if normalize is not None:
        if not isinstance(normalize, (tuple, list)) or len(normalize) != 2:
            raise TypeError(f"normalize: expected a (mean, std) pair, got {normalize!r}")
        mean = _channel_vector(normalize[0], "mean", channels)
        std = _channel_vector(normalize[1], "std", channels)
        if (std == 0).any():
            raise ValueError(f"normalize: std must be non-zero, got {std.tolist()}")
        a, b = 1.0 / std, -mean / std

    # a converted network is already a copy of its own
    frozen = (model if converted_from else copy.deepcopy(model)).eval().requires_grad_(False)
    if getattr(frozen, "transform_input", False):
        if stem_path is None:
            a_tv = b_tv = None  # an unknown network keeps applying its own transform
        else:
            # torchvision's transform_input: x * (std / 0.5) + (mean - 0.5) / 0.5 per channel
            a_tv = torch.tensor(IMAGENET_DEFAULT_STD, dtype=torch.float64) / 0.5
            b_tv = (torch.tensor(IMAGENET_DEFAULT_MEAN, dtype=torch.float64) - 0.5) / 0.5
        if a_tv is not None:
            a, b = a_tv * a, a_tv * b + b_tv
            frozen.transform_input = False
    identity = bool((a == 1).all() and (b == 0).all())

    _freeze_dtype(frozen, example_input.dtype)
    frozen.to(memory_format=torch.channels_last)
    folding, affine = "none", None
    if not identity:
        hw = tuple(example_input.shape[2:])
        folding = _fold_affine(frozen, stem_path, a, b, hw, example_input.dtype) if stem_path else "separate"
        if folding == "separate":
            affine = (a, b)

    icf.freeze_folding(frozen)  # folds computed once (the copy is frozen; see freeze_folding)
    module = InferenceModule(frozen, example_input, affine, folding, converted_from)
    try:  # one image now (it also fills the fold caches): an example the network cannot take fails here
        module._run(example_input[:1])
    except Exception as exc:
        raise ValueError(f"example_input: the network cannot run on inputs of shape {tuple(example_input.shape)} "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from exc
    if example_input.device.type == "cuda" and cuda_graph:
        module.capture(example_input)
    elif cuda_graph and example_input.device.type != "cpu":
        warnings.warn(f"cuda_graph: no CUDA graph on {example_input.device.type}; running eagerly",
                      RuntimeWarning, stacklevel=2)
    return module
