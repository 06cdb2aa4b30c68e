"""Benchmark result records, run metadata (device, versions, commit, command) and their JSON files,
including the conversion of a pytest-benchmark JSON file."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from inception_core import backends
from inception_core.bench.flops import device_name, device_peak

FORMAT = "inception_core.bench/1"  # meta["format"] of the JSON files written here


@dataclass
class Result:
    """One benchmark case: a network (kind "model") or an op on one layer shape (kind "op")."""

    kind: str                 # "model" | "op"
    name: str                 # network, or the op case ("conv_bn_act 1x1 17x17 ...")
    provider: str
    mode: str                 # "infer" | "train" (ops: "fwd")
    dtype: str
    batch: int
    median_s: float | None = None
    iqr_s: float | None = None
    rounds: int = 0
    images_per_s: float | None = None
    tflops: float | None = None
    gbps: float | None = None
    peak_fraction: float | None = None
    max_rel_diff: float | None = None
    group: str = ""
    note: str = ""
    times_s: list[float] = field(default_factory=list)
    # provider -> per-round ratios time(provider) / time(this) of interleaved rounds: median, q1, q3, min,
    # max, rounds (inception_core.bench.ratio_summary)
    speedups: dict[str, dict] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.median_s is not None



def git_commit(path: str | os.PathLike | None = None) -> str | None:
    """``git rev-parse HEAD`` of the checkout holding this package (plus "-dirty" when tracked files
    changed), or None outside a git checkout."""
    cwd = Path(path) if path is not None else Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10)
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _triton_version() -> str | None:
    if backends._triton_import_error() is not None:
        return None
    import triton

    return triton.__version__


def load_average() -> list[float] | None:
    """The machine's 1, 5 and 15 minute load averages (None where the OS has none): how busy the CPU
    was around a run, which absolute timings depend on."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def run_metadata(device, *, command: str | None = None, **extra) -> dict:
    """Device, versions, commit, the exact command line and the time of a run."""
    import inception_core

    device = torch.device(device)
    meta = {
        "format": FORMAT,
        "device": device_name(device),
        "device_type": device.type,
        "torch": torch.__version__,
        "triton": _triton_version(),
        "inception_core": inception_core.__version__,
        "python": platform.python_version(),
        "commit": git_commit(),
        "command": command if command is not None else shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "loadavg": load_average(),
    }
    if device.type == "cuda":
        meta.update(cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                    tf32=bool(torch.backends.cudnn.allow_tf32), cudnn_benchmark=bool(torch.backends.cudnn.benchmark))
    peak = device_peak(device)
    if peak is not None:
        meta["peak"] = dataclasses.asdict(peak)
    meta.update(extra)
    return meta


def write_json(path: str | os.PathLike, meta: dict, results: Iterable[Result]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"meta": meta, "results": [dataclasses.asdict(r) for r in results]}, f, indent=1)
        f.write("\n")


def read_json(path: str | os.PathLike) -> tuple[dict, list[Result]]:
    """(meta, results) of a file written by ``write_json``.

    Raises:
        ValueError: not such a file.
    """
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict) or data.get("meta", {}).get("format") != FORMAT:
        raise ValueError(f"{path}: not an inception_core benchmark result (meta.format != {FORMAT!r})")
    names = {f.name for f in dataclasses.fields(Result)}
    return data["meta"], [Result(**{k: v for k, v in r.items() if k in names}) for r in data["results"]]


def results_from_pytest_benchmark(path: str | os.PathLike) -> tuple[dict, list[Result]]:
    """(meta, results) from a ``pytest --benchmark-json`` file of ``benchmarks/`` (the cases keep their
    description in ``extra_info``; medians and IQRs come from pytest-benchmark's stats, or from CUDA
    events where the case recorded them)."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    commit = data.get("commit_info", {})
    meta = {"format": FORMAT, "device": None, "commit": commit.get("id"), "time": data.get("datetime")}
    meta.update(data.get("inception_core", {}))  # written by benchmarks/conftest.py
    meta.update(source="pytest-benchmark", pytest_benchmark=data.get("version"))
    results = []
    for b in data.get("benchmarks", []):
        info, stats = b.get("extra_info", {}), b.get("stats") or {}
        meta["device"] = meta["device"] or info.get("device")
        if info.get("interleaved"):  # one case, every provider timed round by round (benchmarks/bench_models.py)
            results += _interleaved_results(b, info)
            continue
        median = info.get("median_ms")
        median_s = median / 1e3 if median is not None else stats.get("median")
        iqr = info.get("iqr_ms")
        results.append(Result(
            kind=info.get("kind", "op"), name=info.get("case", b.get("name", "")), provider=info.get("provider", ""),
            mode=info.get("mode", ""), dtype=info.get("dtype", ""), batch=int(info.get("batch", 0)),
            median_s=median_s, iqr_s=iqr / 1e3 if iqr is not None else stats.get("iqr"),
            rounds=int(info.get("rounds", stats.get("rounds", 0))), images_per_s=info.get("images_per_s"),
            tflops=info.get("tflops"), gbps=info.get("gbps"), peak_fraction=info.get("peak_fraction"),
            max_rel_diff=info.get("max_rel_diff"), group=b.get("group") or "", note=info.get("note", "")))
    return meta, results


def _interleaved_results(b: dict, info: dict) -> list[Result]:
    """One Result per provider of an interleaved pytest-benchmark case (``measure_interleaved``)."""
    out = []
    for provider, p in info.get("providers", {}).items():
        median = p.get("median_ms")
        out.append(Result(
            kind=info.get("kind", "model"), name=info.get("case", b.get("name", "")), provider=provider,
            mode=info.get("mode", ""), dtype=info.get("dtype", ""), batch=int(info.get("batch", 0)),
            median_s=median / 1e3 if median is not None else None,
            iqr_s=p["iqr_ms"] / 1e3 if p.get("iqr_ms") is not None else None, rounds=int(p.get("rounds", 0)),
            images_per_s=p.get("images_per_s"), tflops=p.get("tflops"), peak_fraction=p.get("peak_fraction"),
            max_rel_diff=p.get("max_rel_diff"), group=b.get("group") or "", note=p.get("note", ""),
            times_s=list(p.get("times_s", [])),
            speedups=dict(info.get("speedups", {})) if provider == "inception_core" else {}))
    return out
