"""The Inception-v4 paper's residual-connection experiment at small scale: a plain network and a
residual one of matched cost (default Inception-v4 vs Inception-ResNet-v2, the paper's main pair) trained with the same
recipe on the same generated dataset for the same number of steps; their training-loss and held-out
accuracy curves drawn to a PNG, the numbers written to JSON.

    python tools/residual_experiment.py --out docs/residual_experiment --runs /tmp/runs --parallel

Each network trains in this process through ``inception_core.train.train`` (the ``inception-core train``
code path); its metrics.jsonl and last.pt land in ``<runs>/<network>/``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import multiprocessing
import os
import time

import torch

from inception_core.train import TrainConfig, train
from inception_core.train.metrics import MetricsLog

PAIRS = {
    "v3": ("inception_v3", "inception_resnet_v1_imagenet"),
    "v4": ("inception_v4", "inception_resnet_v2"),
}


def run_one(model: str, args: argparse.Namespace) -> dict:
    steps_per_epoch = args.train_samples // args.batch_size
    runs = args.runs or os.path.join(args.out, "runs")
    cfg = TrainConfig(model=model, data="synthetic", output=os.path.join(runs, model),
                      epochs=math.ceil(args.steps / steps_per_epoch), max_steps=args.steps,
                      batch_size=args.batch_size, lr=args.lr, image_size=args.image_size,
                      num_classes=args.num_classes, train_samples=args.train_samples, val_samples=args.val_samples,
                      aux_weight=0.0, clip_grad=args.clip_grad, seed=args.seed, log_every=args.log_every, device="cpu",
                      progress=not args.no_progress)
    start = time.perf_counter()
    train(cfg)
    wall = time.perf_counter() - start
    records = MetricsLog.read(os.path.join(cfg.output, "metrics.jsonl"))
    n_params = sum(p.numel() for p in torch.load(os.path.join(cfg.output, "last.pt"), map_location="cpu",
                                                 weights_only=True)["model"].values() if p.is_floating_point())
    return {"model": model, "wall_s": round(wall, 1), "parameters_and_float_buffers": n_params,
            "steps": [r for r in records if r["kind"] == "step"],
            "epochs": [r for r in records if r["kind"] == "epoch"]}


def _run_in_worker(job: tuple[str, argparse.Namespace]) -> dict:
    model, args = job
    torch.set_num_threads(args.threads or 1)
    return run_one(model, args)


def smooth(values: list[float], window: int) -> list[float]:
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out


def plot(results: list[dict], path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.2))
    for r in results:
        steps = [s["step"] for s in r["steps"]]
        ax_loss.plot(steps, smooth([s["loss"] for s in r["steps"]], 10), label=r["model"])
        ax_acc.plot([e["step"] for e in r["epochs"]], [e["val_top1"] for e in r["epochs"]], marker="o",
                    label=r["model"])
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("training loss (moving average)")
    ax_acc.set_xlabel("step")
    ax_acc.set_ylabel("held-out top-1 (%)")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _title(s: dict) -> str:
    return (f"{' vs '.join(PAIRS[s['pair']])}: synthetic {s['num_classes']} classes, {s['image_size']}px, "
            f"batch {s['batch_size']}, {s['steps']} steps, RMSprop lr {s['lr']}, clip {s['clip_grad']}, CPU")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pair", choices=sorted(PAIRS), default="v4", help="v3: Inception-v3 vs Inception-ResNet-v1; "
                   "v4: Inception-v4 vs Inception-ResNet-v2")
    p.add_argument("--out", default="docs/residual_experiment", help="directory for runs, JSON and PNG")
    p.add_argument("--runs", default=None, help="directory for each network's checkpoint and metrics.jsonl "
                   "(default <out>/runs; checkpoints are large: keep them out of git)")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--image-size", type=int, default=75, help="75: the smallest the four networks accept")
    p.add_argument("--num-classes", type=int, default=20)
    p.add_argument("--train-samples", type=int, default=1600)
    p.add_argument("--val-samples", type=int, default=256)
    p.add_argument("--lr", type=float, default=0.045)
    p.add_argument("--clip-grad", type=float, default=2.0, help="the Inception-v3 paper's gradient clipping threshold")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=5)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--parallel", action="store_true", help="train the two networks at once, one process each")
    p.add_argument("--plot-only", action="store_true", help="redraw <out>/curves.png from <out>/results.json")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args()
    if args.threads and not args.parallel:
        torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    if args.plot_only:  # redraw from a finished run's results.json
        with open(os.path.join(args.out, "results.json")) as f:
            saved = json.load(f)
        plot(saved["results"], os.path.join(args.out, "curves.png"), _title(saved["settings"]))
        return
    if args.parallel:  # one process per network, each on --threads threads (default 1)
        ctx = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(len(PAIRS[args.pair]), mp_context=ctx) as pool:
            results = list(pool.map(_run_in_worker, [(m, args) for m in PAIRS[args.pair]]))
    else:
        results = [run_one(m, args) for m in PAIRS[args.pair]]
    settings = {k: v for k, v in vars(args).items() if k not in ("no_progress", "runs", "plot_only")}
    threads = (args.threads or 1) if args.parallel else torch.get_num_threads()
    settings.update(torch=torch.__version__, threads=threads)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"settings": settings, "results": results}, f, indent=1)
    plot(results, os.path.join(args.out, "curves.png"), _title(settings))
    for r in results:
        last = r["epochs"][-1]
        print(f"{r['model']}: {r['wall_s']} s, final train loss {last['train_loss']:.4f}, "
              f"val top-1 {last['val_top1']:.1f}%, top-5 {last['val_top5']:.1f}%")


if __name__ == "__main__":
    main()
