"""One training epoch (or the part of it up to a step limit) and the top-1/top-5 evaluation."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.data import DataLoader

from inception_core.train.distributed import DistContext, all_reduce_sum
from inception_core.train.metrics import Progress, topk_correct
from inception_core.train.recipe import AMP_DTYPES, recipe_loss

__all__ = ["EpochStats", "StepState", "evaluate", "train_epoch"]


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


@dataclass
class StepState:
    """Where the run stands: the epoch in progress, the batches of it already done, all steps done."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0


@dataclass
class EpochStats:
    loss_sum: float = 0.0
    correct1: int = 0
    images: int = 0
    steps: int = 0
    skipped_images: int = 0  # unreadable files skipped (--skip-bad-images)
    seconds: float = 0.0
    step_records: list[dict] = field(default_factory=list)


def _autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager:
    dtype = AMP_DTYPES[amp]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def _unpack(batch) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(images, target, files skipped): datasets that skip unreadable files add a per-item count."""
    images, target, *rest = batch
    return images, target, int(rest[0].sum()) if rest else 0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_epoch(*, model: nn.Module, ema: nn.Module | None, loader: DataLoader, optimizer: torch.optim.Optimizer,
                scaler: torch.amp.GradScaler, criterion: nn.Module, cfg, ctx: DistContext, state: StepState,
                steps_in_epoch: int, progress: Progress,
                on_step: Callable[[StepState], bool]) -> tuple[EpochStats, bool]:
    """Run the remaining steps of ``state.epoch`` (``state`` advances step by step).

    ``on_step(state)`` runs after every optimizer step; returning True stops the epoch there. Returns the
    stats of the steps run here and whether the epoch was cut short. Raises NonFiniteLossError on a NaN
    or infinite loss (the step is not applied).
    """
    model.train()
    stats = EpochStats()
    channels_last = torch.channels_last if cfg.channels_last else torch.contiguous_format
    _sync(ctx.device)
    start = time.perf_counter()
    for batch in loader:
        images, target, skipped = _unpack(batch)
        stats.skipped_images += skipped
        images = images.to(ctx.device, non_blocking=True).contiguous(memory_format=channels_last)
        target = target.to(ctx.device, non_blocking=True)
        with _autocast(ctx.device, cfg.amp):
            out = model(images)
            loss, logits = recipe_loss(criterion, out, target, cfg.aux_weight)
        loss_value = float(loss.detach())
        if not math.isfinite(loss_value):
            raise NonFiniteLossError(f"training loss is {loss_value} at epoch {state.epoch}, step "
                                     f"{state.step_in_epoch} (global step {state.global_step}); lower --lr, "
                                     "set --clip-grad, or use --amp none/bf16")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if cfg.clip_grad is not None:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
        scaler.step(optimizer)
        scaler.update()
        if ema is not None:
            ema.update_parameters(model.module if hasattr(model, "module") else model)
        n = target.shape[0]
        stats.loss_sum += loss_value * n
        stats.correct1 += topk_correct(logits.detach().float(), target, (1,))[0]
        stats.images += n
        stats.steps += 1
        state.step_in_epoch += 1
        state.global_step += 1
        progress.update(f"loss {loss_value:.4f}")
        if cfg.log_every and state.global_step % cfg.log_every == 0:
            stats.step_records.append({"kind": "step", "epoch": state.epoch, "step": state.global_step,
                                       "loss": loss_value, "lr": optimizer.param_groups[0]["lr"]})
        if on_step(state):
            break
    _sync(ctx.device)
    stats.seconds = time.perf_counter() - start
    return stats, state.step_in_epoch < steps_in_epoch


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, criterion: nn.Module, cfg, ctx: DistContext) -> dict:
    """Loss, top-1 and top-5 accuracy (%) on the held-out split, summed over all ranks. The network runs
    in eval mode (no aux heads, BN running statistics) and is put back in training mode after.
    ``skipped_images``: unreadable files skipped on this rank (--skip-bad-images)."""
    was_training = model.training
    model.eval()
    channels_last = torch.channels_last if cfg.channels_last else torch.contiguous_format
    loss_sum, c1, c5, n, skipped = 0.0, 0, 0, 0, 0
    try:
        for batch in loader:
            images, target, bad = _unpack(batch)
            skipped += bad
            images = images.to(ctx.device, non_blocking=True).contiguous(memory_format=channels_last)
            target = target.to(ctx.device, non_blocking=True)
            with _autocast(ctx.device, cfg.amp):
                logits = model(images)
            logits = logits.float()
            loss_sum += float(criterion(logits, target)) * target.shape[0]
            top1, top5 = topk_correct(logits, target, (1, 5))
            c1, c5, n = c1 + top1, c5 + top5, n + target.shape[0]
    finally:
        model.train(was_training)
    loss_sum, c1, c5, n, skipped = all_reduce_sum([loss_sum, c1, c5, n, skipped], ctx)
    return {"loss": loss_sum / max(n, 1), "top1": 100.0 * c1 / max(n, 1), "top5": 100.0 * c5 / max(n, 1),
            "images": int(n), "skipped_images": int(skipped)}
