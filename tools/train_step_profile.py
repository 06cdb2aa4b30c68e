"""Where a CPU training step's time goes, inception_core against eager: step time, page faults, per-op time.

    python tools/train_step_profile.py --model googlenet --rounds 3

For each provider (``bench.runner.ModelRunner``, mode train, batch 8, fp32, channels_last, SGD step):
  - the median step time over ``--rounds`` steps and the minor page faults per step (``getrusage``);
  - the self CPU time per aten op from ``torch.profiler``, averaged per step, the two providers profiled in
    alternate rounds;
  - the forward time at a small input (``--small``, batch 2), where the layers' Python cost dominates.
Run it again with ``MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=68719476736`` set to see the step
without the page faults of memory that glibc hands back between steps.
"""

from __future__ import annotations

import argparse
import collections
import resource
import statistics
import time

import torch
from torch.profiler import ProfilerActivity, profile

from inception_core import bench
from inception_core.bench.references import build_pair
from inception_core.bench.runner import ModelRunner

PROVIDERS = ("eager", "inception_core")


def _forward(runner: ModelRunner) -> None:
    with runner._context():
        runner.module(runner.x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="googlenet", choices=bench.NETWORKS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--top", type=int, default=15, help="ops to list")
    parser.add_argument("--small", type=int, default=64, help="input size of the Python-cost forward")
    args = parser.parse_args()

    pair = build_pair(args.model)
    runs = {p: ModelRunner(pair, p, device="cpu", dtype=torch.float32, mode="train", batch=8) for p in PROVIDERS}
    for run in runs.values():
        run()
        run()
    steps, faults = collections.defaultdict(list), collections.defaultdict(list)
    ops = {p: collections.defaultdict(float) for p in PROVIDERS}
    for i in range(args.rounds):
        for p in PROVIDERS if i % 2 == 0 else PROVIDERS[::-1]:
            f0, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
            runs[p]()
            steps[p].append(time.perf_counter() - t0)
            faults[p].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                runs[p]()
            for event in prof.key_averages():
                ops[p][event.key] += event.self_cpu_time_total / 1e3 / args.rounds

    print(f"{args.model} train, batch 8, fp32, {torch.get_num_threads()} threads, {args.rounds} rounds")
    for p in PROVIDERS:
        f = statistics.median(faults[p])
        print(f"  {p:15s} {statistics.median(steps[p]) * 1e3:8.1f} ms/step  {f:8.0f} minor faults/step "
              f"({f * 4096 / 1e6:.0f} MB)  profiled ops {sum(ops[p].values()):8.1f} ms/step")
    keys = sorted(set(ops["eager"]) | set(ops["inception_core"]),
                  key=lambda k: -max(ops["eager"].get(k, 0.0), ops["inception_core"].get(k, 0.0)))
    print(f"  {'op (self CPU time per step)':50s} {'eager':>9s} {'ours':>9s}")
    for key in keys[:args.top]:
        print(f"  {key[:50]:50s} {ops['eager'].get(key, 0.0):7.1f}ms {ops['inception_core'].get(key, 0.0):7.1f}ms")

    small = torch.randn(2, 3, args.small, args.small).contiguous(memory_format=torch.channels_last)
    times = collections.defaultdict(list)
    for run in runs.values():
        run.x = small
        _forward(run)
    for _ in range(10 * args.rounds):
        for p, run in runs.items():
            t0 = time.perf_counter()
            _forward(run)
            times[p].append(time.perf_counter() - t0)
    print(f"  training-mode forward at 2x3x{args.small}x{args.small}: "
          + ", ".join(f"{p} {statistics.median(t) * 1e3:.2f} ms" for p, t in times.items()))


if __name__ == "__main__":
    main()
