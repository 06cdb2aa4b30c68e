"""Per-conv roofline of each network: what the hardware allows per layer, and (on a GPU) how far our fused
conv and torch's conv (cuDNN) are from it.

For every convolution of ``inception_core.shapes`` (the main network, no auxiliary heads) at batch N:
FLOPs (2 x MACs), the minimum bytes (input, weights, folded BN scale/shift and output, each moved once),
the floor time max(FLOPs / peak FLOP/s, bytes / peak bandwidth) and which bound sets it. On a CUDA device
it also times ``inception_core.ops.conv_bn_act`` (triton backend: conv + folded BN + ReLU) and
``torch.nn.functional.conv2d`` (cuDNN, channels_last, conv only) with CUDA events, and reports the gap
(measured / floor) and the time lost per image batch (``(ours - floor) x count``); rows are sorted by
that loss, largest first, so the table says where the work is. Without a GPU only the analytic columns
are filled (give the peaks with ``--device-peak``).

Usage:
    python benchmarks/roofline.py OUTDIR [--models inception_v3,...] [--batch 256] [--dtype bf16]
        [--device-peak h100|h200|a100] [--peak-tflops X] [--peak-gbps Y] [--no-measure]
Writes OUTDIR/roofline.md and OUTDIR/roofline.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from inception_core import shapes


@dataclass(frozen=True)
class Peak:
    """Throughput a roofline divides by: dense tensor-core TFLOP/s per dtype and memory GB/s."""

    name: str
    tflops: dict[str, float]  # "bf16", "fp16", "fp32" (TF32 tensor cores for fp32 convolutions)
    gbps: float
    source: str


# H100 / H200: an 8192^3 bf16 matmul measured at 769-798 TFLOP/s on this project's machines (the spec
# sheet says 989); bandwidth from the spec sheet (a device copy measured 3.0 TB/s on the H100, 4.3 on
# the H200). A100: spec sheet only. Override with --peak-tflops / --peak-gbps.
PEAKS: dict[str, Peak] = {
    "h100": Peak("NVIDIA H100 SXM", {"bf16": 790.0, "fp16": 790.0, "fp32": 395.0}, 3350.0,
                 "bf16 matmul measured 790 TFLOP/s; fp32 = TF32 at half of it; HBM3 3.35 TB/s spec"),
    "h200": Peak("NVIDIA H200", {"bf16": 790.0, "fp16": 790.0, "fp32": 395.0}, 4800.0,
                 "bf16 matmul measured 769-798 TFLOP/s; fp32 = TF32 at half of it; HBM3e 4.8 TB/s spec"),
    "a100": Peak("NVIDIA A100", {"bf16": 312.0, "fp16": 312.0, "fp32": 156.0}, 2039.0,
                 "spec sheet (dense): 312 TFLOP/s bf16, 156 TF32, 2.04 TB/s"),
}
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def peak_for_device_name(name: str) -> Peak | None:
    """The table row whose key (h200, h100, a100) appears in a CUDA device name."""
    lowered = name.lower()
    return next((peak for key, peak in PEAKS.items() if key in lowered), None)


def analytic_row(shape: shapes.ConvShape, batch: int, elem_bytes: int, peak: Peak, dtype: str) -> dict:
    """FLOPs, minimum bytes and floor time of one layer of ``shape`` at ``batch`` (per layer; x count)."""
    oh, ow = shape.out_hw
    r, s = shape.kernel
    flops = 2.0 * shape.macs * batch
    x_elems = batch * shape.in_channels * shape.in_hw[0] * shape.in_hw[1]
    w_elems = shape.out_channels * shape.in_channels * r * s
    y_elems = batch * shape.out_channels * oh * ow
    min_bytes = elem_bytes * (x_elems + w_elems + y_elems) + 2 * 4 * shape.out_channels  # + fp32 scale, shift
    compute_s = flops / (peak.tflops[dtype] * 1e12)
    memory_s = min_bytes / (peak.gbps * 1e9)
    return {
        "model": shape.model, "layer": shape.layer, "count": shape.count,
        "conv": f"{shape.in_channels}->{shape.out_channels} {r}x{s} s{shape.stride[0]}"
                + (f"x{shape.stride[1]}" if shape.stride[0] != shape.stride[1] else "")
                + f" p{shape.padding[0]},{shape.padding[1]} @{shape.in_hw[0]}x{shape.in_hw[1]}",
        "in_channels": shape.in_channels, "out_channels": shape.out_channels, "kernel": list(shape.kernel),
        "stride": list(shape.stride), "padding": list(shape.padding), "in_hw": list(shape.in_hw),
        "flops": flops, "min_bytes": min_bytes, "intensity": flops / min_bytes,
        "floor_s": max(compute_s, memory_s), "bound": "compute" if compute_s >= memory_s else "memory",
        "ours_s": None, "torch_s": None, "gap": None, "torch_gap": None, "lost_s": None,
    }


def analytic_rows(model: str, batch: int, dtype: str, peak: Peak) -> list[dict]:
    elem = torch.tensor([], dtype=_DTYPES[dtype]).element_size()
    return [analytic_row(s, batch, elem, peak, dtype) for s in shapes.CONV_SHAPES
            if s.model == model and not s.is_aux]


def measure(row: dict, batch: int, dtype: str, rounds: int) -> None:
    """Fill ours_s / torch_s (median seconds per layer, CUDA events) and the gaps of one row."""
    import torch.nn.functional as F

    import inception_core as ic
    from inception_core.bench.timing import time_callable

    tdtype = _DTYPES[dtype]
    c, k = row["in_channels"], row["out_channels"]
    x = torch.randn(batch, c, *row["in_hw"], device="cuda", dtype=tdtype).contiguous(
        memory_format=torch.channels_last)
    w = (torch.randn(k, c, *row["kernel"], device="cuda", dtype=tdtype) / (c * row["kernel"][0] * row["kernel"][1])
         ** 0.5).contiguous(memory_format=torch.channels_last)
    scale = torch.rand(k, device="cuda") + 0.5
    shift = torch.randn(k, device="cuda")
    stride, padding = tuple(row["stride"]), tuple(row["padding"])
    with torch.no_grad(), ic.backend("triton"):
        ours = time_callable(lambda: ic.ops.conv_bn_act(x, w, scale, shift, stride=stride, padding=padding),
                             warmup=3, rounds=rounds, device="cuda")
        cudnn = time_callable(lambda: F.conv2d(x, w, stride=stride, padding=padding), warmup=3, rounds=rounds,
                              device="cuda")
    row["ours_s"], row["torch_s"] = ours.median_s, cudnn.median_s
    row["gap"] = ours.median_s / row["floor_s"]
    row["torch_gap"] = cudnn.median_s / row["floor_s"]
    row["lost_s"] = (ours.median_s - row["floor_s"]) * row["count"]


def summary(rows: list[dict], batch: int) -> dict:
    """Per-network totals (every layer x count) and the images/s they bound."""
    def total(key):
        if any(r[key] is None for r in rows):
            return None
        return sum(r[key] * r["count"] for r in rows)

    out = {"layers": sum(r["count"] for r in rows), "flops_per_image": total("flops") / batch,
           "floor_s": total("floor_s"), "ours_s": total("ours_s"), "torch_s": total("torch_s")}
    for key in ("floor", "ours", "torch"):
        t = out[f"{key}_s"]
        out[f"{key}_images_per_s"] = batch / t if t else None
    return out


def _fmt_s(v: float | None) -> str:
    return "-" if v is None else f"{v * 1e6:.1f}"


def _fmt_x(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def render_markdown(report: dict) -> str:
    meta = report["meta"]
    lines = [f"# Conv roofline: batch {meta['batch']}, {meta['dtype']}, channels_last", "",
             f"Peaks: {meta['peak']['name']}, {meta['peak']['tflops'][meta['dtype']]} TFLOP/s, "
             f"{meta['peak']['gbps']:.0f} GB/s ({meta['peak']['source']}). Device: {meta['device']}. "
             f"torch {meta['torch']}, triton {meta['triton']}, commit {meta['commit']}.", "",
             f"Command: `{meta['command']}`", "",
             "floor = max(FLOPs / peak, minimum bytes / bandwidth) per layer; times in microseconds per layer; "
             "gap = measured / floor; lost = (ours - floor) x count. ours: `conv_bn_act` (triton, conv + folded "
             "BN + ReLU); torch: `F.conv2d` (cuDNN, conv only). Auxiliary heads excluded.", ""]
    for model, net in report["networks"].items():
        s = net["summary"]
        lines += [f"## {model}", "",
                  f"{s['layers']} convolutions, {s['flops_per_image'] / 1e9:.2f} GFLOP per image; floor "
                  f"{_fmt_s(s['floor_s'])} us per batch = {s['floor_images_per_s']:.0f} images/s"
                  + (f"; ours {_fmt_s(s['ours_s'])} us ({s['ours_images_per_s']:.0f} images/s), torch "
                     f"{_fmt_s(s['torch_s'])} us ({s['torch_images_per_s']:.0f} images/s)"
                     if s["ours_s"] is not None else "; not measured (no GPU)") + ".", "",
                  "| layer | conv | count | GFLOP | min MB | FLOP/B | bound | floor us | ours us | torch us "
                  "| gap | torch gap | lost us |",
                  "|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
        for r in net["rows"]:
            lines.append(f"| {r['layer']} | {r['conv']} | {r['count']} | {r['flops'] / 1e9:.2f} | "
                         f"{r['min_bytes'] / 1e6:.1f} | {r['intensity']:.0f} | {r['bound']} | {_fmt_s(r['floor_s'])} | "
                         f"{_fmt_s(r['ours_s'])} | {_fmt_s(r['torch_s'])} | {_fmt_x(r['gap'])} | "
                         f"{_fmt_x(r['torch_gap'])} | {_fmt_s(r['lost_s'])} |")
        lines.append("")
    return "\n".join(lines)


def build_report(models: list[str], *, batch: int, dtype: str, peak: Peak, measure_rounds: int | None,
                 command: str) -> dict:
    """Rows per network (sorted: largest time lost first when measured, else largest floor x count)."""
    from inception_core.bench.results import run_metadata

    device = "cuda" if measure_rounds is not None else "cpu"
    networks = {}
    for model in models:
        rows = analytic_rows(model, batch, dtype, peak)
        if measure_rounds is not None:
            for row in rows:
                measure(row, batch, dtype, measure_rounds)
            rows.sort(key=lambda r: -r["lost_s"])
        else:
            rows.sort(key=lambda r: -r["floor_s"] * r["count"])
        networks[model] = {"summary": summary(rows, batch), "rows": rows}
    meta = run_metadata(device, command=command, batch=batch, dtype=dtype)
    meta["peak"] = asdict(peak)  # the roofline's peaks, not the spec-sheet row run_metadata adds
    if measure_rounds is not None:
        import inception_core

        meta["autotune"] = inception_core.autotune_stats()
    return {"meta": meta, "networks": networks}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for roofline.md and roofline.json")
    parser.add_argument("--models", default=",".join(shapes.MODELS), help="comma list (default: all six)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--dtype", choices=list(_DTYPES), default="bf16")
    parser.add_argument("--device-peak", choices=list(PEAKS), help="peak table row (default: the CUDA device's)")
    parser.add_argument("--peak-tflops", type=float, help="override the compute peak (TFLOP/s, this dtype)")
    parser.add_argument("--peak-gbps", type=float, help="override the memory bandwidth (GB/s)")
    parser.add_argument("--no-measure", action="store_true", help="analytic columns only, even on a GPU")
    parser.add_argument("--rounds", type=int, default=20, help="timed calls per layer and provider")
    args = parser.parse_args(argv)

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(models) - set(shapes.MODELS))
    if unknown or not models:
        parser.error(f"--models: unknown {unknown}; expected a comma list of {', '.join(shapes.MODELS)}")
    if args.batch < 1:
        parser.error(f"--batch: expected >= 1, got {args.batch}")
    measuring = torch.cuda.is_available() and not args.no_measure
    if args.device_peak is not None:
        peak = PEAKS[args.device_peak]
    elif torch.cuda.is_available():
        name = torch.cuda.get_device_name()
        peak = peak_for_device_name(name)
        if peak is None and (args.peak_tflops is None or args.peak_gbps is None):
            parser.error(f"no peak table row for {name!r}: pass --device-peak or both --peak-tflops and --peak-gbps")
        peak = peak or Peak(name, {}, 0.0, "command line")
    elif args.peak_tflops is not None and args.peak_gbps is not None:
        peak = Peak("given on the command line", {}, 0.0, "command line")
    else:
        parser.error("no GPU: pass --device-peak (h100, h200, a100) or --peak-tflops and --peak-gbps")
    if args.peak_tflops is not None or args.peak_gbps is not None:
        tflops = dict(peak.tflops)
        if args.peak_tflops is not None:
            tflops[args.dtype] = args.peak_tflops
        peak = Peak(peak.name, tflops, args.peak_gbps if args.peak_gbps is not None else peak.gbps,
                    peak.source + " (overridden on the command line)")

    command = "python benchmarks/roofline.py " + " ".join(sys.argv[1:] if argv is None else argv)
    report = build_report(models, batch=args.batch, dtype=args.dtype, peak=peak,
                          measure_rounds=args.rounds if measuring else None, command=command.strip())
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "roofline.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    (args.out / "roofline.md").write_text(render_markdown(report), encoding="utf-8")
    for model, net in report["networks"].items():
        s = net["summary"]
        print(f"{model}: {s['flops_per_image'] / 1e9:.2f} GFLOP/image, floor {s['floor_images_per_s']:.0f} images/s"
              + (f", ours {s['ours_images_per_s']:.0f}, torch {s['torch_images_per_s']:.0f}"
                 if s["ours_s"] is not None else ""))
    print(f"wrote {args.out / 'roofline.md'} and {args.out / 'roofline.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
