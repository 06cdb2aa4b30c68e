"""Render README.md's performance table from the newest GPU result in benchmarks/results/.

The newest GPU result is the ``inception-core bench --json`` file (any depth under the results folder) with
the latest ``meta.time`` among those measured on a CUDA device; the other bench files of the same run
folder (e.g. inference and training) are rendered with it. The table goes between the marker comments
``<!-- perf-table:start -->`` and ``<!-- perf-table:end -->`` of README.md; with no GPU result a line
says so.

Usage: python benchmarks/render_readme_table.py [--check] [--results DIR] [--readme PATH]
    --check   change nothing; exit 1 when README.md is not what this script would write
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from inception_core import bench

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- perf-table:start -->", "<!-- perf-table:end -->"
NO_RESULT = ("No GPU result yet: run `benchmarks/gpu_run.sh OUTDIR` on a GPU machine, copy OUTDIR under "
             "`benchmarks/results/` and run `python benchmarks/render_readme_table.py`.")


def gpu_runs(results_dir: Path) -> list[tuple[dict, list[bench.Result], Path]]:
    """Every bench JSON under ``results_dir`` measured on a CUDA device with model results."""
    found = []
    for path in sorted(results_dir.rglob("*.json")):
        try:
            meta, results = bench.read_json(path)
        except (ValueError, KeyError, TypeError, OSError):
            continue  # pytest-benchmark files, check results, anything else
        if meta.get("device_type") == "cuda" and any(r.kind == "model" for r in results):
            found.append((meta, results, path))
    return found


def render(results_dir: Path) -> str:
    runs = gpu_runs(results_dir)
    if not runs:
        return NO_RESULT
    newest = max(runs, key=lambda run: run[0].get("time") or "")
    same_run = sorted((run for run in runs if run[2].parent == newest[2].parent),
                      key=lambda run: (run[0].get("mode") != "infer", run[2].name))
    meta = newest[0]
    commit = (meta.get("commit") or "unknown")[:12]
    where = newest[2].parent.relative_to(ROOT) if newest[2].is_relative_to(ROOT) else newest[2].parent
    lines = [f"Measured on {meta.get('device')} (torch {meta.get('torch')}, triton {meta.get('triton')}, "
             f"commit `{commit}`, {str(meta.get('time', ''))[:10]}); files in `{where}/`.", ""]
    for run_meta, results, _ in same_run:
        models = [r for r in results if r.kind == "model"]
        lines += [f"**{bench.describe_run(run_meta)}**; compiled: {run_meta.get('compile', '?')} "
                  f"(`{run_meta.get('command', '')}`)", "", bench.format_table(models, markdown=True), ""]
    lines.append("images/s: batch / median time per call (CUDA events); speed-ups: ratios of medians; max rel diff: "
                 "max |logits - reference fp32| / max |reference fp32|.")
    return "\n".join(lines)


def update(readme: str, table: str) -> str:
    if START not in readme or END not in readme or readme.index(START) > readme.index(END):
        raise SystemExit(f"README.md: the markers {START} ... {END} are missing")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--check", action="store_true", help="exit 1 when README.md is out of date; change nothing")
    args = parser.parse_args(argv)
    old = args.readme.read_text(encoding="utf-8")
    new = update(old, render(args.results))
    if args.check:
        if new != old:
            print(f"{args.readme}: the performance table is out of date; run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    if new != old:
        args.readme.write_text(new, encoding="utf-8")
        print(f"updated {args.readme}")
    else:
        print(f"{args.readme} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
