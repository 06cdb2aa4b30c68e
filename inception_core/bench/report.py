"""Text and Markdown tables of benchmark results, and the bar chart (matplotlib, the ``plot`` extra, imported
only when a chart is asked for)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

from inception_core.bench.results import Result
from inception_core.bench.runner import PROVIDERS, REFERENCE_PROVIDERS


def _speedups(results: Sequence[Result]) -> dict[int, dict[str, dict]]:
    """id(result) -> {reference provider: ratio summary}: the result's own interleaved per-round ratios
    (``Result.speedups``), else, for results without them (older files), the ratio of the medians within
    its (name, mode, dtype) as a summary of one value."""
    base: dict[tuple, dict[str, float]] = {}
    for r in results:
        if r.ok:
            base.setdefault((r.name, r.mode, r.dtype), {})[r.provider] = r.median_s
    out = {}
    for r in results:
        if not r.ok:
            out[id(r)] = {}
        elif r.speedups:
            out[id(r)] = r.speedups
        else:
            ref = base.get((r.name, r.mode, r.dtype), {})
            out[id(r)] = {p: {"median": ref[p] / r.median_s, "rounds": 0}
                          for p in REFERENCE_PROVIDERS if p in ref and p != r.provider}
    return out


def _ratio(summary: dict | None) -> str:
    """'1.23x [1.10-1.31]': the median per-round ratio and its inter-quartile range."""
    if not summary:
        return "-"
    text = f"{summary['median']:.2f}x"
    if summary.get("rounds", 0) >= 2:
        text += f" [{summary['q1']:.2f}-{summary['q3']:.2f}]"
    return text


def _fmt(value: float | None, spec: str, empty: str = "-") -> str:
    if value is None:
        return empty
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return "0" if value == 0 else format(value, spec)


_NUMERIC = ("images/s", *(f"vs {p}" for p in REFERENCE_PROVIDERS), "max rel diff")


def table_rows(results: Sequence[Result]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the model table: network, mode, dtype, provider, images/s, speed-ups over each
    reference provider present (median of the per-round ratios of interleaved rounds, [q1-q3]), max rel
    diff against the fp32 reference, note."""
    present = [p for p in REFERENCE_PROVIDERS if any(r.provider == p for r in results)]
    header = ["network", "mode", "dtype", "provider", "images/s", *(f"vs {p}" for p in present), "max rel diff",
              "note"]
    ups = _speedups(results)
    rows = []
    for r in results:
        ratios = [_ratio(ups[id(r)].get(p)) for p in present]
        rows.append([r.name, r.mode, r.dtype, r.provider, _fmt(r.images_per_s, ",.1f"), *ratios,
                     _fmt(r.max_rel_diff, ".1e"), r.note])
    return header, rows


def rounds_line(results: Sequence[Result]) -> str:
    """How the speed-ups were measured: rounds, interleaving."""
    rounds = sorted({r.rounds for r in results if r.ok and r.speedups})
    if not rounds:
        return "speed-ups: ratios of medians"
    n = str(rounds[0]) if len(rounds) == 1 else f"{rounds[0]}-{rounds[-1]}"
    return (f"speed-ups: median over {n} interleaved rounds (every provider once per round, rotating order) of "
            "the per-round time ratio, [inter-quartile range]")


def format_table(results: Sequence[Result], *, markdown: bool = False, compact: bool = True) -> str:
    """The model results as a fixed-width text table (or a Markdown table). ``compact``: the mode and
    dtype columns are left out where every row has the same value (the title says it)."""
    header, rows = table_rows(results)
    keep = [i for i, h in enumerate(header)
            if not compact or h not in ("mode", "dtype") or len({row[i] for row in rows}) > 1]
    header = [header[i] for i in keep]
    rows = [[row[i] for i in keep] for row in rows]
    if markdown:
        lines = ["| " + " | ".join(header) + " |",
                 "|" + "|".join("---:" if h in _NUMERIC else "---" for h in header) + "|"]
        lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(header)]
    widths[-1] = 0  # the note runs free

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if h in _NUMERIC else c.ljust(w)
                         for c, w, h in zip(cells, widths, header, strict=True)).rstrip()

    out = [line(header), "-" * max(len(line(header)), 100)]
    previous = None
    for row in rows:
        shown = list(row)
        if row[0] == previous:
            shown[0] = ""  # the network's name once per group of rows
        previous = row[0]
        out.append(line(shown))
    return "\n".join(out)


def describe_run(meta: dict) -> str:
    """One line: mode, dtype, batch, device."""
    parts = [meta.get("mode", ""), meta.get("dtype", ""), f"batch {meta['batch']}" if "batch" in meta else "",
             "channels_last", f"on {meta.get('device', '?')}"]
    return ", ".join(p for p in parts if p)


def markdown_report(meta: dict, results: Sequence[Result]) -> str:
    """A short Markdown file: what ran where (device, versions, commit, command) and the table."""
    models = [r for r in results if r.kind == "model"]
    ops = [r for r in results if r.kind != "model"]
    cli_run = "mode" in meta and "dtype" in meta  # a pytest-benchmark file mixes modes and dtypes
    title = "inception-core bench" if cli_run else "benchmarks/ (pytest-benchmark)"
    lines = [f"# {title}: {describe_run(meta)}", ""]
    for key in ("device", "torch", "triton", "cuda", "cudnn", "inception_core", "commit", "time", "backend",
                "compile", "tf32", "loadavg", "loadavg_end"):
        if meta.get(key) is not None:
            lines.append(f"- {key}: `{meta[key]}`")
    lines += [f"- command: `{meta.get('command', '')}`", ""]
    if models:
        lines += [format_table(models, markdown=True, compact=cli_run), ""]
        lines.append(f"images/s: batch / median time per call; {rounds_line(models)}; max rel diff: "
                     "max |logits - reference fp32| / max |reference fp32|.")
    if ops:
        lines += ["", "| case | provider | dtype | median ms | IQR ms | TFLOP/s | GB/s | of peak |",
                  "|---|---|---|---:|---:|---:|---:|---:|"]
        for r in ops:
            ms = [None if v is None else 1e3 * v for v in (r.median_s, r.iqr_s)]
            frac = None if r.peak_fraction is None else 100 * r.peak_fraction
            cells = [r.name, r.provider, r.dtype, _fmt(ms[0], ".3f"), _fmt(ms[1], ".3f"), _fmt(r.tflops, ".3g"),
                     _fmt(r.gbps, ".4g"), _fmt(frac, ".0f") + ("%" if frac is not None else "")]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_markdown(path: str | os.PathLike, meta: dict, results: Sequence[Result]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(markdown_report(meta, results), encoding="utf-8")


def plot_results(path: str | os.PathLike, meta: dict, results: Sequence[Result]) -> None:
    """A grouped bar chart (images/s per network, one bar per provider, speed-up over eager above
    ours) written as a PNG.

    Raises:
        ImportError: matplotlib is missing (the ``plot`` extra).
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError("the chart needs matplotlib: pip install 'inception_core[plot]' "
                          "(or pip install matplotlib)") from exc
    models = [r for r in results if r.kind == "model" and r.ok]
    names = list(dict.fromkeys(r.name for r in models))
    providers = [p for p in PROVIDERS if any(r.provider == p for r in models)]
    ups = _speedups(models)
    fig = Figure(figsize=(max(6.0, 1.6 * len(names) + 2), 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(providers))
    colours = {"inception_core": "#d62728", "eager": "#7f7f7f", "fx_fused": "#2ca02c", "compiled": "#1f77b4"}
    for j, provider in enumerate(providers):
        xs, ys, labels = [], [], []
        for i, name in enumerate(names):
            r = next((r for r in models if r.name == name and r.provider == provider), None)
            if r is not None:
                xs.append(i + (j - (len(providers) - 1) / 2) * width)
                ys.append(r.images_per_s)
                labels.append(ups[id(r)])
        bars = ax.bar(xs, ys, width, label=provider, color=colours.get(provider))
        if provider == "inception_core":  # each speed-up with its spread: median [q1-q3] of per-round ratios
            for bar, up in zip(bars, labels, strict=True):
                text = "\n".join(f"{_ratio(up[p])} vs {p}" for p in REFERENCE_PROVIDERS if p in up)
                if text:
                    ax.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                                ha="center", va="bottom", fontsize=6)
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right")
    ax.set_ylabel("images/s")
    ax.set_title(f"inception-core bench: {describe_run(meta)}\n{rounds_line(models)}", fontsize=8)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=120)
