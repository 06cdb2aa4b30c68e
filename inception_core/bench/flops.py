"""FLOP counts, the device peak table and the figures derived from a timing (images/s, TFLOP/s, GB/s,
fraction of peak)."""

from __future__ import annotations

import copy
import platform
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from inception_core.bench.references import ModelPair


def count_macs(model: nn.Module, input_size: int, *, training: bool = False, in_chans: int = 3) -> int:
    """Conv2d + Linear multiply-accumulates per image of one forward pass at ``input_size`` (square).

    Counted by forward hooks on a copy of ``model`` on the meta device (no arithmetic runs), so it counts
    what the forward really calls: the auxiliary heads only in training mode. Pooling, BatchNorm,
    activations and additions are not counted (well under 1% of the total for these networks).
    """
    meta = copy.deepcopy(model).to("meta").train(training)
    total = 0

    def hook(module: nn.Module, inputs, output) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            total += output.numel() * (module.in_channels // module.groups) * kh * kw
        else:
            total += output.numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in meta.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    batch = 2  # training-mode BatchNorm1d (facenet's embedding) needs more than one sample
    try:
        with torch.no_grad():
            meta(torch.empty(batch, in_chans, input_size, input_size, device="meta"))
    finally:
        for h in handles:
            h.remove()
    return total // batch


def model_flops(pair: ModelPair, mode: str) -> float:
    """FLOPs per image: 2 x MACs for inference; a training step counts 3 x the forward (the forward,
    the input gradients and the weight gradients), so 6 x MACs."""
    return 2.0 * pair.macs(training=False) if mode == "infer" else 6.0 * pair.macs(training=True)


@dataclass(frozen=True)
class DevicePeak:
    """Dense peak throughput of a GPU (vendor specification, no sparsity) and its memory bandwidth."""

    name: str
    tflops: dict  # "bf16", "fp16", "tf32", "fp32" -> TFLOP/s
    gbps: float   # GB/s
    measured: str = ""  # what was measured on such a machine, for context


# Specification sheets (dense). The H100/H200 rows: measured on this project's machines, an
# 8192^3 bf16 matmul ran at 769-798 TFLOP/s (~80% of the 989 spec) and a device-to-device copy at about
# 3.0 TB/s (H100 80GB HBM3) and 4.3 TB/s (H200), counting bytes read and written.
_PEAKS: tuple[tuple[str, DevicePeak], ...] = (
    ("H200", DevicePeak("NVIDIA H200", {"bf16": 989.4, "fp16": 989.4, "tf32": 494.7, "fp32": 66.9}, 4800.0,
                        "bf16 matmul 769-798 TFLOP/s, copy 4.3 TB/s")),
    ("H100 PCIe", DevicePeak("NVIDIA H100 PCIe", {"bf16": 756.0, "fp16": 756.0, "tf32": 378.0, "fp32": 51.2},
                             2000.0)),
    ("H100", DevicePeak("NVIDIA H100 SXM", {"bf16": 989.4, "fp16": 989.4, "tf32": 494.7, "fp32": 66.9}, 3350.0,
                        "bf16 matmul 790-798 TFLOP/s, copy 3.0 TB/s")),
    ("A100", DevicePeak("NVIDIA A100", {"bf16": 312.0, "fp16": 312.0, "tf32": 156.0, "fp32": 19.5}, 2039.0)),
)


def device_name(device: torch.device | str) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"cpu ({name}, {torch.get_num_threads()} threads)"


def peak_for_name(name: str) -> DevicePeak | None:
    """The peak table row whose key is part of a device name such as "NVIDIA H100 80GB HBM3"."""
    return next((peak for key, peak in _PEAKS if key in name), None)


def device_peak(device: torch.device | str) -> DevicePeak | None:
    """The peak table row of a CUDA device, or None (CPUs and GPUs not in the table)."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    return peak_for_name(torch.cuda.get_device_name(device))


def peak_tflops(peak: DevicePeak | None, dtype: torch.dtype) -> float | None:
    """Peak TFLOP/s for a dtype; fp32 convolutions count against TF32 when cuDNN may use it (torch's
    default, which the Triton kernels follow)."""
    if peak is None:
        return None
    if dtype == torch.float32:
        return peak.tflops["tf32" if torch.backends.cudnn.allow_tf32 else "fp32"]
    return peak.tflops["bf16" if dtype == torch.bfloat16 else "fp16"]


def derived_metrics(median_s: float, *, device, dtype: torch.dtype, flops: float | None = None,
                    nbytes: float | None = None, images: int | None = None, bound: str = "compute") -> dict:
    """images/s, TFLOP/s, GB/s and the fraction of the device's peak for one timed call.

    Args:
        median_s: seconds per call.
        flops, nbytes: work and minimal memory traffic of one call (None: not reported).
        images: images per call.
        bound: "compute" (fraction of peak TFLOP/s) or "memory" (fraction of peak GB/s).
    """
    out: dict = {"median_ms": median_s * 1e3}
    if images:
        out["images_per_s"] = images / median_s
    if flops:
        out["tflops"] = flops / median_s / 1e12
    if nbytes:
        out["gbps"] = nbytes / median_s / 1e9
    peak = device_peak(device)
    frac = None
    if peak is not None:
        if bound == "memory" and nbytes:
            frac = out["gbps"] / peak.gbps
        elif bound == "compute" and flops:
            frac = out["tflops"] / peak_tflops(peak, dtype)
    out["peak_fraction"] = frac
    return out
