"""``train(cfg)``: a whole run (single process or one rank under torchrun), and ``main(argv)``, the
command line of ``python -m inception_core.train`` and ``inception-core train``."""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import inception_core
from inception_core import backends
from inception_core.train import distributed
from inception_core.train.checkpoint import (
    CheckpointError,
    check_compatible,
    check_resume_target,
    load_checkpoint,
    remove_stale_temporaries,
    save_checkpoint,
)
from inception_core.train.config import (
    RESUME_MUST_MATCH,
    TrainConfig,
    build_parser,
    config_from_args,
)
from inception_core.train.data import (
    UnreadableImageError,
    build_datasets,
    make_train_loader,
    make_val_loader,
    steps_per_epoch,
)
from inception_core.train.loop import StepState, evaluate, train_epoch
from inception_core.train.metrics import MetricsLog, Progress
from inception_core.train.recipe import build_ema, build_model, build_optimizer, build_scheduler
from inception_core.train.rng import capture_rng_state, restore_rng_state, seed_all

__all__ = ["CHECKPOINT_NAME", "METRICS_NAME", "TrainResult", "main", "train"]

CHECKPOINT_NAME = "last.pt"
METRICS_NAME = "metrics.jsonl"


@dataclass
class TrainResult:
    model: nn.Module            # the bare network (not the DDP wrapper), in training mode
    ema: nn.Module | None
    state: StepState
    output: str
    last_eval: dict | None


def _output_dir(cfg: TrainConfig) -> str:
    return cfg.output if cfg.output is not None else os.path.join("runs", cfg.model)


def _check_output_dir(output: str) -> None:
    """Create ``output`` now, so that a file in its place or a read-only parent is named before any work."""
    if os.path.exists(output) and not os.path.isdir(output):
        raise ValueError(f"--output {output}: is a file, expected a directory (it will hold {CHECKPOINT_NAME} "
                         f"and {METRICS_NAME})")
    try:
        os.makedirs(output, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"--output {output}: cannot create the directory ({exc.strerror or exc})") from exc
    if not os.access(output, os.W_OK | os.X_OK):
        raise ValueError(f"--output {output}: the directory is not writable")


def _check_backend(name: str, device: torch.device) -> None:
    """Raise ValueError now when ``--backend`` names a backend that cannot run on ``device``."""
    if name == "auto":
        return
    reason = backends.backend_status(name, device)
    if reason is not None:
        raise ValueError(f"--backend {name}: cannot run on {device}: {reason}; use --backend torch or auto")


def _workers(cfg: TrainConfig) -> int:
    if cfg.workers is not None:
        return cfg.workers
    return 0 if cfg.data == "synthetic" else 4


def train(cfg: TrainConfig) -> TrainResult:
    """Train ``cfg.model`` with the recipe in ``cfg``; under torchrun as one DDP rank. Rank 0 writes
    ``<output>/last.pt`` (each epoch, every ``save_every`` steps, and at ``max_steps``) and
    ``<output>/metrics.jsonl``. Fills in ``cfg``'s resolved ``image_size``, ``num_classes``, ``world_size``
    and absolute ``data`` path. Raises ValueError / FileNotFoundError / CheckpointError on bad settings."""
    cfg.validate()
    ctx = distributed.setup(cfg.device)
    try:
        cfg.world_size = ctx.world_size
        _check_backend(cfg.backend, ctx.device)
        with inception_core.backend(cfg.backend):
            return _train(cfg, ctx)
    finally:
        distributed.cleanup()


def describe_run(cfg: TrainConfig, *, device: torch.device, world_size: int, data, parameters: int, output: str,
                 steps: int, resumed_at: int | None) -> list[str]:
    """What a run trains, on what, from which data, and where its files go: the lines ``train`` prints
    (stderr, rank 0) before its first step. ``data`` is the ``Datasets`` the run reads."""
    precision = "fp32" if cfg.amp == "none" else f"{cfg.amp} autocast"
    backend = backends.resolve_backend(device, "train")
    processes = f"{world_size} process{'es' if world_size > 1 else ''}"
    if cfg.data == "synthetic":
        source = f"synthetic (generated from --seed {cfg.seed}, no download)"
    else:
        source = f"{os.path.join(cfg.data, 'train')} and {os.path.join(cfg.data, 'val')} (ImageFolder)"
    folder = os.path.abspath(output)
    saves = "each epoch" + (f" and every {cfg.save_every} steps" if cfg.save_every else "")
    start = f"; resuming {cfg.resume} at step {resumed_at}" if resumed_at is not None else ""
    return [
        f"inception-core train: {cfg.model} ({parameters:,} parameters, {data.num_classes} classes, "
        f"{cfg.image_size}x{cfg.image_size} input) on {device}, {backend} backend, {precision}, {processes}",
        f"  data: {source}: {len(data.train)} training and {len(data.val)} held-out images",
        f"  steps: {cfg.epochs} epoch{'s' if cfg.epochs != 1 else ''} x {steps} steps of {cfg.batch_size} images "
        "per process"
        + (f", at most {cfg.max_steps} steps" if cfg.max_steps is not None else "") + start,
        f"  files: {os.path.join(folder, CHECKPOINT_NAME)} (checkpoint, {saves}), "
        f"{os.path.join(folder, METRICS_NAME)} (one record per epoch)",
    ]


def _train(cfg: TrainConfig, ctx: distributed.DistContext) -> TrainResult:
    output = _output_dir(cfg)
    ckpt_path = os.path.join(output, CHECKPOINT_NAME)
    resume_state = load_checkpoint(cfg.resume) if cfg.resume is not None else None
    if resume_state is None and os.path.exists(ckpt_path):
        raise CheckpointError(f"--output {output}: already holds a checkpoint ({CHECKPOINT_NAME}); pass --resume "
                              f"{ckpt_path} to continue that run, or choose another --output")
    if resume_state is not None:
        check_resume_target(cfg.resume, output, CHECKPOINT_NAME, METRICS_NAME, resume_state)
    if ctx.is_main:
        _check_output_dir(output)
        remove_stale_temporaries(ckpt_path)  # left by a process killed while it wrote a checkpoint
    run_id = (resume_state or {}).get("run_id") or uuid.uuid4().hex
    if cfg.data != "synthetic":
        cfg.data = os.path.abspath(cfg.data)
    cfg.image_size = cfg.resolved_image_size
    data = build_datasets(cfg.data, image_size=cfg.image_size, num_classes=cfg.num_classes,
                          train_samples=cfg.train_samples, val_samples=cfg.val_samples, seed=cfg.seed,
                          skip_bad_images=cfg.skip_bad_images)
    cfg.num_classes = data.num_classes
    if resume_state is not None:
        check_compatible(resume_state, cfg.to_dict(), RESUME_MUST_MATCH, cfg.resume)
    steps = steps_per_epoch(data.train, batch_size=cfg.batch_size, world_size=ctx.world_size)
    if steps < 1:
        raise ValueError(f"--batch-size: {cfg.batch_size} x {ctx.world_size} processes is more than the "
                         f"{len(data.train)} training images")

    seed_all(cfg.seed)  # same initial weights on every rank (DDP also broadcasts rank 0's)
    model = build_model(cfg, data.num_classes, ctx.device, distributed=ctx.distributed)
    ema = build_ema(model, cfg)
    optimizer = build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, cfg)
    scaler = torch.amp.GradScaler(ctx.device.type, enabled=cfg.amp == "fp16")
    criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    state = StepState()
    seed_all(cfg.seed + ctx.rank)  # each rank its own dropout / augmentation stream

    if resume_state is not None:
        try:
            model.load_state_dict(resume_state["model"])
            optimizer.load_state_dict(resume_state["optimizer"])
            scheduler.load_state_dict(resume_state["scheduler"])
            scaler.load_state_dict(resume_state["scaler"])
            if ema is not None:
                ema.load_state_dict(resume_state["ema"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"--resume {cfg.resume}: its state does not fit this run ({exc})") from exc
        rng = resume_state["rng"]
        if len(rng) != ctx.world_size:
            raise CheckpointError(f"--resume {cfg.resume}: holds the RNG state of {len(rng)} processes, this run "
                                  f"has {ctx.world_size}")
        restore_rng_state(rng[ctx.rank])
        state = StepState(resume_state["epoch"], resume_state["step_in_epoch"], resume_state["global_step"])

    if ctx.is_main:
        lines = describe_run(cfg, device=ctx.device, world_size=ctx.world_size, data=data,
                             parameters=sum(p.numel() for p in model.parameters()), output=output, steps=steps,
                             resumed_at=state.global_step if resume_state is not None else None)
        print("\n".join(lines), file=sys.stderr, flush=True)

    net = model
    if ctx.distributed:
        ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        net = DistributedDataParallel(model, device_ids=ids)

    log = MetricsLog(os.path.join(output, METRICS_NAME), append=resume_state is not None) if ctx.is_main else None
    workers = _workers(cfg)
    pin = ctx.device.type == "cuda"
    val_loader = make_val_loader(data.val, batch_size=cfg.batch_size, rank=ctx.rank, world_size=ctx.world_size,
                                 workers=workers, pin_memory=pin)

    def checkpoint() -> None:
        rng = distributed.all_gather_object(capture_rng_state(), ctx)
        if ctx.is_main:
            save_checkpoint({
                "format": "inception_core.train/1", "model_name": cfg.model, "run_id": run_id,
                "config": cfg.to_dict(),
                "epoch": state.epoch, "step_in_epoch": state.step_in_epoch, "global_step": state.global_step,
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                "ema": ema.state_dict() if ema is not None else None, "rng": rng,
            }, ckpt_path)

    def on_step(s: StepState) -> bool:
        stop = cfg.max_steps is not None and s.global_step >= cfg.max_steps
        if cfg.save_every and s.global_step % cfg.save_every == 0 and not stop and s.step_in_epoch < steps:
            checkpoint()
        return stop

    last_eval = None
    stopped = cfg.max_steps is not None and state.global_step >= cfg.max_steps
    while state.epoch < cfg.epochs and not stopped:
        loader = make_train_loader(data.train, batch_size=cfg.batch_size, epoch=state.epoch,
                                   skip_batches=state.step_in_epoch, rank=ctx.rank, world_size=ctx.world_size,
                                   seed=cfg.seed, workers=workers, pin_memory=pin)
        progress = Progress(steps, f"{cfg.model} epoch {state.epoch}", enabled=cfg.progress and ctx.is_main,
                            initial=state.step_in_epoch)
        lr = optimizer.param_groups[0]["lr"]
        try:
            stats, stopped = train_epoch(model=net, ema=ema, loader=loader, optimizer=optimizer, scaler=scaler,
                                         criterion=criterion, cfg=cfg, ctx=ctx, state=state, steps_in_epoch=steps,
                                         progress=progress, on_step=on_step)
        finally:
            progress.close()
        epoch = state.epoch
        complete = state.step_in_epoch >= steps
        if complete:
            scheduler.step()
            state.epoch, state.step_in_epoch = state.epoch + 1, 0
        last_eval = evaluate(model, val_loader, criterion, cfg, ctx)
        ema_eval = evaluate(ema.module, val_loader, criterion, cfg, ctx) if ema is not None else None
        loss_sum, correct1, images, skipped = distributed.all_reduce_sum(
            [stats.loss_sum, stats.correct1, stats.images, stats.skipped_images], ctx)
        checkpoint()
        if log is not None:
            for record in stats.step_records:
                log.write(record)
            record = {"kind": "epoch", "epoch": epoch, "complete": complete, "step": state.global_step,
                      "lr": lr, "train_loss": loss_sum / max(images, 1),
                      "train_top1": 100.0 * correct1 / max(images, 1), "train_images": int(images),
                      "train_seconds": round(stats.seconds, 4),
                      "images_per_s": images / stats.seconds if stats.seconds > 0 else None,
                      "val_loss": last_eval["loss"], "val_top1": last_eval["top1"], "val_top5": last_eval["top5"],
                      "world_size": ctx.world_size, "device": str(ctx.device), "amp": cfg.amp}
            if cfg.skip_bad_images:
                record.update(skipped_images=int(skipped), val_skipped_images=last_eval["skipped_images"])
            if ema_eval is not None:
                record.update(ema_val_loss=ema_eval["loss"], ema_val_top1=ema_eval["top1"],
                              ema_val_top5=ema_eval["top5"])
            log.write(record)
            print(f"epoch {epoch}{'' if complete else ' (stopped)'}: step {state.global_step}, train loss "
                  f"{record['train_loss']:.4f}, val top-1 {record['val_top1']:.2f}% top-5 {record['val_top5']:.2f}%, "
                  f"{record['images_per_s'] or 0:.1f} images/s", file=sys.stderr, flush=True)
        stopped = stopped or (cfg.max_steps is not None and state.global_step >= cfg.max_steps)

    if ctx.distributed:
        _log_replicas(model, ctx, log)
    return TrainResult(model, ema, state, output, last_eval)


def _log_replicas(model: nn.Module, ctx: distributed.DistContext, log: MetricsLog | None) -> None:
    """Record every rank's SHA-256 of its parameters and of its buffers: DDP keeps the parameters
    bit-identical; the buffers (BN running statistics) match only with --sync-bn."""
    params = distributed.replica_digest(dict(model.named_parameters()))
    buffers = distributed.replica_digest(dict(model.named_buffers()))
    digests = distributed.all_gather_object((params, buffers), ctx)
    if log is not None:
        log.write({"kind": "replicas", "param_sha256": [d[0] for d in digests],
                   "buffer_sha256": [d[1] for d in digests],
                   "params_identical": len({d[0] for d in digests}) == 1})


def run_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run ``train`` from parsed flags; a bad setting exits with status 2 and one line naming it."""
    cfg = config_from_args(args)
    try:
        train(cfg)
    except (ValueError, FileNotFoundError, ImportError, CheckpointError) as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    except UnreadableImageError as exc:  # from a DataLoader worker: the worker's traceback, our message last
        message = str(exc).strip().splitlines()[-1].split("UnreadableImageError: ", 1)[-1]
        parser.exit(1, f"{parser.prog}: error: {message}\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser("python -m inception_core.train")
    return run_from_args(parser.parse_args(argv), parser)
