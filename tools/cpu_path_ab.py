"""A/B of the torch backend's CPU fast paths: one network with every path on, against copies of it with one
path switched off, and the references, all timed in the same interleaved rounds (``bench.time_interleaved``).

    python tools/cpu_path_ab.py --model googlenet --mode infer --rounds 40 --off separable_pool
    python tools/cpu_path_ab.py --model inception_v3 --mode train --rounds 10 --off pool_conv_first

Paths (``--off``, any of them, each as a provider of its own):
    separable_pool   ops/pool2d_torch.py's separable stride-1 max pool (off: F.max_pool2d)
    residual_stock   a training layer without BatchNorm on torch's modules (off: the differentiable fused op)
    pool_conv_first  nn/pool_branch.py's average-pool branches with their 1x1 conv first (off: the pool first)
    residual_in_weights  training residual up-projection with the scale in its weights and the sum in place
                     (nn/functional._stock_residual; off: the stock modules' ``conv(x) * scale + x``)

Prints each provider's median time and the median of the per-round ratios with their quartiles:
reference / ours, and "X off" / ours (above 1: the path makes ours faster). Batch 8, fp32, channels_last,
native input size, as ``inception-core bench``.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics

import torch

from inception_core import bench
from inception_core.bench.references import build_pair
from inception_core.bench.runner import ModelRunner
from inception_core.nn import functional as icf
from inception_core.nn import pool_branch
from inception_core.ops import pool2d_torch


def _fused_residual(real):
    def conv_bn_act(x, conv, bn=None, act="relu", **kwargs):
        if bn is None and conv.training:  # the layer seen as not training: the fused op's branch
            conv.training = False
            try:
                return real(x, conv, bn, act, **kwargs)
            finally:
                conv.training = True
        return real(x, conv, bn, act, **kwargs)

    return conv_bn_act


def _stock_residual_off(x, conv, act, residual, res_scale, out, out_offset):
    return icf._stock(x, conv, None, act, residual, res_scale, out, out_offset)


PATHS = {
    "separable_pool": lambda: [(pool2d_torch, "separable", lambda *args: False)],
    "residual_stock": lambda: [(icf, "conv_bn_act", _fused_residual(icf.conv_bn_act))],
    "pool_conv_first": lambda: [(pool_branch, "_conv_first", lambda *args: False)],
    "residual_in_weights": lambda: [(icf, "_stock_residual", _stock_residual_off)],
}


@contextlib.contextmanager
def _patched(items):
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in items]
    for owner, name, value in items:
        setattr(owner, name, value)
    try:
        yield
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="googlenet", choices=bench.NETWORKS)
    parser.add_argument("--mode", default="infer", choices=("infer", "train"))
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--off", nargs="+", default=["separable_pool"], choices=list(PATHS))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    pair = build_pair(args.model)
    refs = ["eager"] + (["fx_fused"] if args.mode == "infer" else [])

    def runner(provider: str) -> ModelRunner:
        return ModelRunner(pair, provider, device="cpu", dtype=torch.float32, mode=args.mode, batch=8)

    fns = {ref: runner(ref) for ref in refs}
    fns["ours"] = runner("inception_core")
    for path in args.off:
        ours_off, items = runner("inception_core"), PATHS[path]()

        def call(run=ours_off, items=items):
            with _patched(items):
                run()

        fns[f"{path} off"] = call
    timings = bench.time_interleaved(fns, warmup=1, rounds=args.rounds, device="cpu")
    print(f"{args.model} {args.mode}, batch 8, fp32, {torch.get_num_threads()} threads, {args.rounds} rounds")
    for name, timing in timings.items():
        print(f"  {name:22s} {statistics.median(timing.times_s) * 1e3:9.1f} ms")
    ours = timings["ours"].times_s
    for name in [n for n in timings if n != "ours"]:
        s = bench.ratio_summary(timings[name].times_s, ours)
        print(f"  {name + ' / ours':29s} {s['median']:.3f}x [{s['q1']:.3f}-{s['q3']:.3f}]")


if __name__ == "__main__":
    main()
