"""Helpers shared by the test suite and ``inception-core check``: reduced problem sizes, random
inputs, error measures and the pass rule against a float64 reference."""

from __future__ import annotations

import contextlib

import torch

LOW_PRECISION = (torch.float16, torch.bfloat16)
FP32_RTOL = 1e-5    # fp32 without TF32 (the interpreter computes dots exactly in fp32)
TF32_RTOL = 2e-3    # fp32 on a GPU with torch.backends.cudnn.allow_tf32


def reduced_size(size: int, kernel: int, stride: int, pad: int) -> int:
    """A small spatial size that keeps a layer's character: at least two outputs per axis, and the
    parity of the native size (an odd input to a stride-2 'valid' layer stays odd)."""
    small = max(kernel - 2 * pad + stride, 5 + (stride - 1) * 2)
    if small % 2 != size % 2:
        small += 1
    return min(size, small)


def reduced_hw(shape) -> tuple[int, int]:
    """``reduced_size`` of a ``ConvShape`` / ``PoolShape``'s input on each axis (not for adaptive pools)."""
    return tuple(reduced_size(shape.in_hw[i], shape.kernel[i], shape.stride[i], shape.padding[i]) for i in range(2))


def conv_layer_cases(shapes) -> list[tuple[tuple, str]]:
    """The first layer of each distinct (C, K, kernel, stride, padding) of ``shapes`` as
    ``((C, K, kernel, stride, padding, reduced hw), "model.layer")``, in catalogue order."""
    seen = {}
    for s in shapes:
        key = (s.in_channels, s.out_channels, s.kernel, s.stride, s.padding)
        if key not in seen:
            seen[key] = ((*key, reduced_hw(s)), f"{s.model}.{s.layer}")
    return list(seen.values())


def pool_layer_cases(shapes) -> list[tuple[tuple, str]]:
    """The first layer of each distinct max / avg pool geometry of ``shapes`` (adaptive pools left out) as
    ``((kind, C, kernel, stride, padding, ceil_mode, count_include_pad, reduced hw), "model.layer")``."""
    seen = {}
    for s in shapes:
        if s.kind == "adaptive_avg":
            continue
        key = (s.kind, s.channels, s.kernel, s.stride, s.padding, s.ceil_mode, s.count_include_pad)
        if key not in seen:
            seen[key] = ((*key, reduced_hw(s)), f"{s.model}.{s.layer}")
    return list(seen.values())


def rel_err(y: torch.Tensor, ref: torch.Tensor) -> float:
    """max |y - ref| / max |ref|; NaN anywhere in y gives NaN (which never passes)."""
    if torch.isnan(y).any():
        return float("nan")
    return ((y.double() - ref.double()).abs().max() / ref.double().abs().max().clamp_min(1e-12)).item()


def assert_within(got: torch.Tensor, ref: torch.Tensor, tol: float, what: str) -> None:
    """``rel_err(got, ref) <= tol``, else an AssertionError naming ``what`` and both figures."""
    err = rel_err(got, ref)
    assert err <= tol, f"{what}: relative error {err} > {tol}"


def assert_grads_within(names, grads, ref_grads, tol: float) -> None:
    """Each gradient within ``tol`` of its reference (``rel_err``); None exactly where the reference is None."""
    for name, g, r in zip(names, grads, ref_grads, strict=True):
        assert (g is None) == (r is None), name
        if g is not None:
            assert_within(g, r, tol, f"grad {name}")


def assert_grads_within_torch_error(names, grads, torch_grads, ref_grads, dtypes, *, factor: float,
                                    input_dtype: torch.dtype) -> None:
    """Low precision: each gradient has its dtype of ``dtypes`` and an error against the float64 reference
    within ``factor`` x the torch backend's own error on the same inputs, plus one rounding step of
    ``input_dtype`` (fp16/bf16)."""
    eps = torch.finfo(input_dtype).eps
    for name, g, t, r, dtype in zip(names, grads, torch_grads, ref_grads, dtypes, strict=True):
        assert g.dtype == dtype, f"grad {name}: dtype {g.dtype}, expected {dtype}"
        err, torch_err = rel_err(g, r), rel_err(t, r)
        assert err <= factor * torch_err + eps, f"grad {name}: {err} vs torch backend {torch_err}"


def fp32_rtol(interpreted: bool) -> float:
    return FP32_RTOL if (interpreted or not torch.backends.cudnn.allow_tf32) else TF32_RTOL


def passes(err: float, dtype: torch.dtype, *, torch_err: float | None, interpreted: bool) -> bool:
    """The pass rule: fp32 within FP32_RTOL (TF32_RTOL with TF32); fp16/bf16 within 2x of the torch
    backend's own error on the same inputs, plus one rounding step (the derived tolerance policy)."""
    if err != err:  # NaN
        return False
    if dtype in LOW_PRECISION:
        assert torch_err is not None
        return err <= 2 * torch_err + torch.finfo(dtype).eps
    if dtype == torch.float64:
        return err <= 1e-12
    return err <= fp32_rtol(interpreted)


def conv_inputs(n: int, c: int, k: int, kernel: tuple[int, int], hw: tuple[int, int], dtype: torch.dtype,
                device, *, channels_last: bool = True):
    """Random x (N, C, H, W), weight (K, C, R, S) scaled to keep outputs O(1), scale in [0.5, 1.5), shift."""
    x = torch.randn(n, c, *hw, device=device).to(dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    w = (torch.randn(k, c, *kernel, device=device) / (c * kernel[0] * kernel[1]) ** 0.5).to(dtype)
    w = w.contiguous(memory_format=torch.channels_last)
    scale = torch.rand(k, device=device) + 0.5
    shift = torch.randn(k, device=device)
    return x, w, scale, shift


def randomize_for_equivalence(model: torch.nn.Module, seed: int = 1) -> torch.nn.Module:
    """Give a network fresh random parameters that make an equivalence test meaningful; returns it.

    He-normal convolutions and linears (torch's and torchvision's default inits shrink activations
    through the depth, so the output would hardly depend on the early layers), biases ~ N(0, 0.1), and
    BatchNorm running_mean ~ N(0, 0.1), running_var ~ U(0.5, 1.5), weight ~ U(0.5, 1.5),
    bias ~ N(0, 0.1) so folding BN into the convolutions is really exercised.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                m.weight.normal_(0, (2.0 / m.weight[0].numel()) ** 0.5, generator=gen)
                if m.bias is not None:
                    m.bias.normal_(0, 0.1, generator=gen)
            elif isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.normal_(0, 0.1, generator=gen)
                m.running_var.uniform_(0.5, 1.5, generator=gen)
                if m.weight is not None:
                    m.weight.uniform_(0.5, 1.5, generator=gen)
                if m.bias is not None:
                    m.bias.normal_(0, 0.1, generator=gen)
    return model


def count_parameters(model: torch.nn.Module) -> int:
    """Number of parameter elements of ``model``."""
    return sum(p.numel() for p in model.parameters())


@contextlib.contextmanager
def no_concat():
    """Within the block, ``torch.cat`` / ``torch.concat`` raise AssertionError: the fused path writes every
    branch into its slice of the block output and must never concatenate."""
    def refuse(*args, **kwargs):
        raise AssertionError("torch.cat called on the fused path")

    saved = torch.cat, torch.concat
    torch.cat = torch.concat = refuse
    try:
        yield
    finally:
        torch.cat, torch.concat = saved
