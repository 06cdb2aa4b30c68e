"""Formulations of the CPU training step measured against what the torch backend runs, and not adopted.

    python tools/cpu_training_alternatives.py gemm_1x1 --model googlenet --rounds 9
    python tools/cpu_training_alternatives.py dgrad_as_forward --model googlenet --rounds 9
    python tools/cpu_training_alternatives.py stacked_siblings --model googlenet --rounds 12

gemm_1x1          per 1x1 stride-1 training conv of the network: ``aten.convolution_backward`` (input and weight
                  gradients) against two ``torch.mm`` on the channels_last rows
dgrad_as_forward  per stride-1 conv larger than 1x1 whose input needs a gradient: ``convolution_backward``'s
                  input gradient against ``F.conv2d`` of the output gradient with the weight transposed and flipped
stacked_siblings  the whole training step with the sibling 1x1 convs of each block (those ``ChannelSlots.siblings``
                  stacks in inference) run as one conv and one batch norm over the stacked channels, split after
                  the ReLU, against the step as it is and eager (interleaved rounds)

Per-shape modes alternate the two formulations round by round and print medians (first round dropped), the
ratio stock / alternative (above 1: the alternative is faster) and the totals. Batch 8, fp32, channels_last.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from inception_core import bench
from inception_core.bench.references import build_pair
from inception_core.bench.runner import ModelRunner
from inception_core.nn import blocks
from inception_core.nn import functional as icf

CL = torch.channels_last


def _conv_shapes(name: str, keep) -> list[tuple]:
    """(input shape, weight shape, padding) of the reference network's training convs that ``keep`` selects."""
    pair = build_pair(name)
    shapes = []

    def hook(m, inputs, _output):
        if keep(m, inputs[0]):
            shapes.append((tuple(inputs[0].shape), tuple(m.weight.shape), tuple(m.padding)))

    model = pair.reference.train()
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    model(torch.randn(8, 3, pair.input_size, pair.input_size, requires_grad=True))
    for h in handles:
        h.remove()
    return shapes


def _case(x_shape, w_shape, padding):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(x_shape, generator=gen).contiguous(memory_format=CL)
    w = (torch.randn(w_shape, generator=gen) * 0.05).contiguous(memory_format=CL)
    oh = x_shape[2] + 2 * padding[0] - w_shape[2] + 1
    ow = x_shape[3] + 2 * padding[1] - w_shape[3] + 1
    go = torch.randn(x_shape[0], w_shape[0], oh, ow, generator=gen).contiguous(memory_format=CL)
    return x, w, go, padding


def _backward(x, w, go, padding, mask):
    return torch.ops.aten.convolution_backward(go, x, w, None, [1, 1], list(padding), [1, 1], False, [0, 0], 1, mask)


def _gemm_1x1(x, w, go, padding):
    n, c, h, wd = x.shape
    k = w.shape[0]
    rows = go.permute(0, 2, 3, 1).reshape(-1, k)
    dx = torch.mm(rows, w.reshape(k, c)).view(n, h, wd, c).permute(0, 3, 1, 2)
    dw = torch.mm(rows.t(), x.permute(0, 2, 3, 1).reshape(-1, c)).view(k, c, 1, 1)
    return dx, dw


def _dgrad_forward(x, w, go, padding):
    r, s = w.shape[2:]
    flipped = w.transpose(0, 1).flip(2, 3).contiguous(memory_format=CL)
    return F.conv2d(go, flipped, None, 1, (r - 1 - padding[0], s - 1 - padding[1]))


def _per_shape(shapes, stock, alternative, rounds: int) -> None:
    cases = [_case(*s) for s in shapes]
    for case in cases[:3]:
        a, b = stock(*case), alternative(*case)
        a, b = (a, b) if isinstance(a, tuple) else ((a,), (b,))
        print("  max abs diff", [f"{(u - v).abs().max().item():.2e}" for u, v in zip(a, b, strict=False)])
    times = [([], []) for _ in cases]
    for r in range(rounds):
        for i, case in enumerate(cases):
            for j in (0, 1) if r % 2 == 0 else (1, 0):
                t0 = time.perf_counter()
                (stock, alternative)[j](*case)
                times[i][j].append(time.perf_counter() - t0)
    total = [0.0, 0.0]
    for (x_shape, w_shape, padding), (ts, ta) in zip(shapes, times, strict=True):
        s, a = statistics.median(ts[1:]), statistics.median(ta[1:])
        total[0] += s
        total[1] += a
        print(f"  {x_shape!s:22s} {w_shape!s:20s} {padding!s:8s} stock {s * 1e3:7.2f} ms  "
              f"alternative {a * 1e3:7.2f} ms  stock/alternative {s / a:5.2f}")
    print(f"  TOTAL stock {total[0] * 1e3:.1f} ms  alternative {total[1] * 1e3:.1f} ms  "
          f"stock/alternative {total[0] / total[1]:.3f}")


def _stacked_train(x, units):
    """The sibling units as one conv + one training-mode batch norm; running statistics copied back."""
    parts = [icf._unit(u) for u in units]
    convs, bns = [p[0] for p in parts], [p[1] for p in parts]
    y = F.conv2d(x, torch.cat([c.weight for c in convs], 0))
    mean, var = torch.cat([b.running_mean for b in bns]), torch.cat([b.running_var for b in bns])
    for b in bns:
        b.num_batches_tracked.add_(1)
    y = F.batch_norm(y, mean, var, torch.cat([b.weight for b in bns]), torch.cat([b.bias for b in bns]), True,
                     bns[0].momentum, bns[0].eps)
    with torch.no_grad():
        k = 0
        for b in bns:
            b.running_mean.copy_(mean[k:k + b.num_features])
            b.running_var.copy_(var[k:k + b.num_features])
            k += b.num_features
    return list(F.relu(y, inplace=True).split([c.out_channels for c in convs], 1))


def _stacked_siblings(name: str, rounds: int) -> None:
    real = blocks.ChannelSlots.siblings

    def siblings(self, x, reduce_units, direct=None, *, owner):
        units = list(reduce_units) + ([direct] if direct is not None else [])
        if self.out is None and owner.training and icf.siblings_fusable(units):
            out = _stacked_train(x, units)
            return ([out[-1]] if direct is not None else []) + out[:len(reduce_units)]
        return real(self, x, reduce_units, direct, owner=owner)

    pair = build_pair(name)

    def runner(provider):
        return ModelRunner(pair, provider, device="cpu", dtype=torch.float32, mode="train", batch=8)

    stacked_run = runner("inception_core")

    def stacked():
        blocks.ChannelSlots.siblings = siblings
        try:
            return stacked_run()
        finally:
            blocks.ChannelSlots.siblings = real

    fns = {"eager": runner("eager"), "ours": runner("inception_core"), "stacked": stacked}
    timings = bench.time_interleaved(fns, warmup=1, rounds=rounds, device="cpu")
    for provider, timing in timings.items():
        print(f"  {provider:8s} {statistics.median(timing.times_s) * 1e3:8.1f} ms")
    for provider in ("eager", "ours"):
        s = bench.ratio_summary(timings[provider].times_s, timings["stacked"].times_s)
        print(f"  {provider} / stacked {s['median']:.3f}x [{s['q1']:.3f}-{s['q3']:.3f}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("gemm_1x1", "dgrad_as_forward", "stacked_siblings"))
    parser.add_argument("--model", default="googlenet", choices=bench.NETWORKS)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    print(f"{args.mode} {args.model}, batch 8, fp32, {torch.get_num_threads()} threads, {args.rounds} rounds")
    if args.mode == "stacked_siblings":
        _stacked_siblings(args.model, args.rounds)
    elif args.mode == "gemm_1x1":
        shapes = _conv_shapes(args.model, lambda m, x: m.kernel_size == (1, 1) and m.stride == (1, 1))
        _per_shape(shapes, lambda *c: _backward(*c, [True, True, False])[:2], _gemm_1x1, args.rounds)
    else:
        shapes = _conv_shapes(args.model, lambda m, x: m.stride == (1, 1) and m.kernel_size != (1, 1)
                              and x.requires_grad)
        _per_shape(shapes, lambda *c: _backward(*c, [True, False, False])[0], _dgrad_forward, args.rounds)


if __name__ == "__main__":
    main()
